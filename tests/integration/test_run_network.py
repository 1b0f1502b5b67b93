"""`run` with networks: the default bridge, user networks with name resolution, published ports,
none/host/container: modes, --add-host/--dns, inspect and ps, and no leaks afterwards.

Real CNI plugins and iptables; the conftest gives each session its own bridge and subnet."""
from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest

import world


@pytest.fixture
def bb(nerdpy, images):
    nerdpy("pull", "-q", images.busybox, check=True)
    return images.busybox


def host_state() -> dict:
    """What this session's containers hold on the host: veths on the session's bridge and the
    iptables rules that name its subnet (other test sessions may run beside this one)."""
    from conftest import BRIDGE_NAME, BRIDGE_SUBNET

    links = subprocess.run(["ip", "-o", "link", "show", "master", BRIDGE_NAME], capture_output=True,
                           text=True).stdout
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    prefix = BRIDGE_SUBNET.rsplit(".", 1)[0] + "."
    return {
        "veth": sorted(re.findall(r"^\d+: (veth[^@:]+)", links, re.M)),
        "rules": sorted(line for line in rules.splitlines() if line.startswith("-A") and prefix in line),
    }


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


HTTPD = "while true; do printf 'HTTP/1.0 200 OK\\r\\n\\r\\nhello from %s\\n' $(hostname) | nc -l -p 80; done"


def test_default_bridge_gives_an_address_hosts_and_resolv(nerdpy, bb):
    before = host_state()
    r = nerdpy("run", "--rm", "--hostname", "box", "--add-host", "extra.test:10.1.2.3", "--dns", "9.9.9.9",
               "--dns-search", "example.test", bb, "sh", "-c",
               "ip -4 -o addr show eth0; cat /etc/hosts; cat /etc/resolv.conf; ip route")
    assert r.returncode == 0, r.stderr
    m = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/24", r.stdout)
    assert m, r.stdout
    ip = m.group(1)
    assert re.search(rf"^{re.escape(ip)}\s+box$", r.stdout, re.M)
    assert re.search(r"^10\.1\.2\.3\s+extra\.test$", r.stdout, re.M)
    assert "nameserver 9.9.9.9" in r.stdout and "search example.test" in r.stdout
    assert "default via" in r.stdout
    assert host_state() == before


def test_published_port_reached_from_the_host_and_shown(nerdpy, bb):
    before = host_state()
    port = free_port()
    nerdpy("run", "-d", "--name", "web", "-p", f"{port}:80", bb, "sh", "-c", HTTPD, check=True)
    assert "hello from" in world.http_get(f"http://127.0.0.1:{port}/")
    assert nerdpy("ps", "--format", "{{.Ports}}").stdout == f"0.0.0.0:{port}->80/tcp\n"
    assert nerdpy("port", "web").stdout == f"80/tcp -> 0.0.0.0:{port}\n"
    assert nerdpy("port", "web", "80").stdout == f"0.0.0.0:{port}\n"
    ports = nerdpy("inspect", "-f", "{{json .NetworkSettings.Ports}}", "web").stdout
    assert f'"HostPort":"{port}"' in ports
    ip = nerdpy("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web").stdout.strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", ip)
    # the same host port again: a clear error, and nothing of the second container left
    r = nerdpy("run", "--rm", "-p", f"{port}:80", bb, "true")
    assert r.returncode == 125 and "already allocated" in r.stderr
    assert len(nerdpy("ps", "-a", "-q").stdout.split()) == 1
    nerdpy("rm", "-f", "web", check=True)
    assert host_state() == before
    assert not os.listdir(os.path.join(nerdpy.run_root, "netns", "default")) \
        if os.path.isdir(os.path.join(nerdpy.run_root, "netns", "default")) else True


def test_publish_all_uses_random_host_ports(nerdpy, bb):
    nerdpy("run", "-d", "--name", "pa", "-P", bb, "sh", "-c", HTTPD, check=True)
    out = nerdpy("port", "pa", "80").stdout.strip()
    host_port = int(out.rsplit(":", 1)[1])
    assert host_port > 0
    assert "hello from" in world.http_get(f"http://127.0.0.1:{host_port}/")


def test_user_network_names_aliases_and_isolation(nerdpy, bb):
    nerdpy("network", "create", "front", check=True)
    nerdpy("network", "create", "back", check=True)
    nerdpy("run", "-d", "--name", "db", "--network", "back", "--network-alias", "database", bb,
           "sleep", "300", check=True)
    nerdpy("run", "-d", "--name", "api", "--network", "back", bb, "sleep", "300", check=True)
    for target in ("db", "database", "db.back"):
        r = nerdpy("exec", "api", "ping", "-c1", "-W2", target)
        assert r.returncode == 0, (target, r.stdout, r.stderr)
    # a container that started later is in the others' hosts files too
    nerdpy("run", "-d", "--name", "late", "--network", "back", bb, "sleep", "300", check=True)
    assert nerdpy("exec", "db", "ping", "-c1", "-W2", "late").returncode == 0
    # another network neither resolves nor reaches them
    db_ip = nerdpy("inspect", "-f", "{{(index .NetworkSettings.Networks \"back\").IPAddress}}", "db").stdout.strip()
    r = nerdpy("run", "--rm", "--network", "front", bb, "sh", "-c", f"ping -c1 -W1 db; ping -c1 -W1 {db_ip}")
    assert r.returncode != 0
    assert "bad address" in r.stderr + r.stdout
    # a stopped container leaves its peers' hosts files
    nerdpy("stop", "-t", "0", "late", check=True)
    assert "late" not in nerdpy("exec", "db", "cat", "/etc/hosts").stdout
    r = nerdpy("network", "rm", "back")
    assert r.returncode != 0 and "in use" in r.stderr.lower() or "active" in r.stderr.lower()


