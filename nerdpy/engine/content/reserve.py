"""The data root's space reserve: a few megabytes held back so that nerdpy still works when the
file system under its data root is full (a container's log, a pull or another program filled it).

`<data-root>/reserve` is a file of RESERVE_BYTES, allocated for real (fallocate), made when the file
system has room. When a command opens the store on an almost full file system, the reserve is
deleted first: SQLite then has room for its WAL index and journal, so reading commands (`ps`,
`logs`, `inspect`, `system check`) work and `rm -f` can free space. A container's monitor
releases it too when the state it must record cannot be written (monitor.release_reserve). The
next command that finds enough room makes it again.

Standard library only.
"""
from __future__ import annotations

import os

RESERVE_FILE = "reserve"
RESERVE_BYTES = 2 << 20
LOW_WATER = 1 << 20        # less free than this: release the reserve
HIGH_WATER = 64 << 20      # more free than this: (re)make it


def reserve_path(data_root: str) -> str:
    return os.path.join(data_root, RESERVE_FILE)


def free_bytes(path: str) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class Room:
    """The room a bulk writer (a blob download, a layer being unpacked) may still take on `path`'s
    file system before it would leave less than LOW_WATER free: such writes must never take the
    last blocks, which SQLite needs for the holes of its mapped WAL index (touched with none free:
    SIGBUS). `take(n)` before writing n bytes raises ENOSPC when they would not fit.

    statvfs is asked again once the writer has spent an eighth of the room it last saw (so a few
    writers side by side cannot together overshoot it), and on every take once less than 64 MiB
    is left: a few calls for a large pull, one per write near the end."""

    def __init__(self, path: str):
        self.path = path
        self._budget = 0   # what may be written before asking again

    def take(self, n: int) -> None:
        if n <= self._budget:
            self._budget -= n
            return
        try:
            room = free_bytes(self.path) - LOW_WATER
        except OSError:
            self._budget = 0
            return
        if n > room:
            import errno

            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)
        self._budget = max(0, room // 8 - n) if room > HIGH_WATER else 0


def release(data_root: str) -> bool:
    """Delete the reserve; True if there was one."""
    try:
        os.unlink(reserve_path(data_root))
        return True
    except OSError:
        return False


def keep_room(data_root: str) -> None:
    """At store open: release the reserve when the file system is almost full, make it when there
    is room again. Never raises (a reserve that cannot be made is no error)."""
    path = reserve_path(data_root)
    try:
        free = free_bytes(data_root)
        have = os.path.exists(path)
        if have and free < LOW_WATER:
            release(data_root)
        elif not have and free > HIGH_WATER:
            _make(path)
    except OSError:
        pass


def _make(path: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.posix_fallocate(fd, 0, RESERVE_BYTES)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
