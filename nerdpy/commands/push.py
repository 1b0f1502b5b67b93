"""`nerdpy push`: flags -> engine.push -> progress rendering (rich bars per layer on a terminal,
docker's plain status lines otherwise) and docker's closing line `TAG: digest: ... size: N`."""
from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

import click

from nerdpy.commands._util import store_of


@click.command("push")
@click.argument("name")
@click.option("-a", "--all-tags", is_flag=True, help="Push all tags of an image to the repository")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output")
@click.option("--progress", type=click.Choice(["auto", "plain", "tty", "quiet"]), default="auto",
              help="Progress output: auto, plain, tty or quiet")
@click.option("--disable-content-trust", is_flag=True, default=True, hidden=True,
              help="Skip image signing (always: nerdpy does not sign)")
@click.pass_context
def push(ctx: click.Context, name: str, all_tags: bool, quiet: bool, progress: str, disable_content_trust: bool) -> None:
    """Upload an image to a registry.

    \b
    Examples:
      nerdpy push 127.0.0.1:5000/team/app:1.2
      nerdpy push --all-tags 127.0.0.1:5000/team/app
    """
    from nerdpy.engine.distribution.push import push_image, push_targets

    store = store_of(ctx)
    targets = push_targets(store, name, all_tags=all_tags)
    mode = "quiet" if quiet else progress
    if mode != "quiet":
        click.echo(f"The push refers to repository [{targets[0][1].name}]")
    for image, ref in targets:
        with push_progress(mode) as on_event:
            result = push_image(store, image, ref, progress=on_event)
        if quiet:
            click.echo(result.reference)
        else:
            click.echo(f"{result.tag}: digest: {result.digest} size: {result.size}")
    sys.stdout.flush()


@contextmanager
def push_progress(mode: str) -> Iterator[Callable]:
    from nerdpy.commands.progress import use_tty

    if mode == "quiet":
        yield lambda ev: None
        return
    if use_tty(mode):
        with _rich_progress() as cb:
            yield cb
        return
    lock = threading.Lock()
    last: dict[str, str] = {}

    def on_event(ev) -> None:
        with lock:
            if last.get(ev.id) == ev.status:
                return
            last[ev.id] = ev.status
            print(f"{ev.id}: {ev.status}", flush=True)

    yield on_event


@contextmanager
def _rich_progress() -> Iterator[Callable]:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    console = Console(highlight=False)
    lock = threading.Lock()
    tasks: dict[str, int] = {}
    progress = Progress(
        TextColumn("{task.fields[layer]}:"),
        TextColumn("{task.fields[status]:<22}"),
        BarColumn(bar_width=40),
        DownloadColumn(),
        console=console,
        transient=False,
    )

    def on_event(ev) -> None:
        with lock:
            if ev.id not in tasks:
                tasks[ev.id] = progress.add_task("", layer=ev.id, status=ev.status, total=ev.total or None)
            tid = tasks[ev.id]
            if ev.status == "Pushing":
                progress.update(tid, completed=ev.current, total=ev.total or None, status=ev.status)
            elif ev.status in ("Pushed", "Layer already exists") or ev.status.startswith("Mounted from"):
                total = progress.tasks[tid].total or ev.total or 1
                progress.update(tid, completed=total, total=total, status=ev.status)
            else:
                progress.update(tid, status=ev.status)

    with progress:
        yield on_event
