"""Network records and the CNI conflists generated from them.

A network is a row of the `networks` table (global to all namespaces, as Linux bridges and
conflists are) and a file `<cni_netconfpath>/nerdpy-<name>.conflist` for other CNI tools to
see. The row is what nerdpy believes; the conflist is regenerated from it (written to a temp
file and renamed, under `<data-root>/network.lock`) whenever it is missing or differs.

The default network `bridge` (Linux bridge `nerdpy0`, 10.89.0.0/24: clear of docker's
172.17/16, podman's 10.88/16 and nerdctl's 10.4/24) is created on first use. New networks
without `--subnet` get the next free /24 of 10.89.1.0-10.99.255.0 that overlaps no other
network and no route of the host.

Chain of the bridge driver: `bridge` (gateway on the bridge, ipMasq, hairpin) with `host-local`
IPAM (leases under `<data-root>/cni/networks/`, so they are ours), `portmap`, `firewall`
(ingressPolicy same-bridge: no traffic between networks) and `tuning` (--mac-address).
`--internal` networks get no masquerading, no default route and no portmap.
"""
from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shlex
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from nerdpy.engine.network.usernet import ENV as USERNET_ENV, wrap
from nerdpy.engine.errors import InvalidArgument
from nerdpy.engine.network import NetworkError, NetworkExists, NetworkInUse, NetworkNotFound
from nerdpy.engine.network.cni import CNI_VERSION
from nerdpy.engine.util.locks import flock_wait

DEFAULT_NETWORK = "bridge"
DEFAULT_SUBNET = "10.89.0.0/24"
DEFAULT_BRIDGE = "nerdpy0"
PREDEFINED = ("bridge", "host", "none")
DRIVERS = ("bridge", "macvlan", "ipvlan")
AUTO_FIRST = ipaddress.ip_network("10.89.1.0/24")
AUTO_LAST = ipaddress.ip_network("10.99.255.0/24")
CONFLIST_PREFIX = "nerdpy-"
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")

# options per driver: docker's names, and the short forms nerdctl accepts
_BRIDGE_OPTS = {"com.docker.network.bridge.name": "bridge_name", "bridge.name": "bridge_name",
                "com.docker.network.driver.mtu": "mtu", "mtu": "mtu",
                "com.docker.network.bridge.enable_ip_masquerade": "masquerade"}
_VLAN_OPTS = {"parent": "parent", "mode": "mode", "macvlan_mode": "mode", "ipvlan_mode": "mode",
              "com.docker.network.driver.mtu": "mtu", "mtu": "mtu"}
_MODES = {"macvlan": ("bridge", "vepa", "private", "passthru"), "ipvlan": ("l2", "l3", "l3s")}


@dataclass
class Network:
    name: str
    id: str
    driver: str
    subnet: str
    gateway: str
    ip_range: str = ""
    internal: bool = False
    link: str = ""                  # Linux bridge (bridge) or parent interface (macvlan/ipvlan)
    labels: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    created_at: float = 0.0

    @property
    def cni_name(self) -> str:
        """The network's name inside CNI (conflist `name`, host-local's lease directory)."""
        return CONFLIST_PREFIX + self.name

    @property
    def short_id(self) -> str:
        return self.id[:12]


def _row(r) -> Network:
    return Network(r["name"], r["id"], r["driver"], r["subnet"], r["gateway"], r["ip_range"],
                   bool(r["internal"]), r["link"], json.loads(r["labels"]), json.loads(r["options"]),
                   r["created_at"])


def lease_dir(data_root: str) -> str:
    """host-local's dataDir: leases live under our data root, one directory per network."""
    return os.path.join(data_root, "cni", "networks")


