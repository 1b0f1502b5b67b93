"""nerdpy's embedded engine: a Python API with no click, no rich and no printing.

    from nerdpy.engine import load_settings, open_store, pull_image, list_images

    store = open_store(load_settings({"data_root": "/tmp/nerdpy"}))
    result = pull_image(store, "127.0.0.1:5000/library/busybox:latest")

Names are resolved lazily so that importing the package costs nothing.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "Settings": "config",
    "load_settings": "config",
    "Store": "store",
    "open_store": "store",
    "pull_image": "distribution.pull",
    "PullEvent": "distribution.pull",
    "PullResult": "distribution.pull",
    "Image": "images.image",
    "list_images": "images.image",
    "resolve_image": "images.image",
    "tag_image": "images.image",
    "remove_image": "images.image",
    "prune_images": "images.image",
    "collect_garbage": "content.gc",
    "parse_reference": "distribution.reference",
    "Reference": "distribution.reference",
    "apply_layer": "snapshots.apply",
    "chain_ids": "snapshots.snapshotter",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nerdpy.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"nerdpy.engine.{module}"), name)
    globals()[name] = value
    return value
