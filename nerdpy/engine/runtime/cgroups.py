"""Cgroups: the host's layout (v1, v2 or hybrid), where a container's cgroups are, removing them,
and reading usage from and writing limits to their files.

runc creates a container's cgroups from the bundle's `cgroupsPath` (`container_path`, with the
cgroupfs driver): on v2 one directory under the unified hierarchy, on v1 (and hybrid) one per
controller hierarchy (`/sys/fs/cgroup/<controller>/<path>`). `stats` and `update` sit on top of
`read_stats` and `write_limits`; the parsers and `limit_writes` are pure (text in, values out).
Standard library only and cheap to import: the OCI spec builder asks `unified()` on every run.
"""
from __future__ import annotations

import errno
import os

from nerdpy.engine.util.lean import lean_dataclass

ROOT = "/sys/fs/cgroup"
# v1 reports "no limit" as the largest page-aligned counter value (9223372036854771712)
_V1_UNLIMITED = 1 << 62


# -- layout -------------------------------------------------------------------------------------
def layout(root: str = ROOT) -> str:
    """v2, hybrid (v1 controllers plus a v2 unified hierarchy), v1, or none."""
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return "v2"
    v1 = any(os.path.isdir(os.path.join(root, c)) and os.path.ismount(os.path.join(root, c))
             for c in ("memory", "cpu", "pids", "devices"))
    if v1 and os.path.exists(os.path.join(root, "unified", "cgroup.controllers")):
        return "hybrid"
    return "v1" if v1 else "none"


def unified(root: str = ROOT) -> bool:
    """True on a pure cgroup v2 host (not on v1 or hybrid layouts)."""
    return os.path.exists(os.path.join(root, "cgroup.controllers"))


def swap_accounting(root: str = ROOT) -> bool:
    """Whether a memory+swap limit can be set (v2 always; v1 with swap accounting on)."""
    if unified(root):
        return True
    return os.path.exists(os.path.join(root, "memory", "memory.memsw.limit_in_bytes"))


# -- paths --------------------------------------------------------------------------------------
def container_path(namespace: str, cid: str) -> str:
    """The `cgroupsPath` of a container's bundle, relative to each hierarchy's root."""
    return f"/nerdpy/{namespace}-{cid[:12]}"


def controller_dir(path: str, controller: str, version: str, root: str = ROOT) -> str:
    """The directory holding `controller`'s files for the cgroup `path` (pure): the one unified
    directory on v2, the controller's own hierarchy on v1 and hybrid."""
    if version == "v2":
        return os.path.join(root, path.strip("/"))
    return os.path.join(root, controller, path.strip("/"))


def oom_files(path: str, root: str = ROOT) -> list[str]:
    """The files whose `oom_kill N` line counts the memory cgroup's OOM kills for the cgroup
    `path`: memory.events on v2 (and the unified hierarchy of a hybrid host, when the memory
    controller is there), memory.oom_control on v1."""
    version = layout(root)
    if version == "v2":
        return [os.path.join(controller_dir(path, "memory", "v2", root), "memory.events")]
    out = [os.path.join(controller_dir(path, "memory", "v1", root), "memory.oom_control")]
    if version == "hybrid":
        out.append(os.path.join(root, "unified", path.strip("/"), "memory.events"))
    return out


def remove(path: str, root: str = ROOT) -> None:
    """Remove the (empty) cgroup `path` in every hierarchy. `runc delete` does, but not when
    runc's state is gone (after a reboot, or a run root deleted under it)."""
    leaf = path.strip("/")
    try:
        hierarchies = [""] + os.listdir(root)
    except OSError:
        return
    for h in hierarchies:
        try:
            os.rmdir(os.path.join(root, h, leaf))
        except OSError:
            pass


# -- parsers (pure) -----------------------------------------------------------------------------
def parse_value(text: str | None) -> int | None:
    """A single-value file: the number, or None for "max", v1's unlimited, or no file."""
    if text is None:
        return None
    text = text.strip().split()[0] if text.strip() else ""
    if not text or text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return None if value >= _V1_UNLIMITED else value


