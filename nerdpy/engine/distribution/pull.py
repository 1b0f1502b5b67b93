"""Pulling an image: resolve the reference, fetch the manifest(s), config and layers into the
content store, unpack layers into snapshots, and name the image.

Up to three layers download at once (docker's default); each layer is unpacked as soon as it
and its parents are ready, while later layers keep downloading. Progress is reported through a
callback with `PullEvent`s; the engine never prints.
"""
from __future__ import annotations

import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from nerdpy.engine.errors import DigestMismatch, ManifestError, NerdpyError
from nerdpy.engine.store import Store

MAX_CONFIG_BYTES = 8 << 20
MAX_CONCURRENT_DOWNLOADS = 3


@dataclass(frozen=True)
class PullEvent:
    """Progress of one item: `id` is the layer's short digest (12 hex digits) or a reference."""

    id: str
    status: str            # Waiting, Downloading, Verifying Checksum, Download complete,
                           # Extracting, Pull complete, Already exists, Resolved
    current: int = 0
    total: int = 0


@dataclass(frozen=True)
class PullResult:
    reference: str         # normalised name stored
    digest: str            # target digest (manifest or index)
    image_id: str          # config digest of the default platform
    updated: bool          # False when the image was already up to date


ProgressFn = Callable[[PullEvent], None]


def _noop(_: PullEvent) -> None:
    pass


def pull_image(
    store: Store,
    reference: str,
    *,
    platform: str | None = None,
    all_platforms: bool = False,
    progress: ProgressFn | None = None,
) -> PullResult:
    """Pull `reference` into the store of `store`'s namespace."""
    from nerdpy.engine.distribution.platforms import host_platform, parse_platform
    from nerdpy.engine.distribution.reference import parse_reference

    emit = progress or _noop
    ref = parse_reference(reference)
    wanted = parse_platform(platform) if platform else host_platform()
    client = store.registry_client()

    blobs_before = set(store.content.list())
    snaps_before = {sn.chain_id for sn in store.snapshots.list()}
    try:
        return _pull(store, client, ref, wanted, platform, all_platforms, emit)
    except BaseException:
        _forget_failed_pull(store, blobs_before, snaps_before)
        raise


def _forget_failed_pull(store: Store, blobs_before: set[str], snaps_before: set[str]) -> None:
    """A failed pull (a full disk, a registry gone) leaves nothing that nothing references: when it
    added blobs or snapshots, garbage collection removes them (skipped while another command
    adds content: `system prune` then reclaims them)."""
    try:
        added = set(store.content.list()) - blobs_before
        added |= {sn.chain_id for sn in store.snapshots.list()} - snaps_before
        if added:
            from nerdpy.engine.content.gc import collect_garbage

            collect_garbage(store)
    except Exception:  # the pull's own error is the one to report
        pass


def _pull(store: Store, client, ref, wanted, platform: str | None, all_platforms: bool, emit: ProgressFn) -> PullResult:
    from nerdpy.engine.distribution.manifest import Index, Manifest, all_platforms as index_platforms, parse_manifest, select_platform
    from nerdpy.engine.images.image import get_image, put_image

    with store.gc_lock(exclusive=False):
        desc, raw = client.resolve(ref)
        store.content.write_blob(raw, desc.digest)
        doc = parse_manifest(raw, desc.media_type)
        emit(PullEvent(ref.tag or desc.digest[7:19], "Resolved", 0, 0))

        if isinstance(doc, Index):
            chosen = select_platform(doc, wanted)
            others = [d for d in index_platforms(doc) if d.digest != chosen.digest] if all_platforms else []
            manifests = []
            for d in [chosen, *others]:
                data = store.content.read(d.digest) if store.content.exists(d.digest) else client.fetch_manifest(ref, d)
                store.content.write_blob(data, d.digest)
                m = parse_manifest(data, d.media_type)
                if not isinstance(m, Manifest):
                    raise ManifestError(f"{ref}: nested index {d.digest} is not supported")
                manifests.append((d, m))
        else:
            manifests = [(desc, doc)]

        default_desc, default_manifest = manifests[0]
        config_digest = default_manifest.config.digest
        for _d, m in manifests:
            _fetch_small(store, client, ref, m.config)
        try:
            config = json.loads(store.content.read(config_digest))
        except (ValueError, RecursionError):
            raise ManifestError(f"{ref}: image config {config_digest} is not valid JSON") from None
        _check_config(config, default_manifest, ref)
        if platform and not isinstance(doc, Index):
            _check_platform(config, wanted, ref)

        # layers of the other platforms are fetched (content only), not unpacked
        for _d, m in manifests[1:]:
            _download_layers(store, client, ref, m.layers, emit, unpack=None)
        diff_ids = config["rootfs"]["diff_ids"]
        _download_layers(store, client, ref, default_manifest.layers, emit, unpack=diff_ids)

        name = str(ref)
        before = get_image(store, name)
        put_image(store, name, desc.digest, desc.media_type, desc.size, default_desc.digest, config_digest)
    # a new target, or the same index resolved to another platform's image
    updated = before is None or before.target != desc.digest or before.config != config_digest
    from nerdpy.engine.system.journal import record_event

    record_event(store, "image", "pull", name, {"name": name})
    return PullResult(reference=name, digest=desc.digest, image_id=config_digest, updated=updated)


