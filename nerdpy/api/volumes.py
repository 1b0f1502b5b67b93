"""Volume endpoints: list (filters), create, inspect, remove, prune."""
from __future__ import annotations

from aiohttp import web

from nerdpy.api.common import bad_request, engine_of, filters_as_flags, json_body, qbool, qfilters


def _list(store, filters: dict) -> dict:
    from nerdpy.engine.containers.volumes import filter_volumes, list_volumes, volume_json

    vols = filter_volumes(store, list_volumes(store), filters_as_flags(filters))
    return {"Volumes": [volume_json(store, v) for v in vols], "Warnings": []}


async def list_(request: web.Request) -> web.Response:
    return web.json_response(await engine_of(request).run(_list, qfilters(request)))


async def create(request: web.Request) -> web.Response:
    from nerdpy.engine.containers.volumes import create_volume, volume_json

    body = await json_body(request, required=False)
    labels = body.get("Labels") or {}
    if not isinstance(labels, dict):
        raise bad_request("Labels must be an object")
    if body.get("ClusterVolumeSpec"):
        raise bad_request("cluster volumes are not supported")

    def do(store):
        v = create_volume(store, body.get("Name") or None, labels={str(k): str(x) for k, x in labels.items()},
                          driver=body.get("Driver") or "local", options=body.get("DriverOpts") or None)
        return volume_json(store, v)

    return web.json_response(await engine_of(request).run(do), status=201)


async def inspect(request: web.Request) -> web.Response:
    from nerdpy.engine.containers.volumes import find_volume, volume_json

    name = request.match_info["name"]
    return web.json_response(await engine_of(request).run(lambda store: volume_json(store, find_volume(store, name))))


async def remove(request: web.Request) -> web.Response:
    from nerdpy.engine.containers.volumes import remove_volume

    await engine_of(request).run(remove_volume, request.match_info["name"], force=qbool(request, "force"))
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    from nerdpy.engine.containers.volumes import prune_volumes

    filters = qfilters(request)
    all_ = (filters.pop("all", None) or ["false"])[0].lower() in ("true", "1")
    names, space = await engine_of(request).run(prune_volumes, all_, filters_as_flags(filters))
    return web.json_response({"VolumesDeleted": names or None, "SpaceReclaimed": space})


ROUTES = [
    ("GET", "/volumes", list_),
    ("POST", "/volumes/create", create),
    ("POST", "/volumes/prune", prune),
    ("GET", "/volumes/{name}", inspect),
    ("DELETE", "/volumes/{name}", remove),
]
