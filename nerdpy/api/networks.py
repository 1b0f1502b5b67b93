"""Network endpoints: list (filters), inspect, create (IPAM config, labels, options, internal),
remove, connect, disconnect, prune."""
from __future__ import annotations

from aiohttp import web

from nerdpy.api.common import bad_request, engine_of, filters_as_flags, json_body, qfilters


def _doc(store, net, name: str) -> dict:
    """network_json, with the Options given at create only (as docker's daemon shows them:
    compose compares them with its file and would recreate a network over a bridge name)."""
    from nerdpy.engine.network.views import network_json

    doc = network_json(store, net, name)
    if net is not None:
        doc["Options"] = dict(net.options)
    return doc


def _json(store, name: str) -> dict:
    from nerdpy.engine.network.networks import find_network

    if name in ("host", "none"):
        return _doc(store, None, name)
    net = find_network(store, name)
    return _doc(store, net, net.name)


def _list(store, filters: dict) -> list[dict]:
    from nerdpy.engine.network.views import filter_network_rows, network_rows

    rows = filter_network_rows(store, network_rows(store), filters_as_flags(filters))
    return [_doc(store, r["network"], r["Name"]) for r in rows]


async def list_(request: web.Request) -> web.Response:
    return web.json_response(await engine_of(request).run(_list, qfilters(request)))


async def inspect(request: web.Request) -> web.Response:
    return web.json_response(await engine_of(request).run(_json, request.match_info["id"]))


async def create(request: web.Request) -> web.Response:
    from nerdpy.engine.network.networks import create_network, get_network

    body = await json_body(request)
    name = body.get("Name")
    if not name or not isinstance(name, str):
        raise bad_request("network name is required")
    if body.get("EnableIPv6"):
        raise bad_request("IPv6 networks are not supported")
    # Attachable is a swarm notion that changes nothing on a local network (docker-compose sets it)
    if body.get("Ingress") or body.get("ConfigOnly") or body.get("ConfigFrom") or body.get("Scope") not in (None, "", "local"):
        raise bad_request("swarm network options (Ingress, ConfigOnly, ConfigFrom, Scope) are not supported")
    ipam = body.get("IPAM") or {}
    if not isinstance(ipam, dict):
        raise bad_request("invalid IPAM")
    if (ipam.get("Driver") or "default") != "default":
        raise bad_request(f"IPAM driver {ipam['Driver']!r} is not supported (default)")
    configs = ipam.get("Config") or []
    if not isinstance(configs, list) or len(configs) > 1:
        raise bad_request("one IPAM config at most is supported")
    cfg = configs[0] if configs else {}
    if not isinstance(cfg, dict):
        raise bad_request("invalid IPAM config")
    if cfg.get("AuxiliaryAddresses"):
        raise bad_request("IPAM AuxiliaryAddresses are not supported")
    if ipam.get("Options"):  # the default driver takes none (the CLI has no --ipam-opt either)
        raise bad_request("IPAM options are not supported")
    labels = body.get("Labels") or {}
    options = body.get("Options") or {}
    if not isinstance(labels, dict) or not isinstance(options, dict):
        raise bad_request("Labels and Options must be objects")

    def do(store):
        if body.get("CheckDuplicate", True) is False and get_network(store, name) is not None:
            return get_network(store, name)
        return create_network(store, name, driver=body.get("Driver") or "bridge", subnet=cfg.get("Subnet") or None,
                              gateway=cfg.get("Gateway") or None, ip_range=cfg.get("IPRange") or None,
                              internal=bool(body.get("Internal")), labels={str(k): str(v) for k, v in labels.items()},
                              options={str(k): str(v) for k, v in options.items()})

    net = await engine_of(request).run(do)
    return web.json_response({"Id": net.id, "Warning": ""}, status=201)


async def remove(request: web.Request) -> web.Response:
    from nerdpy.engine.network.networks import remove_network

    await engine_of(request).run(remove_network, request.match_info["id"])
    return web.Response(status=204)


async def connect(request: web.Request) -> web.Response:
    from nerdpy.engine.containers.records import find_container
    from nerdpy.engine.network.container import connect_network
    from nerdpy.engine.network.networks import find_network

    body = await json_body(request)
    ref = body.get("Container")
    if not ref:
        raise bad_request("Container is required")
    ep = body.get("EndpointConfig") or {}
    aliases = ep.get("Aliases") or []
    ip = (ep.get("IPAMConfig") or {}).get("IPv4Address") or None

    def do(store):
        net = find_network(store, request.match_info["id"])
        connect_network(store, find_container(store, ref), net.name, aliases=list(aliases), ip=ip)

    await engine_of(request).run(do)
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.Response:
    from nerdpy.engine.containers.records import find_container
    from nerdpy.engine.network.container import disconnect_network

    body = await json_body(request)
    ref = body.get("Container")
    if not ref:
        raise bad_request("Container is required")

    def do(store):
        disconnect_network(store, find_container(store, ref), request.match_info["id"], force=bool(body.get("Force")))

    await engine_of(request).run(do)
    return web.Response(status=200)


def _prune(store, filters: dict) -> dict:
    from nerdpy.engine.network.networks import prune_networks
    from nerdpy.engine.system.prunefilter import parse_prune_filters

    flt = parse_prune_filters(filters_as_flags(filters), "network")  # the CLI's filters, checked alike
    return {"NetworksDeleted": prune_networks(store, flt) or None}


async def prune(request: web.Request) -> web.Response:
    return web.json_response(await engine_of(request).run(_prune, qfilters(request)))


ROUTES = [
    ("GET", "/networks", list_),
    ("POST", "/networks/create", create),
    ("POST", "/networks/prune", prune),
    ("GET", "/networks/{id}", inspect),
    ("DELETE", "/networks/{id}", remove),
    ("POST", "/networks/{id}/connect", connect),
    ("POST", "/networks/{id}/disconnect", disconnect),
]
