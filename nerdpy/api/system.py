"""System endpoints: /_ping and /version (what clients negotiate the API version with), /info,
/events (streamed, with filters and since/until), /system/df, /auth, and /build (refused: nerdpy
builds nothing)."""
from __future__ import annotations

import platform
import time

from aiohttp import web

from nerdpy.api.common import API_VERSION, MIN_API_VERSION, ApiError, bad_request, engine_of, json_body, qfilters
from nerdpy.api.streams import Cancelled, finish, iterate_in_thread, json_line

_PING_HEADERS = {"API-Version": API_VERSION, "Docker-Experimental": "false", "OSType": "linux",
                 "Builder-Version": "", "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}


async def ping(request: web.Request) -> web.Response:
    body = b"" if request.method == "HEAD" else b"OK"
    return web.Response(body=body, content_type="text/plain", headers=_PING_HEADERS)


def _version_doc(runc_version: str) -> dict:
    from nerdpy import __version__

    kernel = platform.release()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "Platform": {"Name": "nerdpy"},
        "Components": [
            {"Name": "Engine", "Version": __version__,
             "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux",
                         "Arch": arch, "KernelVersion": kernel, "Experimental": "false"}},
            {"Name": "runc", "Version": runc_version, "Details": {}},
        ],
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "python" + platform.python_version(),
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": kernel,
        "BuildTime": "",
    }


async def version(request: web.Request) -> web.Response:
    eng = engine_of(request)
    if "runc_version" not in request.app:
        from nerdpy.engine.system.info import _runc_version

        request.app["runc_version"] = (await eng.call(_runc_version, eng.settings.runc))[1]
    return web.json_response(_version_doc(request.app["runc_version"]))


def _info(store) -> dict:
    from nerdpy.engine.system.info import system_info

    info = system_info(store)
    extra = {
        "MemoryLimit": True, "SwapLimit": True, "KernelMemory": False, "CpuCfsPeriod": True,
        "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True, "PidsLimit": True, "IPv4Forwarding": True,
        "BridgeNfIptables": True, "BridgeNfIp6tables": True, "Debug": info.get("Debug", False),
        "NFd": 0, "OomKillDisable": False, "NGoroutines": 0, "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "NEventsListener": 0, "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}, "Mirrors": []},
        "HttpProxy": "", "HttpsProxy": "", "NoProxy": "", "Labels": [], "ExperimentalBuild": False,
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "", "ProductLicense": "",
        "ContainerdCommit": {"ID": ""}, "InitCommit": {"ID": ""}, "Swarm": {"LocalNodeState": "inactive"},
        "DefaultAddressPools": [],
    }
    for k, v in extra.items():
        info.setdefault(k, v)
    info["Plugins"] = dict(info.get("Plugins") or {})
    return info


async def info(request: web.Request) -> web.Response:
    return web.json_response(await engine_of(request).run(_info))


# -- events ----------------------------------------------------------------------------------------
def _time_arg(request: web.Request, name: str) -> float | None:
    v = request.query.get(name)
    if not v:
        return None
    from nerdpy.engine.system.events import parse_time_arg

    return parse_time_arg(v)


async def events(request: web.Request) -> web.StreamResponse:
    from nerdpy.api.common import filters_as_flags
    from nerdpy.engine.system.events import EventFilter, follow_events, public_event, read_events

    eng = engine_of(request)
    since = _time_arg(request, "since")
    until = _time_arg(request, "until")
    flt = EventFilter.parse(filters_as_flags(qfilters(request)))
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    cancel = Cancelled()
    store = eng.store  # each producer thread opens its own

    def make():
        if until is not None and until <= time.time():
            return read_events(store(), since=since, until=until, filters=flt)
        return follow_events(store(), since=since, until=until, filters=flt, stop=lambda: bool(cancel))

    try:
        async for ev in iterate_in_thread(eng.pool, make, cancel):
            await resp.write(json_line(public_event(ev)))
    except (ConnectionError, RuntimeError):
        cancel.set()
        return resp
    await finish(resp)
    return resp


# -- df, auth, build -------------------------------------------------------------------------------
def _df(store) -> dict:
    from nerdpy.api.convert import container_summary, image_summaries
    from nerdpy.engine.containers.records import list_containers
    from nerdpy.engine.containers.volumes import list_volumes, volume_json, volume_size, volumes_in_use
    from nerdpy.engine.system.df import disk_usage

    u = disk_usage(store)
    sizes = {c.id: c.size for c in u.containers}
    containers = []
    for c in list_containers(store):
        s = container_summary(store, c)
        s["SizeRw"] = sizes.get(c.id, 0)
        s["SizeRootFs"] = sizes.get(c.id, 0)
        containers.append(s)
    images = image_summaries(store)
    per = {i.image_id: i for i in u.images}
    for img in images:
        use = per.get(img["Id"])
        if use is not None:
            img["Size"] = img["VirtualSize"] = use.size
            img["SharedSize"] = use.shared
            img["Containers"] = use.containers
    in_use = volumes_in_use(store)
    vols = []
    for v in list_volumes(store):
        doc = volume_json(store, v)
        doc["UsageData"] = {"Size": volume_size(v), "RefCount": len(in_use.get(v.name, []))}
        vols.append(doc)
    return {"LayersSize": u.images_size, "Images": images, "Containers": containers, "Volumes": vols,
            "BuildCache": []}


async def df(request: web.Request) -> web.Response:
    return web.json_response(await engine_of(request).run(_df))


async def auth(request: web.Request) -> web.Response:
    body = await json_body(request)
    user, password = body.get("username") or "", body.get("password") or ""
    server = body.get("serveraddress") or "docker.io"
    if not user:
        raise bad_request("username is required")
    from nerdpy.engine.distribution.login import normalise_server

    def verify(store):  # docker's daemon only checks them; the client stores them
        registry, _ = normalise_server(server)
        return store.registry_client().check_login(registry, user, password)

    token = await engine_of(request).run(verify)
    return web.json_response({"Status": "Login Succeeded", "IdentityToken": token or ""})


async def build(request: web.Request) -> web.Response:
    raise ApiError(501, "nerdpy does not build images (no builder): build with another tool and push, "
                        "or `nerdpy load` a saved image")


async def not_supported(request: web.Request) -> web.Response:
    raise ApiError(501, f"{request.path}: not supported by nerdpy (no swarm, plugins, secrets, configs or sessions)")


ROUTES = [
    ("GET", "/_ping", ping),
    ("HEAD", "/_ping", ping),
    ("GET", "/version", version),
    ("GET", "/info", info),
    ("GET", "/events", events),
    ("GET", "/system/df", df),
    ("POST", "/auth", auth),
    ("POST", "/build", build),
    ("POST", "/session", not_supported),
    ("GET", "/swarm", not_supported),
    ("GET", "/services", not_supported),
    ("GET", "/plugins", not_supported),
]
