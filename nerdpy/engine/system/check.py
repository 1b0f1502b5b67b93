"""`system info`, `system df`, `system prune` and `system check`: looking after the whole store.

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

A container whose image layers are gone for good is reported with the commands that deal with
it; its writable layer is never removed by a repair.
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import platform
import shutil
import time
from dataclasses import dataclass, field

from nerdpy.engine.errors import NerdpyError, StoreError
from nerdpy.engine.store import Store

CHUNK = 1 << 20


# -- helpers -------------------------------------------------------------------------------------
def _in_namespace(store: Store, namespace: str) -> Store:
    """The same open store seen from another namespace (shares the DB connection)."""
    if namespace == store.namespace:
        return store
    return dataclasses.replace(store, settings=dataclasses.replace(store.settings, namespace=namespace))


def dir_size(path: str) -> int:
    """Bytes of file content under `path` (as `ps -s` counts a writable layer)."""
    total = 0
    for d, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(d, f)).st_size
            except OSError:
                pass
    return total


def _pid_alive(pid: int) -> bool:
    return pid > 0 and os.path.exists(f"/proc/{pid}")


def _pid_from(name: str, index: int) -> int:
    try:
        return int(name.split("-")[index])
    except (IndexError, ValueError):
        return 0


# -- info ----------------------------------------------------------------------------------------
def _runc_version(binary: str) -> tuple[str, str, str]:
    """(path, version, commit) of runc; empty strings when it cannot be run."""
    import subprocess

    from nerdpy.engine.runtime.runc import runc_path

    try:
        path = runc_path(binary)
    except NerdpyError:
        return "", "", ""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return path, "", ""
    lines = out.strip().splitlines()
    version = lines[0].replace("runc version", "").strip() if lines else ""
    commit = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("commit:")), "")
    return path, version, commit


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def system_info(store: Store) -> dict:
    """docker's `info` fields (the server part), plus nerdpy's own (namespace, run root, CNI)."""
    from nerdpy import __version__
    from nerdpy.engine.containers.records import container_state, list_containers
    from nerdpy.engine.system.doctor import cgroup_layout, fs_type
    from nerdpy.engine.images.image import list_images
    from nerdpy.engine.containers.volumes import list_volumes

    states = [container_state(store, c).status for c in list_containers(store)]
    running = sum(1 for s in states if s in ("running", "restarting"))
    paused = sum(1 for s in states if s == "paused")
    layout = cgroup_layout()
    runc, runc_version, runc_commit = _runc_version(store.settings.runc)
    cni_dirs = [d for d in store.settings.cni_path if os.path.isdir(d)]
    cni_plugins = sorted({p for d in cni_dirs for p in os.listdir(d) if os.access(os.path.join(d, p), os.X_OK)})
    _magic, backing = fs_type(store.data_root)
    security = ["name=seccomp,profile=builtin"]
    if layout == "v2":
        security.append("name=cgroupns")
    images = list_images(store)
    return {
        "ID": "",
        "Name": platform.node(),
        "ServerVersion": __version__,
        "Containers": len(states),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": len(states) - running - paused,
        "Images": len({i.config for i in images}),
        "Volumes": len(list_volumes(store)),
        "Driver": "overlayfs",
        "DriverStatus": [["Backing Filesystem", backing]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "ipvlan", "macvlan", "null"],
                    "Authorization": None, "Log": ["json-file"]},
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": "2" if layout == "v2" else "1",
        "CgroupLayout": layout,
        "KernelVersion": platform.release(),
        "OperatingSystem": _os_name(),
        "OSType": "linux",
        "Architecture": platform.machine(),
        "NCPU": os.cpu_count() or 0,
        "MemTotal": _mem_total(),
        "DockerRootDir": store.data_root,
        "RunRoot": store.settings.run_root,
        "Namespace": store.namespace,
        "DefaultRuntime": "runc",
        "Runtimes": {"runc": {"path": runc}},
        "RuncPath": runc,
        "RuncVersion": runc_version,
        "RuncCommit": {"ID": runc_commit},
        "CNIPath": list(store.settings.cni_path),
        "CNIConfPath": store.settings.cni_netconfpath,
        "CNIPlugins": cni_plugins,
        "SecurityOptions": security,
        "InsecureRegistries": ["127.0.0.0/8", "localhost"] + list(store.settings.insecure_registries),
        "Debug": bool(store.settings.debug),
        "Warnings": [],
    }


# -- df ------------------------------------------------------------------------------------------
@dataclass
class ImageUsage:
    name: str            # normalised name, or the target digest of a dangling image
    image_id: str
    dangling: bool
    created: str         # the config's `created`
    size: int
    shared: int
    unique: int
    containers: int


@dataclass
class ContainerUsage:
    id: str
    name: str
    image: str
    command: str
    created_at: float
    status: str
    size: int
    volumes: int
    state: object = None   # the ContainerState, for renderers


@dataclass
class VolumeUsage:
    name: str
    links: int
    size: int


@dataclass
class DiskUsage:
    images: list[ImageUsage]
    containers: list[ContainerUsage]
    volumes: list[VolumeUsage]
    images_total: int           # distinct images
    images_active: int
    images_size: int            # every layer counted once
    images_reclaimable: int
    containers_size: int
    containers_reclaimable: int
    volumes_size: int
    volumes_reclaimable: int
    build_cache_size: int = 0


def _chain_snaps(store: Store, top: str | None) -> list:
    if top is None or not store.snapshots.exists(top):
        return []
    try:
        return store.snapshots.chain(top)
    except NerdpyError:
        return []


def disk_usage(store: Store) -> DiskUsage:
    """docker's `system df`: what images, containers and volumes take, and what prune would free."""
    from nerdpy.engine.containers.records import container_state, list_containers, snapshot_key
    from nerdpy.engine.images.image import image_chain_id, image_config, image_manifest, list_images
    from nerdpy.engine.containers.volumes import list_volumes, volume_size, volumes_in_use

    containers = list_containers(store)
    used_ids: dict[str, int] = {}
    for c in containers:
        used_ids[c.image_id] = used_ids.get(c.image_id, 0) + 1
    # per distinct image: its snapshots (or, not unpacked, its compressed layers)
    per_id: dict[str, tuple[dict[str, int], str]] = {}
    names = list_images(store)
    for img in names:
        if img.config in per_id:
            continue
        parts: dict[str, int] = {}
        created = ""
        try:
            created = image_config(store, img).get("created", "")
            snaps = _chain_snaps(store, image_chain_id(store, img))
            if snaps:
                parts = {s.chain_id: s.size for s in snaps}
            else:
                parts = {lyr["digest"]: lyr.get("size", 0) for lyr in image_manifest(store, img).get("layers", [])}
        except NerdpyError:
            pass
        per_id[img.config] = (parts, created)
    owners: dict[str, set[str]] = {}
    for iid, (parts, _c) in per_id.items():
        for key in parts:
            owners.setdefault(key, set()).add(iid)
    all_parts: dict[str, int] = {}
    for parts, _c in per_id.values():
        all_parts.update(parts)
    active_parts: dict[str, int] = {}
    for iid, (parts, _c) in per_id.items():
        if iid in used_ids:
            active_parts.update(parts)
    images = []
    for img in names:
        parts, created = per_id[img.config]
        size = sum(parts.values())
        shared = sum(v for k, v in parts.items() if len(owners.get(k, ())) > 1)
        images.append(ImageUsage(img.name, img.config, img.dangling, created, size, shared, size - shared,
                                 used_ids.get(img.config, 0)))
    images_size = sum(all_parts.values())
    crows = []
    for c in containers:
        st = container_state(store, c)
        try:
            size = dir_size(store.snapshots.upper_dir(snapshot_key(store, c.id)))
        except NerdpyError:
            size = 0
        nvol = sum(1 for m in c.spec.mounts or [] if m.type == "volume")
        crows.append(ContainerUsage(c.id, c.name, c.image, " ".join(c.spec.args or []), c.created_at,
                                    st.status, size, nvol, st))
    in_use = volumes_in_use(store)
    vrows = [VolumeUsage(v.name, len(in_use.get(v.name, [])), volume_size(v)) for v in list_volumes(store)]
    return DiskUsage(
        images=images, containers=crows, volumes=vrows,
        images_total=len(per_id), images_active=sum(1 for i in per_id if i in used_ids),
        images_size=images_size, images_reclaimable=images_size - sum(active_parts.values()),
        containers_size=sum(c.size for c in crows),
        containers_reclaimable=sum(c.size for c in crows if c.status not in ("running", "paused", "restarting")),
        volumes_size=sum(v.size for v in vrows),
        volumes_reclaimable=sum(v.size for v in vrows if v.links == 0),
    )