def test_none_host_and_container_modes(nerdpy, bb):
    r = nerdpy("run", "--rm", "--network", "none", bb, "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in r.stdout.splitlines()] == ["lo"]
    host_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    r = nerdpy("run", "--rm", "--network", "host", bb, "ip", "-o", "link")
    assert len(r.stdout.splitlines()) == len(host_links.splitlines())
    nerdpy("run", "-d", "--name", "owner", bb, "sleep", "300", check=True)
    owner_ip = nerdpy("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "owner").stdout.strip()
    r = nerdpy("run", "--rm", "--network", "container:owner", bb, "ip", "-4", "-o", "addr", "show", "eth0")
    assert owner_ip in r.stdout, r.stdout + r.stderr
    r = nerdpy("run", "--rm", "--network", "container:owner", "-p", "80", bb, "true")
    assert r.returncode == 125 and "conflicting options" in r.stderr
    r = nerdpy("run", "--rm", "--network", "nosuch", bb, "true")
    assert r.returncode == 125 and "not found" in r.stderr


def test_stop_start_and_monitor_kill_leave_no_leaks(nerdpy, bb):
    before = host_state()
    nerdpy("run", "-d", "--name", "n1", bb, "sleep", "300", check=True)
    nerdpy("stop", "-t", "0", "n1", check=True)
    assert host_state() == before
    nerdpy("start", "n1", check=True)
    ip = nerdpy("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "n1").stdout.strip()
    assert ip
    cid = nerdpy("inspect", "-f", "{{.Id}}", "n1").stdout.strip()
    with open(os.path.join(nerdpy.run_root, "default", cid, "monitor.pid")) as f:
        os.kill(int(f.read().split()[0]), signal.SIGKILL)
    nerdpy("rm", "-f", "n1", check=True)
    assert host_state() == before
    assert not os.path.exists(os.path.join(nerdpy.run_root, "netns", "default", cid))


def test_parallel_runs_get_distinct_addresses(nerdpy, bb):
    import sys

    procs = [subprocess.Popen([sys.executable, "-m", "nerdpy", "--data-root", nerdpy.data_root, "run", "-d",
                               bb, "sleep", "300"], env=nerdpy.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    ids = [o[0].strip() for o in outs]
    ips = [nerdpy("inspect", "-f", "{{.NetworkSettings.IPAddress}}", i).stdout.strip() for i in ids]
    assert len(set(ips)) == 8 and all(ips), ips
    before_rm = len(host_state()["veth"])
    assert before_rm >= 8
    procs = [subprocess.Popen([sys.executable, "-m", "nerdpy", "--data-root", nerdpy.data_root, "rm", "-f", i],
                              env=nerdpy.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in ids]
    assert all(p.wait(120) == 0 for p in procs)
    assert len(host_state()["veth"]) == before_rm - 8


def test_network_connect_and_disconnect(nerdpy, bb):
    nerdpy("network", "create", "extra", check=True)
    nerdpy("run", "-d", "--name", "c1", bb, "sleep", "300", check=True)
    nerdpy("run", "-d", "--name", "peer", "--network", "extra", bb, "sleep", "300", check=True)
    assert nerdpy("exec", "c1", "ping", "-c1", "-W1", "peer").returncode != 0
    nerdpy("network", "connect", "--alias", "one", "extra", "c1", check=True)
    nets = nerdpy("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "c1").stdout
    assert sorted(nets.split()) == ["bridge", "extra"]
    assert nerdpy("exec", "c1", "ping", "-c1", "-W2", "peer").returncode == 0
    assert nerdpy("exec", "peer", "ping", "-c1", "-W2", "one").returncode == 0
    r = nerdpy("network", "connect", "extra", "c1")
    assert r.returncode != 0 and "already exists" in r.stderr
    # it stays connected across a restart
    nerdpy("restart", "-t", "0", "c1", check=True)
    assert nerdpy("exec", "c1", "ping", "-c1", "-W2", "peer").returncode == 0
    nerdpy("network", "disconnect", "extra", "c1", check=True)
    assert nerdpy("exec", "c1", "ping", "-c1", "-W1", "peer").returncode != 0
    assert "extra" not in nerdpy("inspect", "-f", "{{json .NetworkSettings.Networks}}", "c1").stdout
