"""Rendering of progress: rich bars per layer on a terminal, plain status lines otherwise.

The engine reports `PullEvent`s (possibly from several download threads) and the compose
runtime its `Event`s; this module turns them into what docker and docker compose show. Nothing
here imports rich until a terminal view is wanted, and rich's Console is never forced to colour,
so `NO_COLOR` is honoured.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

PLAIN_NAMES = {
    "Waiting": "Pulling fs layer",
}


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def use_tty(mode: str, stream=None) -> bool:
    """Whether `mode` (auto, tty, plain, quiet) means the rich view on `stream` (stdout by default)."""
    if mode == "tty":
        return True
    if mode != "auto":
        return False
    return _isatty(stream if stream is not None else sys.stdout) and os.environ.get("TERM") != "dumb"


@contextmanager
def pull_progress(mode: str, ref, stream=None) -> Iterator[Callable]:
    """Progress of one pull on `stream` (stdout by default; `run` and `create` use stderr)."""
    if mode == "quiet":
        yield lambda ev: None
        return
    out = stream if stream is not None else sys.stdout
    # docker names the repository by its path on the registry: library/busybox, test/app
    header = f"{ref.tag or ref.digest}: Pulling from {ref.path}"
    if use_tty(mode, out):
        with _rich_progress(header, out) as cb:
            yield cb
        return
    print(header, file=out, flush=True)
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
            print(f"{ev.id}: {status}", file=out, flush=True)

    yield on_event


@contextmanager
def _rich_progress(header: str, out) -> Iterator[Callable]:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    console = Console(file=out, highlight=False)
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
        redirect_stdout=False,
        redirect_stderr=False,
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


# -- compose: one line per network, volume, container and image, as docker compose v2 ----------------
_DONE = {"Created", "Started", "Healthy", "Running", "Pulled", "Removed", "Stopped", "Recreated", "Exited",
         "Killed", "Paused", "Unpaused", "Skipped", "Pull complete", "Already exists", "Download complete"}
_ERROR = {"Error"}
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_active: list["ComposeProgress"] = []


def compose_mode(progress: str, stream=None) -> str:
    """docker compose's --progress (auto, tty, plain, quiet) resolved for `stream` (stderr):
    tty, plain or quiet."""
    if progress == "auto":
        return "tty" if use_tty("auto", stream if stream is not None else sys.stderr) else "plain"
    return progress


def close_all() -> None:
    """Stop every live view (before an error line is printed, or when the command ends)."""
    for view in list(_active):
        view.close()


def _is_done(status: str) -> bool:
    return status in _DONE or status.startswith("Skipped")


def _short_size(n: float) -> str:
    units = ["B", "kB", "MB", "GB", "TB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    return f"{n:.3g}{units[i]}"


class _Row:
    __slots__ = ("label", "status", "start", "end", "current", "total", "parent")

    def __init__(self, label: str, parent):
        self.label = label
        self.status = ""
        self.start = time.monotonic()
        self.end = None
        self.current = 0
        self.total = 0
        self.parent = parent


class ComposeProgress:
    """Renders compose.runtime Events on stderr, as docker compose does.

    mode `tty`: a live view, updated in place (`[+] Running 2/3`, then one line per object with a
    spinner or a tick, its state and the time it took; an image's layers under it while it is
    pulled). mode `plain`: one stable line per change of state (` Container proj-web-1  Started`,
    ` web Pulling`, ` 0123456789ab Pull complete`). mode `quiet`: nothing. `quiet_pull` drops
    the image and layer events only. Warnings are printed above the live view."""

    def __init__(self, mode: str, quiet_pull: bool = False, stream=None):
        self.mode = mode
        self.quiet_pull = quiet_pull
        self.stream = stream if stream is not None else sys.stderr
        self._lock = threading.Lock()        # the rows (the live view's renderer takes it)
        self._live_lock = threading.Lock()   # starting and stopping the live view
        self._rows: dict[tuple, _Row] = {}
        self._last: dict[tuple, str] = {}
        self._live = None
        self._closed = False

    # -- events -------------------------------------------------------------------------------
    def __call__(self, e) -> None:
        kind = e.kind
        if self.mode == "quiet" or (self.quiet_pull and kind in ("Image", "Layer")):
            return
        status = e.status
        if kind == "Layer":
            if status == "Resolved":
                return
            status = PLAIN_NAMES.get(status, status)
            key = ("Layer", e.detail, e.name)
        elif kind == "Image":
            key = ("Image", e.detail or e.name)
        else:
            key = (kind, e.name)
        if self.mode == "tty" and not self._closed:
            self._update(key, e, status)
            return
        with self._lock:
            if self._last.get(key) == status:
                return
            self._last[key] = status
        self._plain(self._plain_line(key, status))

    @staticmethod
    def _plain_line(key: tuple, status: str) -> str:
        if key[0] in ("Image", "Layer"):
            return f" {key[-1]} {status}"
        return f" {key[0]} {key[1]}  {status}"

    def _plain(self, line: str) -> None:
        try:
            print(line, file=self.stream, flush=True)
        except (BrokenPipeError, ValueError):
            pass

    def warn(self, message: str) -> None:
        line = f"nerdpy: warning: {message}"
        live = self._live
        if live is not None:
            live.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            self._plain(line)

    # -- the live view ----------------------------------------------------------------------------
    def _update(self, key: tuple, e, status: str) -> None:
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                if key[0] == "Layer":
                    label, parent = e.name, ("Image", e.detail)
                elif key[0] == "Image":
                    label, parent = key[1], None
                else:
                    label, parent = f"{key[0]} {key[1]}", None
                row = self._rows[key] = _Row(label, parent)
            if row.status != status:
                if _is_done(status) or status in _ERROR:
                    row.end = time.monotonic()
                elif row.end is not None:
                    row.end = None
            row.status = status
            if getattr(e, "total", 0):
                row.current, row.total = e.current, e.total
            if status in ("Pull complete", "Already exists", "Download complete") and row.total:
                row.current = row.total
        if self._live is None:
            self._start()

    def _start(self) -> None:
        with self._live_lock:
            if self._live is not None or self._closed:
                return
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream, highlight=False)
            self._live = Live(get_renderable=self._render, console=console, refresh_per_second=10,
                              transient=False, redirect_stdout=False, redirect_stderr=False)
            self._live.start()
            _active.append(self)

    def close(self) -> None:
        """Stop the live view (its last state stays on the screen); later events are plain lines."""
        with self._live_lock:
            self._closed = True
            live, self._live = self._live, None
            if self in _active:
                _active.remove(self)
        if live is not None:
            try:
                live.stop()
            except (BrokenPipeError, ValueError):
                pass

    def _render(self):
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            rows = list(self._rows.items())
        now = time.monotonic()
        tops = [(k, r) for k, r in rows if r.parent is None]
        done = sum(1 for _, r in tops if _is_done(r.status))
        verb = "Pulling" if tops and all(k[0] == "Image" for k, _ in tops) else "Running"
        all_done = bool(tops) and done == len(tops)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True, overflow="ellipsis")
        grid.add_column(no_wrap=True, justify="right")
        frame = _SPINNER[int(now * 10) % len(_SPINNER)]

        def add(r: _Row, indent: str) -> None:
            if r.status in _ERROR:
                icon, style = "✘", "red"
            elif _is_done(r.status):
                icon, style = "✔", "blue"
            else:
                icon, style = frame, None
            extra = ""
            if r.status == "Downloading" and r.total:
                width = 20
                filled = min(width, int(width * r.current / r.total))
                bar = "=" * filled + (">" if filled < width else "") + " " * max(0, width - filled - 1)
                extra = f"[{bar}] {_short_size(r.current)}/{_short_size(r.total)}"
            elapsed = (r.end if r.end is not None else now) - r.start
            grid.add_row(Text(f"{indent}{icon}", style=style or ""), Text(r.label, style=style or ""),
                         Text(r.status, style=style or ""), Text(extra), Text(f"{elapsed:.1f}s"))

        for key, r in tops:
            add(r, " ")
            if key[0] == "Image" and not _is_done(r.status):
                for _, child in rows:
                    if child.parent == key:
                        add(child, "   ")
        title = Text(f"[+] {verb} {done}/{len(tops)}", style="blue" if all_done else "")
        return _Group(title, grid)


def _Group(*items):
    from rich.console import Group

    return Group(*items)
