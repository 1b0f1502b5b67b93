"""Container lifecycle: create, start (through the monitor), stop, kill, remove, wait, cleanup.

Every step that makes host state undoes it when a later step fails, so a failed `create` or
`run` leaves no mount, no DB row, no snapshot and no runc state behind.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
import time
from nerdpy.engine.containers.records import (
    CommandNotFound,
    CommandNotInvokable,
    Container,
    ContainerSpec,
    MountSpec,
    StoredSpec,
    _valid_name,
    container_dir,
    container_runtime,
    container_state,
    find_container,
    log_path,
    random_name,
    run_dir,
    runc_root,
    snapshot_key,
)
from nerdpy.engine.containers.options import SIGNALS, check_spec, parse_restart, parse_signal, parse_size  # noqa: F401 (re-exported)
from nerdpy.engine.containers.options import parse_device as _device
from nerdpy.engine.containers.options import security_opts as _security_opts
from nerdpy.engine.errors import Conflict, InvalidArgument, NerdpyError, RuncError
from nerdpy.engine.runtime import cgroups
from nerdpy.engine.runtime.monitor.wire import recv_line as _recv
from nerdpy.engine.runtime.monitor.wire import send_line as _send
from nerdpy.engine.store import Store

MONITOR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runtime", "monitor", "monitor.py")
# where `import nerdpy` works from, also for an editable install (whose .pth hook the
# monitor's `python -S` does not run)
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


# create -----------------------------------------------------------------------------------
def create_container(store: Store, spec: ContainerSpec) -> Container:
    """Record a container and prepare its writable layer. The image must be in the store."""
    from nerdpy.engine.images.image import image_chain_id, image_config, resolve_image

    check_spec(spec)  # whoever built it (CLI, Client, compose): the same checks
    if store.settings.rootless_uid is not None:
        from nerdpy.engine.containers.cdi import is_cdi_name
        from nerdpy.engine.containers.options import parse_device
        from nerdpy.engine.runtime.rootless import check_resources
        from nerdpy.engine.system.info import runc_release

        check_resources(spec, [parse_device(d) for d in spec.devices if not is_cdi_name(d)], runc_release)

    image = resolve_image(store, spec.image)
    config = image_config(store, image)
    if spec.name is not None and not _valid_name(spec.name):
        raise InvalidArgument(f"invalid container name {spec.name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    workdir = spec.workdir or (config.get("config") or {}).get("WorkingDir") or "/"
    from nerdpy.engine.containers.oci import check_workdir

    check_workdir(workdir)  # absolute, and never under /proc however spelled
    args = _command(spec, config)
    if not args:
        raise InvalidArgument("no command specified")
    from nerdpy.engine.network.container import check_network_spec

    check_network_spec(store, spec, config.get("config") or {})
    cid = secrets.token_hex(32)
    record = StoredSpec.of(spec, args=args, resolved_workdir=workdir, image_config=dict(config.get("config") or {}),
                           image_name=image.name)
    if spec.expose:  # --expose adds to the image's ExposedPorts (what -P publishes)
        exposed = dict(record.image_config.get("ExposedPorts") or {})
        for e in spec.expose:
            port, _, proto = e.partition("/")
            if not port.replace("-", "").isdigit() or proto not in ("", "tcp", "udp", "sctp"):
                raise InvalidArgument(f"invalid range format for --expose: {e}")
            exposed[f"{port}/{proto or 'tcp'}"] = {}
        record.image_config["ExposedPorts"] = exposed
    record.mounts = list(record.mounts or []) + image_volume_mounts(record.image_config, record.mounts)
    if spec.pid and spec.pid != "host" and not spec.pid.startswith("container:"):
        raise InvalidArgument(f"invalid PID mode {spec.pid!r}: use host or container:<name|id>")
    from nerdpy.engine.containers.resources import check_host_resources, resolve_volumes_from, runtime_of

    runtime_of(store, spec)  # a runtime nerdpy knows, installed
    check_host_resources(spec)
    if spec.devices or spec.gpus:
        from nerdpy.engine.containers.cdi import is_cdi_name, resolve_devices

        resolve_devices(store.settings, [d for d in spec.devices if is_cdi_name(d)], spec.gpus or "")
    if spec.ipc.startswith("container:"):
        find_container(store, spec.ipc.partition(":")[2])
    if spec.volumes_from:
        record.mounts = list(record.mounts) + resolve_volumes_from(store, spec)
    parent = image_chain_id(store, image)
    key = snapshot_key(store, cid)
    cdir = container_dir(store, cid)
    with store.gc_lock(exclusive=False):
        # the writable layer and the directory before the row: a create killed midway leaves at
        # worst a layer and a directory that no container owns (`system check` warns, --repair
        # removes them), never a recorded container without a writable layer, which cannot start
        store.snapshots.prepare(key, parent)
        try:
            os.makedirs(os.path.join(cdir, "rootfs"), mode=0o711, exist_ok=True)
            name = spec.name
            for attempt in range(10):
                name = spec.name or random_name()
                with store.db.write() as cur:
                    clash = cur.execute("SELECT id FROM containers WHERE namespace = ? AND name = ?",
                                        (store.namespace, name)).fetchone()
                    if clash is not None:
                        if spec.name:
                            raise Conflict(
                                f'the container name "/{name}" is already in use by container '
                                f'"{clash["id"]}". You have to remove (or rename) that container '
                                "to be able to reuse that name")
                        continue
                    row = {"namespace": store.namespace, "id": cid, "name": name, "image": spec.image,
                           "image_id": image.config, "config": json.dumps(record.to_json()),
                           "created_at": time.time()}
                    cur.execute(
                        "INSERT INTO containers(namespace, id, name, image, image_id, config, created_at)"
                        " VALUES (:namespace, :id, :name, :image, :image_id, :config, :created_at)", row)
                from nerdpy.engine.content.sidecar import write_container_record

                write_container_record(cdir, row)
                break
        except BaseException:
            store.snapshots.remove_active(key)
            shutil.rmtree(cdir, ignore_errors=True)
            raise
        try:
            c = find_container(store, cid)
            # volumes exist from create on (anonymous ones get their names here), as docker's do
            from nerdpy.engine.containers.volumes import assign_anonymous_volumes, create_volume

            assign_anonymous_volumes(store, c)
            for m in find_container(store, cid).spec.mounts or []:
                if m.type == "volume" and m.source:
                    create_volume(store, m.source, anonymous=bool((m.options or {}).get("anonymous")))
        except BaseException:
            _remove_everything(store, cid, volumes=True)
            raise
    c = find_container(store, cid)
    _event(store, c, "create")
    return c


def image_volume_mounts(image_config: dict, mounts: list[MountSpec] | None) -> list[MountSpec]:
    """The image's `VOLUME`s as anonymous volumes (docker's behaviour), except where the user
    mounts something (a volume, bind or tmpfs) on the same path."""
    taken = {os.path.normpath(m.target) for m in mounts or []}
    out = []
    for target in sorted(image_config.get("Volumes") or {}):
        path = os.path.normpath("/" + target.strip().lstrip("/"))
        if path in taken or path == "/":
            continue
        taken.add(path)
        out.append(MountSpec("volume", path, "", options={"anonymous": True}))
    return out


def _command(spec: ContainerSpec, config: dict) -> list[str]:
    cfg = config.get("config") or {}
    if spec.entrypoint is not None:
        entry = list(spec.entrypoint)
        cmd = list(spec.cmd) if spec.cmd else []
    else:
        entry = list(cfg.get("Entrypoint") or [])
        cmd = list(spec.cmd) if spec.cmd else list(cfg.get("Cmd") or [])
    return entry + cmd


# start ------------------------------------------------------------------------------------
class StartHandle:
    """A container whose monitor is ready to start it: attach now, then call `start()` (the
    monitor then creates and starts it with one `runc run --detach`)."""

    def __init__(self, store: Store, container: Container, sync: socket.socket):
        self.store = store
        self.container = container
        self.sync = sync

    def start(self) -> int:
        _send(self.sync, {"start": True})
        reply = _recv(self.sync, timeout=60)
        self.sync.close()
        if reply is None or "error" in reply:
            msg = (reply or {}).get("error", "the monitor exited before starting the container")
            cleanup_container(self.store, self.container.id, after_failure=True)
            raise _start_error(msg)
        return reply["started"]  # the monitor records the `start` event

    def abort(self) -> None:
        try:
            _send(self.sync, {"start": False})
            self.sync.close()
        finally:
            cleanup_container(self.store, self.container.id, after_failure=True)


def prepare_start(store: Store, c: Container, monitor=None) -> StartHandle:
    """Mount the rootfs, write the bundle and start the container's monitor, which listens for
    attaching clients until `start()`."""
    state = container_state(store, c)
    if state.running:
        raise Conflict(f"container {c.name} is already running")
    rdir = run_dir(store, c.id)
    cdir = container_dir(store, c.id)
    os.makedirs(rdir, mode=0o700, exist_ok=True)
    for stale in ("stop-requested", "paused", "monitor.pid"):
        try:
            os.unlink(os.path.join(rdir, stale))
        except FileNotFoundError:
            pass
    try:
        os.unlink(os.path.join(cdir, "state.json"))
    except FileNotFoundError:
        pass
    try:
        rootfs = _mount_rootfs(store, c)
        from nerdpy.engine.network.container import setup_network

        netns = setup_network(store, c, _hostname(c), os.path.join(cdir, "hosts"))
        _volume_events(store, c, "mount")
        spec = _build_spec(store, c, rootfs, netns)
        from nerdpy.engine.util.fs import write_json_atomic

        write_json_atomic(os.path.join(cdir, "config.json"), spec)
        mon_cfg = _monitor_config(store, c)
        mon_path = os.path.join(rdir, "monitor.json")
        write_json_atomic(mon_path, mon_cfg)
        from nerdpy.engine.runtime.monitor.spawn import spawn_monitor

        if monitor is None:  # `run` starts one ahead of time (MonitorSpawn); others here
            monitor = spawn_monitor()
        parent_sock = monitor.sock
        _send(parent_sock, {"config": mon_path})
        monitor.proc.wait()
        reply = _recv(parent_sock, timeout=60)
        if reply is None or "error" in reply:
            parent_sock.close()
            raise _start_error((reply or {}).get("error", "the monitor failed to start"))
        return StartHandle(store, c, parent_sock)
    except BaseException:
        if monitor is not None:
            try:
                monitor.close()
            except OSError:
                pass
        cleanup_container(store, c.id, after_failure=True)
        raise


def start_container(store: Store, c: Container) -> int:
    return prepare_start(store, c).start()


def _start_error(msg: str) -> NerdpyError:
    low = msg.lower()
    if "executable file not found" in low or "no such file or directory" in low and "exec" in low:
        return CommandNotFound(_tidy(msg))
    if "permission denied" in low and "exec" in low:
        return CommandNotInvokable(_tidy(msg))
    return NerdpyError(_tidy(msg))


def _tidy(msg: str) -> str:
    for prefix in ("runc create failed: ", "runc run failed: "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return msg


def _mount_rootfs(store: Store, c: Container) -> str:
    from nerdpy.engine.snapshots.mount import mount_container_rootfs

    return mount_container_rootfs(os.path.join(container_dir(store, c.id), "rootfs"),
                                  store.snapshots.mounts(snapshot_key(store, c.id)))


def _event(store: Store, c: Container, action: str, **extra) -> None:
    from nerdpy.engine.containers.records import container_event

    container_event(store, c, action, **extra)


def restart_container(store: Store, c: Container, timeout: int | None = None) -> None:
    """docker restart: stop (when running), start, and the `restart` event."""
    stop_container(store, c, timeout=timeout)
    prepare_start(store, c).start()
    _event(store, c, "restart")


def _pid_namespace(store: Store, pid: str) -> str | None:
    """--pid: "" a new namespace, "host" the host's, "container:X" that running container's."""
    if not pid:
        return None
    if pid == "host":
        return "host"
    if pid.startswith("container:"):
        other = find_container(store, pid.partition(":")[2])
        state = container_state(store, other)
        if state.status != "running" or not state.pid:
            raise Conflict(f"cannot join PID namespace of a non running container: {other.name}")
        return f"/proc/{state.pid}/ns/pid"
    raise InvalidArgument(f"invalid PID mode {pid!r}: use host or container:<name|id>")


def _shareable_shm(store: Store, c: Container) -> str:
    """A shareable container's /dev/shm, as docker makes it: a tmpfs on the host, in the
    container's directory (so that container:X can bind it), unmounted when it stops."""
    from nerdpy.engine.snapshots.mount import is_mounted, mount

    path = os.path.join(container_dir(store, c.id), "shm")
    os.makedirs(path, mode=0o700, exist_ok=True)
    if not is_mounted(path):
        mount("shm", path, "tmpfs", 0x2 | 0x4 | 0x8,  # nosuid, nodev, noexec
              f"mode=1777,size={c.spec.shm_size or (64 << 20)}")
    return path


