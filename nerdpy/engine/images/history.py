"""`image history`: the config's history entries, newest first, with each layer's size.

The size of an entry that made a layer is the layer's unpacked size (the file content its
snapshot holds), or its compressed size when the image is not unpacked; entries marked
`empty_layer` are 0. The newest entry carries the image ID; the others are `<missing>`, as
docker shows them for pulled images (there are no parent images to name them by).
"""
from __future__ import annotations

from dataclasses import dataclass

from nerdpy.engine.store import Store

MISSING = "<missing>"


@dataclass(frozen=True)
class HistoryEntry:
    id: str                # image ID for the newest entry, else "<missing>"
    created: str           # RFC 3339 as in the config ("" when absent)
    created_by: str
    size: int
    comment: str
    empty_layer: bool


def image_history(store: Store, query: str) -> list[HistoryEntry]:
    from nerdpy.engine.images.image import image_config, image_manifest, resolve_image
    from nerdpy.engine.snapshots.snapshotter import chain_ids

    image = resolve_image(store, query)
    config = image_config(store, image)
    layers = image_manifest(store, image).get("layers") or []
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    chains = chain_ids(diff_ids)

    def layer_size(i: int) -> int:
        if i < len(chains):
            snap = store.snapshots.get(chains[i])
            if snap is not None:
                return snap.size
        if i < len(layers) and isinstance(layers[i], dict):
            return int(layers[i].get("size") or 0)
        return 0

    history = [h for h in (config.get("history") or []) if isinstance(h, dict)]
    if not history:
        # no history recorded: one row per layer, as the layers are all there is to show
        history = [{"created": config.get("created", "")} for _ in diff_ids] or [{"created": config.get("created", "")}]
    rows = []
    layer_i = 0
    for h in history:
        empty = bool(h.get("empty_layer"))
        size = 0
        if not empty:
            size = layer_size(layer_i)
            layer_i += 1
        rows.append((h, size, empty))
    out = []
    for n, (h, size, empty) in enumerate(reversed(rows)):
        out.append(HistoryEntry(
            id=image.config if n == 0 else MISSING,
            created=str(h.get("created") or ""),
            created_by=str(h.get("created_by") or ""),
            size=size,
            comment=str(h.get("comment") or ""),
            empty_layer=empty,
        ))
    return out
