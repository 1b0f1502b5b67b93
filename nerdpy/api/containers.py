"""Container endpoints: create (through the options `run` takes), list, inspect, start, stop,
restart, kill, wait, remove, logs, attach (hijacked), resize, top, pause, unpause, rename,
prune (archive.py has cp and export, stats.py the stats).

Attach and wait talk to the container's monitor over its attach socket. A client that attaches
(or waits for the next exit) before the container starts is connected by the start request of
this service before the process runs, so it misses no output and no exit."""
from __future__ import annotations

import asyncio
import json
import os
import time

from aiohttp import web

from nerdpy.api.common import ApiError, bad_request, engine_of, json_body, qbool, qfilters, qint
from nerdpy.api.streams import (MULTIPLEXED, RAW, Cancelled, Hijacked, finish, frame, iterate_in_thread,
                                wants_upgrade)


def _find(store, ref: str):
    from nerdpy.engine.containers.records import find_container

    return find_container(store, ref)


def _state(store, ref: str):
    from nerdpy.engine.containers.records import container_state

    c = _find(store, ref)
    return c, container_state(store, c)


# -- create, list, inspect -------------------------------------------------------------------------
def create_in_store(store, body: dict, name: str | None, platform: str | None = None) -> str:
    """Config + HostConfig -> the flags of `create` -> engine/containers/options (the CLI's
    conversions and checks, the CLI's messages) -> create_container."""
    from nerdpy.api.convert import create_options
    from nerdpy.commands.run import _check_user, _image_platform_error
    from nerdpy.engine.containers.lifecycle import create_container
    from nerdpy.engine.containers.options import build_spec, check_spec
    from nerdpy.engine.errors import ImageNotFound
    from nerdpy.engine.images.image import lookup_images

    image, cmd, o, extra = create_options(body, name)
    if o["log_driver"] not in (None, "json-file", "none"):
        raise bad_request(f"log driver {o['log_driver']!r} is not supported (json-file)")
    if extra.get("_links"):
        from nerdpy.api.convert import link_hosts

        o["add_host"] = tuple(o["add_host"]) + tuple(link_hosts(store, extra["_links"]))
    spec = build_spec(image, tuple(cmd), o)
    if extra:  # what flags cannot say (a multi-word entrypoint, a CMD healthcheck): checked again
        for k, v in extra.items():
            if not k.startswith("_"):
                setattr(spec, k, v)
        for net, aliases in (extra.get("_more_aliases") or {}).items():
            for a in spec.networks:
                if a["name"] == net:
                    a["aliases"] = list(aliases)
        check_spec(spec)
    found = lookup_images(store, image)
    if not found:
        raise ImageNotFound(f"No such image: {image}")
    if platform:
        from nerdpy.engine.distribution.platforms import parse_platform

        err = _image_platform_error(store, found[0], image, parse_platform(platform))
        if err:
            raise ImageNotFound(err)
    _check_user(store, spec)
    return create_container(store, spec).id


async def create(request: web.Request) -> web.Response:
    body = await json_body(request)
    name = request.query.get("name") or None
    cid = await engine_of(request).run(create_in_store, body, name, request.query.get("platform") or None)
    return web.json_response({"Id": cid, "Warnings": []}, status=201)


def _list(store, all_: bool, limit: int | None, size: bool, filters: dict) -> list[dict]:
    from nerdpy.api.convert import container_summary
    from nerdpy.api.common import filters_as_flags
    from nerdpy.commands.ps import _filter, container_rows
    from nerdpy.engine.containers.records import list_containers

    cs = list_containers(store)
    if limit is not None and limit > 0:
        cs = cs[:limit]
        all_ = True
    rows = container_rows(store, cs, True, False)
    if not all_:
        rows = [r for r in rows if r["_state"].status in ("running", "paused", "restarting")]
    flags = []
    for f in filters_as_flags(filters):
        if f.startswith("name="):
            f = "name=" + f[5:].lstrip("/")
        flags.append(f)
    rows = _filter(store, rows, flags)  # the CLI's filters
    out = []
    for r in rows:
        s = container_summary(store, r["_c"], r["_state"])
        if size:
            s["SizeRw"] = 0
        out.append(s)
    return out


