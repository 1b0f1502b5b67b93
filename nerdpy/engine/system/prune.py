"""`system prune`: stopped containers, unused networks, images and (optionally) volumes, and what
crashes left behind (orphaned mounts, network namespaces, leases). `orphaned_mounts` is shared
with `system check`.
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field

from nerdpy.engine.errors import NerdpyError
from nerdpy.engine.store import Store
from nerdpy.engine.util.fs import dir_size


def in_namespace(store: Store, namespace: str) -> Store:
    """The same open store seen from another namespace (shares the DB connection)."""
    if namespace == store.namespace:
        return store
    return dataclasses.replace(store, settings=dataclasses.replace(store.settings, namespace=namespace))


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


def prune_containers(store: Store, flt=None, report: PruneReport | None = None) -> tuple[list[str], int]:
    """docker container prune: remove the stopped containers a PruneFilter `flt` (labels, until)
    lets go. Returns (IDs, bytes of their writable layers); errors go to `report` when given."""
    from nerdpy.engine.containers.records import container_state, list_containers, snapshot_key
    from nerdpy.engine.system.journal import record_event
    from nerdpy.engine.containers.lifecycle import remove_container

    removed: list[str] = []
    freed = 0
    for c in list_containers(store):
        if container_state(store, c).running:
            continue
        if flt is not None and not flt.match(c.spec.labels, c.created_at):
            continue
        try:
            size = dir_size(store.snapshots.upper_dir(snapshot_key(store, c.id)))
        except NerdpyError:
            size = 0
        try:
            remove_container(store, c)
        except NerdpyError as e:
            if report is None:
                raise
            report.errors.append(f"container {c.name}: {e}")
            continue
        removed.append(c.id)
        freed += size
    record_event(store, "container", "prune", "", {"reclaimed": str(freed)})
    return removed, freed


def prune_system(store: Store, all_images: bool = False, volumes: bool = False,
                 filters: list[str] | tuple = ()) -> PruneReport:
    """docker system prune: stopped containers, unused networks, dangling (or, with
    `all_images`, unused) images, with `volumes` unused anonymous volumes, and what crashes left
    (orphaned mounts, network namespaces and leases). `filters`: docker's label, label!, until."""
    from nerdpy.engine.errors import InvalidArgument
    from nerdpy.engine.system.journal import record_event
    from nerdpy.engine.system.prunefilter import parse_prune_filters
    from nerdpy.engine.content.gc import collect_garbage, store_bytes
    from nerdpy.engine.images.image import prune_images

    flt = parse_prune_filters(filters, "system")
    if volumes and flt.until is not None:
        raise InvalidArgument("the until filter is not supported with --volumes")
    report = PruneReport()
    report.mounts = [p for p, _why in orphaned_mounts(store)]
    unmount_all(report.mounts)
    report.containers, freed_containers = prune_containers(store, flt, report)
    try:
        from nerdpy.engine.network.networks import prune_networks
    except ImportError:  # pragma: no cover - networking not installed
        prune_networks = None
    if prune_networks is not None:
        try:
            report.networks = prune_networks(store, flt)
        except NerdpyError as e:
            report.errors.append(f"networks: {e}")
        record_event(store, "network", "prune", "", {"reclaimed": "0"})
    report.leaks = _reclaim_network_leaks(store, report)
    freed_volumes = 0
    if volumes:
        from nerdpy.engine.containers.volumes import prune_volumes

        report.volumes, freed_volumes = prune_volumes(store, filters=[f for f in filters
                                                                    if not f.lower().startswith("until=")])
        record_event(store, "volume", "prune", "", {"reclaimed": str(freed_volumes)})
    before = store_bytes(store)
    lines, _freed = prune_images(store, all_images=all_images, in_use=_images_in_use(store), flt=flt)
    report.images = lines
    collect_garbage(store)  # also what removing the containers left unreferenced
    freed_images = max(0, before - store_bytes(store))
    record_event(store, "image", "prune", "", {"reclaimed": str(freed_images)})
    report.reclaimed = freed_containers + freed_volumes + freed_images
    return report


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


def unmount_all(points: list[str]) -> None:
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

    ns_store = in_namespace(store, namespace)
    try:
        c = find_container(ns_store, cid)
    except (ContainerNotFound, NerdpyError):
        from nerdpy.engine.containers.records import processes_alive

        return processes_alive(ns_store, cid)  # no record, but alive: never ours to unmount
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
