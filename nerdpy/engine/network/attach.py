"""Attaching containers to networks, and undoing it, without a daemon and without leaks.

What the container lifecycle calls:

- `attach_container(store, cid, [NetworkRequest...], ports, ...)` before `runc create`: makes
  the network namespace, runs CNI ADD for each network and returns a `NetworkSetup` (the netns
  path for the OCI spec, and per network the address, gateway and MAC for inspect).
- `detach_container(store, cid)` by whoever ends the container: CNI DEL for each network with
  the configuration ADD ran, then the namespace goes. Idempotent.
- `reclaim_leaks(store)` (`network prune`, `system prune`): what a crash left behind.

Crash safety comes from writing ahead: the sandbox row (netns path, published ports) and one
row per network (the exact conflist and runtime arguments) are committed before anything is
made on the host, and each ADD's result is recorded as soon as the plugin that allocates the
address returns. So whatever point a process dies at, a later `detach_container` or
`reclaim_leaks` has what CNI DEL needs. Rows go only once their DEL succeeded.
"""
from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import json
import os
import re
import subprocess
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from nerdpy.engine.errors import InvalidArgument
from nerdpy.engine.network import NetworkError
from nerdpy.engine.network.cni import RuntimeConf, add_network_list, del_network_list, parse_result
from nerdpy.engine.network.hosts import HostEntry, own_names, peer_names, render_hosts, rewrite_in_place
from nerdpy.engine.network.netns import (create_netns, delete_netns, is_netns, list_netns, netns_path, owner_of,
                                         set_owner)
from nerdpy.engine.network.networks import (DEFAULT_NETWORK, DEFAULT_SUBNET, Network, conflist, ensure_conflist,
                                            find_network, lease_dir)
from nerdpy.engine.network.ports import PortMapping, allocate, to_portmap
from nerdpy.engine.util.fs import write_atomic
from nerdpy.engine.util.locks import flock_wait