async def list_(request: web.Request) -> web.Response:
    rows = await engine_of(request).run(_list, qbool(request, "all"), qint(request, "limit"),
                                        qbool(request, "size"), qfilters(request))
    return web.json_response(rows)


def _inspect(store, ref: str, size: bool) -> dict:
    from nerdpy.engine.containers.inspect import container_json

    doc = container_json(store, _find(store, ref))
    if size:
        doc["SizeRw"] = 0
        doc["SizeRootFs"] = 0
    return doc


async def inspect(request: web.Request) -> web.Response:
    return web.json_response(await engine_of(request).run(_inspect, request.match_info["id"], qbool(request, "size")))


# -- start, stop, restart, kill, pause, unpause, rename --------------------------------------------
class Waiter:
    """A client waiting for a container's monitor: attach (output) or wait (the exit)."""

    def __init__(self, hello: dict):
        self.hello = hello
        self.future: asyncio.Future = asyncio.get_running_loop().create_future()


def _register(eng, cid: str, w: Waiter) -> None:
    """Queue `w` for the container's next start through this service (start pops the queue)."""
    eng.pending_attach.setdefault(cid, []).append(w)


async def _missed_start(eng, c, st, w: Waiter):
    """After `_register`: the container's state now when a start began between the read of `st`
    and the registration (that start popped the queue without `w`, whose future is then never
    set: `w` is withdrawn), else None. A start pops the queue before it changes the state, so a
    changed state with `w` still queued means the start missed it."""
    from nerdpy.engine.errors import NotFound

    try:
        _, now = await eng.run(_state, c.id)
    except NotFound:
        now = None
    queue = eng.pending_attach.get(c.id) or []
    if w not in queue or (now is not None and (now.status, now.started_at) == (st.status, st.started_at)):
        return None
    queue.remove(w)
    return now if now is not None else st


async def _await_start(eng, c, st, w: Waiter, hello: dict):
    """The monitor connection for queued `w` once the container starts: through this service's
    start (which sets w's future) or, looked for every second, a start elsewhere (`nerdpy start`)
    or one that went by before `w` was queued; then `w` is withdrawn and the running container
    joined. None when it ran and exited meanwhile. A failed start of this service raises."""
    while True:
        missed = await _missed_start(eng, c, st, w)
        if missed is not None:
            if not missed.running:
                return None
            try:
                return await eng.run(lambda store: _connect(store, c, hello))
            except OSError:
                return None
        try:
            return await asyncio.wait_for(asyncio.shield(w.future), 1.0)
        except asyncio.TimeoutError:
            continue


def _monitor_socket(store, c):
    from nerdpy.engine.containers.records import run_dir

    return os.path.join(run_dir(store, c.id), "attach.sock")


def _connect(store, c, hello: dict):
    from nerdpy.engine.runtime.monitor.handoff import connect_monitor

    return connect_monitor(_monitor_socket(store, c), hello, timeout=10)


def _start(store, ref: str, waiters: list[Waiter], loop) -> bool:
    """False when it runs already (docker's 304)."""
    from nerdpy.engine.containers.lifecycle import prepare_start

    c, st = _state(store, ref)
    if st.running:
        if st.status == "paused":
            raise ApiError(409, f"cannot start a paused container {c.name}, try unpause instead")
        return False
    handle = prepare_start(store, c)
    socks = []
    try:
        for w in waiters:
            try:
                socks.append((w, _connect(store, c, w.hello)))
            except OSError as e:
                socks.append((w, e))
    except BaseException:
        handle.abort()
        raise
    try:
        handle.start()
    finally:
        for w, s in socks:
            if isinstance(s, BaseException):
                loop.call_soon_threadsafe(_settle, w.future, None, s)
            else:
                loop.call_soon_threadsafe(_settle, w.future, s, None)
    return True


def _settle(fut: asyncio.Future, result, exc) -> None:
    if fut.done():
        if result is not None:
            result.close()
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


