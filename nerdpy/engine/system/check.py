"""`system check`: verifying (and with `repair`, fixing) the whole store.

`check_store` is the answer to a crash or to damage by hand. It verifies every blob's sha256,
every snapshot's directory against its DB row, every image's manifest, config and layers, every
container's directory and writable layer, the mounts under the data root and leftover temp
files. With `repair=True` it fixes what can be fixed without losing anything that still works:

| found | repair |
| --- | --- |
| a blob whose bytes do not match its digest | deleted (`pull` fetches it again) |
| a committed snapshot whose directory is gone | unpacked again from its layer blob; without one, its row and those of the layers above it go, with the names of the images that need them, so `pull`/`run` fetch them again |
| an image whose manifest or config is missing | its name removed (`pull` restores it) |
| an image whose layer blob is missing, its snapshots intact | reported only (it runs; `push`/`save` need the blob: `pull` restores it) |
| a container's writable layer gone | recreated empty |
| a container's directory gone | recreated (its logs and state are lost) |
| a container directory, writable layer or mount without its container | removed / unmounted |
| temp files of dead writers, orphaned snapshot directories | removed |
| a missing, emptied or truncated metadata DB | rebuilt from what can be read and the records on disk (nerdpy.engine.system.rebuild); the damaged file is kept |
| a container running without its monitor (or its state record) | reported (`stop` stops it and records the exit) |

Nothing that belongs to a container whose monitor or init process is alive is ever removed,
whatever the records say; after a rebuild nothing that no record claims is removed.

A container whose image layers are gone for good is reported with the commands that deal with
it; its writable layer is never removed by a repair.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field

from nerdpy.engine.errors import NerdpyError
from nerdpy.engine.store import Store
from nerdpy.engine.system.prune import in_namespace, orphaned_mounts, unmount_all

CHUNK = 1 << 20


def _pid_alive(pid: int) -> bool:
    return pid > 0 and os.path.exists(f"/proc/{pid}")


def _pid_from(name: str, index: int) -> int:
    try:
        return int(name.split("-")[index])
    except (IndexError, ValueError):
        return 0


@dataclass
class Problem:
    kind: str            # blob, snapshot, image, container, mount, temp, database
    subject: str
    detail: str
    fix: str = ""        # the command that deals with it, when the repair does not
    severity: str = "error"   # error, warning (a warning alone does not fail the check)
    repaired: bool = False
    action: str = ""     # what the repair did


@dataclass
class CheckReport:
    problems: list[Problem] = field(default_factory=list)
    counts: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No error left (repaired ones and warnings do not count)."""
        return not any(p.severity == "error" and not p.repaired for p in self.problems)


class _Lock:
    """The exclusive gc lock, waited for up to `timeout` seconds (GC itself never waits)."""

    def __init__(self, data_root: str, timeout: float):
        self.path = os.path.join(data_root, "gc.lock")
        self.timeout = timeout
        self.fd = -1

    def __enter__(self):
        from nerdpy.engine.util.locks import flock_wait

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            flock_wait(self.fd, fcntl.LOCK_EX, f"the store's gc lock ({self.path}) "
                       "(another nerdpy command is adding content to the store)", timeout=self.timeout)
        except BaseException:
            os.close(self.fd)
            raise
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)


def _hash_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def check_store(store: Store, repair: bool = False, lock_timeout: float = 60.0) -> CheckReport:
    """Verify the whole data root (every namespace); with `repair`, fix what can be fixed (see the
    module docstring). Holds the exclusive gc lock, so no pull, create or commit runs meanwhile."""
    with _Lock(store.data_root, lock_timeout):
        checker = _Checker(store, repair)
        checker.run()
        return checker.report