_MAC_RE = re.compile(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")
_IFNAME_RE = re.compile(r"^[a-zA-Z0-9_.-]{1,15}$")


@dataclass
class NetworkRequest:
    """One network a container asks for (`--network`, `--ip`, `--mac-address`, `--network-alias`)."""

    network: str = DEFAULT_NETWORK      # name, ID or unique ID prefix
    aliases: list[str] = field(default_factory=list)
    ip: str | None = None
    mac: str | None = None
    ifname: str | None = None           # default eth0, eth1, ... in order


@dataclass
class Attachment:
    network: str
    network_id: str
    driver: str
    ifname: str
    ip: str = ""
    prefix_len: int = 0
    gateway: str = ""
    mac: str = ""
    aliases: list[str] = field(default_factory=list)
    requested_ip: str = ""


@dataclass
class NetworkSetup:
    netns: str                          # goes into the OCI spec: {"type": "network", "path": netns}
    attachments: list[Attachment]
    ports: list[PortMapping]            # published ports with their host ports chosen

    @property
    def primary(self) -> Attachment | None:
        return self.attachments[0] if self.attachments else None


# rows ---------------------------------------------------------------------------------------
def _sandbox(db, ns: str, cid: str):
    return db.query_one("SELECT * FROM net_sandboxes WHERE namespace = ? AND container_id = ?", (ns, cid))


def _rows(db, ns: str, cid: str) -> list:
    return db.query("SELECT * FROM net_attachments WHERE namespace = ? AND container_id = ? ORDER BY position",
                    (ns, cid))


def _attachment(r) -> Attachment:
    netlist = json.loads(r["conflist"])
    runtime = json.loads(r["runtime"])
    a = Attachment(network=r["network"], network_id=netlist.get("nerdpyID", ""),
                   driver=netlist["plugins"][0]["type"], ifname=r["ifname"], aliases=json.loads(r["aliases"]),
                   requested_ip=(runtime.get("caps", {}).get("ips") or [""])[0].split("/")[0])
    if r["result"]:
        itf = parse_result(json.loads(r["result"]), r["ifname"])
        a.ip, a.prefix_len, a.gateway, a.mac = itf.address, itf.prefix_len, itf.gateway, itf.mac
    return a


def get_setup(store, cid: str) -> NetworkSetup | None:
    """What a container is attached to now (None when it has no network namespace of ours)."""
    sb = _sandbox(store.db, store.namespace, cid)
    if sb is None:
        return None
    info = json.loads(sb["info"])
    return NetworkSetup(sb["netns"], [_attachment(r) for r in _rows(store.db, store.namespace, cid)],
                        [PortMapping.from_dict(p) for p in info.get("ports", [])])


def _taken_ports(cur) -> list[tuple[str, str, int]]:
    taken = []
    for r in cur.execute("SELECT info FROM net_sandboxes").fetchall():
        for p in json.loads(r["info"]).get("ports", []):
            taken.append((p.get("protocol", "tcp"), p.get("host_ip", ""), int(p["host_port"])))
    return taken


# the network locks this thread holds: the CNI plugins it runs inherit them (RuntimeConf.held_fds)
_held: ContextVar[tuple[int, ...]] = ContextVar("held_network_locks", default=())


@contextmanager
def _holding(fd: int) -> Iterator[None]:
    token = _held.set(_held.get() + (fd,))
    try:
        yield
    finally:
        _held.reset(token)


@contextmanager
def _container_lock(store, ns: str, cid: str) -> Iterator[None]:
    """One attach, detach or reclaim of a container at a time (`rm -f` racing the monitor's
    cleanup, `prune` racing a `start`). The lock file goes once the container is detached."""
    d = os.path.join(store.settings.run_root, "netlocks", ns)
    os.makedirs(d, mode=0o700, exist_ok=True)
    path = os.path.join(d, cid)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        flock_wait(fd, fcntl.LOCK_EX, f"the network lock of container {cid[:12]} ({path})")
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # unlinked by the holder we waited for: lock the new file
    try:
        with _holding(fd):
            yield
    finally:
        if _sandbox(store.db, ns, cid) is None:
            try:
                os.unlink(path)
            except OSError:
                pass
        os.close(fd)


# attach -------------------------------------------------------------------------------------
def _effective(net: Network, data_root: str, ports: bool, mac: bool) -> dict:
    """The network's conflist without the plugins that would have nothing to do (portmap
    without ports, tuning without a MAC): each is a process start saved, at ADD and DEL."""
    netlist = conflist(net, data_root)
    netlist["plugins"] = [p for p in netlist["plugins"]
                          if not (p["type"] == "portmap" and not ports) and not (p["type"] == "tuning" and not mac)]
    return netlist


def _validate(req: NetworkRequest, net: Network) -> None:
    if req.ip:
        try:
            addr = ipaddress.ip_address(req.ip)
        except ValueError:
            raise InvalidArgument(f"invalid IP address {req.ip!r}") from None
        if addr not in ipaddress.ip_network(net.subnet):
            raise InvalidArgument(f"IP address {req.ip} is not in the subnet {net.subnet} of network {net.name}")
        if net.name == DEFAULT_NETWORK:
            raise InvalidArgument("user specified IP address is supported only when connecting to "
                                  "networks with user configured subnets")
    if req.mac and not _MAC_RE.match(req.mac):
        raise InvalidArgument(f"invalid MAC address {req.mac!r}")
    if req.aliases and net.name == DEFAULT_NETWORK:
        raise InvalidArgument("network-scoped aliases are only supported for user-defined networks")
    if req.ifname and not _IFNAME_RE.match(req.ifname):
        raise InvalidArgument(f"invalid interface name {req.ifname!r}")


def attach_container(store, cid: str, networks: list[NetworkRequest], ports: Iterable[PortMapping] = (), *,
                     name: str = "", hostname: str = "", domainname: str = "",
                     extra_hosts: Iterable[tuple[str, str]] = (), hosts_path: str | None = None) -> NetworkSetup:
    """Create the container's network namespace and attach it to `networks` (none: only `lo`).

    `ports` (from ports.parse_publish / exposed_mappings) are published through the first
    bridge network that is not internal (ignored without one, as docker does with `none`);
    host ports are checked (PortInUse) before anything is set up. `name`, `hostname`,
    `domainname` and `extra_hosts` (parsed --add-host) feed /etc/hosts: with `hosts_path` the
    file is written there, and the hosts files of containers sharing a user network with
    this one are updated. Any failure undoes everything and re-raises.
    """
    with _container_lock(store, store.namespace, cid):
        return _attach(store, cid, networks, list(ports), name=name, hostname=hostname, domainname=domainname,
                       extra_hosts=extra_hosts, hosts_path=hosts_path)


def _attach(store, cid: str, networks: list[NetworkRequest], ports: list[PortMapping], *, name: str,
            hostname: str, domainname: str, extra_hosts: Iterable[tuple[str, str]],
            hosts_path: str | None) -> NetworkSetup:
    ns = store.namespace
    if _sandbox(store.db, ns, cid) is not None:
        errors = _teardown(store, ns, cid)  # left over by a crash or a failed cleanup
        if errors:
            raise errors[0]
    chosen: list[tuple[NetworkRequest, Network]] = []
    for req in networks:
        net = find_network(store, req.network)
        if any(n.name == net.name for _, n in chosen):
            raise InvalidArgument(f"container cannot be connected to network {net.name} more than once")
        _validate(req, net)
        chosen.append((req, net))
    port_net = next((i for i, (_, n) in enumerate(chosen) if n.driver == "bridge" and not n.internal), None)
    if port_net is None:
        ports = []
    netns = netns_path(store.settings.run_root, ns, cid)
    plans = []
    used_ifnames = {r.ifname for r, _ in chosen if r.ifname}
    n_eth = 0
    for i, (req, net) in enumerate(chosen):
        ifname = req.ifname
        if not ifname:
            while f"eth{n_eth}" in used_ifnames:
                n_eth += 1
            ifname = f"eth{n_eth}"
            used_ifnames.add(ifname)
        plans.append((i, req, net, ifname))
    info = {"name": name, "hostname": hostname, "domainname": domainname,
            "extra_hosts": [list(h) for h in extra_hosts], "hosts_path": hosts_path or ""}
    with store.db.write() as cur:  # write-ahead: recorded (and ports held) before anything exists
        allocated = allocate(ports, _taken_ports(cur))
        info["ports"] = [m.as_dict() for m in allocated]
        cur.execute("INSERT INTO net_sandboxes(namespace, container_id, netns, info, created_at) VALUES (?,?,?,?,?)",
                    (ns, cid, netns, json.dumps(info), time.time()))
        for i, req, net, ifname in plans:
            caps: dict = {}
            if i == port_net and allocated:
                caps["portMappings"] = to_portmap(allocated)
            if req.ip:
                caps["ips"] = [f"{req.ip}/{ipaddress.ip_network(net.subnet).prefixlen}"]
            if req.mac:
                caps["mac"] = req.mac.lower()
            netlist = _effective(net, store.data_root, "portMappings" in caps, "mac" in caps)
            cur.execute("INSERT INTO net_attachments(namespace, container_id, network, ifname, position, conflist,"
                        " runtime, result, aliases) VALUES (?,?,?,?,?,?,?,NULL,?)",
                        (ns, cid, net.name, ifname, i, json.dumps(netlist), json.dumps({"args": [], "caps": caps}),
                         json.dumps(list(req.aliases))))
    try:
        for _, _, net, _ in plans:
            ensure_conflist(store, net)
        set_owner(netns, store.data_root)  # first: another root's prune never sees it unmarked
        create_netns(netns)
        for r in _rows(store.db, ns, cid):
            _add(store, ns, cid, netns, r)
        if hosts_path:
            write_atomic(hosts_path, _render_hosts(store.db, ns, cid))
            _refresh_peers(store.db, ns, cid)
    except BaseException:
        try:
            _teardown(store, ns, cid)
        except Exception:  # noqa: BLE001 - the original error matters more; reclaim_leaks retries
            pass
        raise
    _mirror(store, ns, cid)
    return get_setup(store, cid)  # type: ignore[return-value]


def _mirror(store, ns: str, cid: str) -> None:
    """The container's sandbox and attachment rows beside its directory (what a rebuild of the
    DB reads, so that a later stop still tears its network down)."""
    from nerdpy.engine.content.sidecar import write_network_record

    sb = _sandbox(store.db, ns, cid)
    rows = [dict(r) for r in _rows(store.db, ns, cid)]
    write_network_record(os.path.join(store.data_root, "containers", ns, cid),
                         {"sandbox": dict(sb) if sb is not None else None, "attachments": rows})


def _add(store, ns: str, cid: str, netns: str, r) -> None:
    netlist = json.loads(r["conflist"])
    runtime = json.loads(r["runtime"])
    rt = RuntimeConf(cid, netns, r["ifname"], [tuple(a) for a in runtime.get("args", [])], runtime.get("caps", {}),
                     held_fds=_held.get())

    def save(i: int, result: dict) -> None:
        if i == 0:  # the addresses are known: enough for a DEL to release everything
            _save_result(store.db, ns, cid, r["network"], result)

    first = netlist["plugins"][0]
    bridge = first.get("bridge", "") if first["type"] == "bridge" else ""
    # The first ADD on a bridge also makes the plugins' shared chains and per-bridge rules, by
    # check-then-append: concurrent first ADDs would duplicate them. So a first ADD holds this
    # lock exclusively, every other ADD shares it (one flock, no waiting in the common case).
    fd = os.open(os.path.join(store.data_root, "network-add.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fresh = bool(bridge) and not os.path.exists(f"/sys/class/net/{bridge}")
        flock_wait(fd, fcntl.LOCK_EX if fresh else fcntl.LOCK_SH,
                   f"the network lock ({os.path.join(store.data_root, 'network-add.lock')})")
        if bridge and (runtime.get("caps") or {}).get("portMappings"):
            from nerdpy.engine.network.localnet import guard_loopback

            guard_loopback(bridge, publishing=True)
        rt.held_fds += (fd,)
        result = add_network_list(netlist, rt, list(store.settings.cni_path), progress=save)
        if bridge:
            from nerdpy.engine.network.localnet import guard_loopback

            guard_loopback(bridge)  # portmap may have just set route_localnet on it
    finally:
        os.close(fd)
    _save_result(store.db, ns, cid, r["network"], result)
    _mirror(store, ns, cid)


def _save_result(db, ns: str, cid: str, network: str, result: dict) -> None:
    with db.write() as cur:
        cur.execute("UPDATE net_attachments SET result = ? WHERE namespace = ? AND container_id = ? AND network = ?",
                    (json.dumps(result), ns, cid, network))


def connect_container(store, cid: str, req: NetworkRequest) -> Attachment:
    """`network connect`: attach a container that already has a namespace to one more network."""
    with _container_lock(store, store.namespace, cid):
        return _connect(store, cid, req)


def _connect(store, cid: str, req: NetworkRequest) -> Attachment:
    ns = store.namespace
    sb = _sandbox(store.db, ns, cid)
    if sb is None:
        raise InvalidArgument(f"container {cid[:12]} has no network namespace (is it running?)")
    net = find_network(store, req.network)
    _validate(req, net)
    rows = _rows(store.db, ns, cid)
    if any(r["network"] == net.name for r in rows):
        raise InvalidArgument(f"container {cid[:12]} is already attached to network {net.name}")
    used = {r["ifname"] for r in rows}
    ifname = req.ifname or next(f"eth{n}" for n in range(len(used) + 1) if f"eth{n}" not in used)
    caps: dict = {}
    if req.ip:
        caps["ips"] = [f"{req.ip}/{ipaddress.ip_network(net.subnet).prefixlen}"]
    if req.mac:
        caps["mac"] = req.mac.lower()
    netlist = _effective(net, store.data_root, False, "mac" in caps)
    position = max((r["position"] for r in rows), default=-1) + 1
    with store.db.write() as cur:
        cur.execute("INSERT INTO net_attachments(namespace, container_id, network, ifname, position, conflist,"
                    " runtime, result, aliases) VALUES (?,?,?,?,?,?,?,NULL,?)",
                    (ns, cid, net.name, ifname, position, json.dumps(netlist),
                     json.dumps({"args": [], "caps": caps}), json.dumps(list(req.aliases))))
    row = next(r for r in _rows(store.db, ns, cid) if r["network"] == net.name)
    try:
        ensure_conflist(store, net)
        _add(store, ns, cid, sb["netns"], row)
    except BaseException:
        _del_one(store, ns, cid, sb["netns"], _fresh(store.db, row))
        raise
    _refresh_own(store.db, ns, cid)
    _refresh_peers(store.db, ns, cid)
    return _attachment(_fresh(store.db, row))


def disconnect_container(store, cid: str, network: str) -> None:
    """`network disconnect`: CNI DEL for one network of a container."""
    with _container_lock(store, store.namespace, cid):
        _disconnect(store, cid, network)


def _disconnect(store, cid: str, network: str) -> None:
    ns = store.namespace
    net = find_network(store, network)
    row = next((r for r in _rows(store.db, ns, cid) if r["network"] == net.name), None)
    if row is None:
        raise InvalidArgument(f"container {cid[:12]} is not connected to network {net.name}")
    sb = _sandbox(store.db, ns, cid)
    error = _del_one(store, ns, cid, sb["netns"] if sb else netns_path(store.settings.run_root, ns, cid), row)
    if error is not None:
        raise error
    _refresh_own(store.db, ns, cid)
    _refresh_peers(store.db, ns, cid, extra_networks={net.name})


def _fresh(db, row):
    return db.query_one("SELECT * FROM net_attachments WHERE namespace = ? AND container_id = ? AND network = ?",
                        (row["namespace"], row["container_id"], row["network"])) or row


# detach -------------------------------------------------------------------------------------
def detach_container(store, cid: str) -> list[Attachment]:
    """CNI DEL for every network of the container (last attached first, each with the config
    and result of its ADD), then remove its network namespace and update its peers' /etc/hosts.
    Safe to call twice, for a container that was never attached, and after a crash at any
    point of attach or detach. Returns the attachments this call released (none the second
    time). Raises NetworkError if a plugin failed; the rows whose DEL failed are kept, so a
    later call (or reclaim_leaks) tries again."""
    released: list[Attachment] = []
    with _container_lock(store, store.namespace, cid):
        errors = _teardown(store, store.namespace, cid, released)
    if errors:
        raise errors[0]
    return released


def _teardown(store, ns: str, cid: str, released: list[Attachment] | None = None) -> list[NetworkError]:
    db = store.db
    sb = _sandbox(db, ns, cid)
    netns = sb["netns"] if sb is not None else netns_path(store.settings.run_root, ns, cid)
    rows = _rows(db, ns, cid)
    networks = {r["network"] for r in rows}
    errors = []
    for r in reversed(rows):
        e = _del_one(store, ns, cid, netns, r)
        if e is not None:
            errors.append(e)
        elif released is not None:
            released.append(_attachment(r))
    try:
        delete_netns(netns)
    except NetworkError as e:
        errors.append(e)
    if not errors:
        with db.write() as cur:
            cur.execute("DELETE FROM net_sandboxes WHERE namespace = ? AND container_id = ?", (ns, cid))
    if networks:
        _refresh_peers(db, ns, cid, extra_networks=networks)
    _mirror(store, ns, cid)
    return errors


def _del_one(store, ns: str, cid: str, netns: str, r) -> NetworkError | None:
    netlist = json.loads(r["conflist"])
    runtime = json.loads(r["runtime"])
    had_netns = is_netns(netns)
    # no namespace: DEL runs without one (CNI allows it for DEL) rather than on the path, where
    # a crash between creating the file and mounting the namespace on it may have left a plain
    # file that the plugins refuse ("unknown FS magic") while a missing path is fine to them
    rt = RuntimeConf(cid, netns if had_netns else "", r["ifname"], [tuple(a) for a in runtime.get("args", [])],
                     runtime.get("caps", {}), held_fds=_held.get())
    cached = json.loads(r["result"]) if r["result"] else _result_from_lease(store.data_root, netlist, cid, r["ifname"],
                                                                          netns)
    try:
        del_network_list(netlist, rt, list(store.settings.cni_path), cached)
    except NetworkError as e:
        return e
    for plugin in netlist.get("plugins") or []:
        if plugin.get("type") == "tuning":
            # tuning's DEL keeps its backup of the original MAC when it cannot restore it (the
            # container's interface is gone by then): nothing is left to restore, so drop it
            backup = os.path.join(plugin.get("dataDir") or "/run/cni/tuning", f"{cid}_{r['ifname']}.json")
            try:
                os.unlink(backup)
            except FileNotFoundError:
                pass
    if not had_netns:
        # without the namespace the bridge plugin cannot learn the address, so it leaves the
        # masquerade rule and chain: remove them by the name and comment it gives them
        _sweep_masquerade(netlist["name"], cid)
    with store.db.write() as cur:
        cur.execute("DELETE FROM net_attachments WHERE namespace = ? AND container_id = ? AND network = ?",
                    (ns, cid, r["network"]))
    return None


def _result_from_lease(data_root: str, netlist: dict, cid: str, ifname: str, netns: str) -> dict | None:
    """A stand-in ADD result when ADD never recorded one (a crash inside it): the address that
    host-local leased to this container, so the plugins' DEL can remove their rules."""
    ipam = (netlist["plugins"][0].get("ipam") or {})
    ranges = ipam.get("ranges") or [[{}]]
    subnet = ranges[0][0].get("subnet")
    d = os.path.join(ipam.get("dataDir") or lease_dir(data_root), netlist["name"])
    for ip, owner, owner_if in _leases(d):
        if owner == cid and owner_if in ("", ifname) and subnet:
            plen = ipaddress.ip_network(subnet).prefixlen
            ipc = {"address": f"{ip}/{plen}", "interface": 0}
            if ranges[0][0].get("gateway"):
                ipc["gateway"] = ranges[0][0]["gateway"]
            return {"cniVersion": netlist.get("cniVersion", "1.0.0"),
                    "interfaces": [{"name": ifname, "sandbox": netns}], "ips": [ipc]}
    return None


def _leases(d: str) -> list[tuple[str, str, str]]:
    """(ip, container id, ifname) of host-local's lease files in directory d."""
    out = []
    try:
        names = os.listdir(d)
    except OSError:
        return out
    for n in names:
        try:
            ipaddress.ip_address(n)
        except ValueError:
            continue
        try:
            with open(os.path.join(d, n)) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        out.append((n, lines[0].strip() if lines else "", lines[1].strip() if len(lines) > 1 else ""))
    return out


def _chain_name(cni_name: str, cid: str) -> str:
    """libcni utils.FormatChainName: the per-container chain of the bridge plugin's ipMasq."""
    return "CNI-" + hashlib.sha512((cni_name + cid).encode()).hexdigest()[:24]


def _sweep_masquerade(cni_name: str, cid: str) -> None:
    from nerdpy.engine.network.usernet import wrap

    chain = _chain_name(cni_name, cid)
    r = subprocess.run(wrap(["iptables", "-w", "-t", "nat", "-S", "POSTROUTING"]), capture_output=True, text=True)
    for line in r.stdout.splitlines():
        words = line.split()
        if line.startswith("-A ") and chain in words:
            subprocess.run(wrap(["iptables", "-w", "-t", "nat", "-D", *_unquote(words[1:])]), capture_output=True)
    subprocess.run(wrap(["iptables", "-w", "-t", "nat", "-F", chain]), capture_output=True)
    subprocess.run(wrap(["iptables", "-w", "-t", "nat", "-X", chain]), capture_output=True)


def _unquote(words: list[str]) -> list[str]:
    """iptables -S quotes comments with spaces; split them back into one argument."""
    import shlex

    return shlex.split(" ".join(words))


# /etc/hosts ---------------------------------------------------------------------------------
def _render_hosts(db, ns: str, cid: str) -> str:
    sb = _sandbox(db, ns, cid)
    info = json.loads(sb["info"]) if sb is not None else {}
    rows = [r for r in _rows(db, ns, cid) if r["result"]]
    own, mine, gateway = [], set(), ""
    for r in rows:
        a = _attachment(r)
        user = r["network"] != DEFAULT_NETWORK
        if user:
            mine.add(r["network"])
        gateway = gateway or a.gateway
        own.append(HostEntry(a.ip, own_names(info.get("hostname", ""), info.get("domainname", ""),
                                             info.get("name", ""), r["network"], a.aliases, user)))
    peers = []
    if mine:
        marks = ",".join("?" * len(mine))
        for r in db.query(f"SELECT a.*, s.info AS sinfo FROM net_attachments a JOIN net_sandboxes s ON "
                          f"a.namespace = s.namespace AND a.container_id = s.container_id WHERE a.namespace = ? "
                          f"AND a.container_id != ? AND a.network IN ({marks}) AND a.result IS NOT NULL "
                          f"ORDER BY s.created_at, a.position", (ns, cid, *sorted(mine))):
            pinfo = json.loads(r["sinfo"])
            a = _attachment(r)
            peers.append(HostEntry(a.ip, peer_names(pinfo.get("name", ""), r["network"], pinfo.get("hostname", ""),
                                                    a.aliases)))
    extra = [tuple(h) for h in info.get("extra_hosts", [])]
    return render_hosts(own, extra, peers, host_gateway=gateway or _default_gateway(db))


def _default_gateway(db) -> str:
    """`host-gateway` without a network gateway of its own: the default bridge's gateway, as
    docker uses docker0's address."""
    r = db.query_one("SELECT gateway FROM networks WHERE name = ?", (DEFAULT_NETWORK,))
    return r["gateway"] if r is not None else str(ipaddress.ip_network(DEFAULT_SUBNET).network_address + 1)


def render_container_hosts(store, cid: str) -> str:
    """The /etc/hosts text for an attached container (own names, --add-host, peers)."""
    return _render_hosts(store.db, store.namespace, cid)


def _refresh_own(db, ns: str, cid: str) -> None:
    sb = _sandbox(db, ns, cid)
    path = json.loads(sb["info"]).get("hosts_path") if sb is not None else ""
    if path:
        rewrite_in_place(path, _render_hosts(db, ns, cid))


def _refresh_peers(db, ns: str, cid: str, extra_networks: set[str] = frozenset()) -> None:
    """Rewrite the hosts files of the containers sharing a user network with `cid`."""
    nets = {r["network"] for r in _rows(db, ns, cid)} | set(extra_networks)
    nets.discard(DEFAULT_NETWORK)
    if not nets:
        return
    marks = ",".join("?" * len(nets))
    peers = {r["container_id"] for r in db.query(
        f"SELECT DISTINCT container_id FROM net_attachments WHERE namespace = ? AND container_id != ? "
        f"AND network IN ({marks})", (ns, cid, *sorted(nets)))}
    for peer in sorted(peers):
        try:
            _refresh_own(db, ns, peer)
        except OSError:
            continue  # its files are going away with it


# leaks --------------------------------------------------------------------------------------
@dataclass
class Reclaimed:
    sandboxes: list[str] = field(default_factory=list)    # "namespace/id" torn down
    netns: list[str] = field(default_factory=list)        # namespace paths without a record
    leases: list[str] = field(default_factory=list)       # "network/ip" lease files without an owner
    errors: list[str] = field(default_factory=list)


def reclaim_leaks(store, is_running: Callable[[str, str], bool] | None = None, grace: float = 120.0) -> Reclaimed:
    """Undo what crashes left: the networks of containers that no longer exist (in any
    namespace), network namespaces nothing records, and host-local leases whose container has
    no attachment. With `is_running(namespace, id)`, also the networks of containers that
    exist but do not run, when attached more than `grace` seconds ago (a container being
    started right now is attached but not running yet)."""
    out = Reclaimed()
    db = store.db
    files = list_netns(store.settings.run_root)            # listed before the rows: see below
    lease_files = []
    ldir = lease_dir(store.data_root)
    for d in (os.listdir(ldir) if os.path.isdir(ldir) else []):
        lease_files += [(d, ip, owner) for ip, owner, _ in _leases(os.path.join(ldir, d))]
    existing = {(r["namespace"], r["id"]) for r in db.query("SELECT namespace, id FROM containers")}
    now = time.time()
    for sb in db.query("SELECT namespace, container_id, created_at FROM net_sandboxes"):
        key = (sb["namespace"], sb["container_id"])
        gone = key not in existing
        stopped = (not gone and is_running is not None and now - sb["created_at"] > grace
                   and not is_running(*key))
        if gone or stopped:
            with _container_lock(store, *key):
                errors = _teardown(store, *key)
            out.sandboxes.append(f"{key[0]}/{key[1]}")
            out.errors += [str(e) for e in errors]
    # a path is made after its row is committed and removed before its row is deleted, so a
    # path listed before the rows were read and without a row now is a leak
    recorded = {(r["namespace"], r["container_id"]) for r in db.query("SELECT namespace, container_id FROM net_sandboxes")}
    mine = os.path.realpath(store.data_root)
    rootless = store.settings.rootless_uid is not None
    for ns, cid, path in files:
        if ns == "_rootless":  # a rootless user's user-network namespace (network/usernet.py)
            continue
        if rootless and (ns, cid) in existing:  # its slirp4netns netns: no CNI row; its teardown removes it
            continue
        owner = owner_of(path)  # None: made before owners were recorded (or by a crash before it)
        if owner is not None and owner != mine:
            continue  # another data root's (they may share a run root): never ours to remove
        if (ns, cid) not in recorded and os.path.lexists(path):
            try:
                delete_netns(path)
                out.netns.append(path)
            except (NetworkError, OSError) as e:
                out.errors.append(str(e))
    owners = {r["container_id"] for r in db.query("SELECT DISTINCT container_id FROM net_attachments")}
    for net_dir, ip, owner in lease_files:
        if owner and owner not in owners:
            if _release_lease(os.path.join(ldir, net_dir), ip, owner):
                out.leases.append(f"{net_dir}/{ip}")
    return out


def _release_lease(d: str, ip: str, owner: str) -> bool:
    """Remove one lease file under host-local's own lock, if it still belongs to `owner`."""
    try:
        lock = os.open(os.path.join(d, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return False
    try:
        flock_wait(lock, fcntl.LOCK_EX, f"host-local's lease lock ({os.path.join(d, 'lock')})")
        path = os.path.join(d, ip)
        try:
            with open(path) as f:
                if f.read().splitlines()[0].strip() != owner:
                    return False
            os.unlink(path)
        except (OSError, IndexError):
            return False
        return True
    finally:
        os.close(lock)
