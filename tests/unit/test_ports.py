"""docker's -p/--publish forms, -P from ExposedPorts, allocation of host ports, and how they are
shown (portmap's portMappings, inspect's Ports, ps's PORTS)."""
from __future__ import annotations

import socket

import pytest

from nerdpy.engine.network import InvalidPort, PortInUse
from nerdpy.engine.network.ports import (PortMapping, allocate, docker_ports, exposed_mappings, format_ports,
                                         parse_publish, to_portmap)

M = PortMapping

VALID = [
    ("80", [M(80)]),
    ("80/tcp", [M(80)]),
    ("80/udp", [M(80, "udp")]),
    ("80/UDP", [M(80, "udp")]),
    ("53/sctp", [M(53, "sctp")]),
    ("8080:80", [M(80, "tcp", "", 8080, 8080)]),
    ("8080:80/udp", [M(80, "udp", "", 8080, 8080)]),
    ("127.0.0.1:8080:80", [M(80, "tcp", "127.0.0.1", 8080, 8080)]),
    ("127.0.0.1::80", [M(80, "tcp", "127.0.0.1", 0, 0)]),
    ("127.0.0.1::80/udp", [M(80, "udp", "127.0.0.1", 0, 0)]),
    ("0.0.0.0:8080:80", [M(80, "tcp", "", 8080, 8080)]),
    ("0:80", [M(80, "tcp", "", 0, 0)]),
    ("8000-8003:9000-9003", [M(9000 + i, "tcp", "", 8000 + i, 8000 + i) for i in range(4)]),
    ("127.0.0.1:8000-8001:9000-9001/udp", [M(9000, "udp", "127.0.0.1", 8000, 8000),
                                           M(9001, "udp", "127.0.0.1", 8001, 8001)]),
    ("8000-8010:80", [M(80, "tcp", "", 8000, 8010)]),
    ("80-82", [M(80), M(81), M(82)]),
    ("[::1]:80:80", [M(80, "tcp", "::1", 80, 80)]),
    ("[::1]::80", [M(80, "tcp", "::1", 0, 0)]),
    ("::1:80:80", [M(80, "tcp", "::1", 80, 80)]),
    ("[2001:db8::1]:8080:80/udp", [M(80, "udp", "2001:db8::1", 8080, 8080)]),
    ("65535:65535", [M(65535, "tcp", "", 65535, 65535)]),
    ("  8080:80 ", [M(80, "tcp", "", 8080, 8080)]),
]

INVALID = [
    ("", "no port specified"),
    ("8080:", "no port specified"),
    ("/tcp", "no port specified"),
    ("abc", "invalid containerPort: abc"),
    ("0", "invalid containerPort: 0"),
    ("65536", "invalid containerPort: 65536"),
    ("80-79", "invalid containerPort: 80-79"),
    ("8080:80/icmp", "invalid proto: icmp"),
    ("x:80", "invalid hostPort: x"),
    ("70000:80", "invalid hostPort: 70000"),
    ("8000-8001:80-82", "invalid ranges specified for container and host Ports: 80-82 and 8000-8001"),
    ("8000:80-81", "invalid ranges specified"),
    ("1.2.3:80:80", "invalid IP address: 1.2.3"),
    ("localhost:80:80", "invalid IP address: localhost"),
    ("[::1:80:80", "invalid IP address"),
    ("-1:80", "invalid hostPort: -1"),
    ("8080:80-", "invalid containerPort: 80-"),
]


@pytest.mark.parametrize("spec,expected", VALID, ids=[v[0] or "empty" for v in VALID])
def test_parse_valid(spec, expected):
    assert parse_publish(spec) == expected


@pytest.mark.parametrize("spec,message", INVALID, ids=[v[0] or "empty" for v in INVALID])
def test_parse_invalid(spec, message):
    with pytest.raises(InvalidPort) as e:
        parse_publish(spec)
    assert message in str(e.value)
    assert e.value.exit_code == 125


def test_exposed_ports_for_publish_all():
    exposed = {"80/tcp": {}, "53/udp": {}, "8000-8001": {}, "443/tcp": {}}
    got = exposed_mappings(exposed, explicit=parse_publish("8443:443"))
    assert sorted((m.container_port, m.protocol, m.host_port) for m in got) == [
        (53, "udp", 0), (80, "tcp", 0), (8000, "tcp", 0), (8001, "tcp", 0)]
    with pytest.raises(InvalidPort):
        exposed_mappings(["x/tcp"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_allocate_picks_free_ports_and_keeps_order():
    fixed = _free_port()
    got = allocate(parse_publish("127.0.0.1::80") + parse_publish(f"127.0.0.1:{fixed}:81") + parse_publish("82/udp"))
    assert [m.container_port for m in got] == [80, 81, 82]
    assert got[1].host_port == fixed
    assert all(m.concrete for m in got)
    assert len({m.host_port for m in got if m.protocol == "tcp"}) == 2


def test_allocate_refuses_a_port_a_host_process_listens_on():
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(PortInUse) as e:
            allocate(parse_publish(f"{port}:80"))
        assert f"0.0.0.0:{port}" in str(e.value) and "already in use" in str(e.value)
        # a specific address overlaps the wildcard listener too
        with pytest.raises(PortInUse):
            allocate(parse_publish(f"127.0.0.1:{port}:80"))
        # the same port for udp is free
        assert allocate(parse_publish(f"{port}:80/udp"))[0].host_port == port


def test_allocate_refuses_ports_other_containers_hold():
    port = _free_port()
    with pytest.raises(PortInUse) as e:
        allocate(parse_publish(f"{port}:80"), taken=[("tcp", "", port)])
    assert "port is already allocated" in str(e.value)
    with pytest.raises(PortInUse):
        allocate(parse_publish(f"127.0.0.1:{port}:80"), taken=[("tcp", "", port)])
    with pytest.raises(PortInUse):  # twice in one request
        allocate(parse_publish(f"{port}:80") + parse_publish(f"{port}:81"))
    assert allocate(parse_publish(f"127.0.0.1:{port}:80"), taken=[("tcp", "127.0.0.2", port)])[0].host_port == port
    assert allocate(parse_publish(f"{port}:80"), taken=[("udp", "", port)])[0].host_port == port


def test_allocate_range_skips_taken_ports():
    start = _free_port()
    if start > 65000:
        pytest.skip("ephemeral port too high for a range")
    got = allocate(parse_publish(f"{start}-{start + 20}:80"), taken=[("tcp", "", start), ("tcp", "", start + 1)])
    assert start + 2 <= got[0].host_port <= start + 20


def test_allocate_unknown_host_address():
    with pytest.raises(InvalidPort) as e:
        allocate(parse_publish("192.0.2.77::80"))
    assert "not an address of this host" in str(e.value)


def test_renderings():
    ms = [M(80, "tcp", "", 8080, 8080), M(53, "udp", "127.0.0.1", 5353, 5353), M(80, "tcp", "::1", 8081, 8081)]
    assert to_portmap(ms) == [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"},
        {"hostPort": 8081, "containerPort": 80, "protocol": "tcp", "hostIP": "::1"},
    ]
    assert docker_ports(ms, exposed=["443/tcp", "80/tcp"]) == {
        "443/tcp": None,
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::1", "HostPort": "8081"}],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
    }
    assert format_ports(ms) == "0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp, [::1]:8081->80/tcp"
    assert M.from_dict(ms[1].as_dict()) == M(53, "udp", "127.0.0.1", 5353, 0)
