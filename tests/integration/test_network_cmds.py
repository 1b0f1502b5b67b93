"""`network create/ls/inspect/rm/prune` through the CLI, with a conflist directory of the test's
own. Attachments are made with the engine for made-up container IDs (no containers needed)."""
from __future__ import annotations

import json
import os
import random
import re
import secrets
import subprocess

import pytest
import rootless_user

TAG = secrets.token_hex(2)


def _octet() -> int:
    used = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    return random.choice([o for o in range(160, 250) if f"10.{o}." not in used])


OCTET = _octet()


@pytest.fixture
def net(nerdpy, tmp_path):
    """The nerdpy runner with its own conflist directory; removes the test's bridges afterwards."""
    netconf = tmp_path / "net.d"
    nerdpy.env["NERDPY_CNI_NETCONFPATH"] = str(netconf)
    nerdpy.netconf = str(netconf)
    yield nerdpy
    if nerdpy.user is not None:  # a rootless user's bridges live in its own network namespace
        return
    store = _store(nerdpy)
    from nerdpy.engine.network.attach import reclaim_leaks
    from nerdpy.engine.network.networks import remove_network

    reclaim_leaks(store)
    for r in store.db.query("SELECT name FROM networks WHERE name != 'bridge'"):
        try:
            remove_network(store, r["name"])
        except Exception:  # noqa: BLE001
            pass
    store.close()
    left = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"npc{TAG}" not in left


def _store(nerdpy):
    from nerdpy.engine.config import Settings
    from nerdpy.engine.store import open_store

    return open_store(Settings(data_root=nerdpy.data_root, run_root=nerdpy.run_root,
                               cni_netconfpath=nerdpy.env["NERDPY_CNI_NETCONFPATH"]))


