"""Volumes: named and anonymous volumes under the data root, bind mounts and tmpfs, turned into
OCI mounts for a container.

- A volume is a DB row (namespace, name, labels, anonymous) and a directory
  `<data-root>/volumes/<ns>/<name>/_data`, created in that order and removed in the reverse one.
- As docker does, a volume that is empty when a container first starts with it is filled from
  the image's content at the mount point (unless `nocopy`), keeping owners, modes, times and
  symlinks. "First start" is recorded per container, so emptying a volume by hand is not undone
  by a restart.
- An anonymous volume (`-v /data`) gets a random 64-hex name on the container's first start,
  recorded in the container's record, so `rm -v` and `volume prune` find it.
- A volume used by any container, running or not, cannot be removed, as in docker.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import secrets
import shutil
import stat as _stat
import time
from dataclasses import asdict
from typing import TYPE_CHECKING

from nerdpy.engine.errors import Conflict, InvalidArgument, NotFound, VolumeInUse, VolumeNotFound  # noqa: F401
from nerdpy.engine.store import Store
from nerdpy.engine.util.lean import lean_dataclass

if TYPE_CHECKING:
    from nerdpy.engine.containers.records import StoredSpec

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
ANONYMOUS_LABEL = "com.docker.volume.anonymous"


@lean_dataclass
class Volume:
    name: str
    mountpoint: str
    labels: dict
    anonymous: bool
    created_at: float
    options: dict | None = None   # the local driver's -o options (type, device, o), from opts.json


# the local driver's options (docker's): a tmpfs (`type=tmpfs device=tmpfs o=size=64m`) or a bind
# of a host directory (`type=none o=bind device=/path`); kept in `<volume>/opts.json` as docker does
LOCAL_OPTIONS = ("type", "device", "o")


def check_local_options(options: dict) -> dict:
    """docker's local driver options, checked; InvalidArgument for what it (or nerdpy) refuses."""
    for key in options:
        if key not in LOCAL_OPTIONS:
            raise InvalidArgument(f"invalid option: {key!r}")
    kind, device, o = options.get("type", ""), options.get("device", ""), options.get("o", "")
    if not kind:
        raise InvalidArgument("missing type in volume options")
    if not device:
        raise InvalidArgument("missing device in volume options")
    if kind == "tmpfs":
        for opt in filter(None, o.split(",")):
            if opt.partition("=")[0] not in ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"):
                raise InvalidArgument(f"invalid tmpfs option {opt!r} in volume options")
    elif kind == "none" and "bind" in o.split(","):
        if not os.path.isabs(device):
            raise InvalidArgument(f"invalid device {device!r} for a bind volume: an absolute path is needed")
    else:
        raise InvalidArgument(f"volume type {kind!r} is not supported by nerdpy's local driver "
                              "(only type=tmpfs, or type=none with o=bind)")
    return dict(options)


def _read_options(store: Store, name: str) -> dict | None:
    try:
        with open(os.path.join(volumes_root(store), name, "opts.json")) as f:
            return json.load(f) or None
    except (OSError, ValueError):
        return None


def volumes_root(store: Store) -> str:
    return os.path.join(store.data_root, "volumes", store.namespace)


def volume_path(store: Store, name: str) -> str:
    return os.path.join(volumes_root(store), name, "_data")


