"""Network isolation (issue 17): the host's loopback is not reachable from containers (the
CVE-2020-8558 class), and two data roots on one host neither share addresses nor touch each
other's network namespaces.

The loopback probe is a crafted TCP SYN to 127.0.0.1:PORT sent at layer 2 to the gateway's MAC
from inside a container's network namespace (nsenter + an AF_PACKET socket: a real kernel and
the real rules), looking for the SYN-ACK of a service the test listens with on the host's
loopback, before and after a container publishes a port on the bridge (portmap then sets
route_localnet=1 there). A control run without nerdpy's drop rule shows the probe does see a
SYN-ACK when the hole is open."""
from __future__ import annotations

import os
import shlex
import socket
import sqlite3
import subprocess
import sys

import pytest

from conftest import Nerdpy, _unmount_under

PROBE = r'''
import os, socket, struct, sys, time
gw_mac, port, ifname = sys.argv[1], int(sys.argv[2]), "eth0"
target = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
src_ip = None
for line in os.popen("ip -4 -o addr show dev eth0").read().split("\n"):
    if " inet " in line:
        src_ip = line.split()[3].split("/")[0]
mac = open(f"/sys/class/net/{ifname}/address").read().strip()
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack(f"!{len(b)//2}H", b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
src = socket.inet_aton(src_ip); dst = socket.inet_aton(target); sport = 40000 + os.getpid() % 20000
tcp = struct.pack("!HHIIBBHHH", sport, port, 12345, 0, 5 << 4, 0x02, 64240, 0, 0)
tcp = tcp[:16] + struct.pack("!H", csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, src, dst)
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
eth = bytes.fromhex(gw_mac.replace(":", "")) + bytes.fromhex(mac.replace(":", "")) + b"\x08\x00"
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind((ifname, 0)); s.settimeout(0.2)
end = time.time() + 2.5; sent = 0
while time.time() < end:
    if time.time() > sent + 0.5:
        s.send(eth + ip + tcp); sent = time.time()
    try:
        f = s.recv(2048)
    except socket.timeout:
        continue
    p = f[14:]
    if len(p) < 40 or p[9] != 6 or p[12:16] != dst:
        continue
    hl = (p[0] & 15) * 4
    sp, dp = struct.unpack("!HH", p[hl:hl + 4])
    if sp == port and dp == sport and p[hl + 13] & 0x12 == 0x12:
        print("SYNACK"); sys.exit(0)
print("nothing")
'''


def _bridge_env(tag: str) -> dict:
    n = os.getpid() % 200 + 20
    return {"NERDPY_BRIDGE_NAME": f"npl{tag}{os.getpid() % 10000}", "NERDPY_BRIDGE_SUBNET": f"10.{n}.{78 + int(tag)}.0/24"}


def _cleanup_bridge(bridge: str) -> None:
    subprocess.run(["ip", "link", "del", bridge], capture_output=True)
    for table, chain in (("filter", "INPUT"), ("filter", "CNI-ISOLATION-STAGE-1"), ("filter", "CNI-ISOLATION-STAGE-2")):
        r = subprocess.run(["iptables", "-w", "-t", table, "-S", chain], capture_output=True, text=True)
        for rule in r.stdout.splitlines():
            words = shlex.split(rule)
            if rule.startswith("-A ") and bridge in words:
                subprocess.run(["iptables", "-w", "-t", table, "-D", *words[1:]], capture_output=True)


def _netns(n: Nerdpy, name: str) -> str:
    cid = n("inspect", "-f", "{{.Id}}", name, check=True).stdout.strip()
    return os.path.join(n.run_root, "netns", "default", cid)


