"""Filesystem helpers written once: atomic file replacement (temp file + rename), resolving a path
inside a root as a chroot would, and the size of a directory tree.

Standard library only and cheap to import: the CLI's start-up paths and compose use it.
(The runtime monitor keeps its own tiny JSON writer: it must not import nerdpy at all.)
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from typing import BinaryIO, Iterator


@contextlib.contextmanager
def atomic_file(path: str, mode: int | None = None, *, fsync: bool = False) -> Iterator[BinaryIO]:
    """A binary file to write that replaces `path` by a rename when the block ends without an
    error (readers see the old file or the new one, never a part); on an error the temp file is
    removed and `path` is left as it was. `mode`: the file's permissions, set from its creation
    on (None: what the umask gives); `fsync`: flush the data to disk before the rename."""
    # `.tmp-<pid>` in the name: `system check` finds those a dead process left
    tmp = os.path.join(os.path.dirname(path) or ".",
                       f".{os.path.basename(path)}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666 if mode is None else mode)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_atomic(path: str, data: str | bytes, mode: int | None = 0o644, *, fsync: bool = False) -> None:
    """Create or replace `path` with `data` (text is UTF-8) by a rename; see `atomic_file`."""
    with atomic_file(path, mode, fsync=fsync) as f:
        f.write(data.encode() if isinstance(data, str) else data)


def write_json_atomic(path: str, obj, mode: int | None = None, *, fsync: bool = False, **dumps) -> None:
    """`obj` as JSON (json.dumps keywords in `dumps`), written with `write_atomic`."""
    write_atomic(path, json.dumps(obj, **dumps), mode, fsync=fsync)


def resolve_in_root(root: str, path: str, max_links: int = 40, *, create_dirs: bool | None = None) -> str:
    """Resolve `path` as if `root` were `/`: symlinks (absolute or relative) never leave root.
    Returns a host path inside root. InvalidArgument past `max_links` symlinks.

    `create_dirs` None: missing components are taken as they are (the final one may not exist);
    otherwise `path` names a directory and every component must be one (NotADirectoryError),
    missing ones created (True, mode 0755) or refused (False, FileNotFoundError); these errors
    carry the component's path inside root as their filename."""
    root = os.path.abspath(root)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            if create_dirs is False:
                raise FileNotFoundError(errno.ENOENT, "does not exist", "/".join(resolved + [part])) from None
            if create_dirs:
                os.mkdir(candidate, 0o755)
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > max_links:
                from nerdpy.engine.errors import InvalidArgument

                raise InvalidArgument(f"too many levels of symbolic links in {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        if create_dirs is not None and not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, "is not a directory", "/".join(resolved + [part]))
        resolved.append(part)
    return os.path.join(root, *resolved)


def dir_size(path: str) -> int:
    """Bytes of file content under `path`, symlinks not followed (as `ps -s` counts a writable
    layer, and `system df` a volume); unreadable entries count 0."""
    total = 0
    for d, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(d, f)).st_size
            except OSError:
                pass
    return total


def device_kind(mode: int) -> str | None:
    """"c" for a character device node, "b" for a block device, None for anything else (st_mode)."""
    if stat.S_ISCHR(mode):
        return "c"
    if stat.S_ISBLK(mode):
        return "b"
    return None
