"""The networking engine against the real CNI plugins and iptables, without containers: the
"containers" are network namespaces that attach_container makes for made-up IDs, probed with
nsenter. Each test module uses its own bridges, subnets, data root and conflist directory, and
checks that links, iptables rules, namespaces and leases are back where they started."""
from __future__ import annotations

import ipaddress
import json
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from nerdpy.engine.config import Settings
from nerdpy.engine.network import CniError, NetworkError, PortInUse
from nerdpy.engine.network.attach import (NetworkRequest, attach_container, connect_container, detach_container,
                                          disconnect_container, get_setup, reclaim_leaks)
from nerdpy.engine.network.netns import create_netns, is_netns, netns_path
from nerdpy.engine.network.networks import (create_network, ensure_default_network, find_network, lease_dir,
                                            remove_host_state, remove_network)
from nerdpy.engine.network.ports import parse_publish
from nerdpy.engine.network.views import network_settings
from nerdpy.engine.store import open_store

TAG = secrets.token_hex(2)


def _free_octet() -> int:
    used = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    candidates = [o for o in range(160, 250) if f"10.{o}." not in used]
    return random.choice(candidates)


OCTET = _free_octet()


def subnet(i: int) -> str:
    return f"10.{OCTET}.{i}.0/24"


def host_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def iptables_rules() -> set[str]:
    out = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    rules = set()
    for line in out.splitlines():
        if line.startswith("#"):
            continue
        rules.add(re.sub(r"\[\d+:\d+\]", "", line).strip())
    return rules


def snapshot(store) -> dict:
    leases = set()
    d = lease_dir(store.data_root)
    for net in (os.listdir(d) if os.path.isdir(d) else []):
        leases |= {f"{net}/{f}" for f in os.listdir(os.path.join(d, net)) if re.fullmatch(r"[0-9.]+", f)}
    ns_root = os.path.join(store.settings.run_root, "netns")
    netns = {os.path.join(r, f) for r, _, fs in os.walk(ns_root) for f in fs}
    return {"links": host_links(), "rules": iptables_rules(), "leases": leases, "netns": netns,
            "rows": len(store.db.query("SELECT * FROM net_attachments")) + len(store.db.query("SELECT * FROM net_sandboxes"))}


def assert_undone(before: dict, during: dict, after: dict, keep: tuple[str, ...] = ()) -> None:
    """Everything that appeared between `before` and `during` is gone in `after` (other
    processes on the machine may change unrelated state meanwhile), but for what mentions one
    of `keep` (a network's bridge and its isolation rules stay until the network goes)."""
    for key in ("links", "rules", "leases", "netns"):
        added = {x for x in during[key] - before[key] if not any(k in x for k in keep)}
        left = added & after[key]
        assert not left, f"{key} left behind: {sorted(left)}"
    assert after["rows"] == before["rows"]


def in_netns(path: str, *cmd: str, timeout: float = 10) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net={path}", *cmd], capture_output=True, text=True, timeout=timeout)


def can_ping(path: str, ip: str) -> bool:
    return in_netns(path, "busybox", "ping", "-c", "1", "-W", "1", ip).returncode == 0


