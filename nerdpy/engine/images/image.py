"""The image store: names -> manifest digests per namespace, and what users do with images
(list, look up, inspect, tag, remove, prune). Garbage collection of unreferenced content is
nerdpy.engine.content.gc's.

An image row names a target (a manifest or an index) and records the platform manifest used
by default and its config digest, which is the image ID (as in docker). A name that moves to
another image leaves the old one behind as a dangling image (`<none>:<none>` in `images`)
named by its target digest, as docker does; `image prune` removes those.
"""
from __future__ import annotations

import json
import time

from nerdpy.engine.errors import Conflict, ImageNotFound, InvalidArgument, InvalidReference, NerdpyError
from nerdpy.engine.store import Store
from nerdpy.engine.util.lean import lean_dataclass

DANGLING_PREFIX = "sha256:"  # dangling images are stored under their target digest


@lean_dataclass(frozen=True)
class Image:
    name: str          # normalised reference, or the target digest for a dangling image
    target: str        # digest of the manifest or index the name points at
    media_type: str
    size: int          # size of the target document
    manifest: str      # platform manifest digest
    config: str        # config digest == image ID
    created_at: float  # when the name was stored

    @property
    def id(self) -> str:
        return self.config

    @property
    def dangling(self) -> bool:
        return self.name.startswith(DANGLING_PREFIX)


def _row(r) -> Image:
    return Image(r["name"], r["target"], r["media_type"], r["size"], r["manifest"], r["config"], r["created_at"])


def list_images(store: Store) -> list[Image]:
    rows = store.db.query("SELECT * FROM images WHERE namespace = ? ORDER BY created_at DESC", (store.namespace,))
    return [_row(r) for r in rows]


def get_image(store: Store, name: str) -> Image | None:
    r = store.db.query_one("SELECT * FROM images WHERE namespace = ? AND name = ?", (store.namespace, name))
    return _row(r) if r else None


def put_image(store: Store, name: str, target: str, media_type: str, size: int, manifest: str, config: str) -> None:
    """Point `name` at an image; an image the name leaves without any name becomes dangling."""
    now = time.time()
    with store.db.write() as cur:
        old = cur.execute(
            "SELECT * FROM images WHERE namespace = ? AND name = ?", (store.namespace, name)
        ).fetchone()
        cur.execute(
            "INSERT INTO images(namespace, name, target, media_type, size, manifest, config, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(namespace, name) DO UPDATE SET target=excluded.target,"
            " media_type=excluded.media_type, size=excluded.size, manifest=excluded.manifest,"
            " config=excluded.config, updated_at=excluded.updated_at,"
            " created_at=CASE WHEN images.target = excluded.target THEN images.created_at ELSE excluded.created_at END",
            (store.namespace, name, target, media_type, size, manifest, config, now, now),
        )
        # a dangling record of the same target is superseded by the name
        cur.execute("DELETE FROM images WHERE namespace = ? AND name = ?", (store.namespace, target))
        if old is not None and old["target"] != target and not name.startswith(DANGLING_PREFIX):
            still = cur.execute(
                "SELECT 1 FROM images WHERE namespace = ? AND target = ? LIMIT 1", (store.namespace, old["target"])
            ).fetchone()
            if still is None:
                cur.execute(
                    "INSERT OR IGNORE INTO images(namespace, name, target, media_type, size, manifest, config,"
                    " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (store.namespace, old["target"], old["target"], old["media_type"], old["size"],
                     old["manifest"], old["config"], old["created_at"], now),
                )
    _mirror_names(store)


def _mirror_names(store: Store) -> None:
    """Keep the on-disk copy of this namespace's names (what a rebuild of the DB reads)."""
    from nerdpy.engine.content.sidecar import write_image_names

    write_image_names(store.db, store.data_root, store.namespace)


def read_json(store: Store, digest: str) -> dict:
    return json.loads(store.content.read(digest))


def image_config(store: Store, image: Image) -> dict:
    return read_json(store, image.config)


def image_manifest(store: Store, image: Image) -> dict:
    return read_json(store, image.manifest)


def image_chain_id(store: Store, image: Image) -> str | None:
    """The chain ID of the image's top layer (None for an image without layers)."""
    from nerdpy.engine.snapshots.snapshotter import chain_ids

    diff_ids = image_config(store, image).get("rootfs", {}).get("diff_ids", [])
    ids = chain_ids(diff_ids)
    return ids[-1] if ids else None


def image_size(store: Store, image: Image) -> int:
    """Unpacked size (sum of the layers' file content), or the compressed size if not unpacked."""
    top = image_chain_id(store, image)
    if top is not None and store.snapshots.exists(top):
        return store.snapshots.usage(top)
    return sum(layer.get("size", 0) for layer in image_manifest(store, image).get("layers", []))


def lookup_images(store: Store, query: str) -> list[Image]:
    """Find images by name, `name@digest`, full digest (ID or target), or ID prefix (docker's rules:
    a name wins over an ID prefix)."""
    from nerdpy.engine.distribution.reference import parse_reference

    if not query:
        raise InvalidArgument("image name must not be empty")
    images = list_images(store)
    try:
        ref = parse_reference(query)
    except InvalidReference:
        ref = None
    if ref is not None:
        name = str(ref)
        found = [i for i in images if i.name == name]
        if found:
            return found
        if ref.digest:
            found = [i for i in images if i.target == ref.digest and _same_repo(i.name, ref.name)]
            if found:
                return found
    q = query.lower()
    if q.startswith("sha256:"):
        hexq = q[7:]
    else:
        hexq = q
    if 0 < len(hexq) <= 64 and all(c in "0123456789abcdef" for c in hexq):
        by_id = [i for i in images if i.config[7:].startswith(hexq)]
        if len({i.config for i in by_id}) > 1:
            raise InvalidArgument(f"{query}: ambiguous image ID prefix, use more characters")
        if by_id:
            return by_id
        by_target = [i for i in images if i.target[7:].startswith(hexq) and len(hexq) >= 12]
        if by_target:
            return by_target
    return []


