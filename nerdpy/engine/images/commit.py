"""`commit`: a container's writable layer as a new image, and the pieces `import` shares with it.

1. The container is paused (`runc pause`) while its upper dir is read, if it runs and
   `pause` is asked (the default), and resumed afterwards.
2. The upper dir becomes a layer tar: overlay whiteouts (0:0 character devices) turn back into
   `.wh.NAME` entries and opaque directories (`trusted.overlay.opaque=y`) into
   `.wh..wh..opq`; other `trusted.overlay.*` xattrs are never written. The tar is gzipped into
   a temp file under `<data-root>/tmp` while both digests (diffID and blob) are computed.
3. The layer's snapshot is unpacked from that file by the normal path (`archive.apply_layer`,
   under the chain's lock), so the image runs at once; then the blob, the config (the parent's
   history and diffIDs plus ours, the container's settings, `--change`s) and the manifest go
   into the content store, and the name is recorded with `images.put_image`, as `pull` does.
   A failure at any step leaves no name; what was stored before it is garbage for GC.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import secrets
import shlex
import stat
import tarfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from nerdpy.engine.errors import Conflict, ImageNotFound, InvalidArgument, LayerError, NerdpyError
from nerdpy.engine.snapshots.snapshotter import is_overlay_xattr, is_whiteout, opaque_xattr, overlay_xattrs
from nerdpy.engine.store import Store

# files runc creates in the writable layer as mount points for what nerdpy binds over them
# (docker keeps these in its "-init" layer, which commit leaves out)
MOUNT_STUBS = frozenset({"etc/hostname", "etc/hosts", "etc/resolv.conf"})
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
CHUNK = 1 << 20


# -- tar entries -------------------------------------------------------------------------------------
def _xattrs(path: str) -> dict[str, str]:
    """xattrs as PAX headers (binary values survive through surrogateescape), overlay's own left out."""
    out: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for name in names:
        if is_overlay_xattr(name):
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        out["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    return out


def tar_entry(tf: tarfile.TarFile, path: str, name: str, st: os.stat_result, links: dict) -> bool:
    """Write one filesystem object (never following a symlink) as `name`. Hard links within the
    tree become link entries. Returns False for what a tar cannot hold (sockets)."""
    mode = st.st_mode
    ti = tarfile.TarInfo(name)
    ti.mode = stat.S_IMODE(mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    ti.mtime = int(st.st_mtime)
    ti.pax_headers = _xattrs(path)
    if stat.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            ti.type, ti.linkname = tarfile.LNKTYPE, links[key]
            tf.addfile(ti)
            return True
        if st.st_nlink > 1:
            links[key] = name
        ti.size = st.st_size
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            now = os.fstat(fd)
            if not stat.S_ISREG(now.st_mode):
                raise LayerError(f"{name}: changed while being read")
            ti.size = now.st_size
            tf.addfile(ti, f)
        return True
    if stat.S_ISDIR(mode):
        ti.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(path)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        ti.type = tarfile.FIFOTYPE
    else:
        return False
    tf.addfile(ti)
    return True


def _marker(tf: tarfile.TarFile, name: str, st: os.stat_result) -> None:
    """An empty regular file: a whiteout or an opaque marker."""
    ti = tarfile.TarInfo(name)
    ti.mode = 0o600
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    ti.mtime = int(st.st_mtime)
    tf.addfile(ti)


def write_diff(upper: str, out: BinaryIO) -> int:
    """Write the overlay upper dir `upper` as an OCI layer tar (whiteouts in `.wh.` form,
    runc's empty mount-point files for /etc/hosts, hostname and resolv.conf left out).
    Directories are opened relative to their parent without following symlinks, so a container
    that runs unpaused cannot swap a directory for a link to the host while we read.
    Returns the number of entries."""
    count = 0
    links: dict = {}
    dir_flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        def walk(dir_fd: int, prefix: str) -> None:
            nonlocal count
            base = f"/proc/self/fd/{dir_fd}"
            for name in sorted(os.listdir(dir_fd)):
                path = f"{base}/{name}"
                rel = prefix + name
                try:
                    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed meanwhile (an unpaused container)
                if is_whiteout(st):
                    _marker(tf, prefix + WHITEOUT + name, st)
                    count += 1
                    continue
                if rel in MOUNT_STUBS and stat.S_ISREG(st.st_mode) and st.st_size == 0:
                    continue
                _refuse_overlay_features(path, rel, st)
                if tar_entry(tf, path, rel, st, links):
                    count += 1
                if stat.S_ISDIR(st.st_mode):
                    if _getxattr(path, opaque_xattr()) == b"y":
                        _marker(tf, rel + "/" + OPAQUE, st)
                        count += 1
                    fd = os.open(name, dir_flags, dir_fd=dir_fd)
                    try:
                        walk(fd, rel + "/")
                    finally:
                        os.close(fd)

        top = os.open(upper, dir_flags)
        try:
            walk(top, "")
        finally:
            os.close(top)
    return count


def _getxattr(path: str, name: str) -> bytes | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:
        return None


def _refuse_overlay_features(path: str, rel: str, st: os.stat_result) -> None:
    """redirect_dir and metacopy keep data in the lower layers: our mounts never turn them on,
    so finding them means the upper dir was made by something else."""
    if stat.S_ISDIR(st.st_mode) and _getxattr(path, overlay_xattrs() + "redirect") is not None:
        raise LayerError(f"{rel}: overlay redirect_dir entries are not supported")
    if stat.S_ISREG(st.st_mode) and _getxattr(path, overlay_xattrs() + "metacopy") is not None:
        raise LayerError(f"{rel}: overlay metacopy entries are not supported")


# -- a layer file being written ------------------------------------------------------------------------
def temp_dir(store: Store) -> str:
    d = os.path.join(store.data_root, "tmp")
    os.makedirs(d, mode=0o700, exist_ok=True)
    return d


class LayerWriter:
    """A file-like sink for a plain layer tar: hashes it (the diffID) and gzips it into a temp
    file under `<data-root>/tmp` (named `layer-<pid>-<rand>`, so `system check` knows a dead
    writer's leftovers), hashing the compressed bytes (the blob digest)."""

    def __init__(self, store: Store, level: int = 6):
        self.path = os.path.join(temp_dir(store), f"layer-{os.getpid()}-{secrets.token_hex(4)}")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._diff = hashlib.sha256()
        self._blob = hashlib.sha256()
        self._zip = zlib.compressobj(level, zlib.DEFLATED, 31)  # gzip framing, mtime 0
        self.plain_size = 0
        self.size = 0
        self.diff_id = ""
        self.digest = ""

    def write(self, data: bytes) -> int:
        self._diff.update(data)
        self.plain_size += len(data)
        self._emit(self._zip.compress(data))
        return len(data)

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        self._blob.update(data)
        self.size += len(data)
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    def flush(self) -> None:
        pass

    def finish(self) -> None:
        self._emit(self._zip.flush())
        os.close(self._fd)
        self._fd = -1
        self.diff_id = "sha256:" + self._diff.hexdigest()
        self.digest = "sha256:" + self._blob.hexdigest()

    def discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


# -- recording the image ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BaseImage:
    """What a new layer goes on top of: the parent's manifest type, layer descriptors and diffIDs."""

    manifest_type: str
    layers: list
    diff_ids: list


@dataclass(frozen=True)
class NewImage:
    image_id: str          # config digest
    manifest: str          # manifest digest
    reference: str | None  # normalised name, None for a dangling image
    layer: str             # the new layer's blob digest


def now_rfc3339() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalise_target(reference: str | None) -> str | None:
    """The name to record (docker's `commit CONTAINER [REPOSITORY[:TAG]]`), checked up front."""
    if not reference:
        return None
    from nerdpy.engine.distribution.reference import parse_reference

    ref = parse_reference(reference)
    if ref.digest:
        raise InvalidArgument(f"refusing to create a tag with a digest reference: {reference}")
    return str(ref)


def store_layer_image(store: Store, base: BaseImage, layer: LayerWriter, config: dict,
                      reference: str | None) -> NewImage:
    """Unpack `layer` as a snapshot on `base`, store its blob, the config and a manifest, and
    name the image (dangling when `reference` is None). The caller holds the shared gc lock."""
    from nerdpy.engine.snapshots.apply import apply_layer
    from nerdpy.engine.images.image import put_image
    from nerdpy.engine.distribution.manifest import (DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST, OCI_CONFIG,
                                        OCI_LAYER_GZIP, OCI_MANIFEST)
    from nerdpy.engine.snapshots.snapshotter import chain_ids

    docker = base.manifest_type == DOCKER_MANIFEST
    chains = chain_ids(list(base.diff_ids) + [layer.diff_id])
    parent = chains[-2] if len(chains) > 1 else None

    def apply(target: str) -> tuple[str, int]:
        with open(layer.path, "rb") as f:
            result = apply_layer(target, f)
        return result.diff_id, result.size

    store.snapshots.unpack(chains[-1], parent, layer.diff_id, apply)
    with open(layer.path, "rb") as f, store.content.ingest(layer.digest, layer.size) as w:
        if w is not None:
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    break
                w.write(chunk)
    config = dict(config)
    config["rootfs"] = {"type": "layers", "diff_ids": list(base.diff_ids) + [layer.diff_id]}
    raw_config = json.dumps(config, separators=(",", ":")).encode()
    config_digest = store.content.write_blob(raw_config)
    mt = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG, "digest": config_digest,
                   "size": len(raw_config)},
        "layers": list(base.layers) + [{"mediaType": DOCKER_LAYER if docker else OCI_LAYER_GZIP,
                                        "digest": layer.digest, "size": layer.size}],
    }
    raw_manifest = json.dumps(manifest, separators=(",", ":")).encode()
    manifest_digest = store.content.write_blob(raw_manifest)
    if reference:
        put_image(store, reference, manifest_digest, mt, len(raw_manifest), manifest_digest, config_digest)
    else:
        _put_dangling(store, manifest_digest, mt, len(raw_manifest), config_digest)
    return NewImage(config_digest, manifest_digest, reference, layer.digest)


