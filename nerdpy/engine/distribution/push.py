"""Pushing an image: blobs first (each one HEADed and skipped when present, mounted from
another repository of the same registry when we know one that holds it, else uploaded:
monolithic when small, in chunks when large), then the manifest(s), the tag last.

What is pushed: the whole index when the image was pulled with every platform (all its
manifests and blobs are stored), else the platform manifest the image uses, as docker with
the containerd image store does. Up to three layers go at once; progress is reported with
`PushEvent`s; the engine never prints.

Mount sources: every blob pushed (or found present) is recorded in the `blob_sources` table
(registry, repository, digest); the image's other names on the same registry are tried too.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from nerdpy.engine.errors import ImageNotFound, InvalidArgument, ManifestError, NerdpyError, RegistryError, StoreError
from nerdpy.engine.store import Store

MONOLITHIC_MAX = 8 << 20      # blobs up to this size go in one PUT,
# larger ones in PATCHes of this size (NERDPY_PUSH_CHUNK_SIZE, bytes, sets it: tests use small ones)
CHUNK_SIZE = 32 << 20
MAX_CONCURRENT_UPLOADS = 3
MAX_MOUNT_TRIES = 3

_FOREIGN = ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            "application/vnd.oci.image.layer.nondistributable.v1.tar",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd")


@dataclass(frozen=True)
class PushEvent:
    """Progress of one layer: `id` is its short digest (12 hex digits)."""

    id: str
    status: str            # Preparing, Waiting, Pushing, Pushed, Layer already exists, Mounted from REPO
    current: int = 0
    total: int = 0


@dataclass(frozen=True)
class PushResult:
    reference: str         # normalised name pushed
    tag: str
    digest: str            # digest of what the tag now points at (manifest or index)
    size: int              # its size in bytes
    media_type: str


ProgressFn = Callable[[PushEvent], None]


@dataclass
class _Doc:
    digest: str
    media_type: str
    data: bytes


# what to push ---------------------------------------------------------------------------------
def push_targets(store: Store, name: str, all_tags: bool = False) -> list[tuple[object, object]]:
    """The local images `push NAME[:TAG]` (or `push --all-tags NAME`) sends, with the reference
    each goes to: a list of (Image, Reference)."""
    from nerdpy.engine.images.image import get_image, list_images
    from nerdpy.engine.distribution.reference import parse_reference

    bare = parse_reference(name, default_tag=None)
    if bare.digest:
        raise InvalidArgument(f"cannot push a digest reference ({name}): push a tag")
    if all_tags:
        if bare.tag:
            raise InvalidArgument("tag can't be used with --all-tags/-a")
        prefix = bare.name + ":"
        found = []
        for img in sorted(list_images(store), key=lambda i: i.name):
            if img.name.startswith(prefix) and "@" not in img.name:
                found.append((img, parse_reference(img.name)))
        if not found:
            raise ImageNotFound(f"An image does not exist locally with the tag: {bare.familiar()}")
        return found
    ref = parse_reference(name)
    img = get_image(store, str(ref))
    if img is None:
        raise ImageNotFound(f"An image does not exist locally with the tag: {ref.familiar_name()}"
                            + (f":{ref.tag}" if bare.tag else ""))
    return [(img, ref)]


def image_documents(store: Store, image) -> tuple[_Doc, list[tuple[_Doc, object]]]:
    """(top document, [(manifest document, parsed Manifest)]) for an image record."""
    from nerdpy.engine.distribution.manifest import Index, Manifest, parse_manifest

    content = store.content
    target = content.read(image.target)
    top = parse_manifest(target, image.media_type)
    if isinstance(top, Index):
        children = []
        complete = True
        for d in top.manifests:
            if not content.exists(d.digest):
                complete = False
                break
            data = content.read(d.digest)
            m = parse_manifest(data, d.media_type)
            if not isinstance(m, Manifest) or not all(
                    content.exists(b.digest) for b in [m.config, *m.layers] if not _foreign(b)):
                complete = False
                break
            children.append((_Doc(d.digest, m.media_type, data), m))
        if complete and children:
            return _Doc(image.target, top.media_type, target), children
        data = content.read(image.manifest)
        m = parse_manifest(data, None)
        if not isinstance(m, Manifest):
            raise ManifestError(f"image {image.name}: {image.manifest} is not a manifest")
        doc = _Doc(image.manifest, m.media_type, data)
        return doc, [(doc, m)]
    doc = _Doc(image.target, top.media_type, target)
    return doc, [(doc, top)]


def _foreign(desc) -> bool:
    return desc.media_type in _FOREIGN or bool(desc.urls)


# mount sources --------------------------------------------------------------------------------
_TABLE = ("CREATE TABLE IF NOT EXISTS blob_sources (registry TEXT NOT NULL, repository TEXT NOT NULL, "
          "digest TEXT NOT NULL, PRIMARY KEY (registry, repository, digest))")


def record_blob_sources(store: Store, registry: str, repository: str, digests) -> None:
    """Remember that `registry`/`repository` holds these blobs (a later push to another
    repository of that registry mounts them from there). Pull may call this too."""
    rows = [(registry, repository, d) for d in digests]
    if not rows:
        return
    with store.db.write() as cur:
        cur.execute(_TABLE)
        cur.executemany("INSERT OR IGNORE INTO blob_sources(registry, repository, digest) VALUES (?,?,?)", rows)


def _mount_candidates(store: Store, ref) -> dict[str, list[str]]:
    """digest -> repositories of the same registry (other than ref's) that should hold it."""
    from nerdpy.engine.images.image import list_images
    from nerdpy.engine.distribution.manifest import Index, Manifest, parse_manifest
    from nerdpy.engine.distribution.reference import parse_reference

    out: dict[str, list[str]] = {}

    def add(digest: str, repo: str) -> None:
        lst = out.setdefault(digest, [])
        if repo not in lst:
            lst.append(repo)

    try:
        rows = store.db.query("SELECT repository, digest FROM blob_sources WHERE registry = ? AND repository != ?",
                              (ref.domain, ref.path))
    except Exception:  # the table does not exist yet
        rows = []
    for r in rows:
        add(r["digest"], r["repository"])
    for img in list_images(store):
        if img.dangling:
            continue
        try:
            other = parse_reference(img.name)
        except NerdpyError:
            continue
        if other.domain != ref.domain or other.path == ref.path:
            continue
        digests = [img.manifest]
        for d in {img.target, img.manifest}:
            try:
                doc = parse_manifest(store.content.read(d), None)
            except (NerdpyError, OSError, ValueError):
                continue
            if isinstance(doc, Manifest):
                digests += [doc.config.digest] + [layer.digest for layer in doc.layers]
            elif isinstance(doc, Index):
                digests += [m.digest for m in doc.manifests]
        for d in digests:
            add(d, other.path)
    return out


# pushing -------------------------------------------------------------------------------------------
def push_image(store: Store, image, ref, *, progress: ProgressFn | None = None) -> PushResult:
    """Push the local `image` to `ref` (a tagged Reference)."""
    from nerdpy.engine.distribution.upload import Uploader

    emit = progress or (lambda ev: None)
    if not ref.tag:
        raise InvalidArgument(f"{ref}: push needs a tag")
    client = store.registry_client()
    with store.gc_lock(exclusive=False):
        top, manifests = image_documents(store, image)
        layers, configs, seen = [], [], set()
        for _doc, m in manifests:
            for layer in m.layers:
                if layer.digest not in seen and not _foreign(layer):
                    seen.add(layer.digest)
                    layers.append(layer)
            if m.config.digest not in seen:
                seen.add(m.config.digest)
                configs.append(m.config)
        for desc in [*layers, *configs]:
            if not store.content.exists(desc.digest):
                raise StoreError(f"blob {desc.digest} of {image.name} is not in the content store; pull the image again")

        up = Uploader(client, ref)
        candidates = _mount_candidates(store, ref)
        for layer in reversed(layers):
            emit(PushEvent(layer.digest[7:19], "Preparing", 0, layer.size))
        # the first request authenticates (one token for the whole push) before the workers start
        present: dict[str, bool] = {configs[0].digest: up.blob_size(configs[0].digest) is not None} if configs else {}

        failed = threading.Event()

        def push_blob(desc, show: bool) -> None:
            if failed.is_set():
                return
            short = desc.digest[7:19]
            say = emit if show else (lambda ev: None)
            exists = present.get(desc.digest)
            if exists is None:
                exists = up.blob_size(desc.digest) is not None
            if exists:
                say(PushEvent(short, "Layer already exists", desc.size, desc.size))
                return
            location = None
            for repo in candidates.get(desc.digest, [])[:MAX_MOUNT_TRIES]:
                try:
                    mounted, location = up.mount(desc.digest, repo)
                except RegistryError:
                    continue  # a mount is only a shortcut (no pull access to the source, ...)
                if mounted:
                    say(PushEvent(short, f"Mounted from {repo}", desc.size, desc.size))
                    return
                if location is not None:
                    break  # the registry started a normal upload instead: use it
            store.content.verify(desc.digest)  # nothing corrupt leaves the store
            say(PushEvent(short, "Pushing", 0, desc.size))
            up.upload(store.content.path(desc.digest), desc.digest, desc.size, location=location,
                      chunk=_chunk_size(), threshold=MONOLITHIC_MAX,
                      on_progress=(lambda n: say(PushEvent(short, "Pushing", n, desc.size))))
            say(PushEvent(short, "Pushed", desc.size, desc.size))

        def run(desc, show):
            try:
                push_blob(desc, show)
            except BaseException:
                failed.set()
                raise

        if layers:
            for layer in layers:
                emit(PushEvent(layer.digest[7:19], "Waiting", 0, layer.size))
            with ThreadPoolExecutor(max_workers=MAX_CONCURRENT_UPLOADS, thread_name_prefix="push") as pool:
                futures = [pool.submit(run, layer, True) for layer in reversed(layers)]
                for f in futures:
                    f.result()
        for config in configs:
            push_blob(config, False)

        # manifests last: a platform's manifest by digest before the index that lists it
        if top.media_type.endswith("index.v1+json") or top.media_type.endswith("list.v2+json"):
            for doc, _m in manifests:
                _put_manifest(up, doc.digest, doc)
        _put_manifest(up, ref.tag, top)

    record_blob_sources(store, ref.domain, ref.path, [d.digest for d in [*layers, *configs]]
                        + [doc.digest for doc, _ in manifests])
    from nerdpy.engine.system.journal import record_event

    record_event(store, "image", "push", str(ref), {"name": str(ref)})
    return PushResult(reference=str(ref), tag=ref.tag, digest=top.digest, size=len(top.data),
                      media_type=top.media_type)


def _chunk_size() -> int:
    import os

    try:
        n = int(os.environ.get("NERDPY_PUSH_CHUNK_SIZE", ""))
    except ValueError:
        return CHUNK_SIZE
    return n if n >= 1 << 20 else CHUNK_SIZE


def _put_manifest(up, reference: str, doc: _Doc) -> None:
    from nerdpy.engine.errors import DigestMismatch

    got = up.put_manifest(reference, doc.data, doc.media_type)
    if got and got != doc.digest:
        raise DigestMismatch(f"registry stored the manifest {doc.digest} as {got}")