def tcp_server(path: str, port: int, reply: str) -> subprocess.Popen:
    """A one-shot-per-connection TCP server inside a namespace; prints READY when listening."""
    code = ("import socket,sys\n"
            "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('0.0.0.0', {port})); s.listen(8); print('READY', flush=True)\n"
            "while True:\n"
            "    c,_=s.accept(); c.sendall(sys.argv[1].encode()); c.close()\n")
    p = subprocess.Popen(["nsenter", f"--net={path}", sys.executable, "-c", code, reply],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "READY"
    return p


def fetch(host: str, port: int, timeout: float = 3) -> str:
    with socket.create_connection((host, port), timeout=timeout) as s:
        return s.recv(100).decode()


def host_ip() -> str:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = line.split()
        if not f[1].startswith(("br-", "nerdpy", "cni", "veth", "npt")):
            return f[3].split("/")[0]
    pytest.skip("no global IPv4 address on the host")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    if shutil.which("busybox") is None:
        pytest.skip("busybox (for ping) is missing")
    base = tmp_path_factory.mktemp("neteng")
    settings = Settings(data_root=str(base / "data"), run_root=str(base / "run"),
                        cni_netconfpath=str(base / "net.d"))
    settings.bridge_name = f"npt{TAG}d"
    settings.bridge_subnet = subnet(0)
    st = open_store(settings)
    start_links = host_links()
    yield st
    # tear down whatever a failing test left, then the networks, then the netns root mount
    reclaim_leaks(st)
    for r in st.db.query("SELECT name FROM networks WHERE name != 'bridge'"):
        try:
            remove_network(st, r["name"])
        except Exception:  # noqa: BLE001
            pass
    default = st.db.query_one("SELECT name FROM networks WHERE name = 'bridge'")
    if default is not None:
        remove_host_state(st, find_network(st, "bridge"))
    subprocess.run(["umount", "-l", os.path.join(settings.run_root, "netns")], capture_output=True)
    st.close()
    left = {link for link in host_links() - start_links if TAG in link}
    assert not left, f"bridges left: {left}"
    rules = [r for r in iptables_rules() if f"npt{TAG}" in r or f"10.{OCTET}." in r]
    assert not rules, f"iptables rules left: {rules}"


def new_net(store, i: int, **kw):
    kw.setdefault("subnet", subnet(i))
    opts = dict(kw.pop("options", {}))
    opts.setdefault("com.docker.network.bridge.name", f"npt{TAG}n{i}")
    return create_network(store, f"t{i}-{TAG}", options=opts, **kw)


def cid() -> str:
    return secrets.token_hex(32)


def test_netns_without_ip(store):
    path = netns_path(store.settings.run_root, "default", cid())
    create_netns(path)
    try:
        assert is_netns(path)
        out = in_netns(path, "ip", "-o", "link").stdout
        assert re.search(r"^1: lo: <LOOPBACK,UP", out, re.M) and out.count("\n") == 1
        with pytest.raises(NetworkError, match="exists already"):
            create_netns(path)
    finally:
        from nerdpy.engine.network.netns import delete_netns

        delete_netns(path)
        delete_netns(path)
    assert not os.path.exists(path)


def test_two_containers_on_a_user_network(store, tmp_path):
    net = new_net(store, 1)
    a, b = cid(), cid()
    ha, hb = str(tmp_path / "hosts-a"), str(tmp_path / "hosts-b")
    before = snapshot(store)
    sa = attach_container(store, a, [NetworkRequest(net.name, aliases=["web"])], name="one", hostname="h1",
                          hosts_path=ha, extra_hosts=[("gw", "host-gateway")])
    sb = attach_container(store, b, [NetworkRequest(net.name)], name="two", hostname="h2", hosts_path=hb)
    during = snapshot(store)
    try:
        ipa, ipb = sa.primary.ip, sb.primary.ip
        assert ipa != ipb and ipaddress.ip_address(ipa) in ipaddress.ip_network(net.subnet)
        assert sa.primary.gateway == str(ipaddress.ip_network(net.subnet).network_address + 1)
        addr = in_netns(sa.netns, "ip", "-o", "-4", "addr", "show", "eth0").stdout
        assert f"{ipa}/24" in addr
        link = in_netns(sa.netns, "ip", "-o", "link", "show", "eth0").stdout
        assert sa.primary.mac in link
        assert "default via" in in_netns(sa.netns, "ip", "route").stdout
        assert can_ping(sa.netns, ipb) and can_ping(sb.netns, ipa)
        assert can_ping(sa.netns, sa.primary.gateway)
        hosts_a = open(ha).read()
        assert f"{sa.primary.gateway}\tgw\n" in hosts_a
        assert f"{ipa}\th1 one one.{net.name} web\n" in hosts_a
        assert f"{ipb}\ttwo two.{net.name} h2\n" in hosts_a          # a's file was updated when b came
        assert f"{ipa}\tone one.{net.name} h1 web\n" in open(hb).read()
        settings = network_settings(store, a)
        ep = settings["Networks"][net.name]
        assert (ep["IPAddress"], ep["IPPrefixLen"], ep["Gateway"], ep["MacAddress"]) == \
            (ipa, 24, sa.primary.gateway, sa.primary.mac)
        assert ep["Aliases"] == ["web"] and ep["NetworkID"] == net.id
        assert settings["SandboxKey"] == sa.netns and settings["IPAddress"] == ""   # docker: only for `bridge`
        inode = os.stat(ha).st_ino
    finally:
        detach_container(store, b)
    assert f"\ttwo two.{net.name}" not in open(ha).read()              # peers' files follow
    assert os.stat(ha).st_ino == inode                                 # rewritten in place
    detach_container(store, a)
    detach_container(store, a)                                        # idempotent
    assert_undone(before, during, snapshot(store), keep=(net.link,))
    remove_network(store, net.name)
    assert_undone(before, during, snapshot(store))


def test_published_port_reachable_from_host(store):
    net = new_net(store, 2)
    c = cid()
    port = free_port()
    setup = attach_container(store, c, [NetworkRequest(net.name)],
                             parse_publish(f"{port}:8080") + parse_publish("127.0.0.1::8081"))
    server = tcp_server(setup.netns, 8080, "hello")
    server2 = tcp_server(setup.netns, 8081, "local")
    try:
        assert setup.ports[0].host_port == port
        other = setup.ports[1].host_port
        assert other and setup.ports[1].host_ip == "127.0.0.1"
        assert fetch(host_ip(), port) == "hello"
        assert fetch("127.0.0.1", port) == "hello"          # portmap sets route_localnet on the bridge
        assert fetch("127.0.0.1", other) == "local"
        assert network_settings(store, c)["Ports"] == {
            "8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}],
            "8081/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(other)}]}
        # the same host port for another container: refused before anything is made
        before = snapshot(store)
        with pytest.raises(PortInUse, match="already allocated"):
            attach_container(store, cid(), [NetworkRequest(net.name)], parse_publish(f"{port}:80"))
        assert snapshot(store) == before
    finally:
        server.kill()
        server2.kill()
        server.wait()
        server2.wait()
        detach_container(store, c)
    with pytest.raises(OSError):
        fetch("127.0.0.1", port, timeout=1)
    remove_network(store, net.name)


def test_port_in_use_on_the_host_leaves_nothing(store):
    net = new_net(store, 3)
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        before = snapshot(store)
        c = cid()
        with pytest.raises(PortInUse) as e:
            attach_container(store, c, [NetworkRequest(net.name)], parse_publish(f"{port}:80"))
        assert f"0.0.0.0:{port}" in str(e.value) and e.value.exit_code == 125
        assert snapshot(store) == before
        assert get_setup(store, c) is None
    remove_network(store, net.name)


def test_networks_are_isolated(store):
    n1, n2 = new_net(store, 4), new_net(store, 5)
    a, a2, b = cid(), cid(), cid()
    sa = attach_container(store, a, [NetworkRequest(n1.name)], name="a", hosts_path=None)
    sa2 = attach_container(store, a2, [NetworkRequest(n1.name)], name="a2")
    sb = attach_container(store, b, [NetworkRequest(n2.name)], name="b")
    try:
        assert can_ping(sa.netns, sa2.primary.ip)
        assert not can_ping(sa.netns, sb.primary.ip)
        assert not can_ping(sb.netns, sa.primary.ip)
        from nerdpy.engine.network.attach import render_container_hosts

        assert "\tb " not in render_container_hosts(store, a) and "a2" in render_container_hosts(store, a)
    finally:
        for c in (a, a2, b):
            detach_container(store, c)
    remove_network(store, n1.name)
    remove_network(store, n2.name)


def test_internal_network(store):
    net = new_net(store, 6, internal=True)
    c = cid()
    setup = attach_container(store, c, [NetworkRequest(net.name)])
    try:
        routes = in_netns(setup.netns, "ip", "route").stdout
        assert "default" not in routes and net.subnet.split("/")[0] in routes
        r = in_netns(setup.netns, "busybox", "ping", "-c", "1", "-W", "1", "192.0.2.1")
        assert r.returncode != 0 and "unreachable" in (r.stdout + r.stderr).lower()
        assert not [rule for rule in iptables_rules() if setup.primary.ip in rule and "nat" in rule.lower()]
        nat = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True).stdout
        assert setup.primary.ip not in nat                                   # no masquerade
        # published ports are ignored on an internal network (docker does the same)
        assert attach_container(store, cid(), [NetworkRequest(net.name)], parse_publish("80")).ports == []
    finally:
        reclaim_leaks(store)
    assert get_setup(store, c) is None
    remove_network(store, net.name)


def test_default_bridge_ip_mac_and_timing(store):
    c = cid()
    before = snapshot(store)
    t0 = time.perf_counter()
    setup = attach_container(store, c, [NetworkRequest("bridge")])
    t1 = time.perf_counter()
    during = snapshot(store)
    detach_container(store, c)
    t2 = time.perf_counter()
    assert_undone(before, during, snapshot(store), keep=(store.settings.bridge_name,))
    net = ensure_default_network(store)
    assert net.link == f"npt{TAG}d" and setup.primary.network == "bridge"
    assert ipaddress.ip_address(setup.primary.ip) in ipaddress.ip_network(subnet(0))
    print(f"\ndefault bridge: attach {1000 * (t1 - t0):.0f} ms, detach {1000 * (t2 - t1):.0f} ms")
    # --ip and --mac-address on a user network
    user = new_net(store, 7, ip_range=f"10.{OCTET}.7.128/25")
    c2 = cid()
    s2 = attach_container(store, c2, [NetworkRequest(user.name, ip=f"10.{OCTET}.7.200", mac="02:42:ac:11:00:99")])
    try:
        assert s2.primary.ip == f"10.{OCTET}.7.200" and s2.primary.mac == "02:42:ac:11:00:99"
        assert "02:42:ac:11:00:99" in in_netns(s2.netns, "ip", "link", "show", "eth0").stdout
        assert network_settings(store, c2)["Networks"][user.name]["IPAMConfig"] == {"IPv4Address": f"10.{OCTET}.7.200"}
        s3 = attach_container(store, cid(), [NetworkRequest(user.name)])
        assert ipaddress.ip_address(s3.primary.ip) in ipaddress.ip_network(f"10.{OCTET}.7.128/25")
    finally:
        reclaim_leaks(store)
    remove_network(store, user.name)


def test_failed_attach_undoes_everything(store):
    n1, n2 = new_net(store, 8), new_net(store, 9, ip_range=f"10.{OCTET}.9.0/26")
    before = snapshot(store)
    c = cid()
    with pytest.raises(CniError):  # host-local: the address is outside the range it allocates from
        attach_container(store, c, [NetworkRequest(n1.name), NetworkRequest(n2.name, ip=f"10.{OCTET}.9.200")],
                         parse_publish(f"{free_port()}:80"))
    after = snapshot(store)
    assert_undone(before, after, after, keep=(n1.link, n2.link))   # only the networks' bridges stay
    assert not os.path.exists(netns_path(store.settings.run_root, "default", c))
    remove_network(store, n1.name)
    remove_network(store, n2.name)


def test_connect_and_disconnect(store, tmp_path):
    n1, n2 = new_net(store, 10), new_net(store, 11)
    a, b = cid(), cid()
    ha = str(tmp_path / "hosts-a")
    sa = attach_container(store, a, [NetworkRequest(n1.name)], name="a", hosts_path=ha)
    sb = attach_container(store, b, [NetworkRequest(n2.name)], name="b")
    try:
        assert not can_ping(sa.netns, sb.primary.ip)
        att = connect_container(store, a, NetworkRequest(n2.name, aliases=["alias-a"]))
        assert att.ifname == "eth1" and ipaddress.ip_address(att.ip) in ipaddress.ip_network(n2.subnet)
        assert f"{att.ip}/24" in in_netns(sa.netns, "ip", "-o", "-4", "addr", "show", "eth1").stdout
        assert can_ping(sa.netns, sb.primary.ip)
        assert f"{sb.primary.ip}\tb b.{n2.name}\n" in open(ha).read()
        with pytest.raises(Exception, match="already attached"):
            connect_container(store, a, NetworkRequest(n2.name))
        with pytest.raises(Exception, match="in use"):
            remove_network(store, n2.name)
        disconnect_container(store, a, n2.name)
        assert "eth1" not in in_netns(sa.netns, "ip", "-o", "link").stdout
        assert f"b.{n2.name}" not in open(ha).read()
    finally:
        detach_container(store, a)
        detach_container(store, b)
    remove_network(store, n1.name)
    remove_network(store, n2.name)


ATTACH_SCRIPT = r"""
import json, sys
from nerdpy.engine.config import Settings
from nerdpy.engine.store import open_store
from nerdpy.engine.network.attach import NetworkRequest, attach_container, detach_container
cfg = json.loads(sys.argv[1])
s = Settings(data_root=cfg["data_root"], run_root=cfg["run_root"], cni_netconfpath=cfg["netconf"])
s.bridge_name, s.bridge_subnet = cfg["bridge_name"], cfg["bridge_subnet"]
st = open_store(s)
if sys.argv[2] == "attach":
    print(attach_container(st, sys.argv[3], [NetworkRequest(sys.argv[4])]).primary.ip)
else:
    detach_container(st, sys.argv[3])
"""


def test_twenty_parallel_attaches_get_distinct_addresses(store):
    net = new_net(store, 12)
    cfg = json.dumps({"data_root": store.data_root, "run_root": store.settings.run_root,
                      "netconf": store.settings.cni_netconfpath, "bridge_name": store.settings.bridge_name,
                      "bridge_subnet": store.settings.bridge_subnet})
    ids = [cid() for _ in range(20)]
    before = snapshot(store)

    def run_all(action: str) -> list[subprocess.CompletedProcess]:
        procs = [subprocess.Popen([sys.executable, "-c", ATTACH_SCRIPT, cfg, action, i, net.name],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in ids]
        return [(p, *p.communicate(timeout=240)) for p in procs]

    results = run_all("attach")
    errors = [err for p, _, err in results if p.returncode != 0]
    during = snapshot(store)
    ips = [out.strip() for _, out, _ in results]
    try:
        assert not errors, errors[0]
        assert len(set(ips)) == 20
        assert all(ipaddress.ip_address(ip) in ipaddress.ip_network(net.subnet) for ip in ips)
        assert can_ping(get_setup(store, ids[0]).netns, ips[19])
    finally:
        results = run_all("detach")
    errors = [err for p, _, err in results if p.returncode != 0]
    assert not errors, errors[0]
    remove_network(store, net.name)
    assert_undone(before, during, snapshot(store))


def test_reclaim_after_crashes(store):
    net = new_net(store, 13)
    gone, halfway = cid(), cid()
    before = snapshot(store)
    attach_container(store, gone, [NetworkRequest(net.name)])
    s2 = attach_container(store, halfway, [NetworkRequest(net.name)], parse_publish(f"{free_port()}:80"))
    # a crash inside ADD: the result was never recorded
    with store.db.write() as cur:
        cur.execute("UPDATE net_attachments SET result = NULL WHERE container_id = ?", (halfway,))
    # a namespace nothing records, a lease nobody owns
    stray = netns_path(store.settings.run_root, "other", cid())
    create_netns(stray)
    lease = os.path.join(lease_dir(store.data_root), net.cni_name, f"10.{OCTET}.13.250")
    with open(lease, "w") as f:
        f.write(f"{cid()}\r\neth0")
    during = snapshot(store)
    # the halfway one still exists as a container: detach finds its address from the lease
    assert f"{s2.primary.ip}/32" in " ".join(during["rules"])
    detach_container(store, halfway)
    assert not any(s2.primary.ip + "/32" in r for r in iptables_rules())
    got = reclaim_leaks(store)   # `gone` has no container record: reclaimed with the rest
    assert got.sandboxes == [f"default/{gone}"] and got.netns == [stray] and got.errors == []
    assert got.leases == [f"{net.cni_name}/10.{OCTET}.13.250"]
    assert reclaim_leaks(store).sandboxes == []
    remove_network(store, net.name)
    assert_undone(before, during, snapshot(store))


def test_macvlan_on_a_veth_parent(store):
    parent = f"npt{TAG}p"   # a veth: this kernel may lack the dummy driver
    subprocess.run(["ip", "link", "add", parent, "type", "veth", "peer", "name", f"npt{TAG}q"], check=True)
    subprocess.run(["ip", "link", "set", parent, "up"], check=True)
    try:
        net = create_network(store, f"mv-{TAG}", driver="macvlan", subnet=subnet(14), options={"parent": parent})
        c = cid()
        setup = attach_container(store, c, [NetworkRequest(net.name)])
        try:
            out = in_netns(setup.netns, "ip", "-d", "-o", "link", "show", "eth0").stdout
            assert "macvlan" in out
            assert setup.primary.ip.startswith(f"10.{OCTET}.14.")
        finally:
            detach_container(store, c)
        remove_network(store, net.name)
        with pytest.raises(Exception, match="does not exist"):
            create_network(store, f"mv2-{TAG}", driver="ipvlan", options={"parent": "nonexistent0"})
    finally:
        subprocess.run(["ip", "link", "delete", parent], capture_output=True)


def test_concurrent_threads_share_one_store(store):
    net = new_net(store, 15)
    ids = [cid() for _ in range(6)]
    out: dict = {}

    def one(i: str) -> None:
        out[i] = attach_container(store, i, [NetworkRequest(net.name)]).primary.ip

    threads = [threading.Thread(target=one, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len(set(out.values())) == 6
    finally:
        for i in ids:
            detach_container(store, i)
    remove_network(store, net.name)


def test_crash_between_record_and_setup_and_repeated_del(store, monkeypatch):
    """A process killed right after the write-ahead records (nothing made yet), and a DEL that
    runs again after a detach that crashed before deleting its rows: both must just work."""
    import nerdpy.engine.network.attach as attach_mod
    from nerdpy.engine.network.cni import RuntimeConf, del_network_list

    net = new_net(store, 16)
    before = snapshot(store)
    c = cid()

    def killed(path):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(attach_mod, "create_netns", killed)
    monkeypatch.setattr(attach_mod, "_teardown", lambda *a, **k: [])   # no cleanup: the process died
    with pytest.raises(KeyboardInterrupt):
        attach_container(store, c, [NetworkRequest(net.name)], parse_publish(f"{free_port()}:80"))
    monkeypatch.undo()
    assert store.db.query("SELECT * FROM net_attachments WHERE container_id = ?", (c,))
    detach_container(store, c)
    assert get_setup(store, c) is None

    c2 = cid()
    attach_container(store, c2, [NetworkRequest(net.name)], parse_publish(f"{free_port()}:80"))
    row = store.db.query_one("SELECT * FROM net_attachments WHERE container_id = ?", (c2,))
    detach_container(store, c2)
    runtime = json.loads(row["runtime"])
    del_network_list(json.loads(row["conflist"]),
                     RuntimeConf(c2, netns_path(store.settings.run_root, "default", c2), "eth0",
                                 capability_args=runtime["caps"]),
                     list(store.settings.cni_path), json.loads(row["result"]))
    remove_network(store, net.name)
    after = snapshot(store)
    assert_undone(before, after, after)


def test_detach_racing_detach_and_reclaim(store):
    """`rm -f` racing the monitor's cleanup and a prune: one of them does the work, none fails."""
    net = new_net(store, 17)
    before = snapshot(store)
    c = cid()
    attach_container(store, c, [NetworkRequest(net.name)], parse_publish(f"{free_port()}:80"))
    during = snapshot(store)
    errors = []

    def run(fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=(f,)) for f in
               (lambda: detach_container(store, c), lambda: detach_container(store, c), lambda: reclaim_leaks(store))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    remove_network(store, net.name)
    assert_undone(before, during, snapshot(store))
    assert not os.path.exists(os.path.join(store.settings.run_root, "netlocks", "default", c))


def test_detach_after_the_namespace_vanished(store):
    """`umount -l` of the run root (or a reboot-less cleanup by hand) took the namespace: DEL
    cannot learn the address from it, so the masquerade rule is found by name and removed."""
    net = new_net(store, 18)
    before = snapshot(store)
    c = cid()
    setup = attach_container(store, c, [NetworkRequest(net.name)])
    during = snapshot(store)
    assert any(f"{setup.primary.ip}/32" in r and "POSTROUTING" in r for r in during["rules"])
    subprocess.run(["umount", "-l", setup.netns], check=True)
    os.unlink(setup.netns)
    detach_container(store, c)
    assert not any(setup.primary.ip + "/32" in r for r in iptables_rules())
    remove_network(store, net.name)
    assert_undone(before, during, snapshot(store))


def test_detach_after_a_crash_between_the_namespace_file_and_its_mount(store, monkeypatch):
    """Killed after create_netns made the empty file it mounts the namespace on, before the
    mount: the next start (or rm) must tear down through that plain file, whose path the CNI
    plugins refuse as a namespace ("unknown FS magic"), and then attach afresh."""
    import nerdpy.engine.network.attach as attach_mod
    import nerdpy.engine.network.netns as netns_mod

    net = new_net(store, 19)
    before = snapshot(store)
    c = cid()

    def killed(*a, **k):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(netns_mod, "_loopback_up", killed)  # in the new namespace, before its mount
    monkeypatch.setattr(attach_mod, "_teardown", lambda *a, **k: [])   # no cleanup: the process died
    with pytest.raises(KeyboardInterrupt):
        attach_container(store, c, [NetworkRequest(net.name)], parse_publish(f"{free_port()}:80"))
    monkeypatch.undo()
    path = netns_path(store.settings.run_root, "default", c)
    assert os.path.isfile(path) and not is_netns(path)
    setup = attach_container(store, c, [NetworkRequest(net.name)], parse_publish(f"{free_port()}:80"))
    assert is_netns(setup.netns)
    during = snapshot(store)
    detach_container(store, c)
    remove_network(store, net.name)
    assert_undone(before, during, snapshot(store))
