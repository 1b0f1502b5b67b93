"""The compose commands that watch or copy rather than converge: `events` (the engine's event
journal, narrowed to the project, in docker compose's shapes), and `wait` (`stats` is the engine's,
nerdpy.engine.containers.stats).
Printing stays in nerdpy.commands.compose; this module returns data."""
from __future__ import annotations

import datetime as _dt
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
def project_label(c) -> str:
    return labels_of(c).get(m.LABEL_PROJECT, "")
