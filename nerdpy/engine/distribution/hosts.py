"""Which endpoints serve a registry: containerd's `hosts.toml` (mirrors, CAs, skip_verify),
plain HTTP for loopback registries and `--insecure-registry` hosts, as docker allows."""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

from nerdpy.engine.errors import InvalidArgument


@dataclass
class RegistryHost:
    url: str                               # scheme://host[:port][/path]
    capabilities: frozenset = frozenset({"pull", "resolve", "push"})
    skip_verify: bool = False
    ca: tuple = ()
    client: tuple = ()
    override_path: bool = False
    headers: dict = field(default_factory=dict)
    plain_http_fallback: bool = False

    @property
    def hostport(self) -> str:
        return self.url.split("://", 1)[1].split("/", 1)[0]


def default_server(registry: str) -> str:
    if registry == "docker.io":
        return "https://registry-1.docker.io"
    return f"https://{registry}"


def is_loopback(registry: str) -> bool:
    host = registry
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_insecure(registry: str, insecure: list[str]) -> bool:
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    for entry in insecure:
        entry = entry.split("://", 1)[-1].rstrip("/")
        if entry in (registry, host):
            return True
        try:
            if "/" in entry and ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            pass
    return False


def _load(path: str) -> dict | None:
    import tomllib

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return None
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise InvalidArgument(f"cannot read {path}: {e}") from None


def _as_tuple(v) -> tuple:
    if v is None:
        return ()
    if isinstance(v, str):
        return (v,)
    if isinstance(v, list):
        return tuple(x if isinstance(x, str) else tuple(x) for x in v)
    return ()


def _client_cert(v, base_dir: str) -> tuple:
    """containerd's `client`: "cert.pem", ["cert.pem"], or [["cert", "key"], ...]. The first
    pair, as (cert,) or (cert, key) with paths relative to the hosts.toml's folder."""
    first = v[0] if isinstance(v, list) and v else v
    if isinstance(first, str):
        pair = [first]
    elif isinstance(first, list):
        pair = [x for x in first if isinstance(x, str) and x][:2]
    else:
        return ()
    return tuple(p if os.path.isabs(p) else os.path.join(base_dir, p) for p in pair if p)


def requests_cert(client: tuple):
    """The `cert` argument requests takes for a host's client certificate."""
    if not client:
        return None
    return client[0] if len(client) == 1 else (client[0], client[1])


def _host_from(url: str, table: dict, base_dir: str) -> RegistryHost:
    if "://" not in url:
        url = "https://" + url
    caps = table.get("capabilities", ["pull", "resolve", "push"])
    ca = tuple(c if os.path.isabs(c) else os.path.join(base_dir, c) for c in _as_tuple(table.get("ca")))
    headers = {k: (v if isinstance(v, str) else ", ".join(v)) for k, v in (table.get("header") or {}).items()}
    return RegistryHost(
        url=url.rstrip("/"),
        capabilities=frozenset(caps),
        skip_verify=bool(table.get("skip_verify", False)),
        ca=ca,
        client=_client_cert(table.get("client"), base_dir),
        override_path=bool(table.get("override_path", False)),
        headers=headers,
    )


def resolve_hosts(registry: str, hosts_dirs: list[str], insecure: list[str] = ()) -> list[RegistryHost]:
    """Endpoints to try for `registry`, mirrors first, the registry itself last."""
    doc, base = None, ""
    for d in hosts_dirs:
        for name in (registry, registry.replace(":", "_"), "_default"):
            path = os.path.join(d, name, "hosts.toml")
            doc = _load(path)
            if doc is not None:
                base = os.path.dirname(path)
                break
        if doc is not None:
            break
    hosts: list[RegistryHost] = []
    server_url = default_server(registry)
    server_table: dict = {}
    if doc is not None:
        if isinstance(doc.get("server"), str):
            server_url = doc["server"]
        server_table = {k: v for k, v in doc.items() if k != "host" and k != "server"}
        for url, table in (doc.get("host") or {}).items():
            if isinstance(table, dict):
                hosts.append(_host_from(url, table, base))
    server = _host_from(server_url, server_table, base)
    hosts.append(server)
    for h in hosts:
        hp = h.hostport
        if is_loopback(hp) or is_insecure(hp, insecure) or (h is server and (is_loopback(registry) or is_insecure(registry, insecure))):
            if h.url.startswith("https://"):
                h.plain_http_fallback = True
            if is_insecure(hp, insecure) or is_insecure(registry, insecure):
                h.skip_verify = True
    return hosts
