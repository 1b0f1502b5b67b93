"""Detecting a missing or damaged metadata DB before it is opened (cheap: a stat and 100 bytes).

A data root whose `meta.db` is gone, empty or shorter than its own header says, while the
root holds containers, snapshots or blobs, is a damaged store, never a new one: opening it
would create an empty DB and every command would then see (and `system check --repair` would
treat) the containers and images on disk as garbage. `system check --repair` rebuilds it
(nerdpy.engine.system.rebuild).
"""
from __future__ import annotations

import os

DB_NAME = "meta.db"

# databases this process has open: never read again by path here, since closing any descriptor of
# the file drops every POSIX lock the process holds on it, SQLite's own included (its WAL and
# read locks: other processes' commits would then go unseen, or worse)
OPENED_HERE: set[str] = set()


def _has_entries(path: str, skip: tuple[str, ...] = ()) -> int:
    try:
        return sum(1 for n in os.listdir(path) if not n.startswith(".") and n not in skip)
    except OSError:
        return 0


def disk_contents(data_root: str) -> dict[str, int]:
    """What the data root holds on disk, whatever the DB says: containers, snapshots, blobs."""
    cont = 0
    base = os.path.join(data_root, "containers")
    try:
        for ns in os.listdir(base):
            cont += sum(1 for n in os.listdir(os.path.join(base, ns)) if ".removing-" not in n and len(n) == 64)
    except OSError:
        pass
    return {
        "containers": cont,
        "snapshots": sum(1 for n in _list(os.path.join(data_root, "snapshots")) if n.isdigit()),
        "blobs": _has_entries(os.path.join(data_root, "content", "blobs", "sha256")),
    }


def _list(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def database_damage(data_root: str) -> str | None:
    """Why the DB under `data_root` cannot be trusted, or None (sound, or a new store)."""
    path = os.path.join(data_root, DB_NAME)
    if os.path.realpath(path) in OPENED_HERE:
        return None  # checked when this process opened it (see OPENED_HERE)
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        size = -1
    except OSError as e:
        return f"metadata database {path} cannot be read: {e.strerror}"
    if size <= 0:
        held = {k: v for k, v in disk_contents(data_root).items() if v}
        if not held:
            return None  # a new store
        what = ", ".join(f"{v} {k}" for k, v in held.items())
        return (f"metadata database {path} is {'missing' if size < 0 else 'empty'} "
                f"but the data root holds {what}")
    try:
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError as e:
        return f"metadata database {path} cannot be read: {e.strerror}"
    if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):
        return f"metadata database {path} is damaged (not an SQLite database: its header is gone)"
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    valid = head[24:28] == head[92:96]      # the in-header size is valid (SQLite >= 3.7.0 wrote it)
    if valid and pages and size < pages * page_size:
        return (f"metadata database {path} is damaged (truncated: {size} bytes of "
                f"{pages * page_size})")
    return None


def repair_hint() -> str:
    return "run `nerdpy system check --repair` to rebuild it from what is on disk (the damaged file is kept)"