def _ipc_namespace(store: Store, c: Container) -> tuple[str | None, str | None]:
    """--ipc -> (SpecOptions.ipcns, SpecOptions.shm): private a namespace of its own, shareable
    the same with /dev/shm on the host, none without /dev/shm, host the host's (and its
    /dev/shm), container:X that running container's namespace and /dev/shm (X must be
    shareable, as docker requires)."""
    ipc = c.spec.ipc or ""
    if ipc in ("", "private"):
        return None, None
    if ipc == "shareable":
        return None, _shareable_shm(store, c)
    if ipc == "none":
        return None, ""
    if ipc == "host":
        return "host", "/dev/shm"
    other = find_container(store, ipc.partition(":")[2])
    mode = other.spec.ipc or "private"
    if mode == "host":
        return "host", "/dev/shm"
    if mode != "shareable":
        raise Conflict(f"cannot join IPC of container {other.name}: non-shareable IPC "
                       "(hint: use --ipc shareable for the donor container)")
    state = container_state(store, other)
    if state.status != "running" or not state.pid:
        raise Conflict(f"cannot join IPC of a non running container: {other.name}")
    return f"/proc/{state.pid}/ns/ipc", os.path.join(container_dir(store, other.id), "shm")


def _hostname(c: Container) -> str:
    net = c.spec.network or "none"
    if c.spec.uts == "host":
        return os.uname().nodename
    return c.spec.hostname or (os.uname().nodename if net == "host" else c.id[:12])


