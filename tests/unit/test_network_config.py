"""Network records and conflists without touching the host: subnets picked and checked, the
plugin chain per driver and option, names and IDs, who uses a network, `network ls` rows."""
from __future__ import annotations

import json
import os

import pytest

from nerdpy.engine.config import Settings
from nerdpy.engine.errors import InvalidArgument
from nerdpy.engine.network import NetworkExists, NetworkInUse, NetworkNotFound
from nerdpy.engine.network.networks import (conflist, conflist_path, create_network, ensure_default_network,
                                            find_network, network_users, remove_network)
from nerdpy.engine.network.views import filter_network_rows, network_json, network_rows
from nerdpy.engine.store import open_store


@pytest.fixture
def store(tmp_path, monkeypatch):
    import nerdpy.engine.network.networks as networks

    monkeypatch.setattr(networks, "_host_routes", lambda: [])   # independent of this machine's routes
    monkeypatch.setattr(networks, "remove_host_state", lambda store, net: None)
    # the default data root's default network (another data root gets a bridge of its own)
    monkeypatch.setattr(networks, "DEFAULT_DATA_ROOT", os.path.realpath(str(tmp_path / "data")))
    st = open_store(Settings(data_root=str(tmp_path / "data"), run_root=str(tmp_path / "run"),
                             cni_netconfpath=str(tmp_path / "net.d")))
    yield st
    st.close()


def test_other_data_roots_get_their_own_default_bridge(tmp_path, monkeypatch):
    import nerdpy.engine.network.networks as networks

    monkeypatch.setattr(networks, "_host_routes", lambda: [])
    nets = []
    for name in ("a", "b"):
        st = open_store(Settings(data_root=str(tmp_path / name), cni_netconfpath=str(tmp_path / "net.d")))
        nets.append(ensure_default_network(st))
        st.close()
    a, b = nets
    assert a.link.startswith("nerdpy-") and len(a.link) == 15 and a.link != b.link
    assert a.subnet != b.subnet and "10.89.0.0/24" not in (a.subnet, b.subnet)


def test_default_network(store):
    net = ensure_default_network(store)
    assert (net.name, net.driver, net.subnet, net.gateway, net.link) == ("bridge", "bridge", "10.89.0.0/24",
                                                                       "10.89.0.1", "nerdpy0")
    assert ensure_default_network(store).id == net.id
    assert find_network(store, "bridge").id == net.id
    assert os.path.exists(conflist_path(store.settings.cni_netconfpath, "bridge"))


def test_default_network_from_settings(tmp_path):
    s = Settings(data_root=str(tmp_path / "d"), cni_netconfpath=str(tmp_path / "n"))
    s.bridge_subnet, s.bridge_name = "10.150.7.0/24", "mybr0"
    st = open_store(s)
    net = ensure_default_network(st)
    assert (net.subnet, net.gateway, net.link) == ("10.150.7.0/24", "10.150.7.1", "mybr0")


def test_auto_subnets_skip_used_ones(store):
    ensure_default_network(store)
    a = create_network(store, "a")
    b = create_network(store, "b", subnet="10.89.2.0/24")
    c = create_network(store, "c")
    assert (a.subnet, b.subnet, c.subnet) == ("10.89.1.0/24", "10.89.2.0/24", "10.89.3.0/24")
    assert a.link == "br-" + a.id[:12] and len(a.link) == 15
    assert len({a.id, b.id, c.id}) == 3


def test_auto_subnets_skip_host_routes(store, monkeypatch):
    import ipaddress

    import nerdpy.engine.network.networks as networks

    monkeypatch.setattr(networks, "_host_routes", lambda: [ipaddress.ip_network("10.89.0.0/23")])
    assert create_network(store, "a").subnet == "10.89.2.0/24"


def test_conflist_per_driver(store):
    n = create_network(store, "n", subnet="10.90.0.0/16", gateway="10.90.0.254", ip_range="10.90.5.0/24",
                       labels={"k": "v"}, options={"com.docker.network.driver.mtu": "1400"})
    doc = conflist(n, store.data_root)
    assert doc["cniVersion"] == "1.0.0" and doc["name"] == "nerdpy-n" and doc["nerdpyID"] == n.id
    bridge = doc["plugins"][0]
    assert bridge["mtu"] == 1400 and bridge["ipMasq"] and bridge["isGateway"] and bridge["hairpinMode"]
    assert bridge["capabilities"] == {"ips": True}
    assert bridge["ipam"] == {"type": "host-local", "dataDir": os.path.join(store.data_root, "cni", "networks"),
                              "ranges": [[{"subnet": "10.90.0.0/16", "gateway": "10.90.0.254",
                                           "rangeStart": "10.90.5.0", "rangeEnd": "10.90.5.255"}]],
                              "routes": [{"dst": "0.0.0.0/0"}]}
    assert [p["type"] for p in doc["plugins"]] == ["bridge", "portmap", "firewall", "tuning"]
    assert doc["plugins"][1]["capabilities"] == {"portMappings": True}
    assert doc["plugins"][2] == {"type": "firewall", "backend": "iptables", "ingressPolicy": "same-bridge"}
    on_disk = json.load(open(conflist_path(store.settings.cni_netconfpath, "n")))
    assert on_disk == doc
    nomasq = create_network(store, "nm", options={"com.docker.network.bridge.enable_ip_masquerade": "false"})
    assert conflist(nomasq, store.data_root)["plugins"][0]["ipMasq"] is False
    internal = create_network(store, "i", internal=True)
    doc = conflist(internal, store.data_root)
    assert [p["type"] for p in doc["plugins"]] == ["bridge", "firewall", "tuning"]
    assert doc["plugins"][0]["ipMasq"] is False and "routes" not in doc["plugins"][0]["ipam"]


