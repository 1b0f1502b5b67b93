"""`stats`: each container's resource usage as docker computes it, read directly from the
kernel (no daemon collects it): CPU % from two samples of the cgroup's CPU time against the host's
(/proc/stat), memory without the inactive page cache (usage - inactive_file), network from the
container's network namespace (/proc/<pid>/net/dev), block I/O and pids from the cgroup."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from nerdpy.engine.containers.records import Container, container_state
from nerdpy.engine.runtime import cgroups
from nerdpy.engine.store import Store


@dataclass
class Sample:
    """One reading of a container's counters (all None/0 for a stopped container)."""
    running: bool
    cpu_ns: int | None = None       # the container's CPU time
    system_ns: int | None = None    # the host's CPU time (all CPUs), as docker's system_cpu_usage
    mem_usage: int = 0              # bytes, page cache excluded
    mem_limit: int = 0              # bytes (the host's memory when unlimited)
    net_rx: int = 0
    net_tx: int = 0
    blk_read: int = 0
    blk_write: int = 0
    pids: int = 0


@dataclass
class Usage:
    """docker's stats entry for a container, in numbers."""
    id: str
    name: str
    cpu_percent: float
    mem_usage: int
    mem_limit: int
    mem_percent: float
    net_rx: int
    net_tx: int
    blk_read: int
    blk_write: int
    pids: int


def system_cpu_ns(stat_text: str | None = None) -> int | None:
    """The host's total CPU time in nanoseconds: the first line of /proc/stat (docker's
    system_cpu_usage). Pure when given the text."""
    if stat_text is None:
        try:
            with open("/proc/stat") as f:
                stat_text = f.readline()
        except OSError:
            return None
    parts = stat_text.split()
    if not parts or parts[0] != "cpu":
        return None
    ticks = sum(int(x) for x in parts[1:8] if x.isdigit())  # user..steal, as docker
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


_NET_FIELDS = {"rx_bytes": 0, "rx_packets": 1, "rx_errors": 2, "rx_dropped": 3,
               "tx_bytes": 8, "tx_packets": 9, "tx_errors": 10, "tx_dropped": 11}


def parse_net_dev_interfaces(text: str) -> dict[str, dict[str, int]]:
    """/proc/<pid>/net/dev: docker's per-interface counters (rx_bytes, rx_packets, rx_errors,
    rx_dropped and the same for tx) of every interface but lo (pure)."""
    out = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        fields = rest.split()
        if not sep or name.strip() == "lo" or len(fields) < 12:
            continue
        out[name.strip()] = {k: int(fields[i]) for k, i in _NET_FIELDS.items()}
    return out


def parse_net_dev(text: str) -> tuple[int, int]:
    """/proc/<pid>/net/dev: bytes (received, transmitted) over every interface but lo (pure)."""
    return net_totals(parse_net_dev_interfaces(text))


def net_totals(interfaces: dict[str, dict[str, int]]) -> tuple[int, int]:
    """Bytes (received, transmitted) over the interfaces of parse_net_dev_interfaces."""
    return (sum(i["rx_bytes"] for i in interfaces.values()), sum(i["tx_bytes"] for i in interfaces.values()))


def network_interfaces(pid: int) -> dict[str, dict[str, int]]:
    """The container's interfaces and their counters ({} with --network host: docker reports
    nothing for the host's interfaces)."""
    try:
        # ours, not pid 1's: the host's init may be out of reach (a container host, a sandbox)
        if os.readlink(f"/proc/{pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            return {}
        with open(f"/proc/{pid}/net/dev") as f:
            return parse_net_dev_interfaces(f.read())
    except (OSError, ValueError):
        return {}


def memory_used(stats: cgroups.Stats) -> int:
    """docker's memory usage: the cgroup's usage minus its inactive page cache."""
    usage = stats.memory_usage or 0
    inactive = stats.memory_inactive_file or 0
    return usage - inactive if inactive < usage else usage


def _host_memory() -> int:
    from nerdpy.engine.system.info import _mem_total

    return _mem_total()


def sample(store: Store, c: Container) -> Sample:
    """Read a container's counters now."""
    state = container_state(store, c)
    if not state.running or not state.pid:
        return Sample(running=False)
    st = cgroups.read_stats(cgroups.container_path(store.namespace, c.id))
    limit = st.memory_limit
    host = _host_memory()
    if limit is None or (host and limit > host):
        limit = host
    rx, tx = net_totals(network_interfaces(state.pid))
    return Sample(running=True, cpu_ns=st.cpu_usage_ns, system_ns=system_cpu_ns(), mem_usage=memory_used(st),
                  mem_limit=limit or 0, net_rx=rx, net_tx=tx, blk_read=st.blkio_read or 0,
                  blk_write=st.blkio_write or 0, pids=st.pids_current or 0)


def cpu_percent(before: Sample, after: Sample, ncpu: int | None = None) -> float:
    """docker's calculateCPUPercentUnix: container CPU delta over host CPU delta, times the CPUs."""
    if None in (before.cpu_ns, after.cpu_ns, before.system_ns, after.system_ns):
        return 0.0
    cpu_delta = after.cpu_ns - before.cpu_ns
    system_delta = after.system_ns - before.system_ns
    if cpu_delta <= 0 or system_delta <= 0:
        return 0.0
    return cpu_delta / system_delta * (ncpu or os.cpu_count() or 1) * 100.0


def usage(c: Container, before: Sample, after: Sample) -> Usage:
    """The stats entry from two samples of one container."""
    mem_pct = after.mem_usage / after.mem_limit * 100.0 if after.mem_limit else 0.0
    return Usage(id=c.id, name=c.name, cpu_percent=cpu_percent(before, after) if after.running else 0.0,
                 mem_usage=after.mem_usage, mem_limit=after.mem_limit, mem_percent=mem_pct,
                 net_rx=after.net_rx, net_tx=after.net_tx, blk_read=after.blk_read,
                 blk_write=after.blk_write, pids=after.pids)


def stats_once(store: Store, containers: list[Container], interval: float = 1.0,
               previous: dict[str, Sample] | None = None) -> tuple[list[Usage], dict[str, Sample]]:
    """One round of `stats`: sample every container, then (unless `previous` samples are given)
    sample again after `interval` seconds. Returns the entries and the last samples (the
    `previous` of the next round when streaming)."""
    if previous is None:
        previous = {c.id: sample(store, c) for c in containers}
        time.sleep(interval)
    now = {c.id: sample(store, c) for c in containers}
    out = [usage(c, previous.get(c.id, now[c.id]), now[c.id]) for c in containers]
    return out, now