# -- prune ---------------------------------------------------------------------------------------
@dataclass
class PruneReport:
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)     # docker's "untagged: ..." / "deleted: ..." lines
    mounts: list[str] = field(default_factory=list)     # orphaned mounts unmounted
    leaks: list[str] = field(default_factory=list)      # network namespaces, leases, sandboxes of dead containers
    reclaimed: int = 0
    errors: list[str] = field(default_factory=list)


def prune_system(store: Store, all_images: bool = False, volumes: bool = False) -> PruneReport:
    """docker system prune: stopped containers, unused networks, dangling (or, with
    `all_images`, unused) images, with `volumes` unused anonymous volumes, and what crashes left
    (orphaned mounts, network namespaces and leases)."""
    from nerdpy.engine.containers.records import container_state, list_containers, snapshot_key
    from nerdpy.engine.system.events import record_event
    from nerdpy.engine.images.image import collect_garbage, prune_images
    from nerdpy.engine.containers.lifecycle import remove_container

    report = PruneReport()
    report.mounts = [p for p, _why in orphaned_mounts(store)]
    _unmount_all(report.mounts)
    freed_containers = 0
    for c in list_containers(store):
        if container_state(store, c).running:
            continue
        try:
            size = dir_size(store.snapshots.upper_dir(snapshot_key(store, c.id)))
        except NerdpyError:
            size = 0
        try:
            remove_container(store, c)
        except NerdpyError as e:
            report.errors.append(f"container {c.name}: {e}")
            continue
        report.containers.append(c.id)
        freed_containers += size
    record_event(store, "container", "prune", "", {"reclaimed": str(freed_containers)})
    try:
        from nerdpy.engine.network.networks import prune_networks
    except ImportError:  # pragma: no cover - networking not installed
        prune_networks = None
    if prune_networks is not None:
        try:
            report.networks = prune_networks(store)
        except NerdpyError as e:
            report.errors.append(f"networks: {e}")
        record_event(store, "network", "prune", "", {"reclaimed": "0"})
    report.leaks = _reclaim_network_leaks(store, report)
    freed_volumes = 0
    if volumes:
        from nerdpy.engine.containers.volumes import prune_volumes

        report.volumes, freed_volumes = prune_volumes(store)
        record_event(store, "volume", "prune", "", {"reclaimed": str(freed_volumes)})
    before = _store_bytes(store)
    lines, _freed = prune_images(store, all_images=all_images, in_use=_images_in_use(store))
    report.images = lines
    collect_garbage(store)  # also what removing the containers left unreferenced
    freed_images = max(0, before - _store_bytes(store))
    record_event(store, "image", "prune", "", {"reclaimed": str(freed_images)})
    report.reclaimed = freed_containers + freed_volumes + freed_images
    return report


