"""Files of a container: archive GET/HEAD/PUT (docker cp: a tar of a path, its stat in the
X-Docker-Container-Path-Stat header, a tar extracted into a directory) and export (its whole
filesystem as a tar)."""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import stat as _stat

from aiohttp import web

from nerdpy.api.common import bad_request, engine_of, qbool
from nerdpy.api.containers import _find
from nerdpy.api.streams import BodyReader, Cancelled, ResponseWriter, finish


# -- archive (cp) ----------------------------------------------------------------------------------
def _go_mode(mode: int) -> int:
    """st_mode -> Go's os.FileMode, which docker's path stat carries."""
    out = mode & 0o777
    if _stat.S_ISDIR(mode):
        out |= 1 << 31
    elif _stat.S_ISLNK(mode):
        out |= 1 << 27
    elif _stat.S_ISFIFO(mode):
        out |= 1 << 25
    elif _stat.S_ISSOCK(mode):
        out |= 1 << 24
    elif _stat.S_ISBLK(mode):
        out |= 1 << 26
    elif _stat.S_ISCHR(mode):
        out |= (1 << 26) | (1 << 21)
    if mode & _stat.S_ISUID:
        out |= 1 << 23
    if mode & _stat.S_ISGID:
        out |= 1 << 22
    if mode & _stat.S_ISVTX:
        out |= 1 << 20
    return out


def _stat_header(st) -> str:
    mtime = dt.datetime.fromtimestamp(st.mtime, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    doc = {"name": st.name, "size": st.size, "mode": _go_mode(st.mode), "mtime": mtime,
           "linkTarget": st.link_target}
    return base64.b64encode(json.dumps(doc).encode()).decode()


def _path_arg(request: web.Request) -> str:
    path = request.query.get("path")
    if not path:
        raise bad_request("path is required")
    if "\x00" in path:
        raise bad_request("invalid path")
    return path


def _stat_of(store, ref: str, path: str):
    from nerdpy.engine.containers.cp import stat_path

    c = _find(store, ref)
    return c, stat_path(store, c, path)


async def archive_head(request: web.Request) -> web.Response:
    _c, st = await engine_of(request).run(_stat_of, request.match_info["id"], _path_arg(request))
    return web.Response(status=200, headers={"X-Docker-Container-Path-Stat": _stat_header(st)})


async def archive_get(request: web.Request) -> web.StreamResponse:
    from nerdpy.engine.containers.cp import archive_to

    eng = engine_of(request)
    path = _path_arg(request)
    c, st = await eng.run(_stat_of, request.match_info["id"], path)
    resp = web.StreamResponse(headers={"Content-Type": "application/x-tar",
                                       "X-Docker-Container-Path-Stat": _stat_header(st)})
    await resp.prepare(request)
    cancel = Cancelled()
    out = ResponseWriter(resp, asyncio.get_running_loop(), cancel)
    try:
        await eng.run(lambda store: archive_to(store, c, path, out))
    except (BrokenPipeError, ConnectionError):
        return resp
    await finish(resp)
    return resp


async def archive_put(request: web.Request) -> web.Response:
    from nerdpy.engine.containers.cp import extract_to_container

    eng = engine_of(request)
    path = _path_arg(request)
    copy_ids = qbool(request, "copyUIDGID")
    body = BodyReader(request, asyncio.get_running_loop())

    def do(store):
        c = _find(store, request.match_info["id"])
        extract_to_container(store, c, path, body, copy_uid_gid=copy_ids)

    await eng.run(do)
    return web.Response(status=200)


async def export(request: web.Request) -> web.StreamResponse:
    from nerdpy.engine.containers.export import export_container as fn

    eng = engine_of(request)
    c = await eng.run(_find, request.match_info["id"])
    resp = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
    await resp.prepare(request)
    out = ResponseWriter(resp, asyncio.get_running_loop(), Cancelled())
    try:
        await eng.run(lambda store: fn(store, c, out))
    except (BrokenPipeError, ConnectionError):
        return resp
    await finish(resp)
    return resp


ROUTES = [
    ("HEAD", "/containers/{id}/archive", archive_head),
    ("GET", "/containers/{id}/archive", archive_get),
    ("PUT", "/containers/{id}/archive", archive_put),
    ("GET", "/containers/{id}/export", export),
]
