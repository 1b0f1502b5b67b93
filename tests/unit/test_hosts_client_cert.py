"""hosts.toml's `client` (containerd's forms) becomes the `cert` requests takes."""
from __future__ import annotations

import pytest

from nerdpy.engine.distribution.hosts import requests_cert, resolve_hosts


@pytest.mark.parametrize("value, expected", [
    ('"client.pem"', "{d}/client.pem"),
    ('["/abs/client.pem"]', "/abs/client.pem"),
    ('[["client.cert", "client.key"], ["other.pem", ""]]', ("{d}/client.cert", "{d}/client.key")),
    ('[["/abs/only.pem", ""]]', "/abs/only.pem"),
])
def test_client_certificate_forms(tmp_path, value, expected):
    d = tmp_path / "certs.d" / "reg.example:5000"
    d.mkdir(parents=True)
    (d / "hosts.toml").write_text(f'server = "https://reg.example:5000"\n\n'
                                  f'[host."https://mirror.example"]\n  capabilities = ["pull"]\n'
                                  f'  client = {value}\n')
    hosts = resolve_hosts("reg.example:5000", [str(tmp_path / "certs.d")])
    mirror = hosts[0]
    assert mirror.url == "https://mirror.example"
    want = tuple(x.format(d=d) for x in expected) if isinstance(expected, tuple) else expected.format(d=d)
    assert requests_cert(mirror.client) == want
    assert requests_cert(hosts[-1].client) is None  # the registry itself has none configured
