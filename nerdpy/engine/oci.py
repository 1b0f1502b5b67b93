"""The OCI runtime spec (`config.json`) for a container, with docker's defaults.

`build_spec(SpecOptions)` is a pure function: it decides namespaces, mounts, capabilities,
seccomp, masked and read-only paths, devices, rlimits and cgroup resources exactly as docker
does for the same flags, so that a container behaves the same under nerdpy.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from nerdpy.engine.errors import InvalidArgument

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


@dataclass
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


def normalise_cap(name: str) -> str:
    n = name.strip().upper()
    if n == "ALL":
        return n
    if not n.startswith("CAP_"):
        n = "CAP_" + n
    if n not in ALL_CAPS:
        raise InvalidArgument(f"unknown capability: {name!r}")
    return n


def capabilities(privileged: bool, cap_add: list[str], cap_drop: list[str]) -> list[str]:
    """docker's rules: start from the defaults (or all when privileged), drop, then add;
    ALL in --cap-add gives every capability, ALL in --cap-drop removes all first."""
    if privileged:
        return list(ALL_CAPS)
    adds = [normalise_cap(c) for c in cap_add]
    drops = [normalise_cap(c) for c in cap_drop]
    caps = [] if "ALL" in drops else [c for c in DEFAULT_CAPS if c not in drops]
    if "ALL" in adds:
        caps = [c for c in ALL_CAPS if c not in drops or "ALL" in drops]
        if "ALL" in drops:
            caps = list(ALL_CAPS)
    else:
        for c in adds:
            if c not in caps:
                caps.append(c)
    return caps


def _rlimit_name(name: str) -> str:
    return "RLIMIT_" + name.upper().replace("-", "")


ULIMIT_NAMES = {
    "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
    "rss", "rtprio", "rttime", "sigpending", "stack", "as",
}


def build_spec(o: SpecOptions) -> dict:
    caps = capabilities(o.privileged, o.cap_add, o.cap_drop)
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if o.netns is None:
        namespaces.append({"type": "network"})
    elif o.netns != "host":
        namespaces.append({"type": "network", "path": o.netns})
    if _cgroupns_supported():
        namespaces.append({"type": "cgroup"})

    mounts = default_mounts(o.shm_size, o.readonly_rootfs)
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
    mounts = [m for m in mounts if m["destination"] not in user_dests] + list(o.mounts)

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
    if o.privileged:
        process["capabilities"]["inheritable"] = caps
        process["capabilities"]["ambient"] = []

    resources: dict = {"devices": _device_rules(o)}
    mem = {}
    if o.memory:
        mem["limit"] = o.memory
        if o.memory_swap is not None:
            mem["swap"] = o.memory_swap if o.memory_swap > 0 else -1
        else:
            mem["swap"] = o.memory * 2
    if o.memory_reservation:
        mem["reservation"] = o.memory_reservation
    if mem:
        resources["memory"] = mem
    cpu = {}
    if o.cpus:
        cpu["period"] = 100000
        cpu["quota"] = int(o.cpus * 100000)
    if o.cpu_shares:
        cpu["shares"] = o.cpu_shares
    if cpu:
        resources["cpu"] = cpu
    if o.pids_limit:
        resources["pids"] = {"limit": o.pids_limit}

    linux: dict = {
        "namespaces": namespaces,
        "resources": resources,
        "devices": [_device_entry(d) for d in o.devices],
    }
    if o.cgroups_path:
        linux["cgroupsPath"] = o.cgroups_path
    if o.sysctls:
        linux["sysctl"] = dict(o.sysctls)
    if not o.privileged:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
        seccomp = _seccomp(o.seccomp, caps)
        if seccomp is not None:
            linux["seccomp"] = seccomp

    spec = {
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": {"path": o.rootfs, "readonly": o.readonly_rootfs},
        "hostname": o.hostname,
        "mounts": mounts,
        "linux": linux,
    }
    if o.domainname:
        spec["domainname"] = o.domainname
    if o.annotations:
        spec["annotations"] = dict(o.annotations)
    return spec


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
        "uid": 0,
        "gid": 0,
    }


def _seccomp(profile: str, caps: list[str]) -> dict | None:
    if profile == "unconfined":
        return None
    if profile == "default":
        from nerdpy.engine.seccomp import default_profile

        return default_profile(caps)
    import json

    try:
        with open(profile) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise InvalidArgument(f"cannot load seccomp profile {profile}: {e}") from None


def _cgroupns_supported() -> bool:
    return os.path.exists("/proc/self/ns/cgroup")


def _host_hard_nofile() -> int | None:
    try:
        import resource

        return resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    except (ImportError, ValueError):
        return None
