"""The metadata database: images, snapshots and (later) containers, networks and volumes.

One SQLite file (`<data-root>/meta.db`) in WAL mode. Every change is one transaction
(`with db.write() as cur:` takes the write lock up front with BEGIN IMMEDIATE), so a crash at
any point leaves either the old or the new state. Readers never see a half-made object.
"""
from __future__ import annotations

import errno
import os
import sqlite3
import threading
from contextlib import contextmanager
from typing import Iterator

SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,          -- normalised reference: docker.io/library/busybox:latest
    target      TEXT NOT NULL,          -- digest the name points at (manifest or index)
    media_type  TEXT NOT NULL,
    size        INTEGER NOT NULL,
    manifest    TEXT NOT NULL,          -- the platform manifest used by default
    config      TEXT NOT NULL,          -- its config digest: the image ID
    created_at  REAL NOT NULL,          -- when the name was first stored
    updated_at  REAL NOT NULL,
    PRIMARY KEY (namespace, name)
);
CREATE INDEX IF NOT EXISTS images_config ON images(namespace, config);
CREATE TABLE IF NOT EXISTS snapshots (
    chain_id    TEXT PRIMARY KEY,
    id          INTEGER NOT NULL UNIQUE, -- directory name under snapshots/
    parent      TEXT,                    -- parent chain id, NULL for a base layer
    diff_id     TEXT NOT NULL,
    size        INTEGER NOT NULL,        -- bytes of file content in this layer
    created_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS active_snapshots (
    key         TEXT PRIMARY KEY,        -- the owner's key, e.g. ns/container-id
    id          INTEGER NOT NULL UNIQUE,
    parent      TEXT,                    -- committed chain id it sits on
    created_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS containers (
    namespace   TEXT NOT NULL,
    id          TEXT NOT NULL,           -- 64 hex digits
    name        TEXT NOT NULL,
    image       TEXT NOT NULL,           -- the image as the user named it
    image_id    TEXT NOT NULL,           -- config digest
    config      TEXT NOT NULL,           -- JSON: what was asked for (Config + HostConfig)
    created_at  REAL NOT NULL,
    PRIMARY KEY (namespace, id),
    UNIQUE (namespace, name)
);
CREATE TABLE IF NOT EXISTS volumes (
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    labels      TEXT NOT NULL DEFAULT '{}',
    anonymous   INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    PRIMARY KEY (namespace, name)
);
CREATE TABLE IF NOT EXISTS counters (
    name        TEXT PRIMARY KEY,
    value       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS networks (
    name        TEXT PRIMARY KEY,        -- global, as bridges and conflists are: not per namespace
    id          TEXT NOT NULL UNIQUE,    -- 64 hex digits
    driver      TEXT NOT NULL,           -- bridge, macvlan, ipvlan
    subnet      TEXT NOT NULL,
    gateway     TEXT NOT NULL,
    ip_range    TEXT NOT NULL DEFAULT '',
    internal    INTEGER NOT NULL DEFAULT 0,
    link        TEXT NOT NULL DEFAULT '', -- the Linux bridge (bridge) or parent link (macvlan, ipvlan)
    labels      TEXT NOT NULL DEFAULT '{}',
    options     TEXT NOT NULL DEFAULT '{}',
    created_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS net_sandboxes (
    namespace    TEXT NOT NULL,
    container_id TEXT NOT NULL,
    netns        TEXT NOT NULL,          -- written before the namespace is made (crash: reclaimed)
    info         TEXT NOT NULL DEFAULT '{}', -- JSON: name, hostname, published ports, /etc/hosts
    created_at   REAL NOT NULL,
    PRIMARY KEY (namespace, container_id)
);
CREATE TABLE IF NOT EXISTS net_attachments (
    namespace    TEXT NOT NULL,
    container_id TEXT NOT NULL,
    network      TEXT NOT NULL,          -- network name
    ifname       TEXT NOT NULL,
    position     INTEGER NOT NULL,
    conflist     TEXT NOT NULL,          -- the exact list CNI ADD ran: DEL runs the same
    runtime      TEXT NOT NULL,          -- JSON: CNI_ARGS and capability args (portMappings, ips, mac)
    result       TEXT,                   -- the ADD result, NULL until ADD succeeded
    aliases      TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (namespace, container_id, network)
);
"""


class Metadata:
    """A connection to the metadata database, safe to share between the threads of one process."""

    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(path), mode=0o711, exist_ok=True)
        self._lock = threading.RLock()
        self.read_only = False
        from nerdpy.engine.content.damage import OPENED_HERE

        OPENED_HERE.add(os.path.realpath(path))
        if _no_room_for_wal_index(path):
            self._open_frozen()
            return
        try:
            self._open()
        except sqlite3.OperationalError:
            if not _frozen_is_current(path) or not _disk_full(path):
                raise
            if getattr(self, "_conn", None) is not None:
                self._conn.close()
            self._open_frozen()

    def _open_frozen(self) -> None:
        """A full disk: the database as it is on disk, read only, without the WAL index SQLite
        would have to allocate (an mmapped file whose pages cannot be backed when the disk is
        full: "disk I/O error", or SIGBUS). Only when no WAL holds newer commits."""
        from urllib.parse import quote

        self.read_only = True
        self._conn = sqlite3.connect(f"file:{quote(self.path)}?mode=ro&immutable=1", uri=True, timeout=60,
                                     isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row

    def _open(self) -> None:
        path = self.path
        self._conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA busy_timeout = 60000")
        mode = self._conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA foreign_keys = ON")
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            with self.write() as cur:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        cur.execute(stmt)
                cur.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction: committed when the block ends, rolled back on an exception."""
        if self.read_only and not self._reopen():
            raise _no_space(self.path)
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                raise _no_space(self.path) if _is_full(e, self.path) else e
            try:
                yield cur
            except BaseException as e:
                try:
                    cur.execute("ROLLBACK")
                except sqlite3.OperationalError:
                    pass  # SQLite rolled back already (a full disk)
                if isinstance(e, sqlite3.OperationalError) and _is_full(e, self.path):
                    raise _no_space(self.path) from None
                raise
            else:
                try:
                    cur.execute("COMMIT")
                except sqlite3.OperationalError as e:
                    if not _is_full(e, self.path):
                        raise
                    try:
                        cur.execute("ROLLBACK")
                    except sqlite3.OperationalError:
                        pass
                    raise _no_space(self.path) from None

    def _reopen(self) -> bool:
        """Opened read only on a full disk: open for writing if there is room now."""
        if _disk_full(self.path):
            return False
        with self._lock:
            frozen = self._conn
            try:
                self._open()
            except sqlite3.Error:
                self._conn = frozen
                return False
            frozen.close()
            self.read_only = False
        return True

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()


# below this much free space, check that the WAL index can be allocated before SQLite maps it
LOW_SPACE = 16 << 20
WAL_INDEX_BYTES = 64 << 10


def _disk_full(path: str) -> bool:
    """Whether the WAL index could not be allocated now: on a nearly full file system, try."""
    folder = os.path.dirname(path)
    try:
        st = os.statvfs(folder)
        if st.f_bavail * st.f_frsize >= LOW_SPACE:
            return False
        probe = os.path.join(folder, f".space-probe-{os.getpid()}")
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    except OSError:
        return False
    try:
        os.posix_fallocate(fd, 0, WAL_INDEX_BYTES)
        return False
    except OSError as e:
        return e.errno in (errno.ENOSPC, errno.EDQUOT)
    finally:
        os.close(fd)
        os.unlink(probe)


def _is_full(e: sqlite3.OperationalError, path: str) -> bool:
    """SQLite's error for a full disk ("disk I/O error" when the WAL index could not grow)."""
    msg = str(e)
    return "disk is full" in msg or ("disk I/O error" in msg and _disk_full(path))


def _no_space(path: str) -> Exception:
    from nerdpy.engine.errors import StoreError

    return StoreError(f"no space left on the device of {os.path.dirname(path)}: free some space "
                      "(`nerdpy rm -f` of the container whose logs filled it, `nerdpy system prune`)")


def _frozen_is_current(path: str) -> bool:
    """The database file alone is the whole database: it exists and no WAL holds commits."""
    try:
        if os.path.getsize(path) == 0:
            return False
        return os.path.getsize(path + "-wal") == 0
    except FileNotFoundError:
        return os.path.exists(path)


def _no_room_for_wal_index(path: str) -> bool:
    """A first connection would have to allocate the WAL index on a full disk."""
    try:
        if os.path.getsize(path + "-shm") >= 32768:
            return False  # in use: allocated already
    except FileNotFoundError:
        pass
    return _frozen_is_current(path) and _disk_full(path)


def next_counter(cur: sqlite3.Cursor, name: str) -> int:
    """Increment and return a named counter inside the caller's transaction (never reused)."""
    cur.execute(
        "INSERT INTO counters(name, value) VALUES (?, 1) "
        "ON CONFLICT(name) DO UPDATE SET value = value + 1",
        (name,),
    )
    return cur.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()[0]