def _store_bytes(store: Store) -> int:
    """Bytes of blobs and committed snapshots (what image removal frees)."""
    total = 0
    for d in store.content.list():
        try:
            total += store.content.size(d)
        except NerdpyError:
            pass
    return total + sum(s.size for s in store.snapshots.list())


def _images_in_use(store: Store) -> set[str]:
    return {r["image_id"] for r in store.db.query("SELECT DISTINCT image_id FROM containers WHERE namespace = ?",
                                                  (store.namespace,))}


def _reclaim_network_leaks(store: Store, report: PruneReport) -> list[str]:
    try:
        from nerdpy.engine.network.attach import reclaim_leaks
    except ImportError:  # pragma: no cover
        return []
    try:
        got = reclaim_leaks(store)
    except (NerdpyError, OSError) as e:
        report.errors.append(f"network leaks: {e}")
        return []
    report.errors += list(got.errors)
    return [f"sandbox {s}" for s in got.sandboxes] + [f"netns {n}" for n in got.netns] + \
        [f"lease {lease}" for lease in got.leases]


def _unmount_all(points: list[str]) -> None:
    from nerdpy.engine.snapshots.mount import MNT_DETACH, unmount

    for p in sorted(points, key=len, reverse=True):
        try:
            unmount(p, MNT_DETACH)
        except NerdpyError:
            pass


def _container_busy(store: Store, namespace: str, cid: str, grace: float = 120.0) -> bool:
    """Whether a container's mounted rootfs is in use: it runs, its monitor is alive (cleaning
    up, restarting), or a `start` is under way (its bundle was written moments ago)."""
    from nerdpy.engine.containers.records import ContainerNotFound, container_dir, container_state, find_container, monitor_alive

    ns_store = _in_namespace(store, namespace)
    try:
        c = find_container(ns_store, cid)
    except (ContainerNotFound, NerdpyError):
        return False
    st = container_state(ns_store, c)
    if st.running or monitor_alive(ns_store, cid):
        return True
    if st.status == "created":
        cdir = container_dir(ns_store, cid)
        try:
            changed = max(os.stat(os.path.join(cdir, n)).st_mtime for n in ("config.json", "rootfs")
                          if os.path.exists(os.path.join(cdir, n)))
        except ValueError:
            return False
        return time.time() - changed < grace
    return False


