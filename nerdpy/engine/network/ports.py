"""Published ports: docker's `-p`/`--publish` forms and `-P`/`--publish-all`, allocated into
the `portMappings` that the CNI portmap plugin takes as runtimeConfig.

Parsing follows docker (go-connections' nat.ParsePortSpec):

    80                      container port 80/tcp, a free host port on every address
    8080:80                 host port 8080
    127.0.0.1:8080:80       on one host address only
    127.0.0.1::80           one address, a free host port
    8080:80/udp             udp (or sctp)
    8000-8003:9000-9003     ranges of the same length, one to one
    8000-8010:80            a free host port in 8000-8010
    [::1]:80:80             an IPv6 host address

`parse_publish` is pure. `allocate` turns "any free port" into a concrete one and checks every
host port against the ones other containers hold (from the caller) and against the host's own
listeners (by binding a socket for a moment), so a port in use fails before anything is set up.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, replace
from typing import Iterable

from nerdpy.engine.network import InvalidPort, PortInUse

PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""           # "" = every address (docker shows 0.0.0.0)
    host_port: int = 0          # 0 = any free port
    host_port_end: int = 0      # > host_port: any free port in host_port..host_port_end

    @property
    def concrete(self) -> bool:
        return self.host_port != 0 and self.host_port_end in (0, self.host_port)

    def as_dict(self) -> dict:
        return {"container_port": self.container_port, "protocol": self.protocol,
                "host_ip": self.host_ip, "host_port": self.host_port}

    @classmethod
    def from_dict(cls, d: dict) -> "PortMapping":
        return cls(int(d["container_port"]), d.get("protocol", "tcp"), d.get("host_ip", ""),
                   int(d.get("host_port", 0)))


def _split_parts(raw: str) -> tuple[str, str, str]:
    parts = raw.split(":")
    n = len(parts)
    if n == 1:
        return "", "", parts[0]
    if n == 2:
        return "", parts[0], parts[1]
    if n == 3:
        return parts[0], parts[1], parts[2]
    return ":".join(parts[: n - 2]), parts[n - 2], parts[n - 1]


def _split_proto(raw: str) -> tuple[str, str]:
    parts = raw.split("/")
    if not raw or not parts[0]:
        return "", ""
    if len(parts) == 1 or not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def _digits(s: str) -> bool:
    # ASCII only, as Go's strconv: str.isdigit() also takes '\u0663' and '\u00b2'
    return s.isascii() and s.isdigit()


def _shown(s: str) -> str:
    """User input in a one-line message: control characters escaped."""
    return s if s.isprintable() else repr(s)[1:-1]


def _port_range(text: str) -> tuple[int, int]:
    if not text:
        raise ValueError("empty")
    start_s, sep, end_s = text.partition("-")
    if not (_digits(start_s) and (not sep or _digits(end_s))):
        raise ValueError(text)
    start = int(start_s)
    end = int(end_s) if sep else start
    if start > 65535 or end > 65535 or end < start:
        raise ValueError(text)
    return start, end


def _clean_ip(ip: str) -> str:
    if ip.startswith("["):
        if not ip.endswith("]"):
            raise InvalidPort(f"invalid IP address {_shown(ip)}")
        ip = ip[1:-1]
    if not ip:
        return ""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        raise InvalidPort(f"invalid IP address: {_shown(ip)}") from None
    if addr.is_unspecified and addr.version == 4:
        return ""
    return str(addr)


def parse_publish(raw: str) -> list[PortMapping]:
    """One `-p` value -> its mappings (host_port 0 or a host range where a port is to be picked)."""
    ip, host, container = _split_parts(raw.strip())
    proto, container = _split_proto(container)
    ip = _clean_ip(ip)
    if not container:
        raise InvalidPort(f"no port specified: {_shown(raw)}<empty>")
    try:
        c_start, c_end = _port_range(container)
        if c_start == 0:
            raise ValueError(container)
    except ValueError:
        raise InvalidPort(f"invalid containerPort: {_shown(container)}") from None
    h_start = h_end = 0
    if host:
        try:
            h_start, h_end = _port_range(host)
        except ValueError:
            raise InvalidPort(f"invalid hostPort: {_shown(host)}") from None
        if (c_end - c_start) != (h_end - h_start) and c_end != c_start:
            raise InvalidPort(f"invalid ranges specified for container and host Ports: {_shown(container)} and {_shown(host)}")
        if h_start == 0 and h_end != 0:
            raise InvalidPort(f"invalid hostPort: {_shown(host)}")
    proto = proto.lower()
    if proto not in PROTOCOLS:
        raise InvalidPort(f"invalid proto: {_shown(proto)}")
    out = []
    for i in range(c_end - c_start + 1):
        if c_start == c_end and h_start != h_end:
            out.append(PortMapping(c_start, proto, ip, h_start, h_end))
        else:
            hp = h_start + i if host else 0
            out.append(PortMapping(c_start + i, proto, ip, hp, hp))
    return out


def parse_publish_all(values: Iterable[str]) -> list[PortMapping]:
    out: list[PortMapping] = []
    for v in values:
        out.extend(parse_publish(v))
    return out


def exposed_mappings(exposed: Iterable[str], explicit: Iterable[PortMapping] = ()) -> list[PortMapping]:
    """`-P`: a free host port for each of the image's ExposedPorts ("80/tcp", "53/udp", "8000-8001"),
    except those that an explicit `-p` already publishes (as docker does)."""
    have = {(m.container_port, m.protocol) for m in explicit}
    out = []
    for key in sorted(exposed, key=str):
        port, _, proto = str(key).partition("/")
        proto = (proto or "tcp").lower()
        try:
            start, end = _port_range(port)
        except ValueError:
            raise InvalidPort(f"invalid exposed port: {_shown(str(key))}") from None
        if proto not in PROTOCOLS or start == 0:
            raise InvalidPort(f"invalid exposed port: {_shown(str(key))}")
        for p in range(start, end + 1):
            if (p, proto) not in have:
                out.append(PortMapping(p, proto))
    return out


# allocation ---------------------------------------------------------------------------------
Taken = set  # of (protocol, host_ip, host_port)


def _overlaps(ip_a: str, ip_b: str) -> bool:
    unspecified = ("", "0.0.0.0", "::")
    return ip_a == ip_b or ip_a in unspecified or ip_b in unspecified


def _is_taken(taken: Iterable[tuple[str, str, int]], proto: str, ip: str, port: int) -> bool:
    return any(p == proto and hp == port and _overlaps(hip, ip) for p, hip, hp in taken)


def _bind_probe(proto: str, ip: str, port: int) -> int | None:
    """Bind (and release) a socket on ip:port; the port bound (0 asks the kernel for a free one),
    or None when the host has it in use. Raises InvalidPort for an address not on this host."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    sproto = 132 if proto == "sctp" else 0
    try:
        s = socket.socket(family, kind, sproto)
    except OSError:
        if proto == "sctp":  # no SCTP in this kernel: nothing can hold the port
            return port or None
        raise
    with s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ip or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
        except OSError as e:
            if e.errno == 98:  # EADDRINUSE
                return None
            if e.errno == 99:  # EADDRNOTAVAIL
                raise InvalidPort(f"cannot publish on {ip}: not an address of this host") from None
            raise PortInUse(f"cannot bind {ip or '0.0.0.0'}:{port}/{proto}: {e.strerror}") from None
        return s.getsockname()[1]


