"""The OCI runtime spec (`config.json`) for a container, with docker's defaults.

`build_spec(SpecOptions)` is a pure function: it decides namespaces, mounts, capabilities,
seccomp, masked and read-only paths, devices, rlimits and cgroup resources exactly as docker
does for the same flags, so that a container behaves the same under nerdpy.
"""
from __future__ import annotations

import os
from dataclasses import field

from nerdpy.engine.errors import InvalidArgument
from nerdpy.engine.util.lean import lean_dataclass

DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]

ALL_CAPS = [
    "CAP_AUDIT_CONTROL", "CAP_AUDIT_READ", "CAP_AUDIT_WRITE", "CAP_BLOCK_SUSPEND", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
    "CAP_FSETID", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_KILL", "CAP_LEASE", "CAP_LINUX_IMMUTABLE",
    "CAP_MAC_ADMIN", "CAP_MAC_OVERRIDE", "CAP_MKNOD", "CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_RAW", "CAP_PERFMON", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
    "CAP_SETUID", "CAP_SYSLOG", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_CHROOT", "CAP_SYS_MODULE",
    "CAP_SYS_NICE", "CAP_SYS_PACCT", "CAP_SYS_PTRACE", "CAP_SYS_RAWIO", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_WAKE_ALARM",
]

# capability numbers (linux/capability.h), for reading CapEff masks
CAP_NUMBERS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4,
    "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15, "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19, "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23, "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27, "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31, "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38, "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40,
}

MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
]

READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

# docker's default device cgroup allow-list (besides the devices it creates)
_DEFAULT_DEVICE_RULES = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},    # /dev/zero
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},    # /dev/null
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},    # /dev/urandom
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},    # /dev/random
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},    # /dev/tty
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},    # /dev/console
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},    # /dev/ptmx
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},              # /dev/pts/*
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},  # /dev/net/tun
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},  # /dev/fuse (denied)
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},    # /dev/full
]


def default_mounts(shm_size: int = 64 << 20, readonly_rootfs: bool = False) -> list[dict]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size}"]},
    ]