async def start(request: web.Request) -> web.Response:
    eng = engine_of(request)
    cid = (await eng.run(_find, request.match_info["id"])).id
    waiters = eng.pending_attach.pop(cid, [])
    try:
        started = await eng.run(_start, cid, waiters, asyncio.get_running_loop())
    except BaseException as e:
        for w in waiters:
            if not w.future.done():
                w.future.set_exception(e if isinstance(e, Exception) else ConnectionError("start failed"))
        raise
    if not started:
        for w in waiters:
            eng.pending_attach.setdefault(cid, []).append(w)
        return web.Response(status=304)
    return web.Response(status=204)


def _stop(store, ref: str, t: int | None, sig: str | None) -> bool:
    from nerdpy.engine.containers.lifecycle import stop_container

    c, st = _state(store, ref)
    if not st.running:
        return False
    stop_container(store, c, timeout=t, sig=sig)
    return True


async def stop(request: web.Request) -> web.Response:
    done = await engine_of(request).run(_stop, request.match_info["id"], qint(request, "t"),
                                        request.query.get("signal") or None)
    return web.Response(status=204 if done else 304)


async def restart(request: web.Request) -> web.Response:
    eng = engine_of(request)
    ref = request.match_info["id"]
    await eng.run(_stop, ref, qint(request, "t"), request.query.get("signal") or None)
    await eng.run(_start, ref, [], asyncio.get_running_loop())
    return web.Response(status=204)


def _kill(store, ref: str, sig: str) -> None:
    from nerdpy.engine.containers.lifecycle import kill_container

    kill_container(store, _find(store, ref), sig)


async def kill(request: web.Request) -> web.Response:
    sig = request.query.get("signal") or "KILL"
    await engine_of(request).run(_kill, request.match_info["id"], sig)
    return web.Response(status=204)


def _simple(fn_name: str):
    async def handler(request: web.Request) -> web.Response:
        from nerdpy.engine.containers import records

        fn = getattr(records, fn_name)
        await engine_of(request).run(lambda store: fn(store, _find(store, request.match_info["id"])))
        return web.Response(status=204)

    return handler


async def rename(request: web.Request) -> web.Response:
    from nerdpy.engine.containers.records import rename_container

    new = request.query.get("name") or ""
    await engine_of(request).run(lambda store: rename_container(store, _find(store, request.match_info["id"]), new))
    return web.Response(status=204)


async def update(request: web.Request) -> web.Response:
    """POST /containers/{id}/update: docker's resources and RestartPolicy, through the same
    parser and checks as `nerdpy update` (engine/containers/update.py)."""
    from nerdpy.engine.containers.update import parse_update, update_container

    body = await json_body(request)
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    flags: dict[str, str] = {}
    for key, name in (("Memory", "memory"), ("MemorySwap", "memory_swap"), ("MemoryReservation", "memory_reservation"),
                      ("CpuShares", "cpu_shares"), ("CpuPeriod", "cpu_period"), ("CpuQuota", "cpu_quota"),
                      ("CpusetCpus", "cpuset_cpus"), ("CpusetMems", "cpuset_mems"), ("PidsLimit", "pids_limit"),
                      ("BlkioWeight", "blkio_weight")):
        v = body.get(key)
        if v not in (None, "", 0):
            flags[name] = str(v)
    if body.get("NanoCpus"):
        flags["cpus"] = str(int(body["NanoCpus"]) / 1e9)
    policy = body.get("RestartPolicy") or {}
    if policy.get("Name"):
        n = int(policy.get("MaximumRetryCount") or 0)
        flags["restart"] = policy["Name"] + (f":{n}" if n and policy["Name"] == "on-failure" else "")
    req = parse_update(flags)
    await engine_of(request).run(lambda store: update_container(store, _find(store, request.match_info["id"]), req))
    return web.json_response({"Warnings": []})


async def changes(request: web.Request) -> web.Response:
    """GET /containers/{id}/changes: the writable layer's A/C/D entries (`nerdpy diff`)."""
    from nerdpy.engine.containers.diff import container_changes

    found = await engine_of(request).run(
        lambda store: container_changes(store, _find(store, request.match_info["id"])))
    return web.json_response([{"Path": ch.path, "Kind": ch.kind_code} for ch in found] or None)


