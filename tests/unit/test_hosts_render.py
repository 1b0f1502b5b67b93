"""A container's /etc/hosts and /etc/resolv.conf: rendering rules and in-place rewrites."""
from __future__ import annotations

import os

import pytest

from nerdpy.engine.errors import InvalidArgument
from nerdpy.engine.network.hosts import (LOCALHOST_LINES, HostEntry, host_hosts, own_names, parse_add_host,
                                         peer_names, render_hosts, render_resolv_conf, rewrite_in_place)
from nerdpy.engine.util.fs import write_atomic

HEAD = "\n".join(LOCALHOST_LINES) + "\n"


@pytest.mark.parametrize("text,expected", [
    ("db:10.0.0.5", ("db", "10.0.0.5")),
    ("db=10.0.0.5", ("db", "10.0.0.5")),
    ("gw:host-gateway", ("gw", "host-gateway")),
    ("v6:2001:db8::1", ("v6", "2001:db8::1")),
    ("v6=[2001:db8::1]", ("v6", "2001:db8::1")),
    (" spaced : 1.2.3.4 ", ("spaced", "1.2.3.4")),
])
def test_parse_add_host(text, expected):
    assert parse_add_host(text) == expected


@pytest.mark.parametrize("text", ["nocolon", ":1.2.3.4", "name:", "name:not-an-ip", "name:1.2.3"])
def test_parse_add_host_invalid(text):
    with pytest.raises(InvalidArgument):
        parse_add_host(text)


def test_names():
    assert own_names("h1", "", "web", "mynet", ["api", "web"]) == ["h1", "web", "web.mynet", "api"]
    assert own_names("h1", "example.com", "web", "mynet") == ["h1.example.com", "h1", "web", "web.mynet"]
    # the default bridge gives no names but the hostname (docker: no DNS on the default bridge)
    assert own_names("abc123", "", "web", "bridge", user_network=False) == ["abc123"]
    assert peer_names("db", "mynet", "dbhost", ["database"]) == ["db", "db.mynet", "dbhost", "database"]
    assert peer_names("db", "mynet", "db") == ["db", "db.mynet"]


def test_render_hosts_full():
    text = render_hosts(
        own=[HostEntry("10.89.1.2", ["h1", "web", "web.mynet"])],
        extra_hosts=[("gw", "host-gateway"), ("static", "192.0.2.1")],
        peers=[HostEntry("10.89.1.3", ["db", "db.mynet"]), HostEntry("", ["ignored"])],
        host_gateway="10.89.1.1",
    )
    assert text == HEAD + ("10.89.1.1\tgw\n192.0.2.1\tstatic\n10.89.1.2\th1 web web.mynet\n"
                           "10.89.1.3\tdb db.mynet\n")


def test_render_hosts_without_network():
    assert render_hosts() == HEAD
    with pytest.raises(InvalidArgument):
        render_hosts(extra_hosts=[("gw", "host-gateway")])


def test_host_hosts(tmp_path):
    p = tmp_path / "hosts"
    p.write_text("127.0.0.1 localhost\n10.0.0.1 myhost")
    assert host_hosts([("x", "1.2.3.4"), ("gw", "host-gateway")], path=str(p), host_gateway="10.89.0.1") == \
        "127.0.0.1 localhost\n10.0.0.1 myhost\n1.2.3.4\tx\n10.89.0.1\tgw\n"


def _resolv(tmp_path, host: str, upstream: str | None = None, **kw) -> str:
    (tmp_path / "resolv.conf").write_text(host)
    up = tmp_path / "upstream.conf"
    if upstream is not None:
        up.write_text(upstream)
    return render_resolv_conf(path=str(tmp_path / "resolv.conf"), upstream=str(up), **kw)


def test_resolv_plain_host(tmp_path):
    host = "# comment\nnameserver 10.255.255.53\nsearch corp.example\noptions ndots:2 timeout:1\n"
    assert _resolv(tmp_path, host) == "nameserver 10.255.255.53\nsearch corp.example\noptions ndots:2 timeout:1\n"


def test_resolv_systemd_resolved_uses_upstream(tmp_path):
    host = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n"
    upstream = "nameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch lan\n"
    assert _resolv(tmp_path, host, upstream) == "nameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch lan\n"
    # with the host's network the loopback resolver is reachable: kept as is
    assert _resolv(tmp_path, host, upstream, host_network=True) == \
        "nameserver 127.0.0.53\nsearch lan\noptions edns0 trust-ad\n"


def test_resolv_drops_loopback_and_falls_back(tmp_path):
    assert _resolv(tmp_path, "nameserver 127.0.0.1\nnameserver ::1\nnameserver 192.0.2.9\n") == \
        "nameserver 192.0.2.9\n"
    # only loopback and no upstream file: docker's public fallback
    assert _resolv(tmp_path, "nameserver 127.0.0.53\n") == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    assert _resolv(tmp_path, "") == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_resolv_overrides(tmp_path):
    host = "nameserver 192.0.2.9\nsearch a.example\noptions ndots:3\n"
    assert _resolv(tmp_path, host, dns=["1.1.1.1", "2606:4700::1111"]) == \
        "nameserver 1.1.1.1\nnameserver 2606:4700::1111\nsearch a.example\noptions ndots:3\n"
    assert _resolv(tmp_path, host, dns_search=["b.example", "c.example"], dns_options=["rotate"]) == \
        "nameserver 192.0.2.9\nsearch b.example c.example\noptions rotate\n"
    assert _resolv(tmp_path, host, dns_search=["."]) == "nameserver 192.0.2.9\noptions ndots:3\n"
    with pytest.raises(InvalidArgument):
        _resolv(tmp_path, host, dns=["not-an-ip"])


def test_write_atomic_and_rewrite_in_place(tmp_path):
    p = str(tmp_path / "hosts")
    assert rewrite_in_place(p, "x\n") is False           # nothing to update yet
    write_atomic(p, "first version, rather long\n")
    assert [f for f in os.listdir(tmp_path) if f != "hosts"] == []   # no temp file left
    inode = os.stat(p).st_ino
    fd = os.open(p, os.O_RDONLY)                           # like the bind mount: holds the inode
    try:
        assert rewrite_in_place(p, "short\n") is True
        assert os.stat(p).st_ino == inode
        assert os.pread(fd, 100, 0) == b"short\n"
        assert rewrite_in_place(p, "a longer second version\n")
        assert os.pread(fd, 100, 0) == b"a longer second version\n"
    finally:
        os.close(fd)
