"""GET /containers/{id}/stats: docker's stats document from the container's cgroup counters
(engine/runtime/cgroups.read_stats) and its interfaces' counters (engine/containers/stats), streamed every second or once (`stream=false`: two reads
a second apart so that clients can compute the CPU percentage; `one-shot`: one read)."""
from __future__ import annotations

import asyncio
import datetime as dt
import os

from aiohttp import web

from nerdpy.api.common import engine_of, qbool
from nerdpy.api.containers import _find
from nerdpy.api.streams import finish, json_line

_ZERO_TIME = "0001-01-01T00:00:00Z"


def _sample(store, cid: str) -> dict:
    """One reading: {} when the container does not run."""
    from nerdpy.engine.containers.records import container_state, find_container
    from nerdpy.engine.containers.stats import network_interfaces, system_cpu_ns
    from nerdpy.engine.runtime.cgroups import container_path, read_stats

    c = find_container(store, cid)
    state = container_state(store, c)
    if not state.running:
        return {}
    st = read_stats(container_path(store.namespace, c.id))
    return {"stats": st, "system": system_cpu_ns() or 0, "networks": network_interfaces(state.pid) if state.pid else {},
            "read": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}


def _cpu(sample: dict) -> dict:
    st = sample.get("stats")
    return {"cpu_usage": {"total_usage": (st.cpu_usage_ns or 0) if st else 0, "usage_in_kernelmode": 0,
                          "usage_in_usermode": 0},
            "system_cpu_usage": sample.get("system", 0), "online_cpus": os.cpu_count() or 1,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def _doc(c, cur: dict, pre: dict) -> dict:
    st = cur.get("stats")
    mem: dict = {}
    if st is not None:
        limit = st.memory_limit
        if limit is None:
            from nerdpy.engine.system.info import _mem_total

            limit = _mem_total()
        mem = {"usage": st.memory_usage or 0, "limit": limit,
               "stats": {"inactive_file": st.memory_inactive_file or 0, "total_inactive_file": st.memory_inactive_file or 0}}
    blkio = []
    if st is not None and st.blkio_read is not None:
        blkio = [{"major": 0, "minor": 0, "op": "read", "value": st.blkio_read},
                 {"major": 0, "minor": 0, "op": "write", "value": st.blkio_write or 0}]
    return {
        "read": cur.get("read", _ZERO_TIME), "preread": pre.get("read", _ZERO_TIME),
        "pids_stats": {"current": (st.pids_current or 0) if st else 0,
                       **({"limit": st.pids_limit} if st is not None and st.pids_limit else {})},
        "blkio_stats": {"io_service_bytes_recursive": blkio or None},
        "num_procs": 0, "storage_stats": {},
        "cpu_stats": _cpu(cur), "precpu_stats": _cpu(pre),
        "memory_stats": mem,
        **({"networks": cur["networks"]} if cur.get("networks") else {}),
        "name": "/" + c.name, "id": c.id,
    }


async def stats(request: web.Request) -> web.StreamResponse:
    eng = engine_of(request)
    c = await eng.run(_find, request.match_info["id"])
    stream = qbool(request, "stream", True)
    one_shot = qbool(request, "one-shot")
    pre: dict = {}
    cur = await eng.run(_sample, c.id)
    if not stream:
        if not one_shot and cur:
            await asyncio.sleep(1)
            pre, cur = cur, await eng.run(_sample, c.id)
        return web.json_response(_doc(c, cur, pre))
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    try:
        while True:
            await resp.write(json_line(_doc(c, cur, pre)))
            if not cur:
                break  # not running: one document of zeros, as docker sends
            await asyncio.sleep(1)
            pre, cur = cur, await eng.run(_sample, c.id)
    except (ConnectionError, RuntimeError):
        return resp
    await finish(resp)
    return resp


ROUTES = [
    ("GET", "/containers/{id}/stats", stats),
]