async def resize(request: web.Request) -> web.Response:
    h, w = qint(request, "h", 0), qint(request, "w", 0)

    def do(store):
        c, st = _state(store, request.match_info["id"])
        if not st.running:
            raise ApiError(409, f"container {c.name} is not running")
        if not c.spec.tty:
            return
        s = _connect(store, c, {"stdin": False, "stdout": False, "stderr": False, "resize": [h, w]})
        s.close()

    await engine_of(request).run(do)
    return web.Response(status=200)


def _top(store, ref: str, ps_args: str | None) -> dict:
    import shlex

    from nerdpy.engine.containers.records import container_top

    titles, rows = container_top(store, _find(store, ref), shlex.split(ps_args) if ps_args else None)
    return {"Titles": titles, "Processes": rows}


async def top(request: web.Request) -> web.Response:
    return web.json_response(await engine_of(request).run(_top, request.match_info["id"],
                                                          request.query.get("ps_args")))


# -- wait ------------------------------------------------------------------------------------------
async def _read_exit(sock) -> int | None:
    """Frames from the monitor until its EXIT frame; the exit code (None: it went away)."""
    import struct

    reader, writer = await asyncio.open_unix_connection(sock=sock)
    try:
        while True:
            head = await reader.readexactly(8)
            kind, size = struct.unpack(">BxxxI", head)
            payload = await reader.readexactly(size)
            if kind == 3:
                try:
                    return int(json.loads(payload)["exit_code"])
                except (ValueError, KeyError, TypeError):
                    return None
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    finally:
        writer.close()


async def wait(request: web.Request) -> web.StreamResponse:
    eng = engine_of(request)
    cond = request.query.get("condition") or "not-running"
    if cond not in ("not-running", "next-exit", "removed"):
        raise bad_request(f"invalid condition: {cond!r} (not-running, next-exit or removed)")
    c, st = await eng.run(_state, request.match_info["id"])
    # docker sends the headers at once (clients go on, and start the container, only then)
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    hello = {"stdin": False, "stdout": False, "stderr": False}
    code: int | None = None
    try:
        if st.running:
            try:
                sock = await eng.run(lambda store: _connect(store, c, hello))
            except OSError:
                sock = None
            if sock is not None:
                code = await _read_exit(sock)
        elif cond == "not-running":
            doc = {"StatusCode": st.exit_code if st.status != "created" else 0, "Error": None}
            await resp.write(json.dumps(doc).encode() + b"\n")
            await finish(resp)
            return resp
        else:
            # not running yet: the start of this service connects us before the process runs
            w = Waiter(hello)
            _register(eng, c.id, w)
            try:
                sock = await _await_start(eng, c, st, w, hello)
            except Exception:  # noqa: BLE001 (start failed: the state says what happened)
                sock = None
            finally:
                lst = eng.pending_attach.get(c.id) or []
                if w in lst:
                    lst.remove(w)
            if sock is not None:
                code = await _read_exit(sock)
        # the final state (the monitor records it before it closes the connection)
        doc = await eng.run(_final, c.id, code, cond)
    except Exception as e:  # noqa: BLE001 (headers are out: docker's error shape in the body)
        from nerdpy.api.common import message_of

        doc = {"StatusCode": -1, "Error": {"Message": message_of(e)}}
    try:
        await resp.write(json.dumps(doc).encode() + b"\n")
    except (ConnectionError, RuntimeError):
        return resp
    await finish(resp)
    return resp


def _final(store, cid: str, code: int | None, cond: str) -> dict:
    from nerdpy.engine.containers.lifecycle import wait_container
    from nerdpy.engine.containers.records import ContainerNotFound, container_state

    deadline = time.monotonic() + 30
    while True:
        try:
            c = _find(store, cid)
        except ContainerNotFound:
            return {"StatusCode": code if code is not None else 0, "Error": None}
        st = container_state(store, c)
        if code is None and st.running:
            got = wait_container(store, c, timeout=None)
            code = got if got is not None else 0
            continue
        if cond != "removed" or time.monotonic() > deadline:
            return {"StatusCode": code if code is not None else st.exit_code, "Error": None}
        time.sleep(0.05)


