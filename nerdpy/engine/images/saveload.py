"""Image archives: `save` and `load`.

`save` writes a docker-archive as docker 25+ does (`manifest.json`, `repositories`, and an OCI
image layout in the same tar: `oci-layout`, `index.json`, `blobs/sha256/...`), or an
oci-archive (the OCI layout alone). Blobs go in as they are stored (layers stay compressed, as
docker with the containerd image store and nerdctl write them), so digests are kept and
`manifest.json`'s `Layers` name the compressed blobs, which docker load and skopeo both read.

`load` streams the tar (plain, or gzip/bzip2/xz/zstd compressed): every regular file goes to a
staging directory beside the content store while it is hashed (`blobs/sha256/<hex>` must hash
to its name); `manifest.json`, `index.json`, `repositories` and `oci-layout` are kept in memory
(20 MiB cap each). At the end the images are worked out (docker-archive: manifest.json, using
the OCI manifest from index.json when it describes the same config and layers, else a new
manifest; oci-archive: index.json), every referenced blob is checked, the blobs are renamed
into the content store, the layers unpacked, and the names recorded last. Any error leaves the
store as it was: the staging directory is removed, and blobs or snapshots this load added are
taken away again.
"""
from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import tarfile
import time
import uuid
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

from nerdpy.engine.errors import ImageArchiveError, InvalidArgument, NerdpyError, StoreError
from nerdpy.engine.store import Store

MAX_JSON = 20 << 20
READ = 1 << 20
TAR_TIME = 946684800  # 2000-01-01: a fixed mtime keeps archives of the same images identical
INDEX_NAME = "io.containerd.image.name"
REF_NAME = "org.opencontainers.image.ref.name"
_META = ("manifest.json", "index.json", "repositories", "oci-layout")


@dataclass(frozen=True)
class LoadEvent:
    id: str           # short layer digest
    status: str       # Loading layer, Loaded
    current: int = 0
    total: int = 0


@dataclass(frozen=True)
class LoadedImage:
    name: str | None          # normalised name, None for an untagged image
    image_id: str             # config digest
    target: str               # manifest or index digest
    replaced: str | None = None  # the image ID the name pointed at before, when it moved


# save ------------------------------------------------------------------------------------------
@dataclass
class _SaveEntry:
    image: object
    refs: list = field(default_factory=list)


def _save_targets(store: Store, names: list[str]) -> list[_SaveEntry]:
    from nerdpy.engine.errors import InvalidReference
    from nerdpy.engine.images.image import list_images, resolve_image
    from nerdpy.engine.distribution.reference import parse_reference

    entries: dict[tuple[str, str], _SaveEntry] = {}

    def add(img, ref) -> None:
        e = entries.setdefault((img.target, img.manifest), _SaveEntry(img))
        if ref is not None and all(str(r) != str(ref) for r in e.refs):
            e.refs.append(ref)

    for q in names:
        try:
            bare = parse_reference(q, default_tag=None)
        except InvalidReference:
            bare = None
        if bare is not None and not bare.tag and not bare.digest:
            # docker: a repository name without a tag saves every tag of it
            tagged = sorted((i for i in list_images(store) if i.name.startswith(bare.name + ":") and "@" not in i.name),
                            key=lambda i: i.name)
            if tagged:
                for i in tagged:
                    add(i, parse_reference(i.name))
                continue
        img = resolve_image(store, q)
        ref = None
        if bare is not None and not img.dangling and "@" not in img.name and bare.tag:
            if img.name == str(parse_reference(q)):
                ref = parse_reference(img.name)
        add(img, ref)
    return list(entries.values())


