"""Volumes: named and anonymous volumes under the data root, bind mounts and tmpfs, turned into
OCI mounts for a container. A new named volume is filled from the image's content at its
mount point, as docker does.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass

from nerdpy.engine.errors import Conflict, InvalidArgument, NotFound
from nerdpy.engine.store import Store

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


@dataclass
class Volume:
    name: str
    mountpoint: str
    labels: dict
    anonymous: bool
    created_at: float


def volumes_root(store: Store) -> str:
    return os.path.join(store.data_root, "volumes", store.namespace)


def volume_path(store: Store, name: str) -> str:
    return os.path.join(volumes_root(store), name, "_data")


def create_volume(store: Store, name: str | None = None, labels: dict | None = None,
                  anonymous: bool = False) -> Volume:
    name = name or secrets.token_hex(32)
    if not _NAME_RE.match(name):
        raise InvalidArgument(f"invalid volume name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    existing = get_volume(store, name)
    if existing is not None:
        return existing
    path = volume_path(store, name)
    os.makedirs(path, mode=0o755, exist_ok=True)
    with store.db.write() as cur:
        cur.execute("INSERT OR IGNORE INTO volumes(namespace, name, labels, anonymous, created_at) VALUES (?,?,?,?,?)",
                    (store.namespace, name, json.dumps(labels or {}), int(anonymous), time.time()))
    return get_volume(store, name)


def get_volume(store: Store, name: str) -> Volume | None:
    r = store.db.query_one("SELECT * FROM volumes WHERE namespace = ? AND name = ?", (store.namespace, name))
    if r is None:
        return None
    return Volume(r["name"], volume_path(store, r["name"]), json.loads(r["labels"]), bool(r["anonymous"]), r["created_at"])


def list_volumes(store: Store) -> list[Volume]:
    rows = store.db.query("SELECT name FROM volumes WHERE namespace = ? ORDER BY name", (store.namespace,))
    return [get_volume(store, r["name"]) for r in rows]


def volumes_in_use(store: Store) -> dict[str, list[str]]:
    used: dict[str, list[str]] = {}
    for r in store.db.query("SELECT id, name, config FROM containers WHERE namespace = ?", (store.namespace,)):
        for m in json.loads(r["config"]).get("mounts") or []:
            if m.get("type") == "volume" and m.get("source"):
                used.setdefault(m["source"], []).append(r["name"])
    return used


def remove_volume(store: Store, name: str, force: bool = False) -> None:
    if get_volume(store, name) is None:
        raise NotFound(f"no such volume: {name}")
    users = volumes_in_use(store).get(name)
    if users and not force:
        raise Conflict(f"remove {name}: volume is in use by container(s) {', '.join(users)}")
    with store.db.write() as cur:
        cur.execute("DELETE FROM volumes WHERE namespace = ? AND name = ?", (store.namespace, name))
    shutil.rmtree(os.path.join(volumes_root(store), name), ignore_errors=True)


def remove_anonymous_volumes(store: Store, spec: dict) -> None:
    for m in spec.get("mounts") or []:
        if m.get("type") == "volume" and (m.get("options") or {}).get("anonymous"):
            try:
                remove_volume(store, m["source"])
            except (NotFound, Conflict):
                pass


def oci_mounts(store: Store, c, rootfs: str) -> list[dict]:
    """The container's volumes, binds and tmpfs as OCI mounts (creating volumes as needed)."""
    from nerdpy.engine.etcfiles import resolve_in_root

    out = []
    for m in c.spec.get("mounts") or []:
        kind, target = m["type"], m["target"]
        opts = m.get("options") or {}
        ro = ["ro"] if m.get("readonly") else ["rw"]
        if kind == "bind":
            src = m["source"]
            if not os.path.exists(src):
                if opts.get("create_host_path", True):
                    os.makedirs(src, exist_ok=True)
                else:
                    raise InvalidArgument(f"invalid mount config for type \"bind\": bind source path does not exist: {src}")
            out.append({"destination": target, "type": "bind", "source": src,
                        "options": ["rbind", opts.get("propagation", "rprivate")] + ro})
        elif kind == "volume":
            fresh = get_volume(store, m["source"]) is None
            vol = create_volume(store, m["source"], anonymous=bool(opts.get("anonymous")))
            if fresh and not opts.get("nocopy"):
                _copy_up(resolve_in_root(rootfs, target), vol.mountpoint)
            out.append({"destination": target, "type": "bind", "source": vol.mountpoint,
                        "options": ["rbind", "rprivate"] + ro})
        elif kind == "tmpfs":
            o = ["nosuid", "nodev", "noexec"] if False else ["nosuid", "nodev"]
            if opts.get("size"):
                o.append(f"size={opts['size']}")
            if opts.get("mode"):
                o.append(f"mode={opts['mode']}")
            out.append({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": o + ro})
        else:
            raise InvalidArgument(f"unsupported mount type {kind!r}")
    return out


def _copy_up(src: str, dest: str) -> None:
    """Fill a new volume with what the image has at the mount point (docker's behaviour)."""
    if not os.path.isdir(src) or os.path.islink(src):
        return
    for name in os.listdir(src):
        s, d = os.path.join(src, name), os.path.join(dest, name)
        if os.path.isdir(s) and not os.path.islink(s):
            shutil.copytree(s, d, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(s, d, follow_symlinks=False)
    st = os.stat(src)
    os.chown(dest, st.st_uid, st.st_gid)
    os.chmod(dest, st.st_mode & 0o7777)