def _build_spec(store: Store, c: Container, rootfs: str, netns: str | None = None) -> dict:
    from nerdpy.engine.containers.etcfiles import hosts_file, lookup_user, resolv_conf
    from nerdpy.engine.util.fs import write_atomic
    from nerdpy.engine.containers.oci import SpecOptions, build_spec
    from nerdpy.engine.containers.volumes import oci_mounts

    s = c.spec
    img = s.image_config or {}
    uid, gid, gids, home = lookup_user(rootfs, s.user or img.get("User") or "", s.group_add or [])
    net = s.network or "none"
    hostname = _hostname(c)
    env = _container_env(img.get("Env") or [], s.env or [], hostname, bool(s.tty), home)
    cdir = container_dir(store, c.id)
    write_atomic(os.path.join(cdir, "hostname"), hostname + "\n")
    from nerdpy.engine.network.container import uses_cni

    if not uses_cni(s):  # with CNI, attaching wrote /etc/hosts (and keeps it current)
        from nerdpy.engine.network.hosts import host_hosts, parse_add_host

        extra = [parse_add_host(h) for h in s.extra_hosts or []]
        if net == "host":
            text = host_hosts(extra)
        else:  # none, container:X (host-gateway means the host, here as in host mode)
            text = hosts_file(hostname, extra=[(n, "127.0.0.1" if ip == "host-gateway" else ip)
                                               for n, ip in extra])
        write_atomic(os.path.join(cdir, "hosts"), text)
    from nerdpy.engine.network.container import uses_slirp

    # slirp4netns answers DNS on 10.0.2.3 with the host's resolvers (loopback ones included)
    dns = s.dns or (["10.0.2.3"] if uses_slirp(s) else [])
    write_atomic(os.path.join(cdir, "resolv.conf"),
                 resolv_conf(net == "host", dns, s.dns_search or [], s.dns_options or []))
    mounts = [
        {"destination": "/etc/hostname", "type": "bind", "source": os.path.join(cdir, "hostname"), "options": ["rbind", "rprivate"]},
        {"destination": "/etc/hosts", "type": "bind", "source": os.path.join(cdir, "hosts"), "options": ["rbind", "rprivate"]},
        {"destination": "/etc/resolv.conf", "type": "bind", "source": os.path.join(cdir, "resolv.conf"), "options": ["rbind", "rprivate"]},
    ]
    if s.read_only:
        # docker: with a read-only root these stay writable only if the user made them so
        for m in mounts:
            m["options"].append("ro")
    user_mounts = oci_mounts(store, c, rootfs)
    for want, got in zip(s.mounts or [], user_mounts):
        if want.type == "tmpfs":
            got["options"] = _tmpfs_options(want)
    mounts += user_mounts
    args = list(s.args)
    if s.init:
        tini = _init_binary()
        mounts.append({"destination": "/sbin/docker-init", "type": "bind", "source": tini, "options": ["bind", "ro"]})
        args = ["/sbin/docker-init", "--"] + args
    seccomp, nnp = _security_opts(s.security_opt or [])
    from nerdpy.engine.containers.resources import block_io

    devices, cdi_devices = [], []
    if s.devices or s.gpus:
        from nerdpy.engine.containers.cdi import is_cdi_name, resolve_devices

        devices = [_device(d) for d in s.devices or [] if not is_cdi_name(d)]
        cdi_devices = resolve_devices(store.settings, [d for d in s.devices or [] if is_cdi_name(d)], s.gpus or "")
    ipcns, shm = _ipc_namespace(store, c)
    o = SpecOptions(
        rootfs=rootfs,
        args=args,
        env=env,
        cwd=s.resolved_workdir,
        uid=uid, gid=gid, additional_gids=gids,
        terminal=bool(s.tty),
        hostname=hostname,
        domainname=s.domainname or "",
        readonly_rootfs=bool(s.read_only),
        privileged=bool(s.privileged),
        cap_add=s.cap_add or [],
        cap_drop=s.cap_drop or [],
        seccomp=seccomp,
        no_new_privileges=nnp,
        mounts=mounts,
        netns=netns,
        pidns=_pid_namespace(store, s.pid or ""),
        memory=s.memory,
        memory_swap=s.memory_swap,
        memory_reservation=s.memory_reservation,
        cpus=s.cpus,
        cpu_shares=s.cpu_shares,
        pids_limit=s.pids_limit,
        ulimits=[tuple(u) for u in s.ulimits or []],
        shm_size=s.shm_size or (64 << 20),
        sysctls=s.sysctls or {},
        devices=devices,
        cgroups_path="" if store.settings.rootless_uid is not None else cgroups.container_path(store.namespace, c.id),
        rootless=store.settings.rootless_uid is not None,
        oom_score_adj=s.oom_score_adj,
        cgroupns=s.cgroupns or None,
        ipcns=ipcns,
        shm=shm,
        utsns_host=s.uts == "host",
        cpuset_cpus=s.cpuset_cpus or "",
        cpuset_mems=s.cpuset_mems or "",
        cpu_period=s.cpu_period,
        cpu_quota=s.cpu_quota,
        memory_swappiness=s.memory_swappiness,
        oom_kill_disable=bool(s.oom_kill_disable),
        block_io=block_io(s),
    )
    spec = build_spec(o)
    if cdi_devices:
        from nerdpy.engine.containers.cdi import apply_edits

        apply_edits(spec, cdi_devices)
    return spec


