"""docker's views of networks: `network ls` rows and filters, `network inspect` objects, and a
container's NetworkSettings for `inspect`."""
from __future__ import annotations

import hashlib
import json
import re
from typing import Iterable

from nerdpy.engine.errors import InvalidArgument
from nerdpy.engine.network.attach import _attachment, get_setup
from nerdpy.engine.network.networks import DEFAULT_NETWORK, PREDEFINED, Network, list_networks, network_users
from nerdpy.engine.network.ports import docker_ports


# networks -----------------------------------------------------------------------------
_PSEUDO_IDS = {"host": "host", "none": "null"}


def pseudo_network(name: str) -> dict:
    """`host` and `none` as docker lists them (no record, no conflist)."""
    return {"Name": name, "Id": hashlib.sha256(f"nerdpy-network-{name}".encode()).hexdigest(),
            "Driver": _PSEUDO_IDS[name], "Scope": "local"}


def network_json(store, net: Network | None, name: str | None = None) -> dict:
    """docker's `network inspect` object; `net` None with `name` host/none for the pseudo ones."""
    if net is None:
        p = pseudo_network(name or "none")
        return {"Name": p["Name"], "Id": p["Id"], "Created": _rfc3339(0), "Scope": "local",
                "Driver": p["Driver"], "EnableIPv6": False,
                "IPAM": {"Driver": "default", "Options": None, "Config": []},
                "Internal": False, "Attachable": False, "Ingress": False,
                "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": {},
                "Options": {}, "Labels": {}}
    cfg: dict = {"Subnet": net.subnet, "Gateway": net.gateway}
    if net.ip_range:
        cfg["IPRange"] = net.ip_range
    options = dict(net.options)
    if net.driver == "bridge":
        options.setdefault("com.docker.network.bridge.name", net.link)
    else:
        options.setdefault("parent", net.link)
    return {
        "Name": net.name,
        "Id": net.id,
        "Created": _rfc3339(net.created_at),
        "Scope": "local",
        "Driver": net.driver,
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": {}, "Config": [cfg]},
        "Internal": net.internal,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers_on_network(store, net),
        "Options": options,
        "Labels": dict(net.labels),
    }


def _rfc3339(ts: float) -> str:
    import datetime as _dt

    d = _dt.datetime.fromtimestamp(ts).astimezone()
    s = d.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000"
    off = d.strftime("%z")
    return s + (off[:3] + ":" + off[3:] if off not in ("+0000", "") else "Z")


# listing ------------------------------------------------------------------------------------
_FILTER_KEYS = ("name", "id", "label", "driver", "type", "scope", "dangling")


def network_rows(store) -> list[dict]:
    """One dict per network as `network ls` shows them, the pseudo `host` and `none` included,
    sorted by name: Name, ID, Driver, Scope, Internal, IPv6, Labels (dict), Created, builtin."""
    rows = []
    for net in list_networks(store):
        rows.append({"Name": net.name, "ID": net.id, "Driver": net.driver, "Scope": "local",
                     "Internal": net.internal, "IPv6": False, "Labels": dict(net.labels),
                     "Created": net.created_at, "builtin": net.name in PREDEFINED, "network": net})
    for name in ("host", "none"):
        p = pseudo_network(name)
        rows.append({"Name": name, "ID": p["Id"], "Driver": p["Driver"], "Scope": "local", "Internal": False,
                     "IPv6": False, "Labels": {}, "Created": 0.0, "builtin": True, "network": None})
    return sorted(rows, key=lambda r: r["Name"])


