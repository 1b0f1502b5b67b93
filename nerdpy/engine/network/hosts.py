"""A container's /etc/hosts and /etc/resolv.conf (nerdctl's hosts-file approach to names).

/etc/hosts: the localhost lines, `--add-host` entries (`host-gateway` is the gateway of the
container's first network), the container's own addresses with its hostname, name and aliases,
and its peers on the same user networks as `name`, `name.<network>`, their hostnames and
aliases. The default `bridge` network gives no names, as with docker.

/etc/resolv.conf: the host's, with loopback nameservers dropped (they mean nothing inside
another network namespace). When the host lists only loopback resolvers (systemd-resolved's
127.0.0.53) the upstream file /run/systemd/resolve/resolv.conf is used instead; if nothing is
left, docker's fallback 8.8.8.8 and 8.8.4.4. `--dns`, `--dns-search` (`.` for none) and
`--dns-option` replace the corresponding lines.

Files are created with util.fs's `write_atomic` (temp file + rename). Once the file is bind-mounted into
a running container a rename would not reach it (the mount holds the old inode), so peers'
files are updated with `rewrite_in_place`: one pwrite of the whole text and a truncate, under
a lock, so concurrent updaters never interleave.
"""
from __future__ import annotations

import fcntl
import ipaddress
import os
from dataclasses import field
from typing import Iterable

from nerdpy.engine.errors import InvalidArgument
from nerdpy.engine.util.locks import flock_wait
from nerdpy.engine.util.lean import lean_dataclass

LOCALHOST_LINES = (
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
)
HOST_GATEWAY = "host-gateway"
RESOLV_CONF = "/etc/resolv.conf"
UPSTREAM_RESOLV_CONF = "/run/systemd/resolve/resolv.conf"
FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")


@lean_dataclass
class HostEntry:
    ip: str
    names: list[str] = field(default_factory=list)


def parse_add_host(text: str) -> tuple[str, str]:
    """`--add-host name:ip` (or `name=ip`; ip may be IPv6 or `host-gateway`) -> (name, ip)."""
    sep = "=" if "=" in text else ":"
    name, found, ip = text.partition(sep)
    name, ip = name.strip(), ip.strip()
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if not found or not name or not ip or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise InvalidArgument(f"bad format for add-host: {text!r}")
    if ip != HOST_GATEWAY:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidArgument(f"invalid IP address in add-host: {ip!r}") from None
    return name, ip


def _names(*groups: Iterable[str]) -> list[str]:
    out: list[str] = []
    for g in groups:
        for n in g:
            if n and n not in out:
                out.append(n)
    return out


def own_names(hostname: str, domainname: str = "", name: str = "", network: str = "",
              aliases: Iterable[str] = (), user_network: bool = True) -> list[str]:
    """The names of a container's own address on one network."""
    fqdn = f"{hostname}.{domainname}" if hostname and domainname else ""
    if not user_network:
        return _names([fqdn, hostname])
    return _names([fqdn, hostname, name, f"{name}.{network}" if name and network else ""], aliases)


def peer_names(name: str, network: str, hostname: str = "", aliases: Iterable[str] = ()) -> list[str]:
    """The names another container on user network `network` is known by."""
    return _names([name, f"{name}.{network}" if name else "", hostname], aliases)


def render_hosts(own: Iterable[HostEntry] = (), extra_hosts: Iterable[tuple[str, str]] = (),
                 peers: Iterable[HostEntry] = (), host_gateway: str = "") -> str:
    """The text of /etc/hosts."""
    lines = list(LOCALHOST_LINES)
    for name, ip in extra_hosts:
        if ip == HOST_GATEWAY:
            if not host_gateway:
                raise InvalidArgument("add-host: host-gateway has no address without a network")
            ip = host_gateway
        lines.append(f"{ip}\t{name}")
    for entry in list(own) + list(peers):
        if entry.ip and entry.names:
            lines.append(f"{entry.ip}\t{' '.join(entry.names)}")
    return "\n".join(lines) + "\n"


def host_hosts(extra_hosts: Iterable[tuple[str, str]] = (), path: str = "/etc/hosts",
               host_gateway: str = "") -> str:
    """/etc/hosts for `--network host`: a copy of the host's, plus --add-host lines."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        text = "\n".join(LOCALHOST_LINES) + "\n"
    if text and not text.endswith("\n"):
        text += "\n"
    for name, ip in extra_hosts:
        if ip == HOST_GATEWAY:
            ip = host_gateway or "127.0.0.1"
        text += f"{ip}\t{name}\n"
    return text


# resolv.conf --------------------------------------------------------------------------------
def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.split("%")[0]).is_loopback
    except ValueError:
        return False


def _parse_resolv(text: str) -> tuple[list[str], list[str], list[str]]:
    servers, search, options = [], [], []
    for line in text.splitlines():
        f = line.split()
        if not f or f[0].startswith(("#", ";")):
            continue
        if f[0] == "nameserver" and len(f) > 1:
            servers.append(f[1])
        elif f[0] in ("search", "domain"):
            search = f[1:]
        elif f[0] == "options":
            options += f[1:]
    return servers, search, options


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def render_resolv_conf(host_network: bool = False, dns: Iterable[str] = (), dns_search: Iterable[str] = (),
                       dns_options: Iterable[str] = (), path: str = RESOLV_CONF,
                       upstream: str = UPSTREAM_RESOLV_CONF) -> str:
    """The text of a container's /etc/resolv.conf (see the module's docstring for the rules)."""
    text = _read(path) or ""
    servers, search, options = _parse_resolv(text)
    if not host_network and servers and all(_is_loopback(s) for s in servers):
        alt = _read(upstream)
        if alt is not None:
            servers, search, options = _parse_resolv(alt)
    if not host_network:
        servers = [s for s in servers if not _is_loopback(s)]
        if not servers:
            servers = list(FALLBACK_DNS)
    dns, dns_search, dns_options = list(dns), list(dns_search), list(dns_options)
    for s in dns:
        try:
            ipaddress.ip_address(s)
        except ValueError:
            raise InvalidArgument(f"{s} is not an ip address") from None
    if dns:
        servers = dns
    if dns_search:
        search = [] if dns_search == ["."] else [d for d in dns_search if d != "."]
    if dns_options:
        options = dns_options
    lines = [f"nameserver {s}" for s in servers]
    if search:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


# writing ------------------------------------------------------------------------------------
def rewrite_in_place(path: str, text: str) -> bool:
    """Replace the content of `path` keeping its inode (it may be bind-mounted into a running
    container): one pwrite of the whole text, then a truncate, under `path.lock`. Returns False
    when the file does not exist (nothing to update)."""
    data = text.encode()
    if not os.path.exists(path):
        return False
    lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        flock_wait(lock, fcntl.LOCK_EX, f"the lock of {path}")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)
        return True
    finally:
        os.close(lock)