def _container_env(image_env: list[str], user_env: list[str], hostname: str, tty: bool, home: str) -> list[str]:
    """moby's CreateDaemonEnvironment: PATH and HOSTNAME (and TERM with -t) first, then the
    image's and the user's variables replacing or appending; HOME last when nobody set it
    (runc's rule, from the user's passwd entry)."""
    env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", f"HOSTNAME={hostname}"]
    if tty:
        env.append("TERM=xterm")
    env = _merge_env(env, list(image_env) + list(user_env))
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home}")
    return env


def _tmpfs_options(m: MountSpec) -> list[str]:
    """docker's tmpfs mounts (--tmpfs and --mount type=tmpfs): noexec, nosuid, nodev by default,
    then the user's options, the later one winning (moby's MergeTmpfsOptions)."""
    opts = m.options or {}
    raw = ["noexec", "nosuid", "nodev"]
    raw += list(opts.get("data") or [])
    if opts.get("size"):
        raw.append(f"size={opts['size']}")
    if opts.get("mode"):
        raw.append(f"mode={opts['mode']}")
    if m.readonly:
        raw.append("ro")
    pairs = {"exec": "noexec", "noexec": "exec", "suid": "nosuid", "nosuid": "suid", "dev": "nodev",
             "nodev": "dev", "ro": "rw", "rw": "ro", "atime": "noatime", "noatime": "atime"}
    out: list[str] = []
    for o in raw:
        key = o.split("=", 1)[0]
        out = [x for x in out if x.split("=", 1)[0] != key and x != pairs.get(o)]
        out.append(o)
    return out


