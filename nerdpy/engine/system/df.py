"""`system df`: what images, containers and volumes take on disk and what pruning would reclaim."""
from __future__ import annotations

from dataclasses import dataclass

from nerdpy.engine.errors import NerdpyError
from nerdpy.engine.store import Store
from nerdpy.engine.util.fs import dir_size


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
