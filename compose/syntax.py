"""Short syntaxes of compose files turned into their long form (plain dicts).

Used both when merging (to find the unique keys of ports and volumes) and when building the
model. Errors are ValueError with a message; callers add the file and line.
"""
from __future__ import annotations

import re

PROTOCOLS = ("tcp", "udp", "sctp")
_PROPAGATION = ("shared", "slave", "private", "rshared", "rslave", "rprivate")
_CONSISTENCY = ("cached", "delegated", "consistent")


def _port_range(text: str, what: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)(?:-(\d+))?", text)
    if not m:
        raise ValueError(f"invalid {what}: {text!r}")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    if hi < lo:
        raise ValueError(f"invalid {what} range: {text!r}")
    if lo > 65535 or hi > 65535:
        raise ValueError(f"invalid {what}: {text!r} (ports are at most 65535)")
    return lo, hi


def parse_port(spec) -> list[dict]:
    """``"[[host_ip:][published]:]target[/protocol]"`` (or an int) -> long-form port dicts.

    A container port range becomes one entry per port; a host port range with a single
    container port stays a range in `published` (the host port is chosen from it)."""
    if isinstance(spec, bool):
        raise ValueError(f"invalid port {spec!r}")
    if isinstance(spec, (int, float)):
        if isinstance(spec, float) and not spec.is_integer():
            raise ValueError(f"invalid port {spec!r}")
        spec = str(int(spec))
    text = str(spec).strip()
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
        proto = proto.lower()
        if proto not in PROTOCOLS:
            raise ValueError(f"invalid protocol {proto!r} in port {spec!r}")
    parts = text.split(":")
    if len(parts) == 1:
        host_ip, published, target = "", "", parts[0]
    elif len(parts) == 2:
        host_ip, published, target = "", parts[0], parts[1]
    elif len(parts) == 3:
        host_ip, published, target = parts
    else:
        host_ip, published, target = ":".join(parts[:-2]), parts[-2], parts[-1]
    if host_ip.startswith("[") and host_ip.endswith("]"):
        host_ip = host_ip[1:-1]
    if not target:
        raise ValueError(f"no container port in {spec!r}")
    t_lo, t_hi = _port_range(target, "container port")
    if t_lo == 0:
        raise ValueError(f"invalid container port {target!r} in {spec!r}")
    out = []
    if published:
        p_lo, p_hi = _port_range(published, "host port")
        if (p_hi - p_lo) != (t_hi - t_lo) and t_hi != t_lo:
            raise ValueError(f"invalid ranges for container and host ports: {target} and {published}")
    for i, t in enumerate(range(t_lo, t_hi + 1)):
        entry = {"mode": "ingress", "target": t, "protocol": proto}
        if host_ip:
            entry["host_ip"] = host_ip
        if published:
            if t_hi != t_lo:
                entry["published"] = str(p_lo + i)
            else:
                entry["published"] = published
        out.append(entry)
    return out


def port_key(entry) -> tuple:
    """The unique key of a port for merging: (host_ip, target, published, protocol)."""
    if isinstance(entry, dict):
        return (entry.get("host_ip") or "", str(entry.get("target")), str(entry.get("published") or ""),
                (entry.get("protocol") or "tcp").lower())
    return ("", str(entry), "", "tcp")


def is_path(source: str) -> bool:
    return source.startswith(("/", ".", "~")) or source in (".", "..")


def parse_volume(spec: str) -> dict:
    """``"[source:]target[:mode]"`` -> a long-form volume dict (bind, volume or anonymous)."""
    text = str(spec)
    parts = text.split(":")
    if len(parts) > 3:
        raise ValueError(f"invalid volume specification: {spec!r} (too many colons)")
    if len(parts) == 1:
        source, target, mode = "", parts[0], ""
    elif len(parts) == 2:
        source, target, mode = parts[0], parts[1], ""
    else:
        source, target, mode = parts
    if not target:
        raise ValueError(f"invalid volume specification: {spec!r} (no target)")
    if not target.startswith("/"):
        raise ValueError(f"invalid volume specification: {spec!r}: the mount path in the container must be absolute")
    if not source:
        vol: dict = {"type": "volume", "target": target}
    elif is_path(source):
        vol = {"type": "bind", "source": source, "target": target, "bind": {"create_host_path": True}}
    else:
        if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", source):
            raise ValueError(f"invalid volume specification: {spec!r}: {source!r} is neither a path "
                             "(start it with ./ or /) nor a valid volume name")
        vol = {"type": "volume", "source": source, "target": target}
    for opt in filter(None, mode.split(",")):
        if opt in ("ro", "rw"):
            vol["read_only"] = opt == "ro"
        elif opt in ("z", "Z"):
            if vol["type"] != "bind":
                raise ValueError(f"invalid volume specification: {spec!r}: {opt!r} applies to bind mounts only")
            vol.setdefault("bind", {})["selinux"] = opt
        elif opt in _PROPAGATION:
            if vol["type"] != "bind":
                raise ValueError(f"invalid volume specification: {spec!r}: {opt!r} applies to bind mounts only")
            vol.setdefault("bind", {})["propagation"] = opt
        elif opt == "nocopy":
            if vol["type"] != "volume":
                raise ValueError(f"invalid volume specification: {spec!r}: nocopy applies to volumes only")
            vol["volume"] = {"nocopy": True}
        elif opt in _CONSISTENCY:
            vol["consistency"] = opt
        else:
            raise ValueError(f"invalid volume specification: {spec!r}: unknown mode {opt!r}")
    return vol


def volume_target(entry) -> str | None:
    if isinstance(entry, dict):
        return entry.get("target")
    try:
        return parse_volume(entry)["target"]
    except ValueError:
        return None


def mount_target(entry, kind: str) -> str | None:
    """The path a service's secret ("secrets") or config ("configs") is mounted at."""
    if isinstance(entry, dict):
        source = entry.get("source")
        target = entry.get("target")
    else:
        source, target = entry, None
    if kind == "secrets":
        if not target:
            target = source
        if target and not target.startswith("/"):
            target = "/run/secrets/" + target
    else:
        if not target:
            target = "/" + source if source else None
    return target