def create_volume(store: Store, name: str | None = None, labels: dict | None = None,
                  anonymous: bool = False, driver: str = "local", options: dict | None = None) -> Volume:
    """Create a volume, or return the existing one of that name (docker's behaviour)."""
    if driver not in ("local", "", None):
        raise InvalidArgument(f"volume driver {driver!r} is not supported (only \"local\")")
    if options:
        options = check_local_options(options)
    name = name or secrets.token_hex(32)
    if not _NAME_RE.match(name):
        raise InvalidArgument(f"invalid volume name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    existing = get_volume(store, name)
    if existing is not None:
        return existing
    path = volume_path(store, name)
    os.makedirs(path, mode=0o755, exist_ok=True)
    os.chmod(os.path.dirname(path), 0o701)
    if options:
        from nerdpy.engine.util.fs import write_json_atomic

        write_json_atomic(os.path.join(os.path.dirname(path), "opts.json"), options)
    with store.db.write() as cur:
        cur.execute("INSERT OR IGNORE INTO volumes(namespace, name, labels, anonymous, created_at) VALUES (?,?,?,?,?)",
                    (store.namespace, name, json.dumps(labels or {}), int(anonymous), time.time()))
    from nerdpy.engine.system.journal import record_event

    record_event(store, "volume", "create", name, {"driver": "local"})
    return get_volume(store, name)


def get_volume(store: Store, name: str) -> Volume | None:
    r = store.db.query_one("SELECT * FROM volumes WHERE namespace = ? AND name = ?", (store.namespace, name))
    if r is None:
        return None
    return _row(store, r)


def _row(store: Store, r) -> Volume:
    return Volume(r["name"], volume_path(store, r["name"]), json.loads(r["labels"]), bool(r["anonymous"]),
                  r["created_at"], _read_options(store, r["name"]))


def find_volume(store: Store, name: str) -> Volume:
    v = get_volume(store, name)
    if v is None:
        raise VolumeNotFound(f"no such volume: {name}")
    return v


def list_volumes(store: Store) -> list[Volume]:
    rows = store.db.query("SELECT * FROM volumes WHERE namespace = ? ORDER BY name", (store.namespace,))
    return [_row(store, r) for r in rows]


def volumes_in_use(store: Store) -> dict[str, list[str]]:
    """volume name -> IDs of the containers (running or not) that use it."""
    used: dict[str, list[str]] = {}
    for r in store.db.query("SELECT id, config FROM containers WHERE namespace = ?", (store.namespace,)):
        for m in json.loads(r["config"]).get("mounts") or []:
            if m.get("type") == "volume" and m.get("source"):
                used.setdefault(m["source"], []).append(r["id"])
    return used


def remove_volume(store: Store, name: str, force: bool = False) -> None:
    """docker volume rm: an in-use volume is refused even with force; force ignores a missing one."""
    if get_volume(store, name) is None:
        if force:
            return
        raise VolumeNotFound(f"no such volume: {name}")
    with store.db.write() as cur:
        users = _users_in_tx(cur, store, name)
        if users:
            raise VolumeInUse(f"remove {name}: volume is in use - [{', '.join(users)}]")
        cur.execute("DELETE FROM volumes WHERE namespace = ? AND name = ?", (store.namespace, name))
    _rmtree(os.path.join(volumes_root(store), name))
    from nerdpy.engine.system.journal import record_event

    record_event(store, "volume", "destroy", name, {"driver": "local"})


def _users_in_tx(cur, store: Store, name: str) -> list[str]:
    users = []
    for r in cur.execute("SELECT id, config FROM containers WHERE namespace = ?", (store.namespace,)):
        for m in json.loads(r["config"]).get("mounts") or []:
            if m.get("type") == "volume" and m.get("source") == name:
                users.append(r["id"])
    return users


def _rmtree(path: str) -> None:
    """Remove a volume directory: renamed aside first, so a half-removed volume never looks valid."""
    if not os.path.lexists(path):
        return
    trash = f"{path}.removing-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        os.rename(path, trash)
    except OSError:
        trash = path
    shutil.rmtree(trash, ignore_errors=True)


def remove_anonymous_volumes(store: Store, spec: StoredSpec) -> None:
    for m in spec.mounts or []:
        if m.type == "volume" and (m.options or {}).get("anonymous") and m.source:
            try:
                remove_volume(store, m.source)
            except (NotFound, Conflict):
                pass


def volume_size(v: Volume) -> int:
    from nerdpy.engine.util.fs import dir_size

    return dir_size(v.mountpoint)


def prune_volumes(store: Store, all_: bool = False, filters: list[str] | None = None) -> tuple[list[str], int]:
    """Remove unused volumes: anonymous ones only unless `all_` (docker 23+), those docker's prune
    filters (label, label!, all) let go. Returns (names, bytes)."""
    from nerdpy.engine.system.prunefilter import parse_prune_filters

    flt = parse_prune_filters(filters, "volume")
    all_ = all_ or flt.all
    used = volumes_in_use(store)
    removed, reclaimed = [], 0
    for v in list_volumes(store):
        if v.name in used or (not all_ and not v.anonymous) or not flt.match(volume_labels(v), None):
            continue
        size = volume_size(v)
        try:
            remove_volume(store, v.name)
        except (NotFound, Conflict):
            continue
        removed.append(v.name)
        reclaimed += size
    return removed, reclaimed


def volume_labels(v: Volume) -> dict:
    labels = dict(v.labels)
    if v.anonymous:
        labels.setdefault(ANONYMOUS_LABEL, "")
    return labels


def filter_volumes(store: Store, vols: list[Volume], filters: list[str]) -> list[Volume]:
    """docker's `volume ls --filter`: dangling=true|false, name=SUBSTRING, label=KEY[=VALUE],
    label!=KEY[=VALUE], driver=local."""
    used = None
    for f in filters:
        key, sep, value = f.partition("=")
        if not sep:
            raise InvalidArgument(f"bad format of filter (expected name=value): {f}")
        neg = key.endswith("!")
        key = key.rstrip("!").lower()
        if key == "dangling":
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid filter 'dangling={value}'")
            if used is None:
                used = volumes_in_use(store)
            want = value.lower() in ("true", "1")
            vols = [v for v in vols if (v.name not in used) == want]
        elif key == "name":
            vols = [v for v in vols if value in v.name]
        elif key == "label":
            k, eq, val = value.partition("=")

            def match(v, k=k, eq=eq, val=val):
                labels = volume_labels(v)
                return k in labels and (not eq or labels[k] == val)

            vols = [v for v in vols if match(v) != neg]
        elif key == "driver":
            vols = [v for v in vols if value == "local"]
        else:
            raise InvalidArgument(f"invalid filter '{key}'")
    return vols


def volume_json(store: Store, v: Volume) -> dict:
    """docker's `volume inspect` shape."""
    created = _dt.datetime.fromtimestamp(v.created_at, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "CreatedAt": created,
        "Driver": "local",
        "Labels": volume_labels(v) or None,
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": v.options or None,
        "Scope": "local",
    }


# -- mounts for a container ------------------------------------------------------------------------
def assign_anonymous_volumes(store: Store, c) -> None:
    """Give each anonymous volume of the container a name and record it in the container's row
    (docker does this at create time; `create_container` may call this too)."""
    mounts = c.spec.mounts or []
    if not any(m.type == "volume" and not m.source for m in mounts):
        return
    for m in mounts:
        if m.type == "volume" and not m.source:
            m.source = secrets.token_hex(32)
            m.options = {**(m.options or {}), "anonymous": True}
    with store.db.write() as cur:
        row = cur.execute("SELECT config FROM containers WHERE namespace = ? AND id = ?",
                          (store.namespace, c.id)).fetchone()
        if row is None:
            return
        record = json.loads(row["config"])
        record["mounts"] = [asdict(m) for m in mounts]
        cur.execute("UPDATE containers SET config = ? WHERE namespace = ? AND id = ?",
                    (json.dumps(record), store.namespace, c.id))
    from nerdpy.engine.containers.records import mirror_record

    mirror_record(store, c.id)


def oci_mounts(store: Store, c, rootfs: str) -> list[dict]:
    """The container's volumes, binds and tmpfs as OCI mounts (creating volumes as needed)."""
    from nerdpy.engine.containers.records import container_dir
    from nerdpy.engine.util.fs import resolve_in_root

    assign_anonymous_volumes(store, c)
    populated_marker = os.path.join(container_dir(store, c.id), "volumes-populated")
    first_start = not os.path.exists(populated_marker)
    out = []
    for m in c.spec.mounts or []:
        kind, target = m.type, m.target
        opts = m.options or {}
        ro = ["ro"] if m.readonly else ["rw"]
        if kind == "bind":
            src = m.source
            if not os.path.exists(src):
                if opts.get("create_host_path", True):
                    os.makedirs(src, exist_ok=True)
                else:
                    raise InvalidArgument(f"invalid mount config for type \"bind\": bind source path does not exist: {src}")
            out.append({"destination": target, "type": "bind", "source": src,
                        "options": ["rbind", opts.get("propagation", "rprivate")] + ro})
        elif kind == "volume":
            vol = create_volume(store, m.source, anonymous=bool(opts.get("anonymous")))
            vopts = vol.options or {}
            if vopts.get("type") == "tmpfs":  # a tmpfs of the container's own (docker shares one)
                extra = [x for x in vopts.get("o", "").split(",") if x]
                out.append({"destination": target, "type": "tmpfs", "source": "tmpfs",
                            "options": ["nosuid", "nodev"] + extra + ro})
                continue
            if vopts.get("type") == "none":  # o=bind: the host directory named by device
                if not os.path.isdir(vopts["device"]):
                    raise InvalidArgument(f"error while mounting volume '{vol.name}': failed to mount local volume: "
                                          f"mount {vopts['device']}: no such file or directory")
                out.append({"destination": target, "type": "bind", "source": vopts["device"],
                            "options": ["rbind", "rprivate"] + ro})
                continue
            if first_start and not opts.get("nocopy") and _is_empty(vol.mountpoint):
                copy_up(resolve_in_root(rootfs, target), vol.mountpoint)
            out.append({"destination": target, "type": "bind", "source": vol.mountpoint,
                        "options": ["rbind", "rprivate"] + ro})
        elif kind == "tmpfs":
            o = ["nosuid", "nodev"]
            if opts.get("size"):
                o.append(f"size={opts['size']}")
            if opts.get("mode"):
                o.append(f"mode={opts['mode']}")
            out.append({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": o + ro})
        else:
            raise InvalidArgument(f"unsupported mount type {kind!r}")
    if first_start:
        try:
            open(populated_marker, "w").close()
        except OSError:
            pass
    return out


def _is_empty(path: str) -> bool:
    try:
        with os.scandir(path) as it:
            return next(it, None) is None
    except OSError:
        return False


def copy_up(src: str, dest: str) -> None:
    """Fill a new volume with what the image has at the mount point (docker's behaviour): the
    tree is copied with owners, modes, times and symlinks (never followed), hard links kept."""
    try:
        st = os.lstat(src)
    except FileNotFoundError:
        return
    if not _stat.S_ISDIR(st.st_mode):
        return
    links: dict[tuple[int, int], str] = {}
    _copy_tree(src, dest, links)
    os.chown(dest, st.st_uid, st.st_gid)
    os.chmod(dest, _stat.S_IMODE(st.st_mode))
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_tree(src: str, dest: str, links: dict) -> None:
    with os.scandir(src) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        s, d = e.path, os.path.join(dest, e.name)
        st = e.stat(follow_symlinks=False)
        mode = st.st_mode
        if _stat.S_ISDIR(mode):
            os.mkdir(d, 0o700)
            _copy_tree(s, d, links)
        elif _stat.S_ISLNK(mode):
            os.symlink(os.readlink(s), d)
        elif _stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                os.link(links[key], d)
                continue
            with open(s, "rb") as fi, open(d, "xb") as fo:
                shutil.copyfileobj(fi, fo, 1 << 20)
            if st.st_nlink > 1:
                links[key] = d
        elif _stat.S_ISCHR(mode) or _stat.S_ISBLK(mode) or _stat.S_ISFIFO(mode):
            os.mknod(d, mode, st.st_rdev)
        else:
            continue  # sockets
        os.chown(d, st.st_uid, st.st_gid, follow_symlinks=False)
        if not _stat.S_ISLNK(mode):
            os.chmod(d, _stat.S_IMODE(mode))
        os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
