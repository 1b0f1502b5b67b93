"""run/create options for namespaces (--ipc, --uts, --cgroupns), cgroup resources (--cpuset-*,
--cpu-period/--cpu-quota, --memory-swappiness, --oom-kill-disable, --blkio-weight, the device
bps/iops limits), --volumes-from, --runtime and --gpus: their conversion and docker's checks.

The options module (`build_spec`, `check_spec`) calls `check_spec_resources` for every front end
(CLI, Client, compose); what needs the store (--volumes-from, --runtime, devices' numbers) is
resolved by the lifecycle through `resolve_volumes_from`, `runtime_of` and `throttle_devices`.
Errors are InvalidArgument (exit 125), with docker's messages.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from nerdpy.engine.errors import InvalidArgument

if TYPE_CHECKING:
    from nerdpy.engine.containers.records import ContainerSpec, MountSpec
    from nerdpy.engine.store import Store

IPC_MODES = ("", "none", "private", "shareable", "host")


def _bad(message: str) -> InvalidArgument:
    return InvalidArgument(message)


# -- namespaces ---------------------------------------------------------------------------------
def check_namespaces(spec: ContainerSpec) -> None:
    ipc = spec.ipc or ""
    if ipc not in IPC_MODES and not (ipc.startswith("container:") and ipc.partition(":")[2]):
        raise _bad(f"invalid IPC mode: {ipc}")
    if spec.uts not in ("", "host"):
        raise _bad(f"invalid UTS mode: {spec.uts}")
    if spec.uts == "host" and spec.hostname and spec.network != "host":
        raise _bad("conflicting options: hostname and the UTS mode")
    if spec.uts == "host" and spec.domainname:
        raise _bad("conflicting options: domainname and the UTS mode")
    if spec.cgroupns not in ("", "host", "private"):
        raise _bad(f"invalid cgroup namespace mode: {spec.cgroupns} (host or private)")


# -- cgroup resources ---------------------------------------------------------------------------
def parse_cpuset(text: str, what: str = "cpuset") -> list[int]:
    """docker's list form: 0-3,5 -> [0, 1, 2, 3, 5]."""
    out: list[int] = []
    if not text:
        return out
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise _bad(f"invalid value {text!r} for {what}")
        a, b = int(lo), int(hi) if dash else int(lo)
        if b < a:
            raise _bad(f"invalid value {text!r} for {what}")
        out += range(a, b + 1)
    return out