# -- remove, prune ---------------------------------------------------------------------------------
def _remove(store, ref: str, force: bool, volumes: bool) -> None:
    from nerdpy.engine.containers.lifecycle import remove_container

    remove_container(store, _find(store, ref), force=force, volumes=volumes)


async def remove(request: web.Request) -> web.Response:
    if qbool(request, "link"):
        raise bad_request("links are not supported")
    await engine_of(request).run(_remove, request.match_info["id"], qbool(request, "force"), qbool(request, "v"))
    return web.Response(status=204)


def _prune(store, filters: dict) -> dict:
    from nerdpy.api.common import filters_as_flags
    from nerdpy.engine.system.prune import prune_containers
    from nerdpy.engine.system.prunefilter import parse_prune_filters

    flt = parse_prune_filters(filters_as_flags(filters), "container")  # the CLI's filters, checked alike
    deleted, space = prune_containers(store, flt)
    return {"ContainersDeleted": deleted or None, "SpaceReclaimed": space}


async def prune(request: web.Request) -> web.Response:
    return web.json_response(await engine_of(request).run(_prune, qfilters(request)))


# -- logs ------------------------------------------------------------------------------------------
def _since(v: str | None) -> float | None:
    if not v or v == "0":
        return None
    try:
        return float(v)
    except ValueError:
        from nerdpy.engine.system.events import parse_time_arg

        return parse_time_arg(v)


async def logs(request: web.Request) -> web.StreamResponse:
    from nerdpy.engine.containers.logs import read_logs
    from nerdpy.engine.containers.records import container_state

    eng = engine_of(request)
    out, err = qbool(request, "stdout"), qbool(request, "stderr")
    if not (out or err):
        raise bad_request("Bad parameters: you must choose at least one stream")
    follow, ts = qbool(request, "follow"), qbool(request, "timestamps")
    tail_s = request.query.get("tail") or "all"
    if tail_s == "all":
        tail = None
    else:
        try:
            tail = int(tail_s)
        except ValueError:
            raise bad_request(f"invalid tail: {tail_s!r}") from None
        if tail < 0:
            tail = None
    since, until = _since(request.query.get("since")), _since(request.query.get("until"))
    c = await eng.run(_find, request.match_info["id"])
    tty = bool(c.spec.tty)
    resp = web.StreamResponse(headers={"Content-Type": RAW if tty else MULTIPLEXED})
    await resp.prepare(request)
    cancel = Cancelled()

    def make():
        store = eng.store()

        def running() -> bool:
            if cancel:
                return False
            try:
                return container_state(store, c).running
            except Exception:  # noqa: BLE001 (removed meanwhile)
                return False

        return read_logs(store, c, tail=tail, since=since, until=until, follow=follow, running=running)

    try:
        async for e in iterate_in_thread(eng.pool, make, cancel):
            stream = 2 if e.get("stream") == "stderr" else 1
            if (stream == 2 and not err) or (stream == 1 and not out):
                continue
            data = ((e.get("time", "") + " ") if ts else "") + e.get("log", "")
            b = data.encode()
            await resp.write(b if tty else frame(stream, b))
    except (ConnectionError, RuntimeError):
        cancel.set()
        return resp
    await finish(resp)
    return resp