def _probe(n: Nerdpy, name: str, bridge: str, port: int, target: str = "127.0.0.1") -> str:
    mac = open(f"/sys/class/net/{bridge}/address").read().strip()
    # the host must know the container's MAC to answer (an ARP it sends from 127.0.0.1 would
    # go unanswered): as after any traffic from the container, here a ping of the gateway
    gw = n("inspect", "-f", "{{.NetworkSettings.Gateway}}", name, check=True).stdout.strip()
    n("exec", name, "ping", "-c", "1", "-W", "2", gw, check=True)
    r = subprocess.run(["nsenter", f"--net={_netns(n, name)}", sys.executable, "-c", PROBE, mac, str(port), target],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture
def lo_service():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s.getsockname()[1]
    s.close()


def test_host_loopback_is_not_reachable_from_a_container(tmp_path, images, lo_service):
    env = _bridge_env("1")
    bridge = env["NERDPY_BRIDGE_NAME"]
    n = Nerdpy(str(tmp_path / "data"), str(tmp_path), str(tmp_path / "run"), netconf=str(tmp_path / "net.d"))
    n.env.update(env)
    try:
        n("pull", "-q", images.busybox, check=True)
        n("run", "-d", "--name", "prober", images.busybox, "sleep", "1000", check=True)
        # before any published port: the kernel drops loopback addresses from the bridge
        assert open(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet").read().strip() == "0"
        assert _probe(n, "prober", bridge, lo_service) == "nothing"
        gw = n("inspect", "-f", "{{.NetworkSettings.Gateway}}", "prober", check=True).stdout.strip()
        any_service = socket.create_server(("0.0.0.0", 0))
        try:  # the probe itself works: the gateway's own address answers
            assert _probe(n, "prober", bridge, any_service.getsockname()[1], gw) == "SYNACK"
        finally:
            any_service.close()
        # a published port: portmap sets route_localnet, nerdpy's rule still drops the SYN
        n("run", "-d", "--name", "pub", "-p", "127.0.0.1::80", images.busybox, "sleep", "1000", check=True)
        assert open(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet").read().strip() == "1"
        rules = subprocess.run(["iptables", "-w", "-S", "INPUT"], capture_output=True, text=True).stdout
        assert f"-A INPUT -d 127.0.0.0/8 -i {bridge}" in rules, rules
        assert _probe(n, "prober", bridge, lo_service) == "nothing"
        # the control: without the rule the same probe gets the host service's SYN-ACK
        from nerdpy.engine.network.localnet import guard_loopback, remove_guard

        remove_guard(bridge)
        try:
            assert _probe(n, "prober", bridge, lo_service) == "SYNACK"
        finally:
            guard_loopback(bridge)
        assert _probe(n, "prober", bridge, lo_service) == "nothing"
        # the published port itself still works from the host
        port = n("port", "pub", "80").stdout.strip().rsplit(":", 1)[1]
        assert port.isdigit()
    finally:
        left = n("ps", "-a", "-q").stdout.split()
        if left:
            n("rm", "-f", *left)
        _cleanup_bridge(bridge)
        _unmount_under(str(tmp_path))


def test_two_data_roots_do_not_collide(tmp_path, images):
    run_root = str(tmp_path / "run")  # one run root, as both would use /run/nerdpy
    roots = []
    for name in ("a", "b"):
        n = Nerdpy(str(tmp_path / name), str(tmp_path), run_root, netconf=str(tmp_path / f"net-{name}"))
        n.env.pop("NERDPY_BRIDGE_NAME")
        n.env.pop("NERDPY_BRIDGE_SUBNET")
        roots.append(n)
    a, b = roots
    try:
        for n in roots:
            n("pull", "-q", images.busybox, check=True)
            n("run", "-d", "--name", "c", images.busybox, "sleep", "1000", check=True)
        ips = [n("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "c", check=True).stdout.strip() for n in roots]
        assert ips[0] and ips[1] and ips[0] != ips[1], ips
        links = []
        for n in roots:
            db = sqlite3.connect(os.path.join(n.data_root, "meta.db"))
            links.append(db.execute("SELECT link, subnet FROM networks WHERE name = 'bridge'").fetchone())
            db.close()
        assert links[0][0] != links[1][0] and links[0][1] != links[1][1], links
        b_ns = _netns(b, "c")
        assert os.path.exists(b_ns)
        a("system", "prune", "-f", check=True)
        a("network", "prune", "-f", check=True)
        a("system", "check", check=True)
        assert os.path.exists(b_ns)
        out = b("exec", "c", "ip", "-4", "addr", "show", "eth0", check=True).stdout
        assert ips[1] in out, out
        # and B's own prune keeps its running container's namespace too
        b("system", "prune", "-f", check=True)
        assert os.path.exists(b_ns)
    finally:
        for n in roots:
            left = n("ps", "-a", "-q").stdout.split()
            if left:
                n("rm", "-f", *left)
        for n in roots:
            try:
                db = sqlite3.connect(os.path.join(n.data_root, "meta.db"))
                link = db.execute("SELECT link FROM networks WHERE name = 'bridge'").fetchone()
                db.close()
            except sqlite3.Error:
                link = None
            if link:
                _cleanup_bridge(link[0])
        _unmount_under(str(tmp_path))