def _show(ip: str, port: int, proto: str) -> str:
    host = ip or "0.0.0.0"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}/{proto}" if proto != "tcp" else f"{host}:{port}"


def allocate(mappings: Iterable[PortMapping], taken: Iterable[tuple[str, str, int]] = ()) -> list[PortMapping]:
    """Concrete host ports for `mappings`: fixed ports are checked, free ones picked (from the
    given range, else by the kernel). `taken` are (protocol, host_ip, port) that other
    containers publish. PortInUse names the first port that cannot be had."""
    held = list(taken)
    mappings = list(mappings)
    result: list[PortMapping | None] = [None] * len(mappings)
    # fixed ports first, so that a picked port never takes one that is asked for explicitly
    for i in sorted(range(len(mappings)), key=lambda i: not mappings[i].concrete):
        m = mappings[i]
        if m.concrete:
            if _is_taken(held, m.protocol, m.host_ip, m.host_port):
                raise PortInUse(f"Bind for {_show(m.host_ip, m.host_port, m.protocol)} failed: "
                                "port is already allocated")
            if _bind_probe(m.protocol, m.host_ip, m.host_port) is None:
                raise PortInUse(f"Bind for {_show(m.host_ip, m.host_port, m.protocol)} failed: "
                                "address already in use on the host")
            got = m
        else:
            got = None
            if m.host_port:  # a range to pick from
                candidates = range(m.host_port, m.host_port_end + 1)
            else:  # any free port: ask the kernel
                candidates = [0] * 100
            for p in candidates:
                if p and _is_taken(held, m.protocol, m.host_ip, p):
                    continue
                bound = _bind_probe(m.protocol, m.host_ip, p)
                if bound and not _is_taken(held, m.protocol, m.host_ip, bound):
                    got = replace(m, host_port=bound, host_port_end=bound)
                    break
            if got is None:
                where = f" in {m.host_port}-{m.host_port_end}" if m.host_port else ""
                raise PortInUse(f"no free host port{where} for {m.container_port}/{m.protocol}")
        held.append((got.protocol, got.host_ip, got.host_port))
        result[i] = got
    return result  # type: ignore[return-value]


# rendering ----------------------------------------------------------------------------------
def to_portmap(mappings: Iterable[PortMapping]) -> list[dict]:
    """portmap's runtimeConfig `portMappings`."""
    out = []
    for m in mappings:
        entry = {"hostPort": m.host_port, "containerPort": m.container_port, "protocol": m.protocol}
        if m.host_ip:
            entry["hostIP"] = m.host_ip
        out.append(entry)
    return out


def docker_ports(mappings: Iterable[PortMapping], exposed: Iterable[str] = ()) -> dict:
    """inspect's NetworkSettings.Ports: {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]},
    with exposed ports that are not published mapped to None."""
    out: dict = {}
    for key in exposed:
        k = str(key) if "/" in str(key) else f"{key}/tcp"
        out.setdefault(k, None)
    for m in mappings:
        k = f"{m.container_port}/{m.protocol}"
        if out.get(k) is None:
            out[k] = []
        out[k].append({"HostIp": m.host_ip or "0.0.0.0", "HostPort": str(m.host_port)})
    return out


def format_ports(mappings: Iterable[PortMapping]) -> str:
    """ps's PORTS column: `0.0.0.0:8080->80/tcp, 127.0.0.1:53->53/udp`."""
    parts = []
    for m in mappings:
        host = m.host_ip or "0.0.0.0"
        if ":" in host:
            host = f"[{host}]"
        parts.append(f"{host}:{m.host_port}->{m.container_port}/{m.protocol}")
    return ", ".join(parts)