def orphaned_mounts(store: Store) -> list[tuple[str, str]]:
    """Mounts under the data root that nothing uses: (mount point, why). A running container's
    rootfs is in use; so is one whose monitor still cleans up or that is being started."""
    from nerdpy.engine.snapshots.mount import mounted_under

    root = os.path.abspath(store.data_root)
    out = []
    for point in mounted_under(root):
        rel = os.path.relpath(point, root).split(os.sep)
        if len(rel) >= 4 and rel[0] == "containers" and rel[3] == "rootfs":
            ns, cid = rel[1], rel[2]
            if _container_busy(store, ns, cid):
                continue
            if store.db.query_one("SELECT 1 FROM containers WHERE namespace = ? AND id = ?", (ns, cid)) is None:
                out.append((point, "rootfs of a container that no longer exists"))
            else:
                out.append((point, "rootfs of a container that is not running (left by a crash)"))
        elif point != root:
            out.append((point, "not a container's rootfs"))
    return out


# -- check ---------------------------------------------------------------------------------------
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

    def __init__(self, store: Store, timeout: float):
        self.path = os.path.join(store.data_root, "gc.lock")
        self.timeout = timeout
        self.fd = -1

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise StoreError("another nerdpy command is adding content to the store: "
                                     "try `system check` again when it is done") from None
                time.sleep(0.1)

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
    with _Lock(store, lock_timeout):
        checker = _Checker(store, repair)
        checker.run()
        return checker.report


class _Checker:
    def __init__(self, store: Store, repair: bool):
        self.store = store
        self.repair = repair
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
        from nerdpy.engine.snapshots.overlay import chain_ids

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
            fs = os.path.join(self.store.snapshots.dir(s.id), "fs")
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
        self.store.snapshots._discard_dir(s.id)

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
            self.store.snapshots._discard_dir(s.id)
        self.dropped_chains = {s.chain_id for s in drop}

    def check_snapshot_dirs(self) -> None:
        owned = {str(r["id"]) for r in self.store.db.query("SELECT id FROM snapshots UNION SELECT id FROM active_snapshots")}
        root = self.store.snapshots.root
        for name in os.listdir(root):
            if name in owned or name == ".locks" or name.startswith((".tmp-", ".trash-")):
                continue
            p = self.add(Problem("snapshot", f"snapshots/{name}", "a directory no snapshot owns", severity="warning"))
            if self.repair:
                _remove(os.path.join(root, name))
                p.repaired, p.action = True, "removed"

    # images ------------------------------------------------------------------------------------
    def check_images(self) -> None:
        from nerdpy.engine.snapshots.overlay import chain_ids

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
            ns_store = _in_namespace(store, ns)
            label = f"{ns}/{name}"
            cdir = container_dir(ns_store, cid)
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
            sdir = store.snapshots.dir(snap["id"])
            if not os.path.isdir(os.path.join(sdir, "fs")) or not os.path.isdir(os.path.join(sdir, "work")):
                p = self.add(Problem("container", label, "its writable layer's directory is gone",
                                     fix=f"nerdpy -n {ns} rm -f {name}"))
                if self.repair:
                    os.makedirs(os.path.join(sdir, "fs"), mode=0o755, exist_ok=True)
                    os.makedirs(os.path.join(sdir, "work"), mode=0o700, exist_ok=True)
                    p.repaired, p.action = True, "writable layer recreated empty"
            parent = snap["parent"]
            if parent is not None and (parent in kept_lost or not self._chain_complete(parent)):
                self.add(Problem("container", label, f"the image layers it runs on ({r['image']}) are gone",
                                 fix=f"nerdpy -n {ns} rm -f {name}; nerdpy -n {ns} pull {r['image']}"))
        # writable layers and directories without a container
        for key, snap in active.items():
            if key not in known:
                p = self.add(Problem("snapshot", key, "a writable layer whose container is gone", severity="warning"))
                if self.repair:
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
                p = self.add(Problem("container", f"{ns}/{cid[:12]}", "a directory whose container is gone",
                                     severity="warning"))
                if self.repair:
                    from nerdpy.engine.snapshots.mount import mounted_under

                    _unmount_all(mounted_under(os.path.join(nsdir, cid)))
                    _remove(os.path.join(nsdir, cid))
                    p.repaired, p.action = True, "removed"

    def _chain_complete(self, chain_id: str) -> bool:
        try:
            for s in self.store.snapshots.chain(chain_id):
                if not os.path.isdir(os.path.join(self.store.snapshots.dir(s.id), "fs")):
                    return False
            return True
        except NerdpyError:
            return False

    def _new_layer(self, ns_store: Store, r) -> bool:
        from nerdpy.engine.containers.records import snapshot_key
        from nerdpy.engine.snapshots.overlay import chain_ids

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
        for point, why in orphaned_mounts(self.store):
            p = self.add(Problem("mount", point, why, severity="warning", fix=f"umount -l {point}"))
            if self.repair:
                _unmount_all([point])
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
