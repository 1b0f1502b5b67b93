"""Garbage collection of the content store and the snapshots: what no image (of any namespace)
or container references goes. `referenced_content` says what is reachable, `collect_garbage`
deletes the rest (under the store's exclusive GC lock), `store_bytes` measures what image
removal can free.
"""
from __future__ import annotations

import json

from nerdpy.engine.errors import Conflict, NerdpyError
from nerdpy.engine.store import Store


def store_bytes(store: Store) -> int:
    """Bytes of blobs and committed snapshots (what image removal frees)."""
    total = 0
    for d in store.content.list():
        try:
            total += store.content.size(d)
        except NerdpyError:
            pass
    return total + sum(s.size for s in store.snapshots.list())


def referenced_content(store: Store) -> tuple[set[str], set[str]]:
    """Blobs and chain IDs reachable from every image of every namespace."""
    from nerdpy.engine.snapshots.snapshotter import chain_ids

    blobs: set[str] = set()
    chains: set[str] = set()
    targets = {r["target"] for r in store.db.query("SELECT DISTINCT target FROM images")}
    stack = list(targets)
    while stack:
        digest = stack.pop()
        if digest in blobs:
            continue
        blobs.add(digest)
        if not store.content.exists(digest):
            continue
        try:
            doc = json.loads(store.content.read(digest))
        except Exception:
            continue
        if not isinstance(doc, dict):
            continue
        if "manifests" in doc:
            stack += [m["digest"] for m in doc.get("manifests", []) if isinstance(m, dict) and "digest" in m]
        elif "config" in doc and "layers" in doc:
            cfg = doc["config"].get("digest")
            if cfg:
                blobs.add(cfg)
                try:
                    config = json.loads(store.content.read(cfg))
                    chains.update(chain_ids(config.get("rootfs", {}).get("diff_ids", [])))
                except Exception:
                    pass
            blobs.update(layer["digest"] for layer in doc["layers"] if "digest" in layer)
    return blobs, chains


def _live(store: Store, key: str) -> bool:
    """Whether the writable layer `ns/id` is a live container's (its record may be lost)."""
    import dataclasses

    from nerdpy.engine.containers.records import processes_alive

    ns, _, cid = key.partition("/")
    seen = dataclasses.replace(store, settings=dataclasses.replace(store.settings, namespace=ns))
    return bool(cid) and processes_alive(seen, cid)


def collect_garbage(store: Store) -> dict:
    """Delete blobs and snapshots that no image or container references.
    Skips (returns {"skipped": True}) while another command is adding content."""
    with store.gc_lock(exclusive=True, wait=False) as got:
        if not got:
            return {"skipped": True}
        # writable layers no container owns: a create killed between preparing the layer and
        # recording the container (creates hold the shared lock across both, so none is midway now)
        owners = {f"{r['namespace']}/{r['id']}" for r in store.db.query("SELECT namespace, id FROM containers")}
        for key in store.snapshots.active_keys():
            if key not in owners and not _live(store, key):
                store.snapshots.remove_active(key)
        blobs, chains = referenced_content(store)
        # parents of active snapshots (containers' writable layers) and their ancestors stay
        for r in store.db.query("SELECT parent FROM active_snapshots WHERE parent IS NOT NULL"):
            for s in store.snapshots.chain(r["parent"]):
                chains.add(s.chain_id)
        removed_blobs = 0
        for digest in store.content.list():
            if digest not in blobs:
                store.content.delete(digest)
                removed_blobs += 1
        store.content.remove_stale_ingests()
        # remove snapshots leaf first
        snaps = {s.chain_id: s for s in store.snapshots.list()}
        removed_snaps = 0
        changed = True
        while changed:
            changed = False
            parents = {s.parent for s in snaps.values() if s.parent}
            for cid in list(snaps):
                if cid not in chains and cid not in parents:
                    try:
                        store.snapshots.remove(cid)
                    except Conflict:
                        continue
                    del snaps[cid]
                    removed_snaps += 1
                    changed = True
        orphans = store.snapshots.remove_orphan_dirs()
        return {"blobs": removed_blobs, "snapshots": removed_snaps, "orphans": orphans}
