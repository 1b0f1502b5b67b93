"""Manifests and indexes (OCI and Docker): media types, descriptors, parsing with validation,
and platform selection."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from nerdpy.engine.errors import ManifestError, PlatformNotFound
from nerdpy.engine.distribution.platforms import Platform, is_attestation, platform_matches

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_ND = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_ND_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_ND_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
SCHEMA1_TYPES = (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED)
ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST, DOCKER_SCHEMA1_SIGNED, DOCKER_SCHEMA1])
MAX_MANIFEST_BYTES = 4 << 20

_LAYER_TYPES = {
    OCI_LAYER: "none", OCI_LAYER_GZIP: "gzip", OCI_LAYER_ZSTD: "zstd",
    OCI_LAYER_ND: "none", OCI_LAYER_ND_GZIP: "gzip", OCI_LAYER_ND_ZSTD: "zstd",
    DOCKER_LAYER: "gzip", DOCKER_FOREIGN: "gzip",
    "application/vnd.docker.image.rootfs.diff.tar": "none",
}
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$")


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: tuple = ()
    platform: dict | None = None
    annotations: dict | None = None

    @classmethod
    def from_dict(cls, d: object, where: str = "descriptor") -> "Descriptor":
        if not isinstance(d, dict):
            raise ManifestError(f"{where} is not an object")
        mt, digest, size = d.get("mediaType", ""), d.get("digest"), d.get("size")
        if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
            raise ManifestError(f"{where} has an invalid digest {digest!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ManifestError(f"{where} has an invalid size {size!r}")
        if not isinstance(mt, str):
            raise ManifestError(f"{where} has an invalid mediaType")
        urls = d.get("urls") or ()
        return cls(mt, digest, size, tuple(urls) if isinstance(urls, list) else (),
                   d.get("platform") if isinstance(d.get("platform"), dict) else None,
                   d.get("annotations") if isinstance(d.get("annotations"), dict) else None)

    def to_dict(self) -> dict:
        out: dict = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.platform:
            out["platform"] = self.platform
        if self.annotations:
            out["annotations"] = self.annotations
        return out


@dataclass
class Manifest:
    media_type: str
    config: Descriptor
    layers: list[Descriptor]
    annotations: dict = field(default_factory=dict)


@dataclass
class Index:
    media_type: str
    manifests: list[Descriptor]
    annotations: dict = field(default_factory=dict)


def parse_manifest(data: bytes, content_type: str | None) -> Manifest | Index:
    """Parse and validate a manifest or index; raise ManifestError on anything inconsistent."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    ct = (content_type or "").split(";")[0].strip()
    if ct in SCHEMA1_TYPES:
        raise ManifestError(_SCHEMA1_MSG)
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestError(f"manifest is not valid JSON: {e}") from None
    except RecursionError:
        raise ManifestError("manifest is nested too deeply") from None
    if not isinstance(doc, dict):
        raise ManifestError("manifest is not a JSON object")
    version = doc.get("schemaVersion")
    if version == 1:
        raise ManifestError(_SCHEMA1_MSG)
    if version != 2:
        raise ManifestError(f"unsupported manifest schemaVersion {version!r}")
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestError("manifest mediaType is not a string")
    is_index = "manifests" in doc
    is_manifest = "config" in doc or "layers" in doc
    if is_index and is_manifest:
        raise ManifestError("document has both manifests and layers: ambiguous")
    if not is_index and not is_manifest:
        raise ManifestError("document is neither a manifest nor an index")
    kind = "an index" if is_index else "a manifest"
    for label, mt in (("mediaType field", declared), ("Content-Type", ct if ct in MANIFEST_TYPES + INDEX_TYPES else None)):
        if mt is None:
            continue
        if mt in SCHEMA1_TYPES:
            raise ManifestError(_SCHEMA1_MSG)
        if (mt in INDEX_TYPES) != is_index or mt not in MANIFEST_TYPES + INDEX_TYPES:
            raise ManifestError(f"{label} {mt!r} disagrees with the document, which is {kind}")
    if declared and ct in MANIFEST_TYPES + INDEX_TYPES and declared != ct:
        raise ManifestError(f"mediaType field {declared!r} disagrees with Content-Type {ct!r}")
    media_type = declared or (ct if ct in MANIFEST_TYPES + INDEX_TYPES else (OCI_INDEX if is_index else OCI_MANIFEST))
    annotations = doc.get("annotations") if isinstance(doc.get("annotations"), dict) else {}
    if is_index:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise ManifestError("index manifests is not a list")
        return Index(media_type, [Descriptor.from_dict(m, f"index entry {i}") for i, m in enumerate(entries)],
                     annotations)
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ManifestError("manifest layers is not a list")
    return Manifest(media_type, Descriptor.from_dict(doc.get("config"), "manifest config"),
                    [Descriptor.from_dict(layer, f"layer {i}") for i, layer in enumerate(layers)], annotations)


_SCHEMA1_MSG = ("schema 1 manifests are not supported; push the image again with a current client "
                "(docker 1.10 or later)")


def all_platforms(index: Index) -> list[Descriptor]:
    return [d for d in index.manifests if not is_attestation(d.platform) and d.media_type not in INDEX_TYPES]


def select_platform(index: Index, wanted: Platform) -> Descriptor:
    candidates = all_platforms(index)
    for d in candidates:
        if d.platform is None and len(candidates) == 1:
            return d
        if platform_matches(wanted, d.platform):
            return d
    names = []
    for d in candidates:
        p = d.platform or {}
        names.append("/".join(x for x in (p.get("os", "?"), p.get("architecture", "?"), p.get("variant")) if x))
    available = ", ".join(names) or "none"
    raise PlatformNotFound(f"no matching manifest for {wanted} in the manifest list entries (available: {available})")


def is_layer_type(media_type: str) -> bool:
    return media_type in _LAYER_TYPES


def layer_compression(media_type: str) -> str:
    return _LAYER_TYPES.get(media_type, "none")