def _init_binary() -> str:
    """docker's --init is tini; Debian's `tini` package has a static build that runs in any image."""
    for path in ("/usr/bin/tini-static", "/usr/bin/docker-init", "/usr/libexec/docker/docker-init"):
        if os.path.exists(path):
            return path
    found = shutil.which("tini-static") or shutil.which("docker-init")
    if found:
        return found
    raise InvalidArgument("--init needs a static tini on the host (Debian: apt-get install tini)")


def _merge_env(base: list[str], extra: list[str]) -> list[str]:
    """Replace-or-append, keeping the first position of each name. A bare NAME (only from
    records made before names were resolved at create) takes this process's value, if any."""
    out: dict[str, str] = {}
    for e in list(base) + list(extra):
        k, sep, v = e.partition("=")
        if not sep:
            val = os.environ.get(k)
            if val is None:
                continue
            v = val
        out[k] = v
    return [f"{k}={v}" for k, v in out.items()]


def _monitor_config(store: Store, c: Container) -> dict:
    from nerdpy.engine.content.reserve import reserve_path
    from nerdpy.engine.runtime.runc import global_flags, runc_path

    from nerdpy.engine.containers.resources import runtime_of

    s = c.spec
    runtime = runtime_of(store, s)
    restart = parse_restart(s.restart or "no")
    hc = effective_healthcheck(s)
    opts = s.log_opts or {}
    return {
        "id": c.id,
        "dir": container_dir(store, c.id),
        "run_dir": run_dir(store, c.id),
        "bundle": container_dir(store, c.id),
        "runc": runc_path(runtime[0]),
        "runtime_args": runtime[1],
        "oom_files": cgroups.oom_files(cgroups.container_path(store.namespace, c.id)),
        "runc_flags": global_flags(),
        "runc_root": runc_root(store),
        "log_path": log_path(store, c.id),
        "log_max_size": parse_size(opts["max-size"]) if opts.get("max-size") else 0,
        "log_max_file": int(opts.get("max-file", "1")),
        "reserve": reserve_path(store.data_root),
        "tty": bool(s.tty),
        "stdin": bool(s.stdin_open),
        "stdin_once": bool(s.stdin_once),
        "restart": restart,
        "healthcheck": hc,
        "auto_remove": bool(s.auto_remove),
        "event": {"data_root": store.data_root, "namespace": store.namespace,
                  "attributes": {**(c.spec.labels or {}), "image": c.image, "name": c.name}},
        "engine": {"sys_path": [_PACKAGE_PARENT] + [p for p in sys.path if p],
                   "settings": _settings_overrides(store)},
        "cleanup": [sys.executable, "-m", "nerdpy", "--data-root", store.data_root, "-n", store.namespace,
                    "container", "cleanup", c.id],
        "cleanup_env": {"NERDPY_RUN_ROOT": store.settings.run_root},
    }


