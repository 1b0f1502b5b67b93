"""The host's loopback stays the host's: the guard against the CVE-2020-8558 class.

The CNI portmap plugin sets `route_localnet=1` on a bridge once a port is published there (so
that `127.0.0.1:PORT` on the host reaches the container), and it stays set. From then on the
kernel routes packets that arrive on the bridge for 127.0.0.0/8 to the host's own loopback
services: a container (which keeps NET_RAW) could send a crafted SYN to 127.0.0.1:5000 through
its gateway and reach a service bound to the host's loopback only. This module adds the rule
docker and kube-proxy use: drop packets to 127.0.0.0/8 arriving on the bridge unless they
belong to a connection the host made or a DNAT'd one. It is installed whenever a bridge has
route_localnet set (before a CNI ADD that publishes ports, and after each ADD: a /proc read, and one
`iptables -C` for such bridges)
and removed with the bridge.
"""
from __future__ import annotations

import subprocess

from nerdpy.engine.network.usernet import wrap  # a rootless user's bridges live in its network namespace

COMMENT = "nerdpy: no host loopback from containers"


def _rule(bridge: str) -> list[str]:
    return ["INPUT", "-i", bridge, "-d", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate",
            "RELATED,ESTABLISHED,DNAT", "-m", "comment", "--comment", COMMENT, "-j", "DROP"]


def route_localnet(bridge: str) -> bool:
    try:
        with open(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def guard_loopback(bridge: str, publishing: bool = False) -> None:
    """Make sure the drop rule is there for `bridge` when the kernel would route loopback
    addresses from it, or is about to (`publishing`: before a CNI ADD with port mappings, so
    that there is no moment without it). Idempotent."""
    if not bridge or not (publishing or route_localnet(bridge)):
        return
    rule = _rule(bridge)
    have = subprocess.run(wrap(["iptables", "-w", "-t", "filter", "-C", *rule]), capture_output=True)
    if have.returncode != 0:
        r = subprocess.run(wrap(["iptables", "-w", "-t", "filter", "-I", *rule]), capture_output=True, text=True)
        if r.returncode != 0:
            from nerdpy.engine.network import NetworkError

            raise NetworkError(f"cannot protect the host's loopback from bridge {bridge}: "
                               f"{r.stderr.strip() or 'iptables failed'}")


def remove_guard(bridge: str) -> None:
    """Remove the rule (every copy) with its bridge."""
    for _ in range(10):
        r = subprocess.run(wrap(["iptables", "-w", "-t", "filter", "-D", *_rule(bridge)]), capture_output=True)
        if r.returncode != 0:
            return