def _online(path: str, fallback: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip() or fallback
    except OSError:
        return fallback


def _check_cpuset(spec: ContainerSpec) -> None:
    if spec.cpuset_cpus:
        online = _online("/sys/devices/system/cpu/online", f"0-{(os.cpu_count() or 1) - 1}")
        have = set(parse_cpuset(online, "cpus"))
        want = parse_cpuset(spec.cpuset_cpus, "--cpuset-cpus")
        if any(c not in have for c in want):
            raise _bad(f"requested CPUs are not available - requested {spec.cpuset_cpus}, available: {online}")
    if spec.cpuset_mems:
        online = _online("/sys/devices/system/node/online", "0")
        have = set(parse_cpuset(online, "mems"))
        want = parse_cpuset(spec.cpuset_mems, "--cpuset-mems")
        if any(m not in have for m in want):
            raise _bad(f"requested memory nodes are not available - requested {spec.cpuset_mems}, available: {online}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_spec_resources(spec: ContainerSpec) -> None:
    """docker's checks of the options this module owns (no store needed)."""
    check_namespaces(spec)
    _check_cpuset(spec)
    if spec.cpu_period is not None:
        if not _is_int(spec.cpu_period):
            raise _bad(f"invalid argument {spec.cpu_period!r} for --cpu-period")
        if spec.cpu_period and not 1000 <= spec.cpu_period <= 1000000:
            raise _bad("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if spec.cpu_quota is not None:
        if not _is_int(spec.cpu_quota):
            raise _bad(f"invalid argument {spec.cpu_quota!r} for --cpu-quota")
        if spec.cpu_quota and spec.cpu_quota != -1 and spec.cpu_quota < 1000:
            raise _bad("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if spec.cpus and (spec.cpu_period or spec.cpu_quota):
        raise _bad("conflicting options: Nano CPUs and CPU Period/Quota cannot both be set")
    sw = spec.memory_swappiness
    if sw is not None and (not _is_int(sw) or (sw != -1 and not 0 <= sw <= 100)):
        raise _bad(f"invalid value: {sw}, valid memory swappiness range is 0-100")
    w = spec.blkio_weight
    if w is not None and (not _is_int(w) or (w != 0 and not 10 <= w <= 1000)):
        raise _bad("range of blkio weight is from 10 to 1000")
    for flag, items, size in (("--device-read-bps", spec.device_read_bps, True),
                              ("--device-write-bps", spec.device_write_bps, True),
                              ("--device-read-iops", spec.device_read_iops, False),
                              ("--device-write-iops", spec.device_write_iops, False)):
        for item in items:
            parse_rate(item, flag, size)
    for v in spec.volumes_from:
        parse_volumes_from(v)
    if spec.gpus:
        parse_gpus(spec.gpus)
    if not isinstance(spec.runtime, str):
        raise _bad(f"invalid runtime: {spec.runtime!r}")


def parse_rate(text: str, flag: str, size: bool) -> tuple[str, int]:
    """PATH:RATE of the device bps (a size: 1mb) and iops (a number) limits."""
    path, colon, rate = str(text).rpartition(":")
    if not colon or not path:
        raise _bad(f"invalid argument {text!r} for {flag}: expected PATH:RATE")
    if not path.startswith("/dev/"):
        raise _bad(f"invalid argument {text!r} for {flag}: {path} is not a device path (/dev/...)")
    if size:
        from nerdpy.engine.util.units import parse_size

        try:
            n = parse_size(rate)
        except ValueError:
            raise _bad(f"invalid argument {text!r} for {flag}: invalid rate {rate!r}") from None
    else:
        if not rate.isdigit():
            raise _bad(f"invalid argument {text!r} for {flag}: invalid rate {rate!r} (a positive integer)")
        n = int(rate)
    if n <= 0:
        raise _bad(f"invalid argument {text!r} for {flag}: the rate must be positive")
    return path, n


def throttle_devices(items: list[str], flag: str, size: bool) -> list[dict]:
    """The spec's blockIO throttle entries ({major, minor, rate}) for PATH:RATE items."""
    out = []
    for item in items:
        path, rate = parse_rate(item, flag, size)
        try:
            st = os.stat(path)
        except OSError as e:
            raise _bad(f"invalid argument {item!r} for {flag}: {path}: {e.strerror}") from None
        import stat as _stat

        if not _stat.S_ISBLK(st.st_mode):
            raise _bad(f"invalid argument {item!r} for {flag}: {path} is not a block device")
        out.append({"major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev), "rate": rate})
    return out


def blkio_weight_supported() -> bool:
    from nerdpy.engine.runtime import cgroups

    if cgroups.layout() == "v2":
        return os.path.exists(os.path.join(cgroups.ROOT, "cgroup.controllers")) and \
            "io" in _online(os.path.join(cgroups.ROOT, "cgroup.controllers"), "").split()
    base = os.path.join(cgroups.ROOT, "blkio")
    return any(os.path.exists(os.path.join(base, f)) for f in ("blkio.weight", "blkio.bfq.weight"))


def check_host_resources(spec: ContainerSpec) -> None:
    """What the host must support for the spec (checked at create): block I/O weight, the
    devices of the throttle limits."""
    if spec.blkio_weight and not blkio_weight_supported():
        raise _bad("your kernel does not support Block I/O weight or the cgroup is not mounted "
                   "(no blkio.weight here): --blkio-weight cannot be applied")
    throttle_devices(spec.device_read_bps, "--device-read-bps", True)
    throttle_devices(spec.device_write_bps, "--device-write-bps", True)
    throttle_devices(spec.device_read_iops, "--device-read-iops", False)
    throttle_devices(spec.device_write_iops, "--device-write-iops", False)


def block_io(spec: ContainerSpec) -> dict:
    """The spec's linux.resources.blockIO (empty when nothing is asked)."""
    out: dict = {}
    if spec.blkio_weight:
        out["weight"] = spec.blkio_weight
    for key, items, flag, size in (
            ("throttleReadBpsDevice", spec.device_read_bps, "--device-read-bps", True),
            ("throttleWriteBpsDevice", spec.device_write_bps, "--device-write-bps", True),
            ("throttleReadIOPSDevice", spec.device_read_iops, "--device-read-iops", False),
            ("throttleWriteIOPSDevice", spec.device_write_iops, "--device-write-iops", False)):
        if items:
            out[key] = throttle_devices(items, flag, size)
    return out


# -- --volumes-from -----------------------------------------------------------------------------
def parse_volumes_from(text: str) -> tuple[str, str]:
    """NAME[:ro|rw] -> (name, mode: "" keeps each mount's own)."""
    name, _, mode = str(text).partition(":")
    if not name or mode not in ("", "ro", "rw"):
        raise _bad(f"invalid --volumes-from {text!r}: expected CONTAINER[:ro|rw]")
    return name, mode


def resolve_volumes_from(store: Store, spec: ContainerSpec) -> list[MountSpec]:
    """The volumes and binds of the --volumes-from containers (docker: not their tmpfs), with
    :ro or :rw applied; a target the spec mounts itself keeps the spec's mount. The volumes are
    shared by name: removing this container never removes them."""
    from nerdpy.engine.containers.records import MountSpec, find_container

    own = {m.target for m in spec.mounts}
    out: list[MountSpec] = []
    for text in spec.volumes_from:
        name, mode = parse_volumes_from(text)
        other = find_container(store, name)
        for m in other.spec.mounts or []:
            if m.type not in ("bind", "volume") or m.target in own:
                continue
            ro = m.readonly if not mode else mode == "ro"
            opts = {k: v for k, v in (m.options or {}).items() if k != "anonymous"}
            if m.type == "bind":
                opts["create_host_path"] = False
            own.add(m.target)
            out.append(MountSpec(m.type, m.target, m.source, ro, opts))
    return out


# -- --runtime ----------------------------------------------------------------------------------
def runtime_of(store: Store, spec) -> tuple[str, list[str]]:
    """The runtime binary and its global args for a container's spec (or record)."""
    from nerdpy.engine.runtime.runc import runtime_binary

    return runtime_binary(store.settings, getattr(spec, "runtime", "") or "")


# -- --gpus -------------------------------------------------------------------------------------
def parse_gpus(text: str) -> dict:
    """docker's --gpus: all, a count, or driver=,count=,device=,capabilities= fields ->
    {"count": N (-1: all), "devices": [...], "capabilities": [...], "driver": ...}."""
    t = str(text).strip()
    out: dict = {"count": 0, "devices": [], "capabilities": ["gpu"], "driver": ""}
    if t == "all":
        out["count"] = -1
        return out
    if t.isdigit():
        out["count"] = int(t)
        if out["count"] == 0:
            raise _bad(f"invalid --gpus {text!r}: the count must be at least 1")
        return out
    import csv

    try:
        fields = next(csv.reader([t]))
    except (csv.Error, StopIteration):
        raise _bad(f"invalid --gpus {text!r}") from None
    i = 0
    while i < len(fields):
        k, eq, v = fields[i].partition("=")
        if not eq:
            raise _bad(f"invalid --gpus {text!r}: {fields[i]!r} is not key=value")
        if k in ("device", "capabilities"):
            vals = [v]
            while i + 1 < len(fields) and "=" not in fields[i + 1]:
                i += 1
                vals.append(fields[i])
            vals = [x.strip() for v in vals for x in v.split(",") if x.strip()]
            out["devices" if k == "device" else "capabilities"] = vals
        elif k == "count":
            if v == "all":
                out["count"] = -1
            elif v.isdigit() and int(v) > 0:
                out["count"] = int(v)
            else:
                raise _bad(f"invalid --gpus {text!r}: invalid count {v!r}")
        elif k == "driver":
            out["driver"] = v
        else:
            raise _bad(f"invalid --gpus {text!r}: unexpected key {k!r}")
        i += 1
    if out["devices"] and out["count"]:
        raise _bad(f"invalid --gpus {text!r}: cannot set both count and device")
    if not out["devices"] and not out["count"]:
        out["count"] = -1 if "count" not in t else out["count"]
    if out["driver"] not in ("", "nvidia", "cdi"):
        raise _bad(f"invalid --gpus {text!r}: driver {out['driver']!r} (only nvidia, through CDI)")
    return out