def _settings_overrides(store: Store) -> dict:
    # everything, so that the monitor tears down with exactly the settings the CLI set up with
    from dataclasses import asdict as _asdict

    return _asdict(store.settings)


def finish_container(overrides: dict, cid: str, remove: bool) -> None:
    """What the monitor runs, in its own process, once a container has stopped for good:
    unmount its rootfs and, for `--rm`, remove it."""
    from nerdpy.engine.config import load_settings
    from nerdpy.engine.store import open_store

    # the overrides carry every setting: no config file or environment to read
    store = open_store(load_settings(overrides, env={"NERDPY_CONFIG": "/nonexistent"}))
    try:
        cleanup_container(store, cid, after_failure=not remove, runc_deleted=True)
    finally:
        store.close()


def effective_healthcheck(s: StoredSpec) -> dict | None:
    """The healthcheck the monitor runs: flags over the image's HEALTHCHECK; seconds, not ns."""
    if s.no_healthcheck:
        return None
    img = (s.image_config or {}).get("Healthcheck") or {}
    mine = s.healthcheck or {}
    test = mine.get("Test") or img.get("Test")
    if not test or not isinstance(test, list) or test[0] == "NONE":
        return None
    if test[0] not in ("CMD", "CMD-SHELL"):
        test = ["CMD"] + list(test)
    if len(test) < 2 or not "".join(str(t) for t in test[1:]).strip():
        return None  # nothing to run (an image may say ["CMD"]): no healthcheck, as no result can come

    def secs(key: str, default: float) -> float:
        # an image's value below docker's 1ms minimum (negative, say) takes docker's default
        v = mine.get(key) or img.get(key)
        return v / 1e9 if isinstance(v, (int, float)) and v >= 1_000_000 else default

    retries = mine.get("Retries") or img.get("Retries")
    return {
        "test": test,
        "interval": secs("Interval", 30.0),
        "timeout": secs("Timeout", 30.0),
        "start_period": secs("StartPeriod", 0.0),
        "retries": retries if isinstance(retries, int) and retries > 0 else 3,
    }


# stop, kill, wait -------------------------------------------------------------------------
def kill_container(store: Store, c: Container, sig: str = "KILL") -> None:

    state = container_state(store, c)
    if not state.running or state.status == "restarting":
        raise Conflict(f"cannot kill container: {c.name} is not running")
    if state.status == "paused":
        raise Conflict(f"cannot kill container: {c.name}: container is paused, "
                       "unpause the container before stopping or killing")
    num = parse_signal(sig)
    if num != 9:
        container_runtime(store, c.spec).kill(c.id, str(num))
        _event(store, c, "kill", signal=num)
        return
    # SIGKILL: return once the container has stopped (docker waits too), so that inspect right
    # after says so; with a restart policy, once this process is gone (it may be restarted)
    watch = _exit_watch(store, c) if parse_restart(c.spec.restart or "no")["name"] == "no" else None
    try:
        container_runtime(store, c.spec).kill(c.id, str(num))
    except BaseException:
        if watch is not None:
            watch.close()
        raise
    _event(store, c, "kill", signal=num)
    if watch is not None:
        _await_exit(store, c, watch, 10)
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = container_state(store, c)
        if not now.running or now.status == "restarting" or now.pid != state.pid:
            return
        time.sleep(0.01)