def check_workdir(path: str) -> str:
    """A process's working directory as docker takes it: absolute, and (runc's CVE-2024-21626
    lesson) never under /proc, however it is spelled (`/proc/self/fd/7`, `//proc/..`,
    `/tmp/../proc/self/cwd`): a cwd there can hand the process a host directory. Returns `path`."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidArgument(f"the working directory {path!r} is invalid: it needs to be an absolute path")
    if "\0" in path:
        raise InvalidArgument(f"the working directory {path!r} is invalid: it holds a NUL byte")
    clean = "/" + os.path.normpath(path).lstrip("/")
    if clean == "/proc" or clean.startswith("/proc/"):
        raise InvalidArgument(f"the working directory {path!r} is under /proc: refused "
                              "(a working directory there can reach the host's files)")
    return path


@lean_dataclass
class SpecOptions:
    rootfs: str
    args: list[str]
    env: list[str] = field(default_factory=list)
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    terminal: bool = False
    hostname: str = ""
    domainname: str = ""
    readonly_rootfs: bool = False
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    seccomp: str = "default"              # "default", "unconfined" or a path to a JSON profile
    no_new_privileges: bool = False
    mounts: list[dict] = field(default_factory=list)  # extra OCI mounts (binds, volumes, tmpfs)
    netns: str | None = None              # None: new netns; "host": share the host's; else a path
    pidns: str | None = None              # None: new pid ns; "host": the host's; else a path
    memory: int | None = None
    memory_swap: int | None = None
    memory_reservation: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    pids_limit: int | None = None
    ulimits: list[tuple[str, int, int]] = field(default_factory=list)
    shm_size: int = 64 << 20
    sysctls: dict[str, str] = field(default_factory=dict)
    devices: list[dict] = field(default_factory=list)  # {"path","type","major","minor","container_path","access"}
    cgroups_path: str = ""
    oom_score_adj: int | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    init: bool = False
    cgroupns: str | None = None           # None: docker's default for this host; "host"; "private"
    ipcns: str | None = None              # None: a new IPC ns; "host": the host's; else a path to join
    shm: str | None = None                # /dev/shm: None a tmpfs of shm_size; "" none; else a path to bind
    utsns_host: bool = False              # --uts host: the host's UTS namespace (no hostname set)
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    cpu_period: int | None = None
    cpu_quota: int | None = None
    memory_swappiness: int | None = None
    oom_kill_disable: bool = False
    block_io: dict = field(default_factory=dict)  # linux.resources.blockIO (weight, throttle*)
    rootless: bool = False                # in a rootless user's namespace: no cgroup settings


def normalise_cap(name: str) -> str:
    n = name.strip().upper()
    if n == "ALL":
        return n
    if not n.startswith("CAP_"):
        n = "CAP_" + n
    if n not in ALL_CAPS:
        raise InvalidArgument(f"unknown capability: {name!r}")
    return n


def available_caps() -> list[str]:
    """"All capabilities" as docker means it: every known capability that this process has
    (moby uses containerd's cap.Current()); a host or outer container without, say,
    CAP_SYS_RESOURCE cannot hand it to a privileged container."""
    global _AVAILABLE
    if _AVAILABLE is None:
        mask = None
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("CapEff:"):
                        mask = int(line.split()[1], 16)
        except (OSError, ValueError, IndexError):
            mask = None
        if mask is None:
            _AVAILABLE = list(ALL_CAPS)
        else:
            _AVAILABLE = [c for c in ALL_CAPS if mask >> CAP_NUMBERS[c] & 1]
    return list(_AVAILABLE)


_AVAILABLE: list[str] | None = None


def capabilities(privileged: bool, cap_add: list[str], cap_drop: list[str],
                 all_caps: list[str] | None = None) -> list[str]:
    """moby's TweakCapabilities: privileged gets all capabilities; ALL in --cap-add gives all but
    the dropped ones; ALL in --cap-drop leaves only the added ones; otherwise the defaults minus
    the drops, plus the adds."""
    everything = list(all_caps) if all_caps is not None else available_caps()
    adds = [normalise_cap(c) for c in cap_add]
    drops = [normalise_cap(c) for c in cap_drop]
    if privileged:
        return everything
    if "ALL" in adds:
        caps = [c for c in everything if c not in drops]
    elif "ALL" in drops:
        caps = list(adds)
    else:
        caps = [c for c in DEFAULT_CAPS if c not in drops] + adds
    out: list[str] = []
    for c in caps:
        if c not in out:
            out.append(c)
    return out


def _rlimit_name(name: str) -> str:
    return "RLIMIT_" + name.upper().replace("-", "")


ULIMIT_NAMES = {
    "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
    "rss", "rtprio", "rttime", "sigpending", "stack", "as",
}


def build_spec(o: SpecOptions) -> dict:
    caps = capabilities(o.privileged, o.cap_add, o.cap_drop)
    namespaces = [{"type": "mount"}]
    if not o.utsns_host:
        namespaces.insert(0, {"type": "uts"})
    if o.ipcns is None:
        namespaces.insert(0, {"type": "ipc"})
    elif o.ipcns != "host":
        namespaces.insert(0, {"type": "ipc", "path": o.ipcns})
    if o.pidns is None:
        namespaces.insert(0, {"type": "pid"})
    elif o.pidns != "host":
        namespaces.insert(0, {"type": "pid", "path": o.pidns})
    if o.netns is None:
        namespaces.append({"type": "network"})
    elif o.netns != "host":
        namespaces.append({"type": "network", "path": o.netns})
    if o.cgroupns == "private" or (o.cgroupns is None and _cgroup_v2_unified()):
        # docker's default: a private cgroup namespace on cgroup v2 only ("host" on v1 and hybrid)
        if _cgroupns_supported():
            namespaces.append({"type": "cgroup"})

    mounts = default_mounts(o.shm_size, o.readonly_rootfs)
    if o.shm is not None:  # --ipc none (no /dev/shm), host or container:X (theirs, bound)
        mounts = [m for m in mounts if m["destination"] != "/dev/shm"]
        if o.shm:
            mounts.append({"destination": "/dev/shm", "type": "bind", "source": o.shm,
                           "options": ["rbind", "nosuid", "noexec", "nodev"]})
    if o.privileged:
        for m in mounts:
            if m["destination"] in ("/sys", "/sys/fs/cgroup"):
                m["options"] = [x for x in m["options"] if x != "ro"] + ["rw"]
    if o.netns == "host":
        # docker binds the host's /sys when sharing the host network namespace
        for m in mounts:
            if m["destination"] == "/sys":
                m.update({"type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    user_dests = {m["destination"] for m in o.mounts}
    # the container's own mounts go on in order of depth, as docker sorts them: a volume on /etc
    # must not hide the /etc/hosts bind that follows it
    own = sorted(o.mounts, key=lambda m: os.path.normpath(m["destination"]).count("/"))
    mounts = [m for m in mounts if m["destination"] not in user_dests] + own

    rlimits = [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}]
    hard_nofile = _host_hard_nofile()
    if hard_nofile is not None and hard_nofile < 1048576:
        rlimits = [{"type": "RLIMIT_NOFILE", "hard": hard_nofile, "soft": hard_nofile}]
    for name, soft, hard in o.ulimits:
        rlimits = [r for r in rlimits if r["type"] != _rlimit_name(name)]
        rlimits.append({"type": _rlimit_name(name), "hard": hard, "soft": soft})

    process = {
        "terminal": o.terminal,
        "user": {"uid": o.uid, "gid": o.gid, "additionalGids": o.additional_gids or [o.gid]},
        "args": o.args,
        "env": o.env,
        "cwd": o.cwd,
        "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
        "rlimits": rlimits,
        "noNewPrivileges": o.no_new_privileges,
    }
    if o.oom_score_adj is not None:
        process["oomScoreAdj"] = o.oom_score_adj
    # no inheritable or ambient capabilities, privileged or not (moby since CVE-2022-24769)

    devices = list(o.devices)
    if o.privileged:
        # docker gives a privileged container every device of the host
        mine = {d.get("container_path") or d["path"] for d in devices}
        devices = [d for d in host_devices() if d["path"] not in mine] + devices

    resources: dict = {"devices": _device_rules(o)}
    mem = {}
    if o.memory:
        mem["limit"] = o.memory
        if _swap_accounting():
            if o.memory_swap is not None:
                mem["swap"] = o.memory_swap if o.memory_swap > 0 else -1
            else:
                mem["swap"] = o.memory * 2
    if o.memory_reservation:
        mem["reservation"] = o.memory_reservation
    if o.memory_swappiness is not None and o.memory_swappiness >= 0:
        mem["swappiness"] = o.memory_swappiness
    if o.oom_kill_disable:
        mem["disableOOMKiller"] = True
    if mem:
        resources["memory"] = mem
    cpu = {}
    if o.cpus:
        cpu["period"] = 100000
        cpu["quota"] = int(o.cpus * 100000)
    if o.cpu_shares:
        cpu["shares"] = o.cpu_shares
    if o.cpu_period:
        cpu["period"] = o.cpu_period
    if o.cpu_quota:
        cpu["quota"] = o.cpu_quota
    if o.cpuset_cpus:
        cpu["cpus"] = o.cpuset_cpus
    if o.cpuset_mems:
        cpu["mems"] = o.cpuset_mems
    if cpu:
        resources["cpu"] = cpu
    if o.pids_limit and o.pids_limit > 0:
        resources["pids"] = {"limit": o.pids_limit}
    if o.block_io:
        resources["blockIO"] = dict(o.block_io)

    linux: dict = {
        "namespaces": namespaces,
        "resources": resources,
        "devices": [_device_entry(d) for d in devices],
    }
    if o.rootless:
        # no cgroup of its own (no delegation): no resources; the host's cgroup tree read-only
        del linux["resources"]
        for m in mounts:
            if m["destination"] == "/sys/fs/cgroup":
                m.update({"type": "bind", "source": "/sys/fs/cgroup",
                          "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
            elif m["destination"] == "/proc" and not any(n["type"] == "pid" for n in namespaces):
                # --pid host: a user namespace may not mount the host's pid namespace's proc;
                # the host's /proc is bound instead (as podman's rootless mode does)
                m.update({"type": "bind", "source": "/proc", "options": ["rbind", "nosuid", "noexec", "nodev"]})
        # a user namespace cannot make device nodes: each is bound from the host's node, to the
        # path the container asked for (runc --rootless binds the node at its own path only);
        # runc binds its own default ones (/dev/null, /dev/tty...) itself
        mounts.extend({"destination": d.get("container_path") or d["path"], "type": "bind", "source": d["path"],
                       "options": ["bind", "nosuid"]} for d in devices
                      if not (d["path"] in _RUNC_DEVICES and (d.get("container_path") or d["path"]) == d["path"]))
        linux["devices"] = []
    if o.cgroups_path:
        linux["cgroupsPath"] = o.cgroups_path
    sysctls = dict(o.sysctls)
    if o.domainname and "kernel.domainname" not in sysctls:
        # runc before 1.2 ignores the spec's domainname: docker sets it as a (UTS) sysctl too
        sysctls["kernel.domainname"] = o.domainname
    if sysctls:
        linux["sysctl"] = sysctls
    if not o.privileged:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
        seccomp = _seccomp(o.seccomp, caps)
        if seccomp is not None:
            linux["seccomp"] = seccomp

    if o.utsns_host:  # runc refuses a hostname without a UTS namespace of the container's own
        sysctls.pop("kernel.domainname", None)
        if not sysctls:
            linux.pop("sysctl", None)
    spec = {
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": {"path": o.rootfs, "readonly": o.readonly_rootfs},
        "hostname": "" if o.utsns_host else o.hostname,
        "mounts": mounts,
        "linux": linux,
    }
    if o.domainname and not o.utsns_host:
        spec["domainname"] = o.domainname
    if o.annotations:
        spec["annotations"] = dict(o.annotations)
    return spec


# the device nodes runc gives every container (bound from the host's in rootless mode), and
# /dev/ptmx, which runc makes a link to the container's own pts/ptmx
_RUNC_DEVICES = frozenset({"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty",
                           "/dev/ptmx"})


def _device_rules(o: SpecOptions) -> list[dict]:
    if o.privileged:
        return [{"allow": True, "access": "rwm"}]
    rules = [dict(r) for r in _DEFAULT_DEVICE_RULES]
    for d in o.devices:
        rules.append({"allow": True, "type": d["type"], "major": d["major"], "minor": d["minor"],
                      "access": d.get("access", "rwm")})
    return rules


def _device_entry(d: dict) -> dict:
    return {
        "path": d.get("container_path") or d["path"],
        "type": d["type"],
        "major": d["major"],
        "minor": d["minor"],
        "fileMode": d.get("mode", 0o666),
        "uid": d.get("uid", 0),
        "gid": d.get("gid", 0),
    }


def _seccomp(profile: str, caps: list[str]) -> dict | None:
    if profile == "unconfined":
        return None
    if profile == "default":
        from nerdpy.engine.containers.seccomp import default_profile

        return default_profile(caps)
    if profile.lstrip().startswith("{"):
        # the profile's content, read when the container was created (as docker keeps it)
        import json

        from nerdpy.engine.containers.seccomp import from_docker_profile

        try:
            return from_docker_profile(json.loads(profile), caps)
        except ValueError as e:
            raise InvalidArgument(f"decoding seccomp profile failed: {e}") from None
    return load_profile(profile, caps)


def load_profile(path: str, caps: list[str]) -> dict:
    """A seccomp profile file in docker's format, as the spec's linux.seccomp."""
    import json

    from nerdpy.engine.containers.seccomp import from_docker_profile

    try:
        with open(path) as f:
            return from_docker_profile(json.load(f), caps)
    except OSError as e:
        raise InvalidArgument(f"opening seccomp profile ({path}) failed: {e.strerror}") from None
    except ValueError as e:
        raise InvalidArgument(f"decoding seccomp profile ({path}) failed: {e}") from None


def _cgroupns_supported() -> bool:
    return os.path.exists("/proc/self/ns/cgroup")


def _cgroup_v2_unified() -> bool:
    """True on a pure cgroup v2 host (not on v1 or hybrid layouts)."""
    from nerdpy.engine.runtime.cgroups import unified

    return unified()


def _swap_accounting() -> bool:
    """Whether a memory+swap limit can be set (docker ignores --memory-swap, with a warning,
    when the kernel has no swap accounting)."""
    from nerdpy.engine.runtime.cgroups import swap_accounting

    return swap_accounting()


_SKIP_DEV_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


def host_devices(root: str = "/dev") -> list[dict]:
    """The host's character and block devices, as containerd's HostDevices lists them for a
    privileged container (/dev/console and pseudo-terminals are the container's own)."""
    import stat as _stat

    out: list[dict] = []

    def walk(d: str) -> None:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            return
        for name in names:
            path = os.path.join(d, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if _stat.S_ISDIR(st.st_mode):
                if name not in _SKIP_DEV_DIRS:
                    walk(path)
                continue
            if name == "console":
                continue
            if _stat.S_ISCHR(st.st_mode):
                kind = "c"
            elif _stat.S_ISBLK(st.st_mode):
                kind = "b"
            else:
                continue
            if kind == "c" and st.st_rdev == 0:
                continue  # an overlay whiteout, not a device
            out.append({"path": path, "type": kind, "major": os.major(st.st_rdev),
                        "minor": os.minor(st.st_rdev), "mode": st.st_mode & 0o777,
                        "uid": st.st_uid, "gid": st.st_gid})

    walk(root)
    return out


def _host_hard_nofile() -> int | None:
    try:
        import resource

        return resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    except (ImportError, ValueError):
        return None