def test_create_ls_inspect_rm(net):
    r = net("network", "create", "--label", "team=a", "--label", "tier=db", "-o",
            f"com.docker.network.bridge.name=npc{TAG}1", "--subnet", f"10.{OCTET}.1.0/24", "n1")
    assert r.returncode == 0, r.stderr
    nid = r.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", nid)
    r = net("network", "create", "--internal", "--subnet", f"10.{OCTET}.2.0/24", "--gateway", f"10.{OCTET}.2.254",
            "--ip-range", f"10.{OCTET}.2.128/25", "-o", f"com.docker.network.bridge.name=npc{TAG}2", "n2")
    assert r.returncode == 0, r.stderr

    lines = net("network", "ls", check=True).stdout.splitlines()
    assert re.match(r"NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$", lines[0])
    rows = [line.split() for line in lines[1:]]
    assert [r[1] for r in rows] == ["bridge", "host", "n1", "n2", "none"]
    assert [r[2] for r in rows] == ["bridge", "host", "bridge", "bridge", "null"]
    assert all(r[3] == "local" and re.fullmatch(r"[0-9a-f]{12}", r[0]) for r in rows)
    assert rows[2][0] == nid[:12]
    assert net("network", "ls", "-q", "--filter", "label=team=a").stdout == nid[:12] + "\n"
    assert net("network", "ls", "-q", "--no-trunc", "--filter", "name=n1").stdout == nid + "\n"
    assert net("network", "ls", "--filter", "type=custom", "--format", "{{.Name}}").stdout == "n1\nn2\n"
    assert net("network", "ls", "--filter", "type=builtin", "--format", "{{.Name}}").stdout == "bridge\nhost\nnone\n"
    assert net("network", "ls", "--filter", "driver=null", "--format", "{{.Name}}").stdout == "none\n"
    assert net("network", "ls", "--filter", "label=tier", "--format", '{{.Name}} {{.Label "team"}}').stdout == "n1 a\n"
    row = json.loads(net("network", "ls", "--filter", "name=^n2$", "--format", "json").stdout)
    assert row["Name"] == "n2" and row["Internal"] == "true" and row["Driver"] == "bridge"
    r = net("network", "ls", "--filter", "color=red")
    assert r.returncode == 1 and "invalid filter" in r.stderr

    info = json.loads(net("network", "inspect", "n1", check=True).stdout)
    assert len(info) == 1
    n1 = info[0]
    assert n1["Name"] == "n1" and n1["Id"] == nid and n1["Scope"] == "local" and n1["Driver"] == "bridge"
    assert n1["EnableIPv6"] is False and n1["Internal"] is False and n1["Containers"] == {}
    assert n1["IPAM"]["Driver"] == "default"
    assert n1["IPAM"]["Config"] == [{"Subnet": f"10.{OCTET}.1.0/24", "Gateway": f"10.{OCTET}.1.1"}]
    assert n1["Labels"] == {"team": "a", "tier": "db"}
    assert n1["Options"] == {"com.docker.network.bridge.name": f"npc{TAG}1"}
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$", n1["Created"])
    n2 = json.loads(net("network", "inspect", "n2").stdout)[0]
    assert n2["Internal"] is True
    assert n2["IPAM"]["Config"] == [{"Subnet": f"10.{OCTET}.2.0/24", "Gateway": f"10.{OCTET}.2.254",
                                     "IPRange": f"10.{OCTET}.2.128/25"}]
    assert net("network", "inspect", "-f", "{{.Name}} {{.Driver}}", nid[:8], "host", "none", "bridge").stdout == \
        "n1 bridge\nhost host\nnone null\nbridge bridge\n"
    r = net("network", "inspect", "n1", "nope")
    assert r.returncode == 1 and "network nope not found" in r.stderr and json.loads(r.stdout)[0]["Name"] == "n1"

    # the conflists, where --cni-netconfpath says
    files = sorted(os.listdir(net.netconf))
    assert files == ["nerdpy-bridge.conflist", "nerdpy-n1.conflist", "nerdpy-n2.conflist"]
    conf = json.load(open(os.path.join(net.netconf, "nerdpy-n1.conflist")))
    assert conf["name"] == "nerdpy-n1" and conf["cniVersion"] == "1.0.0"
    assert [p["type"] for p in conf["plugins"]] == ["bridge", "portmap", "firewall", "tuning"]
    bridge = conf["plugins"][0]
    assert bridge["bridge"] == f"npc{TAG}1" and bridge["isGateway"] and bridge["ipMasq"] and bridge["hairpinMode"]
    assert bridge["ipam"]["type"] == "host-local" and bridge["ipam"]["routes"] == [{"dst": "0.0.0.0/0"}]
    assert bridge["ipam"]["dataDir"].startswith(net.data_root)
    conf2 = json.load(open(os.path.join(net.netconf, "nerdpy-n2.conflist")))
    assert [p["type"] for p in conf2["plugins"]] == ["bridge", "firewall", "tuning"]   # internal: no portmap
    assert conf2["plugins"][0]["ipMasq"] is False and "routes" not in conf2["plugins"][0]["ipam"]
    assert conf2["plugins"][0]["ipam"]["ranges"] == [[{"subnet": f"10.{OCTET}.2.0/24", "gateway": f"10.{OCTET}.2.254",
                                                       "rangeStart": f"10.{OCTET}.2.128",
                                                       "rangeEnd": f"10.{OCTET}.2.254"}]]
    # default bridge: its own bridge and a subnet clear of docker's, podman's and nerdctl's
    b = json.loads(net("network", "inspect", "bridge").stdout)[0]
    from conftest import BRIDGE_SUBNET  # the session's default-bridge subnet (NERDPY_BRIDGE_SUBNET)

    gw = BRIDGE_SUBNET.rsplit(".", 1)[0] + ".1"
    assert b["IPAM"]["Config"] == [{"Subnet": BRIDGE_SUBNET, "Gateway": gw}]
    from conftest import BRIDGE_NAME

    assert b["Options"]["com.docker.network.bridge.name"] == BRIDGE_NAME

    r = net("network", "rm", "bridge")
    assert r.returncode == 1 and "pre-defined network" in r.stderr
    assert net("network", "rm", "host").returncode == 1
    assert net("network", "rm", "n1", "n2").stdout == "n1\nn2\n"
    assert sorted(os.listdir(net.netconf)) == ["nerdpy-bridge.conflist"]
    r = net("network", "rm", "n1")
    assert r.returncode == 1 and "network n1 not found" in r.stderr
    assert net("network", "rm", "-f", "n1").returncode == 0
    assert net("network", "ls", "-q").stdout.count("\n") == 3