def _thaw(store: Store, c: Container) -> None:
    """Resume a paused container (stop and rm -f do, as docker does; a frozen process would
    never see its signal)."""

    try:
        container_runtime(store, c.spec).resume(c.id)
    except NerdpyError:
        pass
    try:
        os.unlink(os.path.join(run_dir(store, c.id), "paused"))
    except FileNotFoundError:
        pass


def request_stop(store: Store, c: Container) -> None:
    rdir = run_dir(store, c.id)
    os.makedirs(rdir, exist_ok=True)
    open(os.path.join(rdir, "stop-requested"), "w").close()


def stop_container(store: Store, c: Container, timeout: int | None = None, sig: str | None = None) -> None:
    """docker stop: the stop signal, then SIGKILL after the timeout. Honoured by restart policies."""

    state = container_state(store, c)
    request_stop(store, c)
    if not state.running:
        return
    if timeout is None:
        timeout = c.spec.stop_timeout if c.spec.stop_timeout is not None else 10
    sig = sig or c.spec.stop_signal or (c.spec.image_config or {}).get("StopSignal") or "TERM"
    runc = container_runtime(store, c.spec)
    if state.status == "paused":
        _thaw(store, c)
    if timeout is not None and timeout < 0:
        timeout = None  # docker: a negative timeout waits for as long as it takes
    watch = _exit_watch(store, c)
    try:
        runc.kill(c.id, str(parse_signal(sig)))
        _event(store, c, "kill", signal=parse_signal(sig))
    except NerdpyError:
        pass
    if not _await_exit(store, c, watch, timeout):
        try:
            runc.kill(c.id, "9", all_=True)
            _event(store, c, "kill", signal=9)
        except NerdpyError:
            pass
        if not _await_exit(store, c, watch, 30):
            raise RuncError(f"cannot stop container {c.name}: its process {state.pid or '?'} is still running")
    if watch is None and not state.monitor_alive:
        _after_orphan(store, c)
    _event(store, c, "stop")