def _same_repo(name: str, repo: str) -> bool:
    return name.startswith(repo + ":") or name.startswith(repo + "@")


def resolve_image(store: Store, query: str) -> Image:
    found = lookup_images(store, query)
    if not found:
        raise ImageNotFound(f"No such image: {query}")
    return found[0]


def tag_image(store: Store, source: str, target: str) -> Image:
    from nerdpy.engine.distribution.reference import parse_reference

    image = resolve_image(store, source)
    ref = parse_reference(target)
    if ref.digest:
        raise InvalidArgument(f"refusing to create a tag with a digest reference: {target}")
    put_image(store, str(ref), image.target, image.media_type, image.size, image.manifest, image.config)
    from nerdpy.engine.system.journal import record_event

    record_event(store, "image", "tag", image.config, {"name": str(ref)})
    return image


def remove_image(store: Store, query: str, force: bool = False, in_use: set[str] | None = None) -> list[str]:
    """docker rmi: untag the name; delete the image when no name is left.
    Returns docker's report lines ("Untagged: ...", "Deleted: ...").
    `in_use` holds image IDs used by containers (they block removal unless forced)."""
    from nerdpy.engine.distribution.reference import parse_reference

    found = lookup_images(store, query)
    if not found:
        raise ImageNotFound(f"No such image: {query}")
    image_id = found[0].config
    by_name = False
    try:
        by_name = any(i.name == str(parse_reference(query)) for i in found)
    except InvalidReference:
        pass
    all_same = [i for i in list_images(store) if i.config == image_id]
    if by_name:
        doomed = [i for i in found if i.name == str(parse_reference(query))]
    else:
        doomed = all_same
        named = {i.name for i in all_same if not i.dangling}
        if len(named) > 1 and not force:
            raise Conflict(
                f"conflict: unable to delete {image_id[7:19]} (must be forced) - "
                "image is referenced in multiple repositories"
            )
    remaining = [i for i in all_same if i not in doomed]
    if not remaining and in_use and image_id in in_use and not force:
        raise Conflict(
            f"conflict: unable to remove repository reference {query!r} (must force) - "
            f"container is using its referenced image {image_id[7:19]}"
        )
    lines = []
    with store.db.write() as cur:
        for i in doomed:
            cur.execute("DELETE FROM images WHERE namespace = ? AND name = ?", (store.namespace, i.name))
    _mirror_names(store)
    for i in doomed:
        if not i.dangling:
            lines.append(f"Untagged: {_familiar(i.name)}")
            if "@" not in i.name:
                lines.append(f"Untagged: {_familiar(i.name.rsplit(':', 1)[0])}@{i.target}")
    if not remaining:
        lines.append(f"Deleted: {image_id}")
    from nerdpy.engine.system.journal import record_event

    for i in doomed:
        record_event(store, "image", "untag", image_id, {"name": i.name})
    if not remaining:
        record_event(store, "image", "delete", image_id, {"name": doomed[0].name if doomed else image_id})
    return lines


def _familiar(name: str) -> str:
    from nerdpy.engine.distribution.reference import parse_reference

    try:
        return parse_reference(name, default_tag=None).familiar()
    except InvalidReference:
        return name


def _prunable(store: Store, image: Image, flt) -> bool:
    from nerdpy.engine.system.events import parse_time_arg

    cfg = image_config(store, image)
    try:
        created = parse_time_arg(cfg["created"]) if cfg.get("created") else image.created_at
    except NerdpyError:
        created = image.created_at
    return flt.match((cfg.get("config") or {}).get("Labels"), created)


def prune_images(store: Store, all_images: bool = False, in_use: set[str] | None = None,
                 flt=None) -> tuple[list[str], int]:
    """Remove dangling images (all unused images with `all_images`, or a `dangling=false`
    filter), those a PruneFilter `flt` (labels, until) lets go. Returns (report lines, bytes freed)."""
    in_use = in_use or set()
    lines: list[str] = []
    if flt is not None and flt.dangling is False:
        all_images = True
    doomed = [i for i in list_images(store) if (all_images or i.dangling) and i.config not in in_use]
    if flt is not None and not flt.empty():
        doomed = [i for i in doomed if _prunable(store, i, flt)]
    if not doomed:
        return [], 0
    from nerdpy.engine.content.gc import collect_garbage, store_bytes

    before = store_bytes(store)
    with store.db.write() as cur:
        for i in doomed:
            cur.execute("DELETE FROM images WHERE namespace = ? AND name = ?", (store.namespace, i.name))
    _mirror_names(store)
    ids = []
    for i in doomed:
        if not i.dangling:
            lines.append(f"untagged: {_familiar(i.name)}")
        if i.config not in ids:
            ids.append(i.config)
    lines += [f"deleted: {i}" for i in ids]
    collect_garbage(store)
    return lines, max(0, before - store_bytes(store))
