"""The overlayfs snapshotter: one directory per layer chain, overlay mounts for containers.

Committed snapshots are named by their OCI ChainID and live in `<root>/<n>/fs`, where `n` is a
short number from the metadata DB (short names keep the overlay option string small, so images
with 100+ layers still mount). Each is unpacked once, under a per-chain lock, into a temp dir
that is renamed into place in the same transaction that records it. Active snapshots (a
container's writable layer) live in `<root>/<n>/fs` + `<root>/<n>/work` and mount as overlay on
their committed parent chain. It implements snapshotter.Snapshotter; layer and upper dirs are
overlayfs's own form, which is the interface's diff form.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from nerdpy.engine.errors import Conflict, DigestMismatch, NotFound
from nerdpy.engine.content.metadata import Metadata, next_counter
from nerdpy.engine.content.sidecar import write_snapshot_record
from nerdpy.engine.snapshots.mount import Mount
from nerdpy.engine.snapshots.snapshotter import USER_XATTRS, Snapshot, chain_ids, overlay_xattrs
from nerdpy.engine.util.locks import flock_wait

__all__ = ["OverlaySnapshotter", "Snapshot", "chain_ids"]


class OverlaySnapshotter:
    """Overlay snapshots under `root`, recorded in `db`."""

    driver = "overlayfs"

    def __init__(self, root: str, db: Metadata):
        self.root = root
        self.db = db
        os.makedirs(root, mode=0o700, exist_ok=True)
        self.lock_dir = os.path.join(root, ".locks")
        os.makedirs(self.lock_dir, mode=0o700, exist_ok=True)

    # committed snapshots -------------------------------------------------------------
    def get(self, chain_id: str) -> Snapshot | None:
        row = self.db.query_one("SELECT * FROM snapshots WHERE chain_id = ?", (chain_id,))
        if row is None:
            return None
        return Snapshot(row["chain_id"], row["id"], row["parent"], row["diff_id"], row["size"])

    def exists(self, chain_id: str) -> bool:
        return self.get(chain_id) is not None

    def dir(self, snap_id: int) -> str:
        return os.path.join(self.root, str(snap_id))

    @contextmanager
    def _chain_lock(self, chain_id: str) -> Iterator[None]:
        path = os.path.join(self.lock_dir, chain_id.split(":")[-1])
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            flock_wait(fd, fcntl.LOCK_EX, f"the lock of layer {chain_id[:19]} ({path})")
            yield
        finally:
            os.close(fd)

    def unpack(
        self,
        chain_id: str,
        parent: str | None,
        diff_id: str,
        apply: Callable[[str], tuple[str, int]],
    ) -> bool:
        """Make the committed snapshot `chain_id` unless it exists. `apply(dir)` fills the
        empty directory and returns (diff_id, size); the diff_id must match.
        Returns True when this call unpacked it, False when it was already there."""
        if parent is not None and not self.exists(parent):
            raise NotFound(f"parent snapshot {parent} does not exist")
        with self._chain_lock(chain_id):
            if self.exists(chain_id):
                return False
            tmp = os.path.join(self.root, f".tmp-{os.getpid()}-{os.urandom(4).hex()}")
            os.makedirs(os.path.join(tmp, "fs"), mode=0o755)
            try:
                got, size = apply(os.path.join(tmp, "fs"))
                if got != diff_id:
                    raise DigestMismatch(f"layer diff ID mismatch: expected {diff_id}, got {got}")
                write_snapshot_record(tmp, {"kind": "committed", "chain_id": chain_id, "parent": parent,
                                            "diff_id": diff_id, "size": size})
                with self.db.write() as cur:
                    snap_id = next_counter(cur, "snapshot")
                    final = self.dir(snap_id)
                    if os.path.lexists(final):  # left by a crash before a commit: nobody owns it
                        _rmtree(final)
                    os.rename(tmp, final)
                    cur.execute(
                        "INSERT INTO snapshots(chain_id, id, parent, diff_id, size, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (chain_id, snap_id, parent, diff_id, size, time.time()),
                    )
            except BaseException:
                _rmtree(tmp)
                raise
            return True

    def chain(self, chain_id: str) -> list[Snapshot]:
        """The snapshot and its ancestors, top-most first."""
        out = []
        cur: str | None = chain_id
        while cur is not None:
            snap = self.get(cur)
            if snap is None:
                raise NotFound(f"snapshot {cur} does not exist")
            out.append(snap)
            cur = snap.parent
        return out

    def layer_dir(self, snap_id: int) -> str:
        return os.path.join(self.dir(snap_id), "fs")

    def lowerdirs(self, chain_id: str) -> list[str]:
        return [self.layer_dir(s.id) for s in self.chain(chain_id)]

    def usage(self, chain_id: str) -> int:
        return sum(s.size for s in self.chain(chain_id))

    def view_mounts(self, chain_id: str) -> list[Mount]:
        """Read-only mounts of a committed chain (for inspection, export, cp)."""
        lowers = self.lowerdirs(chain_id)
        if len(lowers) == 1:
            return [Mount("bind", lowers[0], ("ro", "rbind"))]
        return [Mount("overlay", "overlay", ("ro", "lowerdir=" + ":".join(lowers)))]

    def remove(self, chain_id: str) -> None:
        """Remove a committed snapshot that has no children and no active snapshot on it."""
        with self._chain_lock(chain_id):
            with self.db.write() as cur:
                row = cur.execute("SELECT id FROM snapshots WHERE chain_id = ?", (chain_id,)).fetchone()
                if row is None:
                    return
                if cur.execute("SELECT 1 FROM snapshots WHERE parent = ? LIMIT 1", (chain_id,)).fetchone():
                    raise Conflict(f"snapshot {chain_id} has children")
                if cur.execute("SELECT 1 FROM active_snapshots WHERE parent = ? LIMIT 1", (chain_id,)).fetchone():
                    raise Conflict(f"snapshot {chain_id} is in use by a container")
                cur.execute("DELETE FROM snapshots WHERE chain_id = ?", (chain_id,))
            # the row goes first (committed), then the directory: a crash in between leaves a
            # numbered directory without a row, which GC removes (numbers are never reused);
            # the other order could leave a row whose directory is gone
            self.discard_dir(row["id"])

    def list(self) -> list[Snapshot]:
        return [
            Snapshot(r["chain_id"], r["id"], r["parent"], r["diff_id"], r["size"])
            for r in self.db.query("SELECT * FROM snapshots")
        ]

    # active snapshots ----------------------------------------------------------------
    def prepare(self, key: str, parent: str | None) -> list[Mount]:
        """Make a writable snapshot named `key` on top of `parent` and return its mounts."""
        if parent is not None and not self.exists(parent):
            raise NotFound(f"snapshot {parent} does not exist")
        tmp = os.path.join(self.root, f".tmp-{os.getpid()}-{os.urandom(4).hex()}")
        os.makedirs(os.path.join(tmp, "fs"), mode=0o755)
        os.makedirs(os.path.join(tmp, "work"), mode=0o700)
        write_snapshot_record(tmp, {"kind": "active", "key": key, "parent": parent})
        try:
            with self.db.write() as cur:
                if cur.execute("SELECT 1 FROM active_snapshots WHERE key = ?", (key,)).fetchone():
                    raise Conflict(f"snapshot {key} already exists")
                snap_id = next_counter(cur, "snapshot")
                final = self.dir(snap_id)
                if os.path.lexists(final):
                    _rmtree(final)
                os.rename(tmp, final)
                cur.execute(
                    "INSERT INTO active_snapshots(key, id, parent, created_at) VALUES (?, ?, ?, ?)",
                    (key, snap_id, parent, time.time()),
                )
        except BaseException:
            _rmtree(tmp)
            raise
        return self.mounts(key)

    def mounts(self, key: str) -> list[Mount]:
        row = self.db.query_one("SELECT * FROM active_snapshots WHERE key = ?", (key,))
        if row is None:
            raise NotFound(f"snapshot {key} does not exist")
        d = self.dir(row["id"])
        if row["parent"] is None:
            return [Mount("bind", os.path.join(d, "fs"), ("rw", "rbind"))]
        lowers = self.lowerdirs(row["parent"])
        return [
            Mount(
                "overlay",
                "overlay",
                (
                    "index=off",
                    *(("userxattr",) if overlay_xattrs() == USER_XATTRS else ()),
                    f"workdir={d}/work",
                    f"upperdir={d}/fs",
                    "lowerdir=" + ":".join(lowers),
                ),
            )
        ]

    def upper_dir(self, key: str) -> str:
        row = self.db.query_one("SELECT id FROM active_snapshots WHERE key = ?", (key,))
        if row is None:
            raise NotFound(f"snapshot {key} does not exist")
        return os.path.join(self.dir(row["id"]), "fs")

    def remove_active(self, key: str) -> None:
        with self.db.write() as cur:
            row = cur.execute("SELECT id FROM active_snapshots WHERE key = ?", (key,)).fetchone()
            if row is None:
                return
            cur.execute("DELETE FROM active_snapshots WHERE key = ?", (key,))
        self.discard_dir(row["id"])

    def active_intact(self, snap_id: int) -> bool:
        d = self.dir(snap_id)
        return os.path.isdir(os.path.join(d, "fs")) and os.path.isdir(os.path.join(d, "work"))

    def recreate_active(self, snap_id: int) -> None:
        d = self.dir(snap_id)
        os.makedirs(os.path.join(d, "fs"), mode=0o755, exist_ok=True)
        os.makedirs(os.path.join(d, "work"), mode=0o700, exist_ok=True)

    def discard_dir(self, snap_id: int) -> None:
        """Remove a snapshot directory whose row is gone: renamed away first, so a half-deleted
        tree never sits under a number."""
        doomed = self.dir(snap_id)
        trash = os.path.join(self.root, f".trash-{snap_id}-{os.urandom(3).hex()}")
        try:
            os.rename(doomed, trash)
        except FileNotFoundError:
            return
        _rmtree(trash)

    def active_keys(self) -> list[str]:
        return [r["key"] for r in self.db.query("SELECT key FROM active_snapshots")]

    # housekeeping --------------------------------------------------------------------
    def remove_orphan_dirs(self) -> int:
        """Delete directories no DB row owns: temp dirs of dead unpacks, trash, crash leftovers."""
        owned = {str(r["id"]) for r in self.db.query("SELECT id FROM snapshots UNION SELECT id FROM active_snapshots")}
        removed = 0
        for name in os.listdir(self.root):
            path = os.path.join(self.root, name)
            if name == ".locks" or name in owned:
                continue
            if name.startswith(".tmp-") and _owner_alive(name):
                continue
            _rmtree(path)
            removed += 1
        return removed


def _owner_alive(name: str) -> bool:
    """Temp dirs are named .tmp-<pid>-<random>: keep those whose process still exists."""
    try:
        pid = int(name.split("-")[1])
    except (IndexError, ValueError):
        return False
    return pid != 0 and os.path.exists(f"/proc/{pid}")


def _rmtree(path: str) -> None:
    if not os.path.lexists(path):
        return
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError:
        # busy entries: give up quietly; garbage collection retries later
        shutil.rmtree(path, ignore_errors=True)