def _put_dangling(store: Store, target: str, media_type: str, size: int, config: str) -> None:
    """An image without a name (`<none>:<none>`), stored under its target digest as images.py
    keeps dangling images (put_image would drop a row named by its own target)."""
    import time

    now = time.time()
    with store.db.write() as cur:
        if cur.execute("SELECT 1 FROM images WHERE namespace = ? AND target = ? LIMIT 1",
                       (store.namespace, target)).fetchone():
            return
        cur.execute(
            "INSERT INTO images(namespace, name, target, media_type, size, manifest, config, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (store.namespace, target, target, media_type, size, target, config, now, now))
    from nerdpy.engine.images.image import _mirror_names

    _mirror_names(store)


# -- --change: Dockerfile instructions ----------------------------------------------------------------
CHANGE_INSTRUCTIONS = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER",
                       "VOLUME", "WORKDIR")


def _json_or_shell(rest: str, shell: bool) -> list[str]:
    text = rest.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    if not shell:
        return text.split()
    return ["/bin/sh", "-c", text]


def _pairs(rest: str, what: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(rest, posix=True)
    except ValueError as e:
        raise InvalidArgument(f"{what}: {e}") from None
    if words and "=" not in words[0]:
        # the legacy form: `ENV NAME value with spaces`
        if len(words) < 2 and what == "ENV":
            raise InvalidArgument(f"ENV {rest!r}: needs a value (ENV NAME=VALUE)")
        return [(words[0], rest.strip()[len(rest.strip().split(None, 1)[0]):].strip())]
    out = []
    for w in words:
        k, eq, v = w.partition("=")
        if not eq or not k:
            raise InvalidArgument(f"{what} {rest!r}: expected NAME=VALUE pairs")
        out.append((k, v))
    if not out:
        raise InvalidArgument(f"{what} requires at least one argument")
    return out


def _ports(rest: str) -> list[str]:
    out = []
    for word in rest.split():
        port, _, proto = word.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp"):
            raise InvalidArgument(f"EXPOSE {word}: invalid protocol {proto!r}")
        lo, dash, hi = port.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise InvalidArgument(f"EXPOSE {word}: invalid port")
        for p in range(int(lo), int(hi or lo) + 1):
            if not 0 < p < 65536:
                raise InvalidArgument(f"EXPOSE {word}: invalid port")
            out.append(f"{p}/{proto}")
    return out


def apply_changes(config: dict, changes: list[str] | tuple[str, ...]) -> dict:
    """Apply `--change` Dockerfile instructions to an image's `config` section (returns a copy):
    CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR."""
    cfg = json.loads(json.dumps(config or {}))
    cmd_set = False
    for change in changes or ():
        text = change.strip()
        if not text:
            continue
        instr, _, rest = text.partition(" ")
        if "\t" in instr:
            instr, _, more = instr.partition("\t")
            rest = more + " " + rest
        key = instr.upper()
        rest = rest.strip()
        if key not in CHANGE_INSTRUCTIONS:
            raise InvalidArgument(f"{instr} is not a valid change command "
                                  f"(one of {', '.join(CHANGE_INSTRUCTIONS)})")
        if not rest and key not in ("CMD", "ENTRYPOINT"):
            raise InvalidArgument(f"{key} requires at least one argument")
        if key == "CMD":
            cfg["Cmd"] = _json_or_shell(rest, True) if rest else None
            cmd_set = True
        elif key == "ENTRYPOINT":
            cfg["Entrypoint"] = _json_or_shell(rest, True) if rest else None
            if not cmd_set:
                cfg["Cmd"] = None  # as in a Dockerfile: ENTRYPOINT resets an inherited CMD
        elif key == "ENV":
            env = list(cfg.get("Env") or [])
            for k, v in _pairs(rest, "ENV"):
                env = [e for e in env if e.partition("=")[0] != k] + [f"{k}={v}"]
            cfg["Env"] = env
        elif key == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            labels.update(_pairs(rest, "LABEL"))
            cfg["Labels"] = labels
        elif key == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            ports.update({p: {} for p in _ports(rest)})
            cfg["ExposedPorts"] = ports
        elif key == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            for v in _json_or_shell(rest, False):
                if not v:
                    raise InvalidArgument("VOLUME specified can not be an empty string")
                vols[v] = {}
            cfg["Volumes"] = vols
        elif key == "WORKDIR":
            import posixpath

            cfg["WorkingDir"] = posixpath.normpath(posixpath.join(cfg.get("WorkingDir") or "/", rest))
        elif key == "USER":
            cfg["User"] = rest
        elif key == "STOPSIGNAL":
            from nerdpy.engine.containers.lifecycle import parse_signal

            parse_signal(rest)
            cfg["StopSignal"] = rest
        elif key == "ONBUILD":
            cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [rest]
    return cfg


# -- commit -----------------------------------------------------------------------------------------------
def container_config(c) -> dict:
    """The container's settings as an image `config` section (docker's commit merges the
    container's Config into the new image: its env, command, labels, user, workdir...)."""
    s = c.spec
    img = dict(s.image_config or {})
    cfg = json.loads(json.dumps(img))
    env: dict[str, str] = {}
    for e in list(img.get("Env") or []) + list(s.env or []):
        k, eq, v = e.partition("=")
        if eq:
            env[k] = v
    cfg["Env"] = [f"{k}={v}" for k, v in env.items()] or None
    if s.entrypoint is not None:
        cfg["Entrypoint"] = list(s.entrypoint) or None
        cfg["Cmd"] = list(s.cmd) if s.cmd else None
    elif s.cmd:
        cfg["Cmd"] = list(s.cmd)
    if s.workdir:
        cfg["WorkingDir"] = s.workdir
    if s.user:
        cfg["User"] = s.user
    if s.labels:
        cfg["Labels"] = {**(img.get("Labels") or {}), **s.labels}
    if s.stop_signal:
        cfg["StopSignal"] = s.stop_signal
    if s.healthcheck:
        cfg["Healthcheck"] = s.healthcheck
    anon = [m.target for m in s.mounts or []
            if m.type == "volume" and (m.options or {}).get("anonymous")]
    if anon:
        cfg["Volumes"] = {**(img.get("Volumes") or {}), **{t: {} for t in anon}}
    return {k: v for k, v in cfg.items() if v is not None or k in ("Cmd", "Entrypoint")}


def _base_image(store: Store, c) -> tuple[BaseImage, dict]:
    """The container's image: its manifest's layers and its config (from the content store)."""
    from nerdpy.engine.images.image import read_json

    row = store.db.query_one("SELECT manifest, media_type FROM images WHERE config = ? ORDER BY namespace = ? DESC "
                             "LIMIT 1", (c.image_id, store.namespace))
    if row is None or not store.content.exists(c.image_id) or not store.content.exists(row["manifest"]):
        raise ImageNotFound(f"the image of container {c.name} ({c.image}, {c.image_id[7:19]}) is no longer in "
                            f"the store: pull {c.image} again to commit this container")
    manifest = read_json(store, row["manifest"])
    config = read_json(store, c.image_id)
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    layers = list(manifest.get("layers") or [])
    if len(layers) != len(diff_ids):
        raise NerdpyError(f"image {c.image}: manifest and config disagree on the number of layers")
    mt = manifest.get("mediaType") or row["media_type"]
    return BaseImage(mt, layers, diff_ids), config


def commit_container(store: Store, c, reference: str | None = None, *, changes: list[str] | tuple = (),
                     message: str = "", author: str = "", pause: bool = True) -> NewImage:
    """docker commit: the container's changes as a new image on top of its own image."""
    from nerdpy.engine.containers.records import container_state, pause_container, snapshot_key, unpause_container
    from nerdpy.engine.system.journal import record_event

    name = normalise_target(reference)
    base, base_config = _base_image(store, c)
    cfg = apply_changes(container_config(c), changes)
    upper = store.snapshots.upper_dir(snapshot_key(store, c.id))
    row = store.db.query_one("SELECT parent FROM active_snapshots WHERE key = ?", (snapshot_key(store, c.id),))
    from nerdpy.engine.snapshots.snapshotter import chain_ids

    expected_parent = (chain_ids(base.diff_ids) or [None])[-1]
    if row is not None and row["parent"] != expected_parent:
        raise Conflict(f"container {c.name}: its layer does not sit on its image's layers")

    paused_here = False
    # rootless containers have no freezer cgroup: read unpaused (safe, see above), as --pause=false
    if pause and store.settings.rootless_uid is None and container_state(store, c).status == "running":
        pause_container(store, c)
        paused_here = True
    with store.gc_lock(exclusive=False):
        layer = LayerWriter(store)
        try:
            try:
                write_diff(upper, layer)
            finally:
                if paused_here:
                    try:
                        unpause_container(store, c)
                    except NerdpyError:
                        pass
            layer.finish()
            now = now_rfc3339()
            config = {k: v for k, v in base_config.items() if k not in ("rootfs", "history", "container_config")}
            config["created"] = now
            config["config"] = cfg
            config["container"] = c.id
            if author:
                config["author"] = author
            else:
                config.pop("author", None)
            if message:
                config["comment"] = message
            else:
                config.pop("comment", None)
            created_by = " ".join(cfg.get("Cmd") or c.spec.args or [])
            entry = {"created": now, "created_by": created_by}
            if author:
                entry["author"] = author
            if message:
                entry["comment"] = message
            config["history"] = list(base_config.get("history") or []) + [entry]
            result = store_layer_image(store, base, layer, config, name)
        finally:
            layer.discard()
    record_event(store, "container", "commit", c.id, {
        "comment": message, "imageID": result.image_id, "imageRef": name or "", "name": c.name,
        "image": c.image})
    return result