def filter_network_rows(store, rows: list[dict], filters: list[str]) -> list[dict]:
    """docker's `network ls --filter`: values of one key are ORed, keys are ANDed."""
    wanted: dict[str, list[str]] = {}
    for f in filters:
        key, sep, value = f.partition("=")
        key = key.strip().lower()
        if not sep or key not in _FILTER_KEYS:
            raise InvalidArgument(f"invalid filter {f!r} (use one of {', '.join(_FILTER_KEYS)})")
        wanted.setdefault(key, []).append(value)

    def name_match(pattern: str, name: str) -> bool:
        try:
            return re.search(pattern, name) is not None
        except re.error:
            return pattern in name

    def label_match(spec: str, labels: dict) -> bool:
        k, sep, v = spec.partition("=")
        return k in labels and (not sep or labels[k] == v)

    def ok(r: dict) -> bool:
        for key, values in wanted.items():
            if key == "name" and not any(name_match(v, r["Name"]) for v in values):
                return False
            if key == "id" and not any(v in r["ID"] for v in values):
                return False
            if key == "label" and not all(label_match(v, r["Labels"]) for v in values):
                return False
            if key == "driver" and r["Driver"] not in values:
                return False
            if key == "type":
                for v in values:
                    if v not in ("custom", "builtin"):
                        raise InvalidArgument(f"invalid filter 'type={v}' (use custom or builtin)")
                if ("builtin" if r["builtin"] else "custom") not in values:
                    return False
            if key == "scope" and "local" not in values:
                return False
            if key == "dangling":
                want = values[-1].lower() in ("1", "true")
                unused = not r["builtin"] and not network_users(store, r["network"])
                if want != unused:
                    return False
        return True

    return [r for r in rows if ok(r)]


# containers ------------------------------------------------------------------------------------
def _endpoint_id(ns: str, cid: str, network: str) -> str:
    return hashlib.sha256(f"{ns}/{cid}/{network}".encode()).hexdigest()


def network_settings(store, cid: str, exposed: Iterable[str] = ()) -> dict:
    """docker's NetworkSettings for `inspect` (empty Networks without a namespace of ours)."""
    setup = get_setup(store, cid)
    out = {"Bridge": "", "SandboxID": "", "SandboxKey": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
           "LinkLocalIPv6PrefixLen": 0, "Ports": docker_ports(setup.ports if setup else [], exposed),
           "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "",
           "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0,
           "IPv6Gateway": "", "MacAddress": "", "Networks": {}}
    if setup is None:
        return out
    out["SandboxID"] = hashlib.sha256(setup.netns.encode()).hexdigest()
    out["SandboxKey"] = setup.netns
    for a in setup.attachments:
        ep = {"IPAMConfig": {"IPv4Address": a.requested_ip} if a.requested_ip else None, "Links": None,
              "Aliases": list(a.aliases) or None, "MacAddress": a.mac, "NetworkID": a.network_id,
              "EndpointID": _endpoint_id(store.namespace, cid, a.network), "Gateway": a.gateway,
              "IPAddress": a.ip, "IPPrefixLen": a.prefix_len, "IPv6Gateway": "", "GlobalIPv6Address": "",
              "GlobalIPv6PrefixLen": 0, "DriverOpts": None}
        out["Networks"][a.network] = ep
        if a.network == DEFAULT_NETWORK:
            out.update({"EndpointID": ep["EndpointID"], "Gateway": a.gateway, "IPAddress": a.ip,
                        "IPPrefixLen": a.prefix_len, "MacAddress": a.mac})
    return out


def containers_on_network(store, net: Network) -> dict:
    """`network inspect`'s Containers: the attached containers of the current namespace."""
    out = {}
    rows = store.db.query("SELECT a.*, s.info AS sinfo FROM net_attachments a JOIN net_sandboxes s ON "
                          "a.namespace = s.namespace AND a.container_id = s.container_id "
                          "WHERE a.namespace = ? AND a.network = ? ORDER BY s.created_at",
                          (store.namespace, net.name))
    for r in rows:
        a = _attachment(r)
        info = json.loads(r["sinfo"])
        out[r["container_id"]] = {"Name": info.get("name", ""),
                                  "EndpointID": _endpoint_id(store.namespace, r["container_id"], net.name),
                                  "MacAddress": a.mac, "IPv4Address": f"{a.ip}/{a.prefix_len}" if a.ip else "",
                                  "IPv6Address": ""}
    return out