@pytest.mark.parametrize("args,message", [
    (["n1"], "network with name n1 already exists"),
    (["--subnet", "10.{o}.1.128/25", "x"], "overlaps with network n1"),
    (["--subnet", "banana", "x"], "invalid subnet"),
    (["--subnet", "10.{o}.9.0/24", "--gateway", "10.{o}.8.1", "x"], "is not a host address of subnet"),
    (["--subnet", "10.{o}.9.0/24", "--ip-range", "10.{o}.10.0/25", "x"], "is not inside subnet"),
    (["--gateway", "10.{o}.9.1", "x"], "need --subnet"),
    (["-d", "overlay", "x"], "unsupported network driver"),
    (["-o", "foo=bar", "x"], "unsupported option 'foo'"),
    (["-o", "mtu=12", "x"], "invalid MTU"),
    (["bad/name"], "invalid network name"),
    (["host"], "pre-defined network"),
    (["--ipv6", "x"], "IPv6"),
    (["-d", "macvlan", "-o", "parent=nonexistent0", "x"], "does not exist"),
    (["-d", "macvlan", "-o", "parent=eth0", "-o", "mode=weird", "x"], "invalid macvlan mode"),
])
def test_create_errors(net, args, message):
    r = net("network", "create", "--subnet", f"10.{OCTET}.1.0/24", "-o", f"com.docker.network.bridge.name=npc{TAG}1",
            "n1")
    assert r.returncode == 0, r.stderr
    r = net("network", "create", *[a.replace("{o}", str(OCTET)) for a in args])
    assert r.returncode != 0 and message in r.stderr, r.stderr
    assert r.stderr.count("\n") <= 2
    assert net("network", "ls", "-q").stdout.count("\n") == 4


@pytest.mark.needs_root(rootless_user.IN_PROCESS)
def test_rm_refuses_networks_in_use_and_prune(net):
    from nerdpy.engine.network.attach import NetworkRequest, attach_container, detach_container

    for i in (3, 4, 5):
        r = net("network", "create", "--subnet", f"10.{OCTET}.{i}.0/24", "--label", f"n={i}",
                "-o", f"com.docker.network.bridge.name=npc{TAG}{i}", f"n{i}")
        assert r.returncode == 0, r.stderr
    store = _store(net)
    cid = secrets.token_hex(32)

    def record(container_id: str, name: str, network: str) -> None:
        # a container record (prune's reclaim_leaks would take the networks of unknown IDs)
        with store.db.write() as cur:
            cur.execute("INSERT INTO containers(namespace, id, name, image, image_id, config, created_at) "
                        "VALUES ('default', ?, ?, 'busybox', 'sha256:x', ?, 0)",
                        (container_id, name, json.dumps({"network": network})))

    record(cid, "db1", "n3")
    setup = attach_container(store, cid, [NetworkRequest("n3", aliases=["db"])], name="db1")
    try:
        r = net("network", "rm", "n3")
        assert r.returncode == 1 and f"in use by container(s) {cid[:12]}" in r.stderr
        containers = json.loads(net("network", "inspect", "n3").stdout)[0]["Containers"]
        assert list(containers) == [cid]
        ep = containers[cid]
        assert ep["Name"] == "db1" and ep["IPv4Address"] == f"{setup.primary.ip}/24"
        assert ep["MacAddress"] == setup.primary.mac and re.fullmatch(r"[0-9a-f]{64}", ep["EndpointID"])
        assert net("network", "ls", "--filter", "dangling=true", "--format", "{{.Name}}").stdout == "n4\nn5\n"
        # a container record that asks for a network keeps it, even when not running (docker)
        record("f" * 64, "stopped1", "n4")
        r = net("network", "prune", input="n\n")
        assert "Are you sure you want to continue? [y/N]" in r.stdout and "Deleted" not in r.stdout
        r = net("network", "prune", "-f", "--filter", "label=n=5")
        assert r.stdout == "Deleted Networks:\nn5\n"
        r = net("network", "prune", "-f")
        assert r.returncode == 0 and r.stdout == ""
        assert net("network", "rm", "n4").returncode == 1
    finally:
        detach_container(store, cid)
        with store.db.write() as cur:
            cur.execute("DELETE FROM containers WHERE id IN (?, ?)", ("f" * 64, cid))
    assert net("network", "prune", "-f").stdout == "Deleted Networks:\nn3\nn4\n"
    assert net("network", "ls", "--format", "{{.Name}}").stdout == "bridge\nhost\nnone\n"
    store.close()


@pytest.mark.needs_root(rootless_user.IN_PROCESS)
def test_prune_reclaims_what_crashes_left(net):
    from nerdpy.engine.network.attach import NetworkRequest, attach_container

    r = net("network", "create", "--subnet", f"10.{OCTET}.6.0/24", "-o", f"com.docker.network.bridge.name=npc{TAG}6",
            "n6")
    assert r.returncode == 0, r.stderr
    store = _store(net)
    cid = secrets.token_hex(32)   # no container record: as if it was removed while its cleanup crashed
    setup = attach_container(store, cid, [NetworkRequest("n6")])
    assert os.path.exists(setup.netns)
    assert net("network", "prune", "-f").stdout == "Deleted Networks:\nn6\n"
    assert not os.path.exists(setup.netns)
    assert store.db.query("SELECT * FROM net_sandboxes") == []
    store.close()