# -- attach ----------------------------------------------------------------------------------------
async def attach(request: web.Request) -> web.StreamResponse:
    eng = engine_of(request)
    c, st = await eng.run(_state, request.match_info["id"])
    want_in, want_out, want_err = qbool(request, "stdin"), qbool(request, "stdout"), qbool(request, "stderr")
    stream, with_logs = qbool(request, "stream"), qbool(request, "logs")
    tty = bool(c.spec.tty)
    if want_in and not c.spec.stdin_open:
        want_in = False
    hello = {"stdin": want_in, "stdout": want_out, "stderr": want_err}
    resp = Hijacked(wants_upgrade(request), RAW if tty else MULTIPLEXED)
    # queued for the start before the upgrade goes out (the client starts the container once it
    # has it): reading logs or recording the event first would let a quick start go by without us
    w = Waiter(hello) if stream and not st.running else None
    if w is not None:
        _register(eng, c.id, w)

    async def send(kind: int, data: bytes) -> None:
        await resp.write(data if tty else frame(kind, data))

    try:
        await resp.prepare(request)
        if with_logs:
            from nerdpy.engine.containers.logs import read_logs

            entries = await eng.run(lambda store: list(read_logs(store, c)))
            for e in entries:
                kind = 2 if e.get("stream") == "stderr" else 1
                if (kind == 1 and want_out) or (kind == 2 and want_err):
                    await send(kind, e.get("log", "").encode())
        if not stream:
            return resp
        from nerdpy.engine.containers.records import container_event

        await eng.run(lambda store: container_event(store, c, "attach"))
        sock = None
        if w is None:
            try:
                sock = await eng.run(lambda store: _connect(store, c, hello))
            except OSError:
                sock = None
        else:
            started = asyncio.ensure_future(_await_start(eng, c, st, w, hello))
            reader_task = asyncio.ensure_future(resp.read()) if want_in else None
            try:
                if reader_task is not None:
                    # the client may hang up while we wait for the start
                    done, _ = await asyncio.wait({started, reader_task}, return_when=asyncio.FIRST_COMPLETED)
                    if started not in done:
                        # input before the start (or its end: `docker-compose run` closes stdin
                        # at once), kept for the container
                        first = reader_task.result()
                        sock = await started
                        if sock is None:
                            return resp
                        return await _pump(resp, sock, tty, want_in, first, stdin_ended=not first)
                sock = await started
            except Exception:  # noqa: BLE001 (the start failed)
                sock = None
            finally:
                lst = eng.pending_attach.get(c.id) or []
                if w in lst:
                    lst.remove(w)
                if not started.done():
                    started.cancel()
                if reader_task is not None and not reader_task.done():
                    reader_task.cancel()
        if sock is None:
            return resp
        return await _pump(resp, sock, tty, want_in)
    finally:
        if w is not None:
            lst = eng.pending_attach.get(c.id) or []
            if w in lst:
                lst.remove(w)
        resp.close_connection(request)


async def _pump(resp: Hijacked, sock, tty: bool, want_in: bool, pending: bytes = b"",
                stdin_ended: bool = False) -> Hijacked:
    """Copy the monitor's frames to the client (raw for a TTY) and the client's bytes to the
    container's stdin, until the container exits or the client goes away."""
    import struct

    reader, writer = await asyncio.open_unix_connection(sock=sock)

    async def to_container() -> None:
        data = pending
        while True:
            if data:
                writer.write(frame(0, data))
                await writer.drain()
            data = b"" if stdin_ended else await resp.read()
            if not data:
                writer.write(frame(2, b""))  # close stdin
                await writer.drain()
                return

    in_task = asyncio.ensure_future(to_container()) if want_in else None
    try:
        while True:
            head = await reader.readexactly(8)
            kind, size = struct.unpack(">BxxxI", head)
            payload = await reader.readexactly(size)
            if kind in (1, 2):
                await resp.write(payload if tty else frame(kind, payload))
            elif kind == 3:
                break
    except (asyncio.IncompleteReadError, ConnectionError, RuntimeError):
        pass
    finally:
        if in_task is not None:
            in_task.cancel()
        writer.close()
    return resp


ROUTES = [
    ("POST", "/containers/create", create),
    ("GET", "/containers/json", list_),
    ("POST", "/containers/prune", prune),
    ("GET", "/containers/{id}/json", inspect),
    ("POST", "/containers/{id}/start", start),
    ("POST", "/containers/{id}/stop", stop),
    ("POST", "/containers/{id}/restart", restart),
    ("POST", "/containers/{id}/kill", kill),
    ("POST", "/containers/{id}/wait", wait),
    ("POST", "/containers/{id}/pause", _simple("pause_container")),
    ("POST", "/containers/{id}/unpause", _simple("unpause_container")),
    ("POST", "/containers/{id}/rename", rename),
    ("POST", "/containers/{id}/resize", resize),
    ("POST", "/containers/{id}/update", update),
    ("GET", "/containers/{id}/changes", changes),
    ("GET", "/containers/{id}/top", top),
    ("GET", "/containers/{id}/logs", logs),
    ("POST", "/containers/{id}/attach", attach),
    ("DELETE", "/containers/{id}", remove),
]