def test_macvlan_conflist(store):
    parent = sorted(os.listdir("/sys/class/net"))[0]
    n = create_network(store, "mv", driver="macvlan", subnet="10.91.0.0/24", options={"parent": parent, "mode": "vepa"})
    doc = conflist(n, store.data_root)
    assert [p["type"] for p in doc["plugins"]] == ["macvlan", "tuning"]
    assert doc["plugins"][0]["master"] == parent and doc["plugins"][0]["mode"] == "vepa"
    assert network_json(store, n)["Options"] == {"parent": parent, "mode": "vepa"}


@pytest.mark.parametrize("kwargs,exc,message", [
    ({"name": "bad name"}, InvalidArgument, "invalid network name"),
    ({"name": "none"}, InvalidArgument, "pre-defined"),
    ({"name": "x", "driver": "overlay"}, InvalidArgument, "unsupported network driver"),
    ({"name": "x", "subnet": "10.89.0.0/16"}, InvalidArgument, "overlaps with network bridge"),
    ({"name": "x", "subnet": "fd00::/64"}, InvalidArgument, "IPv6"),
    ({"name": "x", "subnet": "10.95.0.0/31"}, InvalidArgument, "too small"),
    ({"name": "x", "subnet": "10.95.0.0/24", "gateway": "10.95.0.0"}, InvalidArgument, "not a host address"),
    ({"name": "x", "subnet": "10.95.0.0/24", "gateway": "x"}, InvalidArgument, "invalid gateway"),
    ({"name": "x", "subnet": "10.95.0.0/24", "ip_range": "10.95.1.0/25"}, InvalidArgument, "not inside subnet"),
    ({"name": "x", "ip_range": "10.95.1.0/25"}, InvalidArgument, "need --subnet"),
    ({"name": "x", "options": {"com.docker.network.bridge.name": "a-very-long-bridge-name"}}, InvalidArgument,
     "invalid bridge name"),
    ({"name": "x", "options": {"com.docker.network.bridge.name": "nerdpy0"}}, NetworkExists, "used by another"),
    ({"name": "x", "options": {"parent": "eth0"}}, InvalidArgument, "unsupported option 'parent' for driver bridge"),
    ({"name": "bridge"}, InvalidArgument, "pre-defined"),
])
def test_create_errors(store, kwargs, exc, message):
    ensure_default_network(store)
    with pytest.raises(exc) as e:
        create_network(store, **kwargs)
    assert message in str(e.value)
    assert [r["name"] for r in store.db.query("SELECT name FROM networks")] == ["bridge"]
    assert sorted(os.listdir(store.settings.cni_netconfpath)) == ["nerdpy-bridge.conflist"]


def test_find_remove_and_users(store):
    a = create_network(store, "a")
    assert find_network(store, a.id).name == "a"
    assert find_network(store, a.id[:6]).name == "a"
    with pytest.raises(NetworkNotFound):
        find_network(store, "nope")
    with store.db.write() as cur:
        for i, cfg in enumerate([{"network": "a"}, {"networks": [{"name": a.id[:12]}]}, {"network": "none"}]):
            cur.execute("INSERT INTO containers(namespace, id, name, image, image_id, config, created_at) "
                        "VALUES ('default', ?, ?, 'i', 'sha256:x', ?, 0)", (f"{i}" * 64, f"c{i}", json.dumps(cfg)))
    assert network_users(store, a) == [("default", "0" * 64), ("default", "1" * 64)]
    with pytest.raises(NetworkInUse, match="in use by container"):
        remove_network(store, "a")
    with store.db.write() as cur:
        cur.execute("DELETE FROM containers")
    assert remove_network(store, "a").name == "a"
    assert not os.path.exists(conflist_path(store.settings.cni_netconfpath, "a"))
    with pytest.raises(NetworkInUse, match="pre-defined"):
        remove_network(store, "bridge")


def test_ensure_conflist_rewrites_a_missing_or_edited_file(store):
    from nerdpy.engine.network.networks import ensure_conflist

    n = create_network(store, "n")
    path = conflist_path(store.settings.cni_netconfpath, "n")
    os.unlink(path)
    ensure_conflist(store, n)
    good = open(path).read()
    with open(path, "w") as f:
        f.write("{}")
    ensure_conflist(store, n)
    assert open(path).read() == good
    assert [f for f in os.listdir(store.settings.cni_netconfpath) if f.startswith(".")] == []


def test_rows_and_filters(store):
    create_network(store, "web", labels={"tier": "front"})
    create_network(store, "db", labels={"tier": "back", "x": ""})
    rows = network_rows(store)
    assert [r["Name"] for r in rows] == ["bridge", "db", "host", "none", "web"]
    assert [r["Driver"] for r in rows] == ["bridge", "bridge", "host", "null", "bridge"]

    def names(*filters):
        return [r["Name"] for r in filter_network_rows(store, rows, list(filters))]

    assert names("name=b") == ["bridge", "db", "web"]
    assert names("name=^d") == ["db"]
    assert names("label=tier") == ["db", "web"]
    assert names("label=tier=back") == ["db"]
    assert names("label=tier", "label=x") == ["db"]
    assert names("driver=bridge", "type=custom") == ["db", "web"]
    assert names("type=builtin") == ["bridge", "host", "none"]
    assert names("dangling=true") == ["db", "web"]
    assert names("id=" + rows[1]["ID"][:10]) == ["db"]
    with pytest.raises(InvalidArgument):
        names("type=odd")
    with pytest.raises(InvalidArgument):
        names("bogus=1")
