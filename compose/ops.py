"""The compose commands that watch or copy rather than converge: `events` (the engine's event
journal, narrowed to the project, in docker compose's shapes), `stats` (cgroup samples of the
project's containers) and `wait`.
Printing stays in nerdpy.commands.compose; this module returns data."""
from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from compose import model as m
from compose.runtime import Runtime, labels_of, service_of


# -- events ---------------------------------------------------------------------------------------
@dataclass
class ComposeEvent:
    time_ns: int
    action: str
    container_id: str
    service: str
    attributes: dict

    def as_json(self) -> dict:
        """docker compose's `events --json` object."""
        return {"time": _rfc3339(self.time_ns), "type": "container", "service": self.service,
                "id": self.container_id, "action": self.action, "attributes": self.attributes}

    def as_line(self) -> str:
        """docker compose's text line: `2024-01-02 03:04:05.123456 container start ID (k=v, ...)`."""
        t = _dt.datetime.fromtimestamp(self.time_ns / 1e9).strftime("%Y-%m-%d %H:%M:%S.%f")
        attrs = ", ".join(f"{k}={v}" for k, v in sorted(self.attributes.items()))
        return f"{t} container {self.action} {self.container_id} ({attrs})"


def _rfc3339(ns: int) -> str:
    d = _dt.datetime.fromtimestamp(ns // 1_000_000_000).astimezone()
    frac = f"{ns % 1_000_000_000:09d}".rstrip("0")
    off = d.strftime("%z")
    tz = "Z" if off in ("+0000", "") else f"{off[:3]}:{off[3:]}"
    return d.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + tz


def follow_project_events(rt: Runtime, services: list[str] | None = None,
                          stop: Callable[[], bool] | None = None) -> Iterator[ComposeEvent]:
    """The project's container events from now on (the engine's journal, tailed), as docker
    compose reports them: the service and the container's attributes, compose labels left out."""
    from nerdpy.engine.system.events import follow_events

    known: dict[str, str] = {}  # container id -> service, for this project
    foreign: set[str] = set()

    def refresh() -> None:
        for c in rt.containers(oneoff=None):
            known[c.id] = service_of(c)

    refresh()
    for ev in follow_events(rt.store, since=None, filters=["type=container"], stop=stop):
        actor = ev.get("Actor") or {}
        cid = actor.get("ID", "")
        if cid in foreign:
            continue
        if cid not in known:
            refresh()
            if cid not in known:
                foreign.add(cid)  # another project's (or no project's) container
                continue
        service = known[cid]
        if services and service not in services:
            continue
        attrs = {k: v for k, v in (actor.get("Attributes") or {}).items()
                 if not k.startswith("com.docker.compose.")}
        yield ComposeEvent(ev.get("timeNano", time.time_ns()), ev.get("Action", ""), cid, service, attrs)


# -- wait -----------------------------------------------------------------------------------------
def wait_all(rt: Runtime, services: list[str] | None, report: Callable[[object, int], None],
             poll: float = 0.1, first_only: bool = False) -> int:
    """`compose wait`: block until every selected container has stopped (`first_only`: until
    one has); `report(c, code)` as each one does; the status of the last one to stop."""
    pending = list(rt.containers(services))
    code = 0
    while pending:
        for c in list(pending):
            st = rt.state(c)
            if not st.running:
                pending.remove(c)
                code = st.exit_code or 0
                report(c, code)
                if first_only:
                    return code
        if pending:
            time.sleep(poll)
    return code


# -- stats ----------------------------------------------------------------------------------------
# A small reader over engine/runtime/cgroups.read_stats, until the engine has a stats module of its
# own (the top-level `stats` command's): then `sample` should call that instead.
@dataclass
class Sample:
    when: float
    cpu_ns: int | None
    mem_usage: int | None
    mem_limit: int | None
    pids: int | None
    blk_read: int | None
    blk_write: int | None
    net_rx: int | None
    net_tx: int | None


def _net_io(pid: int | None) -> tuple[int | None, int | None]:
    if not pid:
        return None, None
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return None, None
    rx = tx = 0
    for line in lines:
        name, _, rest = line.partition(":")
        if name.strip() == "lo":
            continue
        fields = rest.split()
        if len(fields) >= 9:
            rx += int(fields[0])
            tx += int(fields[8])
    return rx, tx


def sample(store, c, pid: int | None) -> Sample:
    from nerdpy.engine.runtime import cgroups

    s = cgroups.read_stats(cgroups.container_path(store.namespace, c.id))
    usage = s.memory_usage
    if usage is not None and s.memory_inactive_file is not None and s.memory_inactive_file < usage:
        usage -= s.memory_inactive_file
    limit = s.memory_limit
    if limit is None:
        limit = _host_memory()
    rx, tx = _net_io(pid)
    return Sample(time.monotonic(), s.cpu_usage_ns, usage, limit, s.pids_current, s.blkio_read,
                  s.blkio_write, rx, tx)


def _host_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def _size(n: int | None, binary: bool) -> str:
    if n is None:
        return "--"
    units = ["B", "KiB", "MiB", "GiB", "TiB"] if binary else ["B", "kB", "MB", "GB", "TB"]
    base = 1024.0 if binary else 1000.0
    v = float(n)
    i = 0
    while v >= base and i < len(units) - 1:
        v /= base
        i += 1
    return f"{v:.4g}{units[i]}" if i else f"{int(v)}B"


def stats_row(c, prev: Sample | None, cur: Sample, no_trunc: bool = False) -> dict:
    """One `stats` row with docker's keys ({{json .}}): CPU over the interval since `prev`."""
    cpu = 0.0
    if prev is not None and prev.cpu_ns is not None and cur.cpu_ns is not None and cur.when > prev.when:
        cpu = (cur.cpu_ns - prev.cpu_ns) / ((cur.when - prev.when) * 1e9) * 100.0
    mem_perc = (cur.mem_usage / cur.mem_limit * 100.0) if cur.mem_usage is not None and cur.mem_limit else 0.0
    return {
        "BlockIO": f"{_size(cur.blk_read, False)} / {_size(cur.blk_write, False)}",
        "CPUPerc": f"{cpu:.2f}%",
        "Container": c.id if no_trunc else c.id[:12],
        "ID": c.id if no_trunc else c.id[:12],
        "MemPerc": f"{mem_perc:.2f}%",
        "MemUsage": f"{_size(cur.mem_usage, True)} / {_size(cur.mem_limit, True)}",
        "Name": c.name,
        "NetIO": f"{_size(cur.net_rx, False)} / {_size(cur.net_tx, False)}",
        "PIDs": str(cur.pids if cur.pids is not None else 0),
    }


def project_label(c) -> str:
    return labels_of(c).get(m.LABEL_PROJECT, "")
