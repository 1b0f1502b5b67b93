"""Rendering of pull progress: rich bars per layer on a terminal, plain status lines otherwise.

The engine reports `PullEvent`s (possibly from several download threads); this module turns
them into what docker shows.
"""
from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

PLAIN_NAMES = {
    "Waiting": "Pulling fs layer",
}


def use_tty(mode: str) -> bool:
    if mode == "tty":
        return True
    if mode != "auto":
        return False
    return sys.stdout.isatty() and os.environ.get("TERM") != "dumb"


@contextmanager
def pull_progress(mode: str, ref) -> Iterator[Callable]:
    if mode == "quiet":
        yield lambda ev: None
        return
    # docker names the repository by its path on the registry: library/busybox, test/app
    header = f"{ref.tag or ref.digest}: Pulling from {ref.path}"
    if use_tty(mode):
        with _rich_progress(header) as cb:
            yield cb
        return
    print(header, flush=True)
    lock = threading.Lock()
    last: dict[str, str] = {}

    def on_event(ev) -> None:
        if ev.status == "Resolved":
            return
        status = PLAIN_NAMES.get(ev.status, ev.status)
        with lock:
            if last.get(ev.id) == status:
                return
            last[ev.id] = status
            print(f"{ev.id}: {status}", flush=True)

    yield on_event


@contextmanager
def _rich_progress(header: str) -> Iterator[Callable]:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    console = Console(highlight=False)
    console.print(header)
    lock = threading.Lock()
    tasks: dict[str, int] = {}
    progress = Progress(
        TextColumn("{task.fields[layer]}:"),
        TextColumn("{task.fields[status]:<18}"),
        BarColumn(bar_width=40),
        DownloadColumn(),
        console=console,
        transient=False,
    )

    def on_event(ev) -> None:
        if ev.status == "Resolved":
            return
        with lock:
            status = PLAIN_NAMES.get(ev.status, ev.status)
            if ev.id not in tasks:
                tasks[ev.id] = progress.add_task("", layer=ev.id, status=status, total=ev.total or None)
            tid = tasks[ev.id]
            fields = {"status": status}
            if ev.status in ("Downloading",):
                progress.update(tid, completed=ev.current, total=ev.total or None, **fields)
            elif ev.status in ("Pull complete", "Already exists", "Download complete"):
                total = progress.tasks[tid].total or ev.total or 1
                progress.update(tid, completed=total, total=total, **fields)
            elif ev.status == "Extracting":
                progress.update(tid, **fields)
            else:
                progress.update(tid, **fields)

    with progress:
        yield on_event