def _after_orphan(store: Store, c: Container) -> None:
    """A container stopped without its monitor (gone with its records): record the exit as
    unknown and do the monitor's cleanup (runc state, rootfs mount, network)."""
    from nerdpy.engine.util.fs import write_json_atomic

    cleanup_container(store, c.id)
    path = os.path.join(container_dir(store, c.id), "state.json")
    if os.path.isdir(container_dir(store, c.id)):
        write_json_atomic(path, {"status": "exited", "exit_code": 137, "pid": 0,
                                 "error": "stopped without its monitor: the exit status was not recorded",
                                 "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())})


def _exit_watch(store: Store, c: Container):
    """Wait for the exit on the monitor's socket, taking its final cleanup over (this process
    has the engine loaded; the monitor would import it first): an ExitWatch, or None."""
    from nerdpy.engine.runtime.monitor.handoff import ExitWatch

    def cleanup(remove: bool) -> None:
        cleanup_container(store, c.id, after_failure=not remove, runc_deleted=True)

    return ExitWatch.open(os.path.join(run_dir(store, c.id), "attach.sock"), cleanup)


def _await_exit(store: Store, c: Container, watch, timeout: float | None) -> bool:
    """True once the container is stopped for good, False on timeout."""
    if watch is not None:
        done, _ = watch.wait(timeout)
        if not done:
            return False
        watch.close()
        timeout = 5  # the monitor has recorded the final state (or is gone): only read it
    # no monitor to ask (or it went away without a word): the recorded state says
    return wait_container(store, c, timeout=timeout) is not None or not container_state(store, c).running


def wait_container(store: Store, c: Container, timeout: float | None = None) -> int | None:
    """Wait until the container is not running; its exit code, or None on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.01
    while True:
        state = container_state(store, c)
        if not state.running:
            if state.status == "created":
                return None if timeout is not None and timeout <= 0 else state.exit_code
            return state.exit_code
        if deadline is not None and time.monotonic() >= deadline:
            return None
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)


# cleanup and removal ----------------------------------------------------------------------
def cleanup_container(store: Store, cid: str, after_failure: bool = False, runc_deleted: bool = False) -> None:
    """What runs when a container stops (the monitor calls it): delete the runc state, unmount
    the rootfs and, for `--rm`, remove the container. Safe to run more than once."""
    from nerdpy.engine.containers.records import ContainerNotFound
    from nerdpy.engine.snapshots.mount import MNT_DETACH, mounted_under, unmount

    try:
        c = find_container(store, cid)
    except ContainerNotFound:
        c = None
    if not runc_deleted:
        try:
            container_runtime(store, c.spec if c is not None else None).delete(cid, force=True)
        except NerdpyError:
            pass
    # unmount first: it needs no space, and a full disk may fail what writes the metadata
    points = mounted_under(os.path.join(container_dir(store, cid), "rootfs"))
    for point in points:
        unmount(point, MNT_DETACH)
    from nerdpy.engine.network.container import teardown_network

    teardown_network(store, cid, c.spec if c is not None else None)
    if points and c is not None:  # the first cleanup of this stop (the rootfs was mounted)
        _volume_events(store, c, "unmount")
    for point in mounted_under(os.path.join(container_dir(store, cid), "shm")):  # --ipc shareable
        unmount(point, MNT_DETACH)
    # `--rm`: removed when it exits, and also when it could not be started (as docker does)
    if c is not None and c.spec.auto_remove:
        if after_failure or not monitor_busy_restarting(store, c):
            _remove_everything(store, c.id, volumes=True, runc_deleted=runc_deleted)


def _volume_events(store: Store, c: Container, action: str) -> None:
    """The `volume mount`/`unmount` events docker reports at each start and stop of a container,
    one per volume (in one write)."""
    vols = [m for m in c.spec.mounts or [] if m.type == "volume" and m.source]
    if not vols:
        return
    from nerdpy.engine.system.journal import record_actor_events

    def attrs(m) -> dict:
        if action == "unmount":
            return {"container": c.id, "driver": "local"}
        return {"container": c.id, "destination": m.target, "driver": "local", "propagation": "",
                "read/write": "false" if m.readonly else "true"}

    record_actor_events(store, "volume", action, [(m.source, attrs(m)) for m in vols])


def monitor_busy_restarting(store: Store, c: Container) -> bool:
    return container_state(store, c).status == "restarting"


def remove_container(store: Store, c: Container, force: bool = False, volumes: bool = False) -> None:
    state = container_state(store, c)
    if state.running:
        if not force:
            raise Conflict(
                f"cannot remove container {c.name}: container is {state.status}: "
                "stop the container before removing or force remove")
        request_stop(store, c)

        if state.status == "paused":
            _thaw(store, c)
        watch = _exit_watch(store, c)
        try:
            container_runtime(store, c.spec).kill(c.id, "9", all_=True)
        except NerdpyError:
            pass
        _await_exit(store, c, watch, 10)
    _remove_everything(store, c.id, volumes=volumes)


def _remove_everything(store: Store, cid: str, volumes: bool = False, runc_deleted: bool = False) -> None:
    from nerdpy.engine.snapshots.mount import MNT_DETACH, mounted_under, unmount

    row = store.db.query_one("SELECT config FROM containers WHERE namespace = ? AND id = ?", (store.namespace, cid))
    spec = StoredSpec.from_json(json.loads(row["config"])) if row is not None else None
    if not runc_deleted:  # the monitor has done it already when it removes a --rm container
        try:
            container_runtime(store, spec).delete(cid, force=True)
        except NerdpyError:
            pass
    cgroups.remove(cgroups.container_path(store.namespace, cid))
    cdir = container_dir(store, cid)
    if store.db.read_only:  # a full disk: its logs go first (often what filled it), so the rest can be written
        import glob

        for f in glob.glob(glob.escape(log_path(store, cid)) + "*"):
            try:
                os.unlink(f)
            except OSError:
                pass
    from nerdpy.engine.network.container import teardown_network

    teardown_network(store, cid, spec)
    for point in mounted_under(cdir):
        unmount(point, MNT_DETACH)
    with store.db.write() as cur:
        cur.execute("DELETE FROM containers WHERE namespace = ? AND id = ?", (store.namespace, cid))
    if row is not None:
        from nerdpy.engine.system.journal import record_event

        record_event(store, "container", "destroy", cid, {**(spec.labels or {}), "image": spec.image, "name": spec.name})
    store.snapshots.remove_active(snapshot_key(store, cid))
    shutil.rmtree(cdir, ignore_errors=True)
    shutil.rmtree(run_dir(store, cid), ignore_errors=True)
    if volumes and row is not None:
        from nerdpy.engine.containers.volumes import remove_anonymous_volumes

        remove_anonymous_volumes(store, spec)