class _Checker:
    def __init__(self, store: Store, repair: bool, keep_unowned: bool = False):
        self.store = store
        self.repair = repair
        self.keep_unowned = keep_unowned  # after a rebuild: what no record claims stays on disk
        self.report = CheckReport()
        self.bad_blobs: set[str] = set()
        self.lost_chains: set[str] = set()     # snapshots gone for good
        self.kept_lost: set[str] = set()       # ... whose rows stay, as containers sit on them
        self.dropped_chains: set[str] = set()  # ... whose rows were removed

    def add(self, p: Problem) -> Problem:
        self.report.problems.append(p)
        return p

    def run(self) -> None:
        self.check_database()
        self.check_blobs()
        self.check_temp_files()
        self.check_snapshots()
        self.check_images()
        self.check_containers()
        self.check_mounts()
        self.check_snapshot_dirs()

    # the database ------------------------------------------------------------------------------
    def check_database(self) -> None:
        try:
            rows = self.store.db.query("PRAGMA quick_check")
            result = [r[0] for r in rows]
        except Exception as e:  # sqlite3.DatabaseError
            result = [str(e)]
        if result != ["ok"]:
            self.add(Problem("database", "meta.db", "; ".join(result)[:500],
                             fix="stop every nerdpy command, then: sqlite3 meta.db '.recover' (keep a copy first)"))

    # blobs -------------------------------------------------------------------------------------
    def check_blobs(self) -> None:
        content = self.store.content
        digests = content.list()
        self.report.counts["blobs"] = len(digests)
        for digest in digests:
            path = content.path(digest)
            try:
                actual = _hash_file(path)
            except OSError as e:
                actual = f"unreadable ({e.strerror})"
            if actual == digest:
                continue
            self.bad_blobs.add(digest)
            p = self.add(Problem("blob", digest, f"content does not match its digest (got {actual})",
                                 fix="nerdpy system check --repair, then pull the images that need it"))
            if self.repair:
                content.delete(digest)
                p.repaired, p.action = True, "deleted"

    # temp files --------------------------------------------------------------------------------
    def check_temp_files(self) -> None:
        root = self.store.data_root
        stale: list[str] = []
        blob_dir = self.store.content.blob_dir
        for name in os.listdir(blob_dir):
            if name.startswith(".ingest-") and self._ingest_stale(name):
                stale.append(os.path.join(blob_dir, name))
        snap_root = self.store.snapshots.root
        for name in os.listdir(snap_root):
            if name.startswith(".tmp-") and not _pid_alive(_pid_from(name, 1)):
                stale.append(os.path.join(snap_root, name))
            elif name.startswith(".trash-"):
                stale.append(os.path.join(snap_root, name))
        tmp = os.path.join(root, "tmp")
        if os.path.isdir(tmp):
            for name in os.listdir(tmp):
                if not _pid_alive(_pid_from(name, 1)):
                    stale.append(os.path.join(tmp, name))
        for base in (os.path.join(root, "volumes"), os.path.join(root, "containers")):
            if not os.path.isdir(base):
                continue
            for ns in os.listdir(base):
                nsdir = os.path.join(base, ns)
                if not os.path.isdir(nsdir):
                    continue
                for name in os.listdir(nsdir):
                    if ".removing-" in name and not _pid_alive(_pid_from(name.rsplit(".removing-", 1)[1], 0)):
                        stale.append(os.path.join(nsdir, name))
                    elif base.endswith("containers"):
                        cdir = os.path.join(nsdir, name)
                        if os.path.isdir(cdir):
                            for f in os.listdir(cdir):
                                if ".tmp-" in f and not _pid_alive(_pid_from(f.rsplit(".tmp-", 1)[1], 0)):
                                    stale.append(os.path.join(cdir, f))
        for path in stale:
            p = self.add(Problem("temp", os.path.relpath(path, root), "left over by a command that is gone",
                                 severity="warning"))
            if self.repair:
                _remove(path)
                p.repaired, p.action = True, "removed"

    def _ingest_stale(self, name: str) -> bool:
        hexd = name.split("-")[1] if name.count("-") >= 1 else ""
        if len(hexd) != 64:
            return True
        fd = os.open(os.path.join(self.store.content.lock_dir, hexd), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True
        finally:
            os.close(fd)

    # snapshots ---------------------------------------------------------------------------------
    def _layer_sources(self) -> dict[str, tuple[dict, str | None, str]]:
        """chain ID -> (layer descriptor, parent chain, diff ID), from every image's manifest."""
        from nerdpy.engine.snapshots.snapshotter import chain_ids

        out: dict[str, tuple[dict, str | None, str]] = {}
        content = self.store.content
        for r in self.store.db.query("SELECT DISTINCT manifest, config FROM images"):
            try:
                manifest = json.loads(content.read(r["manifest"]))
                config = json.loads(content.read(r["config"]))
            except (NerdpyError, ValueError):
                continue
            diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
            layers = manifest.get("layers") or []
            if len(layers) != len(diff_ids):
                continue
            chains = chain_ids(diff_ids)
            for i, cid in enumerate(chains):
                out.setdefault(cid, (layers[i], chains[i - 1] if i else None, diff_ids[i]))
        return out

    def check_snapshots(self) -> None:
        snaps = {s.chain_id: s for s in self.store.snapshots.list()}
        self.report.counts["snapshots"] = len(snaps)
        broken = []
        for s in snaps.values():
            fs = self.store.snapshots.layer_dir(s.id)
            if not os.path.isdir(fs):
                broken.append((s, f"its directory {os.path.relpath(fs, self.store.data_root)} is gone"))
            elif s.parent is not None and s.parent not in snaps:
                broken.append((s, f"its parent {s.parent[:19]} is not recorded"))
        if not broken:
            return
        sources = self._layer_sources() if self.repair else {}
        # parents first, so a layer re-unpacked can serve as the parent of the next
        depth = {cid: self._depth(cid, snaps) for cid in snaps}
        for s, why in sorted(broken, key=lambda b: depth.get(b[0].chain_id, 0)):
            p = self.add(Problem("snapshot", s.chain_id, why,
                                 fix="nerdpy system check --repair, then pull the images that use it"))
            if not self.repair:
                continue
            if self._unpack_again(s, sources):
                p.repaired, p.action = True, "unpacked again from its layer blob"
            else:
                self.lost_chains.add(s.chain_id)
        if self.lost_chains:
            self._drop_lost(snaps)

    @staticmethod
    def _depth(cid: str, snaps: dict) -> int:
        n = 0
        cur = snaps.get(cid)
        while cur is not None and cur.parent is not None and n < 10_000:
            n += 1
            cur = snaps.get(cur.parent)
        return n

    def _unpack_again(self, s, sources: dict) -> bool:
        from nerdpy.engine.snapshots.apply import apply_layer

        src = sources.get(s.chain_id)
        if src is None:
            return False
        desc, parent, diff_id = src
        digest = desc.get("digest", "")
        if digest in self.bad_blobs or not self.store.content.exists(digest):
            return False
        if parent is not None and not self.store.snapshots.exists(parent):
            return False
        with self.store.db.write() as cur:
            cur.execute("DELETE FROM snapshots WHERE chain_id = ?", (s.chain_id,))
        self.store.snapshots.discard_dir(s.id)

        def apply(target: str) -> tuple[str, int]:
            with self.store.content.open(digest) as f:
                r = apply_layer(target, f)
            return r.diff_id, r.size

        try:
            self.store.snapshots.unpack(s.chain_id, parent, diff_id, apply)
        except NerdpyError:
            return False
        return True

    def _drop_lost(self, snaps: dict) -> None:
        """Forget lost snapshots and every layer above them (their rows; their directories are
        garbage), unless a container sits on them: those stay, as their containers need them to
        be removed cleanly."""
        children: dict[str, list[str]] = {}
        for s in snaps.values():
            if s.parent is not None:
                children.setdefault(s.parent, []).append(s.chain_id)
        doomed: set[str] = set()
        stack = list(self.lost_chains)
        while stack:
            cid = stack.pop()
            if cid in doomed:
                continue
            doomed.add(cid)
            stack += children.get(cid, [])
        needed = set()
        for r in self.store.db.query("SELECT parent FROM active_snapshots WHERE parent IS NOT NULL"):
            cur = r["parent"]
            while cur is not None and cur in snaps and cur not in needed:
                needed.add(cur)
                cur = snaps[cur].parent
        self.kept_lost = doomed & needed
        for p in self.report.problems:
            if p.kind == "snapshot" and p.subject in doomed and not p.repaired:
                if p.subject in needed:
                    p.fix = "remove the containers on it (see below), then pull their images again"
                else:
                    p.repaired, p.action = True, "forgotten with the layers above it (pull restores them)"
        drop = [snaps[c] for c in doomed - needed]
        with self.store.db.write() as cur:
            for s in drop:
                cur.execute("DELETE FROM snapshots WHERE chain_id = ?", (s.chain_id,))
        for s in drop:
            self.store.snapshots.discard_dir(s.id)
        self.dropped_chains = {s.chain_id for s in drop}

    def check_snapshot_dirs(self) -> None:
        owned = {str(r["id"]) for r in self.store.db.query("SELECT id FROM snapshots UNION SELECT id FROM active_snapshots")}
        root = self.store.snapshots.root
        for name in os.listdir(root):
            if name in owned or name == ".locks" or name.startswith((".tmp-", ".trash-")):
                continue
            from nerdpy.engine.content.sidecar import RECORD, read_record

            rec = read_record(os.path.join(root, name, RECORD)) or {}
            if rec.get("kind") == "active" and "/" in str(rec.get("key")) and self._alive(*rec["key"].split("/", 1)):
                self.add(Problem("snapshot", f"snapshots/{name}", f"the writable layer of running container "
                                 f"{rec['key']}, which has no record (kept)"))
                continue
            p = self.add(Problem("snapshot", f"snapshots/{name}", "a directory no snapshot owns", severity="warning"))
            if self.repair and not self.keep_unowned:
                _remove(os.path.join(root, name))
                p.repaired, p.action = True, "removed"

    # images ------------------------------------------------------------------------------------
    def check_images(self) -> None:
        from nerdpy.engine.snapshots.snapshotter import chain_ids

        content = self.store.content
        rows = self.store.db.query("SELECT namespace, name, target, manifest, config FROM images")
        self.report.counts["images"] = len(rows)
        dropped = self.dropped_chains | self.kept_lost
        for r in rows:
            label = f"{r['namespace']}/{r['name']}"
            pull = f"nerdpy -n {r['namespace']} pull {r['name']}" if not r["name"].startswith("sha256:") else ""
            missing = [what for what, d in (("index", r["target"]), ("manifest", r["manifest"]),
                                            ("config", r["config"]))
                       if not content.exists(d) or d in self.bad_blobs]
            if missing:
                self._drop_image(r, label, f"its {' and '.join(dict.fromkeys(missing))} "
                                 "blob is missing", pull)
                continue
            try:
                manifest = json.loads(content.read(r["manifest"]))
                config = json.loads(content.read(r["config"]))
            except (NerdpyError, ValueError) as e:
                self._drop_image(r, label, f"its manifest or config cannot be read: {e}", pull)
                continue
            diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
            chains = chain_ids(diff_ids)
            lost = [c for c in chains if c in dropped]
            if lost:
                self._drop_image(r, label, "its layers are gone (no blob to unpack them from)", pull)
                continue
            gone = [lyr.get("digest", "") for lyr in manifest.get("layers") or []
                    if not content.exists(lyr.get("digest", "")) or lyr.get("digest") in self.bad_blobs]
            if gone:
                unpacked = bool(chains) and self.store.snapshots.exists(chains[-1])
                sev = "warning" if unpacked else "error"
                detail = (f"{len(gone)} layer blob(s) missing ({', '.join(g[7:19] for g in gone)})"
                          + ("; it runs from its snapshots, but push and save need them" if unpacked else ""))
                if unpacked:
                    self.add(Problem("image", label, detail, fix=pull or "commit or import it again",
                                     severity=sev))
                else:
                    self._drop_image(r, label, detail, pull)

    def _drop_image(self, r, label: str, why: str, pull: str) -> None:
        p = self.add(Problem("image", label, why, fix=pull or "it was committed or imported: make it again"))
        if self.repair:
            with self.store.db.write() as cur:
                cur.execute("DELETE FROM images WHERE namespace = ? AND name = ?", (r["namespace"], r["name"]))
            from nerdpy.engine.content.sidecar import write_image_names

            write_image_names(self.store.db, self.store.data_root, r["namespace"])
            p.repaired = True
            p.action = "name removed" + (f" ({pull} restores it)" if pull else "")

    # containers --------------------------------------------------------------------------------
    def check_containers(self) -> None:
        from nerdpy.engine.containers.records import container_dir

        store = self.store
        rows = store.db.query("SELECT namespace, id, name, image, image_id FROM containers")
        self.report.counts["containers"] = len(rows)
        active = {r["key"]: r for r in store.db.query("SELECT key, id, parent FROM active_snapshots")}
        known = set()
        kept_lost = self.kept_lost
        for r in rows:
            ns, cid, name = r["namespace"], r["id"], r["name"]
            key = f"{ns}/{cid}"
            known.add(key)
            ns_store = in_namespace(store, ns)
            label = f"{ns}/{name}"
            cdir = container_dir(ns_store, cid)
            self._check_state(ns_store, r)
            if not os.path.isdir(cdir):
                p = self.add(Problem("container", label, "its directory is gone (state and logs lost)",
                                     fix=f"nerdpy -n {ns} rm -f {name}"))
                if self.repair:
                    os.makedirs(os.path.join(cdir, "rootfs"), mode=0o711, exist_ok=True)
                    p.repaired, p.action = True, "directory recreated"
            snap = active.get(key)
            if snap is None:
                p = self.add(Problem("container", label, "its writable layer is not recorded",
                                     fix=f"nerdpy -n {ns} rm -f {name}"))
                if self.repair and self._new_layer(ns_store, r):
                    p.repaired, p.action = True, "writable layer recreated empty"
                continue
            if not store.snapshots.active_intact(snap["id"]):
                p = self.add(Problem("container", label, "its writable layer's directory is gone",
                                     fix=f"nerdpy -n {ns} rm -f {name}"))
                if self.repair:
                    store.snapshots.recreate_active(snap["id"])
                    p.repaired, p.action = True, "writable layer recreated empty"
            parent = snap["parent"]
            if parent is not None and (parent in kept_lost or not self._chain_complete(parent)):
                self.add(Problem("container", label, f"the image layers it runs on ({r['image']}) are gone",
                                 fix=f"nerdpy -n {ns} rm -f {name}; nerdpy -n {ns} pull {r['image']}"))
        # writable layers and directories without a container
        for key, snap in active.items():
            if key not in known:
                if self._alive(*key.split("/", 1)):
                    self.add(Problem("snapshot", key, "the writable layer of a running container that has no record",
                                     fix="stop its processes (runc), then run nerdpy system check --repair"))
                    continue
                p = self.add(Problem("snapshot", key, "a writable layer whose container is gone", severity="warning"))
                if self.repair and not self.keep_unowned:
                    store.snapshots.remove_active(key)
                    p.repaired, p.action = True, "removed"
        base = os.path.join(store.data_root, "containers")
        for ns in (os.listdir(base) if os.path.isdir(base) else []):
            nsdir = os.path.join(base, ns)
            if not os.path.isdir(nsdir):
                continue
            for cid in os.listdir(nsdir):
                if ".removing-" in cid or f"{ns}/{cid}" in known or not os.path.isdir(os.path.join(nsdir, cid)):
                    continue
                if self._alive(ns, cid):
                    self.add(Problem("container", f"{ns}/{cid[:12]}",
                                     "a running container that has no record (its files are kept)",
                                     fix=f"stop it with `runc --root {self.store.settings.run_root}/runc/{ns} kill {cid} KILL`,"
                                         " then run nerdpy system check --repair"))
                    continue
                p = self.add(Problem("container", f"{ns}/{cid[:12]}", "a directory whose container is gone",
                                     severity="warning"))
                if self.repair and not self.keep_unowned:
                    from nerdpy.engine.snapshots.mount import mounted_under

                    unmount_all(mounted_under(os.path.join(nsdir, cid)))
                    _remove(os.path.join(nsdir, cid))
                    p.repaired, p.action = True, "removed"

    def _alive(self, ns: str, cid: str) -> bool:
        from nerdpy.engine.containers.records import processes_alive

        return processes_alive(in_namespace(self.store, ns), cid)

    def _check_state(self, ns_store: Store, r) -> None:
        """The recorded state against what is true (runc's record and the process itself)."""
        from nerdpy.engine.containers.records import container_dir, monitor_alive, runc_init_pid

        ns, cid, name = r["namespace"], r["id"], r["name"]
        pid = runc_init_pid(ns_store, cid)
        recorded = os.path.exists(os.path.join(container_dir(ns_store, cid), "state.json"))
        if pid and not monitor_alive(ns_store, cid):
            what = "its state record is gone" if not recorded else "its monitor is gone"
            self.add(Problem("container", f"{ns}/{name}",
                             f"{what}: it runs as pid {pid} with no monitor, its exit will not be recorded",
                             fix=f"nerdpy -n {ns} stop {name}"))
        self.report.counts["running"] = self.report.counts.get("running", 0) + bool(pid)

    def _chain_complete(self, chain_id: str) -> bool:
        try:
            for s in self.store.snapshots.chain(chain_id):
                if not os.path.isdir(self.store.snapshots.layer_dir(s.id)):
                    return False
            return True
        except NerdpyError:
            return False

    def _new_layer(self, ns_store: Store, r) -> bool:
        from nerdpy.engine.containers.records import snapshot_key
        from nerdpy.engine.snapshots.snapshotter import chain_ids

        try:
            config = json.loads(self.store.content.read(r["image_id"]))
            chains = chain_ids((config.get("rootfs") or {}).get("diff_ids") or [])
            parent = chains[-1] if chains else None
            if parent is not None and not self._chain_complete(parent):
                return False
            ns_store.snapshots.prepare(snapshot_key(ns_store, r["id"]), parent)
            return True
        except (NerdpyError, ValueError):
            return False

    # mounts ------------------------------------------------------------------------------------
    def check_mounts(self) -> None:
        root = os.path.abspath(self.store.data_root)
        for point, why in orphaned_mounts(self.store):
            rel = os.path.relpath(point, root).split(os.sep)
            if len(rel) >= 4 and rel[0] == "containers" and self._alive(rel[1], rel[2]):
                continue  # a running container's rootfs, whatever its records say
            p = self.add(Problem("mount", point, why, severity="warning", fix=f"umount -l {point}"))
            if self.repair:
                unmount_all([point])
                p.repaired, p.action = True, "unmounted"


def _remove(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        pass