class _TarWriter:
    """Writes tar entries straight to a stream (no seeking, large copies)."""

    def __init__(self, out: BinaryIO):
        self.out = out
        self.written = 0

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.written += len(data)

    def _header(self, name: str, size: int, kind=tarfile.REGTYPE, mode: int = 0o644) -> None:
        ti = tarfile.TarInfo(name)
        ti.size, ti.type, ti.mode, ti.mtime = size, kind, mode, TAR_TIME
        ti.uname = ti.gname = ""
        self._write(ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def dir(self, name: str) -> None:
        self._header(name.rstrip("/") + "/", 0, tarfile.DIRTYPE, 0o755)

    def data(self, name: str, data: bytes) -> None:
        self._header(name, len(data))
        self._write(data)
        self._pad(len(data))

    def file(self, name: str, f) -> None:
        """One member from a blob opened with ContentStore.open_verified (a corrupt one raises)."""
        with f:
            size = f.size
            self._header(name, size)
            left = size
            while left:
                chunk = f.read(min(READ, left))
                if not chunk:
                    raise StoreError(f"{name} shrank while it was being saved")
                self._write(chunk)
                left -= len(chunk)
        self._pad(size)

    def _pad(self, size: int) -> None:
        if size % 512:
            self._write(b"\0" * (512 - size % 512))

    def close(self) -> None:
        self._write(b"\0" * 1024)
        rest = self.written % tarfile.RECORDSIZE
        if rest:
            self._write(b"\0" * (tarfile.RECORDSIZE - rest))
        self.out.flush()


def save_images(store: Store, names: list[str], out: BinaryIO, *, fmt: str = "docker-archive") -> list[str]:
    """Write the images `names` to `out` as a docker-archive or an oci-archive.
    Returns the image IDs written."""
    from nerdpy.engine.images.image import read_json
    from nerdpy.engine.distribution.manifest import OCI_INDEX
    from nerdpy.engine.distribution.push import _foreign, image_documents

    if fmt not in ("docker-archive", "oci-archive"):
        raise InvalidArgument(f"unknown archive format {fmt!r}: use docker-archive or oci-archive")
    if not names:
        raise InvalidArgument("no image to save")
    with store.gc_lock(exclusive=False):
        entries = _save_targets(store, names)
        blobs: list[str] = []
        index_entries: list[dict] = []
        docker_manifest: list[dict] = []
        repositories: dict[str, dict[str, str]] = {}

        def want(digest: str) -> None:
            if digest not in blobs:
                if not store.content.exists(digest):
                    raise StoreError(f"blob {digest} is missing from the content store; pull the image again")
                blobs.append(digest)

        for e in entries:
            top, manifests = image_documents(store, e.image)
            for doc, m in manifests:
                for layer in m.layers:
                    if not _foreign(layer):
                        want(layer.digest)
                want(m.config.digest)
                want(doc.digest)
            want(top.digest)
            desc = {"mediaType": top.media_type, "digest": top.digest, "size": len(top.data)}
            for ref in e.refs or [None]:
                d = dict(desc)
                if ref is not None:
                    d["annotations"] = {INDEX_NAME: str(ref), REF_NAME: ref.tag}
                index_entries.append(d)
            # manifest.json describes the platform image the record uses
            default = next((m for doc, m in manifests if doc.digest == e.image.manifest), manifests[0][1])
            tags = [ref.familiar() for ref in e.refs]
            docker_manifest.append({
                "Config": "blobs/sha256/" + default.config.digest[7:],
                "RepoTags": tags or None,
                "Layers": ["blobs/sha256/" + layer.digest[7:] for layer in default.layers],
            })
            top_layer = default.layers[-1].digest[7:] if default.layers else default.config.digest[7:]
            for ref in e.refs:
                repositories.setdefault(ref.familiar_name(), {})[ref.tag] = top_layer
            read_json(store, default.config.digest)  # the config is readable and intact

        tw = _TarWriter(out)
        tw.dir("blobs")
        tw.dir("blobs/sha256")
        for digest in blobs:
            tw.file("blobs/sha256/" + digest[7:], store.content.open_verified(digest))
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index_entries}
        tw.data("index.json", json.dumps(index).encode())
        if fmt == "docker-archive":
            tw.data("manifest.json", json.dumps(docker_manifest).encode())
        tw.data("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        if fmt == "docker-archive" and repositories:
            tw.data("repositories", json.dumps(repositories).encode())
        tw.close()
    from nerdpy.engine.system.journal import record_event

    for e in entries:
        record_event(store, "image", "save", e.image.config, {"name": str(e.refs[0]) if e.refs else e.image.config})
    return [e.image.config for e in entries]


# load: reading the tar ----------------------------------------------------------------------------
@dataclass
class _Staged:
    path: str
    digest: str
    size: int
    head: bytes


def _decompressed(stream: BinaryIO) -> BinaryIO:
    from nerdpy.engine.util.compression import open_plain, read_head

    head = read_head(stream)
    if not head:
        raise ImageArchiveError("the archive is empty")
    return open_plain(stream, head)


def _decode_errors() -> tuple:
    from nerdpy.engine.util.compression import DecompressError

    return (tarfile.TarError, EOFError, DecompressError)


def _member_path(name: str) -> str:
    if name.startswith("/"):
        raise ImageArchiveError(f"refusing archive member with an absolute path: {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ImageArchiveError(f"refusing archive member with '..' in its path: {name!r}")
    return "/".join(parts)


class _Reader:
    def __init__(self, staging: str, content):
        self.dir = staging
        self.content = content
        self.files: dict[str, _Staged] = {}
        self.by_digest: dict[str, _Staged] = {}
        self.present: set[str] = set()         # blobs/sha256 entries already in the content store
        self.meta: dict[str, bytes] = {}
        self.links: dict[str, str] = {}
        self._n = 0

    def read(self, stream: BinaryIO) -> None:
        src = _decompressed(stream)
        try:
            tf = tarfile.open(fileobj=src, mode="r|", bufsize=READ)
            for ti in tf:
                self._member(tf, ti)
        except ImageArchiveError:
            raise
        except _decode_errors() as e:
            raise ImageArchiveError(f"invalid or corrupt archive: {e}") from None
        except OSError as e:
            if e.errno is None:  # gzip.BadGzipFile and other decoder errors
                raise ImageArchiveError(f"invalid or corrupt archive: {e}") from None
            raise
        if not self.files and not self.meta:
            raise ImageArchiveError("the archive holds no files")

    def _member(self, tf, ti) -> None:
        path = _member_path(ti.name)
        if not path:
            return
        if ti.issym():
            target = ti.linkname
            if target.startswith("/"):
                raise ImageArchiveError(f"refusing archive symlink {path!r} -> {target!r}: absolute target")
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
            if resolved == ".." or resolved.startswith("../"):
                raise ImageArchiveError(f"refusing archive symlink {path!r} -> {target!r}: it leaves the archive")
            self.links[path] = resolved
            return
        if ti.islnk():
            self.links[path] = _member_path(ti.linkname)
            return
        if not ti.isreg():
            return
        self.links.pop(path, None)
        if path in _META:
            if ti.size > MAX_JSON:
                raise ImageArchiveError(f"{path} in the archive is larger than {MAX_JSON >> 20} MiB")
            f = tf.extractfile(ti)
            data = f.read(MAX_JSON + 1)
            if len(data) != ti.size:
                raise ImageArchiveError(f"invalid or corrupt archive: {path} is truncated")
            self.meta[path] = data
            return
        expect = None
        parts = path.split("/")
        if len(parts) == 3 and parts[0] == "blobs" and parts[1] == "sha256":
            expect = "sha256:" + parts[2]
            if len(parts[2]) != 64 or any(c not in "0123456789abcdef" for c in parts[2]):
                raise ImageArchiveError(f"invalid blob name in the archive: {path!r}")
            if expect in self.by_digest:
                self.files[path] = self.by_digest[expect]
                return
            if self.content.exists(expect):
                # already stored (and verified when it was): no need to stage it again
                self.present.add(expect)
                self.files[path] = _Staged("", expect, self.content.size(expect), self._head(expect))
                return
        staged = self._stage(tf.extractfile(ti), ti.size, expect, path)
        self.files[path] = staged
        self.by_digest.setdefault(staged.digest, staged)

    def _head(self, digest: str) -> bytes:
        with self.content.open(digest) as f:
            return f.read(8)

    def _stage(self, f, size: int, expect: str | None, name: str) -> _Staged:
        self._n += 1
        path = os.path.join(self.dir, str(self._n))
        h = hashlib.sha256()
        head = b""
        n = 0
        try:
            with open(path, "wb") as out:
                while True:
                    chunk = f.read(READ)
                    if not chunk:
                        break
                    if len(head) < 8:
                        head += chunk[:8 - len(head)]
                    h.update(chunk)
                    out.write(chunk)
                    n += len(chunk)
        except OSError as e:
            if e.errno is None:
                raise
            raise StoreError(f"cannot stage {name} under {self.dir}: {e.strerror}") from None
        if n != size:
            raise ImageArchiveError(f"invalid or corrupt archive: {name} is truncated")
        digest = "sha256:" + h.hexdigest()
        if expect and digest != expect:
            raise ImageArchiveError(f"blob {expect} in the archive is corrupt: its content hashes to {digest}")
        return _Staged(path, digest, n, head)

    # lookups ------------------------------------------------------------------------------
    def resolve(self, path: str) -> _Staged:
        p = _member_path(path) if isinstance(path, str) else ""
        for _ in range(16):
            if p in self.files:
                return self.files[p]
            if p not in self.links:
                break
            p = self.links[p]
        raise ImageArchiveError(f"the archive names {path!r} but does not hold it")

    def have(self, digest: str) -> bool:
        return digest in self.by_digest or digest in self.present or self.content.exists(digest)

    def size(self, digest: str) -> int:
        st = self.by_digest.get(digest)
        if st is not None:
            return st.size
        return self.content.size(digest)

    def head(self, digest: str) -> bytes:
        st = self.by_digest.get(digest)
        if st is not None:
            return st.head
        return self._head(digest)

    def read_blob(self, digest: str, limit: int, what: str) -> bytes:
        st = self.by_digest.get(digest)
        if st is None:
            if not self.content.exists(digest):
                raise ImageArchiveError(f"{what} {digest} is not in the archive")
            return self.content.read(digest, limit)
        if st.size > limit:
            raise ImageArchiveError(f"{what} {digest} in the archive is larger than {limit >> 20} MiB")
        with open(st.path, "rb") as f:
            return f.read()


# load: working out the images ----------------------------------------------------------------------
@dataclass
class _Plan:
    names: list                 # References
    top_digest: str
    top_media_type: str
    top_size: int
    manifest_digest: str
    manifest: object            # Manifest
    config_digest: str
    config: dict
    new_docs: dict = field(default_factory=dict)   # digest -> bytes written by this load
    blobs: set = field(default_factory=set)        # every digest the image needs stored


def _json(data: bytes, what: str):
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ImageArchiveError(f"{what} in the archive is not valid JSON: {e}") from None
    except RecursionError:
        raise ImageArchiveError(f"{what} in the archive is nested too deeply") from None


def _check_config(config, layers: int, where: str) -> None:
    if not isinstance(config, dict):
        raise ImageArchiveError(f"{where}: the image config is not a JSON object")
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
        raise ImageArchiveError(f"{where}: the image config has no rootfs.diff_ids")
    if len(rootfs["diff_ids"]) != layers:
        raise ImageArchiveError(f"{where}: {layers} layers but the config lists {len(rootfs['diff_ids'])} diff IDs")
    from nerdpy.engine.content.blobs import check_digest

    for d in rootfs["diff_ids"]:
        try:
            check_digest(d)
        except NerdpyError:
            raise ImageArchiveError(f"{where}: invalid diff ID {d!r} in the image config") from None


def _parse_name(s, where: str):
    from nerdpy.engine.errors import InvalidReference
    from nerdpy.engine.distribution.reference import parse_reference

    if not isinstance(s, str):
        raise ImageArchiveError(f"{where}: invalid image name {s!r}")
    try:
        ref = parse_reference(s)
    except InvalidReference as e:
        raise ImageArchiveError(f"{where}: invalid image name {s!r}: {e}") from None
    if ref.digest and not ref.tag:
        return None
    return ref


def _oci_image(r: _Reader, desc, where: str) -> tuple[str, object, str, dict, list]:
    """For an index.json entry: (platform manifest digest, Manifest, config digest, config,
    [(child descriptor, manifest) present]) ; checks sizes and the chosen image's blobs."""
    from nerdpy.engine.errors import PlatformNotFound
    from nerdpy.engine.distribution.manifest import MAX_MANIFEST_BYTES, Index, Manifest, parse_manifest, select_platform
    from nerdpy.engine.distribution.platforms import host_platform

    def load_doc(d, what):
        if not r.have(d.digest):
            raise ImageArchiveError(f"{where}: {what} {d.digest} is not in the archive")
        if r.size(d.digest) != d.size:
            raise ImageArchiveError(f"{where}: {what} {d.digest} has {r.size(d.digest)} bytes, its descriptor says {d.size}")
        try:
            return parse_manifest(r.read_blob(d.digest, MAX_MANIFEST_BYTES, what), d.media_type)
        except NerdpyError as e:
            if isinstance(e, ImageArchiveError):
                raise
            raise ImageArchiveError(f"{where}: {what} {d.digest}: {e}") from None

    doc = load_doc(desc, "manifest")
    if isinstance(doc, Index):
        present = [d for d in doc.manifests if r.have(d.digest)]
        if not present:
            raise ImageArchiveError(f"{where}: none of the manifests of index {desc.digest} is in the archive")
        sub = Index(doc.media_type, present, doc.annotations)
        try:
            chosen = select_platform(sub, host_platform())
        except PlatformNotFound:
            chosen = present[0]
        m = load_doc(chosen, "manifest")
        if not isinstance(m, Manifest):
            raise ImageArchiveError(f"{where}: nested index {chosen.digest} is not supported")
        mdigest = chosen.digest
        children = [(d, load_doc(d, "manifest")) for d in present]
    else:
        m, mdigest, children = doc, desc.digest, []
    blobs = [m.config, *m.layers]
    for b in blobs:
        if b.urls:
            continue
        if not r.have(b.digest):
            raise ImageArchiveError(f"{where}: blob {b.digest} is not in the archive")
        if r.size(b.digest) != b.size:
            raise ImageArchiveError(f"{where}: blob {b.digest} has {r.size(b.digest)} bytes, its descriptor says {b.size}")
    config = _json(r.read_blob(m.config.digest, MAX_JSON, "config"), f"config {m.config.digest}")
    _check_config(config, len(m.layers), where)
    return mdigest, m, m.config.digest, config, children


def _plan_oci(r: _Reader) -> list[_Plan]:
    from nerdpy.engine.distribution.manifest import Index, parse_manifest

    try:
        index = parse_manifest(r.meta["index.json"], None)
    except NerdpyError as e:
        raise ImageArchiveError(f"index.json in the archive: {e}") from None
    if not isinstance(index, Index):
        raise ImageArchiveError("index.json in the archive is not an image index")
    plans: dict[str, _Plan] = {}
    for i, desc in enumerate(index.manifests):
        where = f"index.json entry {i}"
        ann = desc.annotations or {}
        name = ann.get(INDEX_NAME)
        ref = None
        if name:
            ref = _parse_name(name, where)
        elif ann.get(REF_NAME):
            rn = ann[REF_NAME]
            # a bare tag ("latest") names no repository: the image loads untagged
            if "/" in rn or ":" in rn:
                ref = _parse_name(rn, where)
        plan = plans.get(desc.digest)
        if plan is None:
            mdigest, m, cdigest, config, children = _oci_image(r, desc, where)
            plan = _Plan([], desc.digest, desc.media_type, desc.size, mdigest, m, cdigest, config)
            plan.blobs = {desc.digest, mdigest, m.config.digest, *(layer.digest for layer in m.layers if not layer.urls)}
            for d, cm in children:
                plan.blobs.add(d.digest)
                for b in [getattr(cm, "config", None), *getattr(cm, "layers", [])]:
                    if b is not None and r.have(b.digest) and not b.urls:
                        plan.blobs.add(b.digest)
            plans[desc.digest] = plan
        if ref is not None and all(str(x) != str(ref) for x in plan.names):
            plan.names.append(ref)
    return list(plans.values())


def _plan_docker(r: _Reader) -> list[_Plan]:
    from nerdpy.engine.util.compression import LAYER, sniff
    from nerdpy.engine.distribution.manifest import (DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST, OCI_CONFIG, OCI_LAYER,
                                        OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST, Descriptor, Manifest)

    entries = _json(r.meta["manifest.json"], "manifest.json")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ImageArchiveError("manifest.json in the archive is not a list of images")
    if not entries:
        raise ImageArchiveError("manifest.json in the archive lists no image")
    oci: list[_Plan] = []
    if "index.json" in r.meta:
        try:
            oci = _plan_oci(r)
        except ImageArchiveError:
            oci = []  # the OCI part is optional in a docker-archive: fall back to manifest.json
    plans: list[_Plan] = []
    for i, e in enumerate(entries):
        where = f"manifest.json entry {i}"
        if not isinstance(e.get("Config"), str) or not isinstance(e.get("Layers") or [], list):
            raise ImageArchiveError(f"{where}: Config and Layers are missing or malformed")
        cfg = r.resolve(e["Config"])
        layers = [r.resolve(p) for p in (e.get("Layers") or [])]
        config = _json(r.read_blob(cfg.digest, MAX_JSON, "config"), f"config {e['Config']}")
        _check_config(config, len(layers), where)
        names = []
        for t in e.get("RepoTags") or []:
            ref = _parse_name(t, where)
            if ref is not None and all(str(x) != str(ref) for x in names):
                names.append(ref)
        digests = [s.digest for s in layers]
        match = next((p for p in oci if p.config_digest == cfg.digest
                      and [layer.digest for layer in p.manifest.layers] == digests), None)
        if match is not None:
            plans.append(_Plan(names, match.top_digest, match.top_media_type, match.top_size, match.manifest_digest,
                               match.manifest, match.config_digest, match.config, {}, set(match.blobs)))
            continue
        kinds = [sniff(s.head, LAYER) for s in layers]
        oci_types = "zstd" in kinds
        types = ({"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD, "none": OCI_LAYER} if oci_types else
                 {"gzip": DOCKER_LAYER, "none": "application/vnd.docker.image.rootfs.diff.tar"})
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST if oci_types else DOCKER_MANIFEST,
            "config": {"mediaType": OCI_CONFIG if oci_types else DOCKER_CONFIG, "size": cfg.size, "digest": cfg.digest},
            "layers": [{"mediaType": types[k], "size": s.size, "digest": s.digest} for s, k in zip(layers, kinds)],
        }
        data = json.dumps(doc, indent=3).encode()
        mdigest = "sha256:" + hashlib.sha256(data).hexdigest()
        m = Manifest(doc["mediaType"], Descriptor.from_dict(doc["config"]),
                     [Descriptor.from_dict(x) for x in doc["layers"]])
        plans.append(_Plan(names, mdigest, doc["mediaType"], len(data), mdigest, m, cfg.digest, config,
                           {mdigest: data}, {cfg.digest, *digests}))
    return plans


# load: storing --------------------------------------------------------------------------------------
def _staging_root(store: Store) -> str:
    return os.path.join(store.content.root, "staging")


def _remove_stale_staging(root: str) -> None:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return
    for name in names:
        try:
            pid = int(name.split("-")[1])
        except (IndexError, ValueError):
            pid = 0
        if pid and os.path.exists(f"/proc/{pid}"):
            continue
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def load_images(store: Store, stream: BinaryIO, *, progress: Callable[[LoadEvent], None] | None = None) -> list[LoadedImage]:
    """Load every image of the archive in `stream` into the store."""
    emit = progress or (lambda ev: None)
    root = _staging_root(store)
    os.makedirs(root, mode=0o700, exist_ok=True)
    _remove_stale_staging(root)
    staging = os.path.join(root, f"load-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.makedirs(staging, mode=0o700)
    created_blobs: list[str] = []
    created_chains: list[str] = []
    done = False
    try:
        # the shared lock for the whole load: blobs found already stored stay there
        with store.gc_lock(exclusive=False):
            r = _Reader(staging, store.content)
            r.read(stream)
            if "manifest.json" in r.meta:
                plans = _plan_docker(r)
            elif "index.json" in r.meta:
                plans = _plan_oci(r)
            else:
                raise ImageArchiveError("the archive holds no image: neither manifest.json nor index.json")
            for plan in plans:
                _store_blobs(store, r, plan, created_blobs)
            for plan in plans:
                _unpack(store, plan, emit, created_chains)
            loaded = _name_images(store, plans)
        done = True
        from nerdpy.engine.system.journal import record_event

        for li in loaded:
            record_event(store, "image", "load", li.image_id, {"name": li.name or li.image_id})
        return loaded
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not done and (created_blobs or created_chains):
            _discard(store, created_blobs, created_chains)


def _store_blobs(store: Store, r: _Reader, plan: _Plan, created: list[str]) -> None:
    content = store.content
    for digest, data in plan.new_docs.items():
        if not content.exists(digest):
            content.write_blob(data, digest)
            created.append(digest)
    for digest in sorted(plan.blobs):
        if digest in plan.new_docs:
            continue
        st = r.by_digest.get(digest)
        if st is None or not st.path:
            if not content.exists(digest):
                raise ImageArchiveError(f"blob {digest} is not in the archive")
            continue
        with content.lock(digest):
            if content.exists(digest):
                continue
            fd = os.open(st.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.rename(st.path, content.path(digest))
            except OSError as e:
                if e.errno != 18:  # EXDEV: the staging dir is on another filesystem
                    raise StoreError(f"cannot store blob {digest}: {e.strerror}") from None
                with open(st.path, "rb") as f, content.ingest(digest, st.size) as w:
                    if w is not None:
                        for chunk in iter(lambda: f.read(READ), b""):
                            w.write(chunk)
            st.path = ""
            created.append(digest)


def _unpack(store: Store, plan: _Plan, emit, created: list[str]) -> None:
    from nerdpy.engine.snapshots.apply import apply_layer
    from nerdpy.engine.errors import DigestMismatch
    from nerdpy.engine.snapshots.snapshotter import chain_ids

    diff_ids = plan.config["rootfs"]["diff_ids"]
    chains = chain_ids(diff_ids)
    for i, layer in enumerate(plan.manifest.layers):
        if store.snapshots.exists(chains[i]):
            continue
        short = layer.digest[7:19]

        def apply(target: str, layer=layer, short=short) -> tuple[str, int]:
            emit(LoadEvent(short, "Loading layer", 0, layer.size))
            with store.content.open(layer.digest) as f:
                result = apply_layer(target, _Counting(f, lambda n: emit(LoadEvent(short, "Loading layer", n, layer.size))))
            emit(LoadEvent(short, "Loading layer", layer.size, layer.size))
            return result.diff_id, result.size

        try:
            if store.snapshots.unpack(chains[i], chains[i - 1] if i else None, diff_ids[i], apply):
                created.append(chains[i])
        except DigestMismatch as e:
            raise ImageArchiveError(f"layer {layer.digest} does not match the image config: {e}") from None
        except NerdpyError as e:
            if isinstance(e, ImageArchiveError):
                raise
            err = ImageArchiveError(f"layer {layer.digest}: {e}")
            raise err from None


class _Counting:
    """A reader that reports how many bytes were read so far."""

    def __init__(self, f: BinaryIO, report: Callable[[int], None]):
        self.f = f
        self.report = report
        self.n = 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.n += len(data)
        self.report(self.n)
        return data

    def readable(self) -> bool:
        return True


def _name_images(store: Store, plans: list[_Plan]) -> list[LoadedImage]:
    from nerdpy.engine.images.image import get_image, list_images, put_image

    out: list[LoadedImage] = []
    for plan in plans:
        if not plan.names:
            if not any(i.target == plan.top_digest for i in list_images(store)):
                now = time.time()
                with store.db.write() as cur:
                    cur.execute(
                        "INSERT OR IGNORE INTO images(namespace, name, target, media_type, size, manifest, config,"
                        " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                        (store.namespace, plan.top_digest, plan.top_digest, plan.top_media_type, plan.top_size,
                         plan.manifest_digest, plan.config_digest, now, now))
            out.append(LoadedImage(None, plan.config_digest, plan.top_digest))
            continue
        for ref in plan.names:
            before = get_image(store, str(ref))
            put_image(store, str(ref), plan.top_digest, plan.top_media_type, plan.top_size,
                      plan.manifest_digest, plan.config_digest)
            replaced = before.config if before is not None and before.config != plan.config_digest else None
            out.append(LoadedImage(str(ref), plan.config_digest, plan.top_digest, replaced))
    return out


def _discard(store: Store, blobs: list[str], chains: list[str]) -> None:
    """Take away what a failed load added (when no other command is adding content; else
    garbage collection does it later)."""
    from nerdpy.engine.errors import Conflict
    from nerdpy.engine.content.gc import referenced_content

    with store.gc_lock(exclusive=True, wait=False) as got:
        if not got:
            return
        keep_blobs, keep_chains = referenced_content(store)
        for c in reversed(chains):
            if c not in keep_chains:
                try:
                    store.snapshots.remove(c)
                except Conflict:
                    pass
        for d in blobs:
            if d not in keep_blobs:
                store.content.delete(d)


def open_input(path: str | None) -> BinaryIO:
    """The archive to load: a file, or stdin."""
    import sys

    if path is None or path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as e:
        raise ImageArchiveError(f"cannot open {path}: {e.strerror or e}") from None
