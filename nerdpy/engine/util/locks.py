"""Waiting for a file lock (flock) another process holds: never silently, never for ever.

Every blocking flock of the engine goes through `flock_wait`. It takes the lock at once when
it is free. When it is not, it polls; after `NOTICE_AFTER` seconds it reports once, through the
reporter the caller installed (`set_reporter`: the CLI writes it to stderr; the engine never
prints), what it waits for and which process holds it (from /proc/locks); after the configured
timeout (`configure`, from the settings' `lock_timeout`, `NERDPY_LOCK_TIMEOUT`) it gives up with
LockTimeout naming the holder.
"""
from __future__ import annotations

import fcntl
import os
import time
from typing import Callable

NOTICE_AFTER = 3.0
_state: dict = {"timeout": 300.0, "reporter": None}


def configure(timeout: float | None = None) -> None:
    """Set the give-up time (seconds) for the rest of this process."""
    if timeout is not None:
        _state["timeout"] = float(timeout)


def set_reporter(reporter: Callable[[str], None] | None) -> None:
    """`reporter(line)` is told once per wait that lasts longer than NOTICE_AFTER seconds."""
    _state["reporter"] = reporter


def holders(fd: int) -> list[int]:
    """The pids holding a flock on the file open as `fd` (by /proc/locks' device and inode)."""
    st = os.fstat(fd)
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    out: list[int] = []
    try:
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split()
        if "->" in parts:  # a waiter, not a holder
            continue
        if len(parts) < 6 or parts[1] != "FLOCK":
            continue
        try:
            maj, mino, ino = parts[5].split(":")
            key = (int(maj, 16), int(mino, 16), int(ino))
            pid = int(parts[4])
        except ValueError:
            continue
        if key == want and pid != os.getpid() and pid not in out:
            out.append(pid)
    return out


def describe(pids: list[int]) -> str:
    if not pids:
        return "a process that could not be identified"
    names = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = " ".join(f.read().replace(b"\0", b" ").decode(errors="replace").split())
        except OSError:
            cmd = ""
        names.append(f"pid {pid}" + (f" ({cmd[:80]})" if cmd else ""))
    return ", ".join(names)


def flock_wait(fd: int, flags: int, what: str, timeout: float | None = None) -> None:
    """flock(fd, flags) (LOCK_EX or LOCK_SH), waiting as the module docstring says; `what`
    names the lock for people ("the store's gc lock (/var/lib/nerdpy/gc.lock)")."""
    from nerdpy.engine.errors import LockTimeout

    try:
        fcntl.flock(fd, flags | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    limit = _state["timeout"] if timeout is None else timeout
    start = time.monotonic()
    told = False
    delay = 0.02
    while True:
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
        try:
            fcntl.flock(fd, flags | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        waited = time.monotonic() - start
        if not told and waited >= NOTICE_AFTER:
            told = True
            reporter = _state["reporter"]
            if reporter is not None:
                reporter(f"waiting for {what}, held by {describe(holders(fd))} "
                         f"(giving up after {limit:g} s)")
        if waited >= limit:
            raise LockTimeout(f"gave up after {limit:g} s waiting for {what}, held by {describe(holders(fd))}: "
                              "if that process hangs, stop it (NERDPY_LOCK_TIMEOUT sets the wait)")