@contextmanager
def network_lock(data_root: str) -> Iterator[None]:
    """Serialises network creation and removal and conflist writes between processes."""
    os.makedirs(data_root, mode=0o711, exist_ok=True)
    fd = os.open(os.path.join(data_root, "network.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        flock_wait(fd, fcntl.LOCK_EX, f"the network lock ({os.path.join(data_root, 'network.lock')})")
        yield
    finally:
        os.close(fd)


# conflists ----------------------------------------------------------------------------------
def _ipam(net: Network, data_root: str) -> dict:
    subnet = ipaddress.ip_network(net.subnet)
    rng: dict = {"subnet": str(subnet)}
    if net.gateway:
        rng["gateway"] = net.gateway
    if net.ip_range:
        r = ipaddress.ip_network(net.ip_range)
        hosts = [a for a in (r.network_address, r.broadcast_address)]
        start = max(hosts[0], subnet.network_address + 1)
        end = min(hosts[1], subnet.broadcast_address - 1)
        rng["rangeStart"], rng["rangeEnd"] = str(start), str(end)
    ipam: dict = {"type": "host-local", "ranges": [[rng]], "dataDir": lease_dir(data_root)}
    if not net.internal and net.gateway:
        ipam["routes"] = [{"dst": "0.0.0.0/0"}]
    return ipam


def conflist(net: Network, data_root: str) -> dict:
    """The CNI network list for `net` (1.0.0)."""
    opts = net.options
    plugins: list[dict] = []
    if net.driver == "bridge":
        masq = opts.get("com.docker.network.bridge.enable_ip_masquerade", "true").lower() != "false"
        bridge: dict = {"type": "bridge", "bridge": net.link, "isGateway": True,
                        "ipMasq": masq and not net.internal, "hairpinMode": True,
                        "capabilities": {"ips": True}, "ipam": _ipam(net, data_root)}
        mtu = _opt(opts, _BRIDGE_OPTS, "mtu")
        if mtu:
            bridge["mtu"] = int(mtu)
        plugins.append(bridge)
        if not net.internal:
            plugins.append({"type": "portmap", "capabilities": {"portMappings": True}})
        plugins.append({"type": "firewall", "backend": "iptables", "ingressPolicy": "same-bridge"})
    else:
        mode = _opt(opts, _VLAN_OPTS, "mode") or _MODES[net.driver][0]
        link: dict = {"type": net.driver, "master": net.link, "mode": mode,
                      "capabilities": {"ips": True}, "ipam": _ipam(net, data_root)}
        mtu = _opt(opts, _VLAN_OPTS, "mtu")
        if mtu:
            link["mtu"] = int(mtu)
        plugins.append(link)
    plugins.append({"type": "tuning", "capabilities": {"mac": True}})
    return {"cniVersion": CNI_VERSION, "name": net.cni_name, "nerdpyID": net.id, "plugins": plugins}


def _opt(opts: dict, table: dict, key: str) -> str:
    for k, v in opts.items():
        if table.get(k) == key:
            return str(v)
    return ""


def conflist_path(netconfpath: str, name: str) -> str:
    return os.path.join(netconfpath, f"{CONFLIST_PREFIX}{name}.conflist")


def write_conflist(net: Network, data_root: str, netconfpath: str) -> str:
    """Write (or refresh) the network's conflist atomically; its path. Call under network_lock."""
    path = conflist_path(netconfpath, net.name)
    text = json.dumps(conflist(net, data_root), indent=2) + "\n"
    try:
        with open(path) as f:
            if f.read() == text:
                return path
    except OSError:
        pass
    try:
        from nerdpy.engine.util.fs import write_atomic

        os.makedirs(netconfpath, mode=0o755, exist_ok=True)
        write_atomic(path, text, 0o644, fsync=True)
    except OSError as e:
        raise NetworkError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def ensure_conflist(store, net: Network) -> str:
    """The conflist on disk, rewritten if missing or stale (someone edited or removed it)."""
    path = conflist_path(store.settings.cni_netconfpath, net.name)
    expected = json.dumps(conflist(net, store.data_root), indent=2) + "\n"
    try:
        with open(path) as f:
            if f.read() == expected:
                return path
    except OSError:
        pass
    with network_lock(store.data_root):
        return write_conflist(net, store.data_root, store.settings.cni_netconfpath)


# records ------------------------------------------------------------------------------------
def get_network(store, name: str) -> Network | None:
    r = store.db.query_one("SELECT * FROM networks WHERE name = ?", (name,))
    return _row(r) if r is not None else None


def find_network(store, query: str) -> Network:
    """By name, full ID or unique ID prefix; `bridge` is created on first use."""
    if query == DEFAULT_NETWORK:
        return ensure_default_network(store)
    r = store.db.query_one("SELECT * FROM networks WHERE name = ? OR id = ?", (query, query))
    if r is not None:
        return _row(r)
    if query and all(c in "0123456789abcdef" for c in query):
        rows = store.db.query("SELECT * FROM networks WHERE id LIKE ?", (query + "%",))
        if len(rows) == 1:
            return _row(rows[0])
        if len(rows) > 1:
            raise InvalidArgument(f"multiple networks match the ID prefix {query!r}: use more characters")
    raise NetworkNotFound(f"network {query} not found")


def list_networks(store) -> list[Network]:
    """Every network (the default one included), sorted by name."""
    ensure_default_network(store)
    return [_row(r) for r in store.db.query("SELECT * FROM networks ORDER BY name")]


def ensure_default_network(store) -> Network:
    """The `bridge` network, recorded (and its conflist written) the first time it is needed.
    Its subnet and bridge name come from settings `bridge_subnet` / `bridge_name` if set."""
    net = get_network(store, DEFAULT_NETWORK)
    if net is not None:
        return net
    link, subnet = default_bridge(store)
    try:
        return _create(store, DEFAULT_NETWORK, "bridge", subnet=subnet, link=link)
    except NetworkExists:
        return get_network(store, DEFAULT_NETWORK)  # type: ignore[return-value]


DEFAULT_DATA_ROOT = "/var/lib/nerdpy"


def default_bridge(store) -> tuple[str, str | None]:
    """The default network's bridge and subnet: the settings' when set; nerdpy0 and
    10.89.0.0/24 for the default data root; for any other data root a bridge of its own
    (`nerdpy-<hash of the data root>`) and a free /24 picked from that hash, so two data roots
    on one host never share a bridge nor hand out the same addresses."""
    link = getattr(store.settings, "bridge_name", None) or ""
    subnet = getattr(store.settings, "bridge_subnet", None) or ""
    root = os.path.realpath(store.data_root)
    if root == DEFAULT_DATA_ROOT:
        return link or DEFAULT_BRIDGE, subnet or DEFAULT_SUBNET
    tag = hashlib.sha256(root.encode()).hexdigest()
    if not subnet:
        used = [ipaddress.ip_network(DEFAULT_SUBNET)] + _host_routes()
        used += [ipaddress.ip_network(r["subnet"]) for r in store.db.query("SELECT subnet FROM networks")]
        subnet = str(_free_subnet(used, start=int(tag[:8], 16)))
    return link or f"nerdpy-{tag[:8]}", subnet


def create_network(store, name: str, driver: str = "bridge", subnet: str | None = None,
                   gateway: str | None = None, ip_range: str | None = None, internal: bool = False,
                   labels: dict | None = None, options: dict | None = None) -> Network:
    """`network create`: validate, pick a subnet if none is given, record, write the conflist."""
    if not name or not _NAME_RE.match(name):
        raise InvalidArgument(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    if name in PREDEFINED:
        raise InvalidArgument(f"{name} is a pre-defined network and cannot be created")
    if driver not in DRIVERS:
        raise InvalidArgument(f"unsupported network driver {driver!r} (use one of {', '.join(DRIVERS)})")
    net = _create(store, name, driver, subnet=subnet, gateway=gateway, ip_range=ip_range,
                   internal=internal, labels=labels or {}, options=options or {})
    from nerdpy.engine.system.journal import record_event

    record_event(store, "network", "create", net.id, {"name": net.name, "type": net.driver})
    return net


def _create(store, name: str, driver: str, subnet: str | None = None, gateway: str | None = None,
            ip_range: str | None = None, internal: bool = False, labels: dict | None = None,
            options: dict | None = None, link: str | None = None) -> Network:
    options = dict(options or {})
    table = _BRIDGE_OPTS if driver == "bridge" else _VLAN_OPTS
    for k in options:
        if k not in table:
            raise InvalidArgument(f"unsupported option {k!r} for driver {driver} "
                                  f"(supported: {', '.join(sorted(table))})")
    mtu = _opt(options, table, "mtu")
    if mtu and not (mtu.isdigit() and 68 <= int(mtu) <= 65535):
        raise InvalidArgument(f"invalid MTU {mtu!r}")
    nid = secrets.token_hex(32)
    if driver == "bridge":
        link = link or _opt(options, table, "bridge_name") or "br-" + nid[:12]
        if len(link) > 15 or not re.fullmatch(r"[a-zA-Z0-9_.-]+", link):
            raise InvalidArgument(f"invalid bridge name {link!r} (at most 15 of [a-zA-Z0-9_.-])")
    else:
        mode = _opt(options, table, "mode")
        if mode and mode not in _MODES[driver]:
            raise InvalidArgument(f"invalid {driver} mode {mode!r} (use one of {', '.join(_MODES[driver])})")
        link = _opt(options, table, "parent") or _default_route_link()
        if not link:
            raise InvalidArgument(f"{driver} needs a parent interface: -o parent=IFACE")
        if not os.path.exists(f"/sys/class/net/{link}"):
            raise InvalidArgument(f"parent interface {link!r} does not exist")
    with network_lock(store.data_root):
        if get_network(store, name) is not None:
            raise NetworkExists(f"network with name {name} already exists")
        others = [_row(r) for r in store.db.query("SELECT * FROM networks")]
        if driver == "bridge" and any(o.link == link and o.driver == "bridge" for o in others):
            raise NetworkExists(f"bridge {link} is used by another network")
        net_subnet, gw, rng = _addresses(subnet, gateway, ip_range, others, driver)
        net = Network(name=name, id=nid, driver=driver, subnet=net_subnet, gateway=gw, ip_range=rng,
                      internal=internal, link=link, labels=dict(labels or {}), options=options,
                      created_at=time.time())
        write_conflist(net, store.data_root, store.settings.cni_netconfpath)
        try:
            with store.db.write() as cur:
                cur.execute(
                    "INSERT INTO networks(name, id, driver, subnet, gateway, ip_range, internal, link,"
                    " labels, options, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (net.name, net.id, net.driver, net.subnet, net.gateway, net.ip_range,
                     int(net.internal), net.link, json.dumps(net.labels), json.dumps(net.options),
                     net.created_at))
        except BaseException:
            _unlink(conflist_path(store.settings.cni_netconfpath, name))
            raise
    return net


def _addresses(subnet: str | None, gateway: str | None, ip_range: str | None,
               others: list[Network], driver: str) -> tuple[str, str, str]:
    used = [ipaddress.ip_network(o.subnet) for o in others]
    if subnet:
        try:
            net = ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            raise InvalidArgument(f"invalid subnet {subnet!r}") from None
        if net.version != 4:
            raise InvalidArgument("IPv6 subnets are not supported yet")
        if net.prefixlen > 30:
            raise InvalidArgument(f"subnet {subnet} is too small")
        for u in used:
            if net.overlaps(u):
                other = next(o for o in others if ipaddress.ip_network(o.subnet) == u)
                raise InvalidArgument(f"subnet {net} overlaps with network {other.name} ({u})")
    else:
        if gateway or ip_range:
            raise InvalidArgument("--gateway and --ip-range need --subnet")
        net = _free_subnet(used + (_host_routes() if driver == "bridge" else []))
    if gateway:
        try:
            gw = ipaddress.ip_address(gateway)
        except ValueError:
            raise InvalidArgument(f"invalid gateway {gateway!r}") from None
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise InvalidArgument(f"gateway {gateway} is not a host address of subnet {net}")
    else:
        gw = net.network_address + 1
    rng = ""
    if ip_range:
        try:
            r = ipaddress.ip_network(ip_range, strict=False)
        except ValueError:
            raise InvalidArgument(f"invalid ip-range {ip_range!r}") from None
        if not r.subnet_of(net):
            raise InvalidArgument(f"ip-range {ip_range} is not inside subnet {net}")
        rng = str(r)
    return str(net), str(gw), rng


def _free_subnet(used: list, start: int = 0) -> ipaddress.IPv4Network:
    """The first /24 of AUTO_FIRST..AUTO_LAST that overlaps nothing in `used`, looking from
    the `start`-th one on (wrapping around)."""
    first, last = int(AUTO_FIRST.network_address) >> 8, int(AUTO_LAST.network_address) >> 8
    count = last - first + 1
    for i in range(count):
        candidate = ipaddress.ip_network(((first + (start + i) % count) << 8, 24))
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise NetworkError("no free subnet left in 10.89.1.0-10.99.255.0/24: pass --subnet")


def _host_routes() -> list:
    """Networks the host routes somewhere other than a default route (from /proc/net/route)."""
    out = []
    try:
        with open("/proc/net/route") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        f = line.split()
        if len(f) < 8:
            continue
        dst = int(f[1], 16).to_bytes(4, "little")
        mask = int(f[7], 16).to_bytes(4, "little")
        if mask == b"\0\0\0\0":
            continue
        try:
            out.append(ipaddress.ip_network(f"{ipaddress.IPv4Address(dst)}/{ipaddress.IPv4Address(mask)}",
                                            strict=False))
        except ValueError:
            continue
    return out


def _default_route_link() -> str:
    try:
        with open("/proc/net/route") as f:
            for line in f.read().splitlines()[1:]:
                fields_ = line.split()
                if len(fields_) > 7 and fields_[1] == "00000000" and fields_[7] == "00000000":
                    return fields_[0]
    except OSError:
        pass
    return ""


# removal ------------------------------------------------------------------------------------
def _configured(config: dict) -> set[str]:
    """Network names a container's recorded config asks for (`network`, `networks`)."""
    out: set[str] = set()
    net = config.get("network")
    if isinstance(net, str):
        out.update(n for n in net.split(",") if n)
    nets = config.get("networks")
    if isinstance(nets, dict):
        out.update(nets)
    elif isinstance(nets, list):
        for n in nets:
            if isinstance(n, str):
                out.add(n)
            elif isinstance(n, dict):
                out.add(n.get("name") or n.get("network") or "")
    return out


def network_users(store, net: Network) -> list[tuple[str, str]]:
    """(namespace, container id) of containers attached to `net` or configured to use it, in
    any namespace: a stopped container keeps its network, as with docker."""
    users = {(r["namespace"], r["container_id"])
             for r in store.db.query("SELECT namespace, container_id FROM net_attachments WHERE network = ?",
                                     (net.name,))}
    for r in store.db.query("SELECT namespace, id, config FROM containers"):
        try:
            wanted = _configured(json.loads(r["config"]))
        except ValueError:
            continue
        if net.name in wanted or net.id in wanted or any(len(w) >= 3 and net.id.startswith(w) for w in wanted):
            users.add((r["namespace"], r["id"]))
    return sorted(users)


def remove_network(store, query: str) -> Network:
    """`network rm`: refuses predefined networks and networks in use; removes the record, the
    conflist, the leases directory, the Linux bridge and its isolation rules."""
    if query in PREDEFINED:
        raise NetworkInUse(f"{query} is a pre-defined network and cannot be removed")
    net = find_network(store, query)
    if net.name in PREDEFINED:
        raise NetworkInUse(f"{net.name} is a pre-defined network and cannot be removed")
    with network_lock(store.data_root):
        users = network_users(store, net)
        if users:
            ids = ", ".join(cid[:12] for _, cid in users[:5]) + (" ..." if len(users) > 5 else "")
            raise NetworkInUse(f"network {net.name} is in use by container(s) {ids}")
        with store.db.write() as cur:
            cur.execute("DELETE FROM networks WHERE name = ?", (net.name,))
        _unlink(conflist_path(store.settings.cni_netconfpath, net.name))
    remove_host_state(store, net)
    from nerdpy.engine.system.journal import record_event

    record_event(store, "network", "destroy", net.id, {"name": net.name, "type": net.driver})
    return net


def remove_host_state(store, net: Network) -> None:
    """What the plugins leave behind for a network once no container uses it: the bridge, the
    firewall plugin's per-bridge isolation rules, host-local's lease directory."""
    import shutil

    shutil.rmtree(os.path.join(lease_dir(store.data_root), net.cni_name), ignore_errors=True)
    if net.driver != "bridge":
        return
    remove_bridge(net.link)


def remove_bridge(link: str) -> None:
    """A bridge and the rules made for it: the loopback guard, the firewall plugin's isolation rules."""
    if os.environ.get(USERNET_ENV) or os.path.exists(f"/sys/class/net/{link}"):  # rootless: not our /sys
        subprocess.run(wrap(["ip", "link", "delete", link, "type", "bridge"]), capture_output=True)
    from nerdpy.engine.network.localnet import remove_guard

    remove_guard(link)
    for chain in ("CNI-ISOLATION-STAGE-1", "CNI-ISOLATION-STAGE-2"):
        r = subprocess.run(wrap(["iptables", "-w", "-t", "filter", "-S", chain]), capture_output=True, text=True)
        for rule in r.stdout.splitlines():
            words = shlex.split(rule)
            if rule.startswith("-A ") and link in words:
                subprocess.run(wrap(["iptables", "-w", "-t", "filter", "-D", *words[1:]]), capture_output=True)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def prune_networks(store, flt=None) -> list[str]:
    """Remove every user network no container uses (those a PruneFilter `flt`, labels and until,
    lets go); their names."""
    removed = []
    for net in list_networks(store):
        if net.name in PREDEFINED or (flt is not None and not flt.match(net.labels, net.created_at)):
            continue
        try:
            remove_network(store, net.name)
        except (NetworkInUse, NetworkNotFound):
            continue
        removed.append(net.name)
    return removed
