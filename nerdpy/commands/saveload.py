"""`nerdpy save` and `nerdpy load`: thin layers over nerdpy.engine.images.saveload. Errors exit 1, as
docker's do for these commands (nerdpy.exitcodes)."""
from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

import click

from nerdpy.commands._util import store_of
from nerdpy.exitcodes import CommandError


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@click.command("save")
@click.argument("images", nargs=-1, required=True)
@click.option("-o", "--output", metavar="FILE", help="Write to a file, instead of STDOUT")
@click.option("--format", "fmt", type=click.Choice(["docker-archive", "oci-archive"]), default="docker-archive",
              show_default=True, help="Archive format")
@click.pass_context
def save(ctx: click.Context, images: tuple[str, ...], output: str | None, fmt: str) -> None:
    """Save one or more images to a tar archive (streamed to STDOUT by default).

    \b
    Examples:
      nerdpy save -o busybox.tar busybox
      nerdpy save busybox alpine:3.19 | gzip > images.tar.gz
      nerdpy save --format oci-archive -o app.tar 127.0.0.1:5000/team/app:1.2
    """
    from nerdpy.engine.images.saveload import save_images

    if output is None and _isatty(sys.stdout):
        raise CommandError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    store = store_of(ctx)
    if output is None or output == "-":
        try:
            save_images(store, list(images), sys.stdout.buffer, fmt=fmt)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            if e.filename is not None:  # not the output: a file of the store
                raise
            # the output failed (a full disk): drop what is still buffered, so the exit is silent
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            raise CommandError(f"write /dev/stdout: {(e.strerror or str(e)).lower()}") from None
        return
    if os.path.isdir(output):
        raise CommandError(f"{output} is a directory")
    from nerdpy.engine.util.fs import atomic_file

    try:
        with atomic_file(os.path.abspath(output), fsync=True) as f:
            save_images(store, list(images), f, fmt=fmt)
    except OSError as e:
        raise CommandError(f"cannot write {output}: {e.strerror or e}") from None


@click.command("load")
@click.option("-i", "--input", "input_", metavar="FILE", help="Read from tar archive file, instead of STDIN")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load output")
@click.pass_context
def load(ctx: click.Context, input_: str | None, quiet: bool) -> None:
    """Load images from a tar archive or STDIN (docker-archive, old or OCI-layout form, and
    oci-archive; plain or compressed).

    \b
    Examples:
      nerdpy load -i busybox.tar
      gunzip -c images.tar.gz | nerdpy load
    """
    from nerdpy.engine.images.saveload import load_images, open_input
    from nerdpy.engine.distribution.reference import parse_reference

    if input_ is None and _isatty(sys.stdin):
        raise CommandError("requested load from stdin, but stdin is empty")
    store = store_of(ctx)
    stream = open_input(input_)
    try:
        with load_progress(quiet) as on_event:
            loaded = load_images(store, stream, progress=on_event)
    finally:
        if input_ not in (None, "-"):
            stream.close()
    for item in loaded:
        if item.name is None:
            click.echo(f"Loaded image ID: {item.image_id}")
            continue
        familiar = parse_reference(item.name).familiar()
        if item.replaced:
            click.echo(f"The image {familiar} already exists, renaming the old one with ID "
                       f"{item.replaced} to empty string")
        click.echo(f"Loaded image: {familiar}")


@contextmanager
def load_progress(quiet: bool) -> Iterator[Callable]:
    """docker shows layer progress only on a terminal."""
    from nerdpy.commands.progress import use_tty

    if quiet or not use_tty("auto"):
        yield lambda ev: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    lock = threading.Lock()
    tasks: dict[str, int] = {}
    progress = Progress(TextColumn("{task.fields[status]}"), BarColumn(bar_width=40), DownloadColumn(),
                        console=Console(highlight=False), transient=False)

    def on_event(ev) -> None:
        with lock:
            if ev.id not in tasks:
                tasks[ev.id] = progress.add_task("", status=ev.status, total=ev.total or None)
            progress.update(tasks[ev.id], completed=ev.current, total=ev.total or None, status=ev.status)

    with progress:
        yield on_event