def parse_keyed(text: str | None) -> dict[str, int]:
    """A flat keyed file ("key value" lines: memory.stat, cpu.stat)."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def parse_io_stat(text: str | None) -> tuple[int, int]:
    """v2 io.stat ("MAJ:MIN rbytes=N wbytes=N rios=N ..."): bytes (read, written), all devices."""
    read = written = 0
    for line in (text or "").splitlines():
        for field in line.split()[1:]:
            key, _, value = field.partition("=")
            if key in ("rbytes", "wbytes") and value.isdigit():
                if key == "rbytes":
                    read += int(value)
                else:
                    written += int(value)
    return read, written


def parse_blkio(text: str | None) -> tuple[int, int]:
    """v1 blkio.throttle.io_service_bytes ("MAJ:MIN Read N" lines): bytes (read, written)."""
    read = written = 0
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            if parts[1] == "Read":
                read += int(parts[2])
            elif parts[1] == "Write":
                written += int(parts[2])
    return read, written


# -- reading ------------------------------------------------------------------------------------
@lean_dataclass
class Stats:
    """One sample of a container's cgroup counters; None where the host does not tell."""
    memory_usage: int | None = None          # bytes, page cache included
    memory_limit: int | None = None          # bytes; None: unlimited
    memory_inactive_file: int | None = None  # docker's `stats` subtracts it from the usage
    cpu_usage_ns: int | None = None          # total CPU time consumed
    pids_current: int | None = None
    pids_limit: int | None = None            # None: unlimited
    blkio_read: int | None = None            # bytes
    blkio_write: int | None = None           # bytes


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def read_stats(path: str, root: str = ROOT, version: str | None = None) -> Stats:
    """The counters of the cgroup `path` (a container's: `container_path`)."""
    version = version or layout(root)

    def read(controller: str, name: str) -> str | None:
        return _read(os.path.join(controller_dir(path, controller, version, root), name))

    if version == "v2":
        mem = parse_keyed(read("memory", "memory.stat"))
        cpu = parse_keyed(read("cpu", "cpu.stat"))
        io = read("io", "io.stat")
        rd, wr = parse_io_stat(io)
        return Stats(
            memory_usage=parse_value(read("memory", "memory.current")),
            memory_limit=parse_value(read("memory", "memory.max")),
            memory_inactive_file=mem.get("inactive_file"),
            cpu_usage_ns=cpu["usage_usec"] * 1000 if "usage_usec" in cpu else None,
            pids_current=parse_value(read("pids", "pids.current")),
            pids_limit=parse_value(read("pids", "pids.max")),
            blkio_read=rd if io is not None else None,
            blkio_write=wr if io is not None else None,
        )
    mem = parse_keyed(read("memory", "memory.stat"))
    io = read("blkio", "blkio.throttle.io_service_bytes")
    rd, wr = parse_blkio(io)
    return Stats(
        memory_usage=parse_value(read("memory", "memory.usage_in_bytes")),
        memory_limit=parse_value(read("memory", "memory.limit_in_bytes")),
        memory_inactive_file=mem.get("total_inactive_file", mem.get("inactive_file")),
        cpu_usage_ns=parse_value(read("cpuacct", "cpuacct.usage")),
        pids_current=parse_value(read("pids", "pids.current")),
        pids_limit=parse_value(read("pids", "pids.max")),
        blkio_read=rd if io is not None else None,
        blkio_write=wr if io is not None else None,
    )


# -- writing ------------------------------------------------------------------------------------
@lean_dataclass
class Limits:
    """Limits to set, in docker's terms; None leaves one as it is, -1 removes it."""
    memory: int | None = None              # bytes
    memory_swap: int | None = None         # memory plus swap, bytes (docker's --memory-swap)
    memory_reservation: int | None = None  # bytes (a soft limit)
    cpu_quota: int | None = None           # microseconds per period
    cpu_period: int | None = None          # microseconds
    cpu_shares: int | None = None          # v1 shares (2..262144), converted to a v2 weight
    pids_limit: int | None = None          # 0 or -1: unlimited


def shares_to_weight(shares: int) -> int:
    """runc's conversion of v1 cpu shares (2..262144) to a v2 cpu.weight (1..10000)."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def limit_writes(limits: Limits, version: str) -> list[tuple[str, str, str]]:
    """The (controller, file, value) writes that set `limits` (pure). Raises ValueError for a
    swap limit without a memory limit, or a v2 period without a quota (their files take both)."""
    out: list[tuple[str, str, str]] = []
    v2 = version == "v2"

    def unlimited(value: int, v1_value: str = "-1") -> str:
        return ("max" if v2 else v1_value) if value < 0 else str(value)

    if limits.memory is not None:
        out.append(("memory", "memory.max" if v2 else "memory.limit_in_bytes", unlimited(limits.memory)))
    if limits.memory_swap is not None:
        if v2:
            if limits.memory is None:
                raise ValueError("a memory+swap limit needs the memory limit with it")
            swap = -1 if limits.memory_swap < 0 or limits.memory < 0 else limits.memory_swap - limits.memory
            out.append(("memory", "memory.swap.max", unlimited(swap)))
        else:
            out.append(("memory", "memory.memsw.limit_in_bytes", unlimited(limits.memory_swap)))
    if limits.memory_reservation is not None:
        out.append(("memory", "memory.low" if v2 else "memory.soft_limit_in_bytes",
                    unlimited(limits.memory_reservation)))
    if v2 and (limits.cpu_quota is not None or limits.cpu_period is not None):
        if limits.cpu_quota is None:
            raise ValueError("a cpu period needs the cpu quota with it")
        value = unlimited(limits.cpu_quota)
        if limits.cpu_period is not None:
            value += f" {limits.cpu_period}"
        out.append(("cpu", "cpu.max", value))
    elif not v2:
        if limits.cpu_period is not None:
            out.append(("cpu", "cpu.cfs_period_us", str(limits.cpu_period)))
        if limits.cpu_quota is not None:
            out.append(("cpu", "cpu.cfs_quota_us", unlimited(limits.cpu_quota)))
    if limits.cpu_shares is not None:
        if v2:
            out.append(("cpu", "cpu.weight", str(shares_to_weight(limits.cpu_shares))))
        else:
            out.append(("cpu", "cpu.shares", str(limits.cpu_shares)))
    if limits.pids_limit is not None:
        out.append(("pids", "pids.max", "max" if limits.pids_limit <= 0 else str(limits.pids_limit)))
    return out


def write_limits(path: str, limits: Limits, root: str = ROOT, version: str | None = None) -> None:
    """Set `limits` on the cgroup `path`. A write the kernel refuses because of another one's
    current value (v1's memory limit must stay below memory+swap) is retried after the others."""
    version = version or layout(root)
    pending = [(os.path.join(controller_dir(path, c, version, root), name), value)
               for c, name, value in limit_writes(limits, version)]
    for attempt in range(2):
        failed: list[tuple[str, str]] = []
        for file, value in pending:
            try:
                with open(file, "w") as f:
                    f.write(value)
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.EBUSY) or attempt == 1:
                    raise
                failed.append((file, value))
        if not failed:
            return
        pending = failed