def _fetch_small(store: Store, client, ref, desc) -> None:
    if desc.size > MAX_CONFIG_BYTES:
        raise ManifestError(f"{ref}: config blob of {desc.size} bytes is too large")
    with store.content.ingest(desc.digest, desc.size) as w:
        if w is not None:
            client.fetch_blob(ref, desc, w)


def _check_platform(config: dict, wanted, ref) -> None:
    """docker: a single-platform image pulled with an explicit --platform must be that platform."""
    from nerdpy.engine.errors import PlatformNotFound
    from nerdpy.engine.distribution.platforms import platform_matches

    got = {k: config.get(k) for k in ("os", "architecture", "variant") if config.get(k)}
    if not platform_matches(wanted, got):
        actual = "/".join(got.get(k, "?") for k in ("os", "architecture")) + (
            f"/{got['variant']}" if got.get("variant") else "")
        raise PlatformNotFound(f"image with reference {ref} was found but does not match the specified "
                               f"platform: wanted {wanted}, actual: {actual}")


def _check_config(config: dict, manifest, ref) -> None:
    if not isinstance(config, dict):
        raise ManifestError(f"{ref}: image config is not a JSON object")
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
        raise ManifestError(f"{ref}: image config has no rootfs.diff_ids")
    if len(rootfs["diff_ids"]) != len(manifest.layers):
        raise ManifestError(
            f"{ref}: manifest has {len(manifest.layers)} layers but the config lists "
            f"{len(rootfs['diff_ids'])} diff IDs"
        )
    from nerdpy.engine.content.blobs import check_digest

    for d in rootfs["diff_ids"]:
        check_digest(d)


def _download_layers(store: Store, client, ref, layers, emit: ProgressFn, unpack: list[str] | None) -> None:
    from nerdpy.engine.distribution.manifest import is_layer_type
    from nerdpy.engine.snapshots.snapshotter import chain_ids

    for layer in layers:
        if not is_layer_type(layer.media_type):
            raise ManifestError(f"{ref}: unsupported layer media type {layer.media_type!r}")
    chains = chain_ids(unpack) if unpack is not None else [None] * len(layers)
    short = [layer.digest[7:19] for layer in layers]

    # which layers need downloading at all
    need = []
    for i, layer in enumerate(layers):
        if chains[i] is not None and store.snapshots.exists(chains[i]) and store.content.exists(layer.digest):
            emit(PullEvent(short[i], "Already exists"))
            need.append(False)
        elif store.content.exists(layer.digest):
            need.append(False)
        else:
            emit(PullEvent(short[i], "Waiting", 0, layer.size))
            need.append(True)

    failed = threading.Event()

    def download(i: int) -> None:
        layer = layers[i]
        if failed.is_set():
            return
        with store.content.ingest(layer.digest, layer.size) as w:
            if w is None:
                return
            emit(PullEvent(short[i], "Downloading", 0, layer.size))
            client.fetch_blob(ref, layer, w, lambda n: emit(PullEvent(short[i], "Downloading", n, layer.size)))
            emit(PullEvent(short[i], "Verifying Checksum", layer.size, layer.size))
        emit(PullEvent(short[i], "Download complete", layer.size, layer.size))

    futures: list[Future | None] = [None] * len(layers)
    with ThreadPoolExecutor(max_workers=MAX_CONCURRENT_DOWNLOADS, thread_name_prefix="pull") as pool:
        for i in range(len(layers)):
            if need[i]:
                futures[i] = pool.submit(download, i)
        try:
            for i, layer in enumerate(layers):
                if futures[i] is not None:
                    futures[i].result()
                if chains[i] is None:
                    continue
                parent = chains[i - 1] if i else None
                if store.snapshots.exists(chains[i]):
                    if not need[i]:
                        continue
                    emit(PullEvent(short[i], "Pull complete"))
                    continue
                _unpack_layer(store, layer, chains[i], parent, unpack[i], short[i], emit)
                emit(PullEvent(short[i], "Pull complete"))
        except BaseException:
            failed.set()
            for f in futures:
                if f is not None:
                    f.cancel()
            raise


def _unpack_layer(store: Store, layer, chain_id: str, parent: str | None, diff_id: str, short: str, emit) -> None:
    from nerdpy.engine.snapshots.apply import apply_layer

    total = layer.size

    def apply(target: str) -> tuple[str, int]:
        emit(PullEvent(short, "Extracting", 0, total))
        with store.content.open(layer.digest) as f:
            result = apply_layer(target, f)
        emit(PullEvent(short, "Extracting", total, total))
        return result.diff_id, result.size

    try:
        store.snapshots.unpack(chain_id, parent, diff_id, apply)
    except DigestMismatch as e:
        raise DigestMismatch(f"layer {layer.digest}: {e}") from None
    except NerdpyError:
        raise
