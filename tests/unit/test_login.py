"""login/logout storage: server names as docker normalises them, the docker config written
atomically with mode 0600, other settings kept, credential helpers fed on stdin."""
from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from nerdpy.engine.distribution.credentials import DOCKER_HUB_KEY, erase_credentials, get_credentials, store_credentials
from nerdpy.engine.errors import AuthError, InvalidArgument
from nerdpy.engine.distribution.login import normalise_server


@pytest.mark.parametrize("given,expected", [
    (None, ("docker.io", DOCKER_HUB_KEY)),
    ("docker.io", ("docker.io", DOCKER_HUB_KEY)),
    ("index.docker.io", ("docker.io", DOCKER_HUB_KEY)),
    ("https://index.docker.io/v1/", ("docker.io", DOCKER_HUB_KEY)),
    ("registry-1.docker.io", ("docker.io", DOCKER_HUB_KEY)),
    ("127.0.0.1:5000", ("127.0.0.1:5000", "127.0.0.1:5000")),
    ("https://127.0.0.1:5000/", ("127.0.0.1:5000", "127.0.0.1:5000")),
    ("http://registry.example.com/v2/", ("registry.example.com", "registry.example.com")),
    ("[::1]:5000", ("[::1]:5000", "[::1]:5000")),
])
def test_normalise_server(given, expected):
    assert normalise_server(given) == expected


@pytest.mark.parametrize("bad", ["a b", "https://", "-bad-.com", "host:port"])
def test_normalise_server_refuses(bad):
    with pytest.raises(InvalidArgument):
        normalise_server(bad)


def test_store_plain_keeps_other_settings(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"auths": {"https://reg.example:5000/": {"auth": "b2xkOm9sZA=="}, "other.io": {"auth": "eDp5"}},
                               "proxies": {"default": {"httpProxy": "http://p:3128"}}, "detachKeys": "ctrl-x"}))
    os.chmod(cfg, 0o644)
    assert store_credentials("reg.example:5000", "alice", "pa:ss", config_file=str(cfg)) is None
    doc = json.loads(cfg.read_text())
    assert stat.S_IMODE(os.stat(cfg).st_mode) == 0o600
    assert doc["auths"] == {"reg.example:5000": {"auth": base64.b64encode(b"alice:pa:ss").decode()},
                            "other.io": {"auth": "eDp5"}}
    assert doc["proxies"] == {"default": {"httpProxy": "http://p:3128"}} and doc["detachKeys"] == "ctrl-x"
    creds = get_credentials("reg.example:5000", str(cfg))
    assert (creds.username, creds.password) == ("alice", "pa:ss")
    assert [n for n in os.listdir(tmp_path) if n != "config.json"] == []
    assert erase_credentials("reg.example:5000", str(cfg)) == (True, None)
    assert json.loads(cfg.read_text())["auths"] == {"other.io": {"auth": "eDp5"}}
    assert erase_credentials("reg.example:5000", str(cfg)) == (False, None)


def test_store_identity_token_and_symlinked_config(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("{}")
    link = tmp_path / "config.json"
    link.symlink_to(real)
    store_credentials("reg.example", "bob", "", identity_token="refresh-me", config_file=str(link))
    assert link.is_symlink()
    entry = json.loads(real.read_text())["auths"]["reg.example"]
    assert entry["identitytoken"] == "refresh-me" and base64.b64decode(entry["auth"]) == b"bob:"
    assert get_credentials("reg.example", str(link)).identity_token == "refresh-me"


def test_helper_gets_the_secret_on_stdin(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "log"
    helper = bindir / "docker-credential-t"
    helper.write_text(f'#!/bin/sh\necho "argv: $*" >> {log}\ncat >> {log}\necho >> {log}\n'
                      '[ "$1" = store ] && [ -f ' f'{tmp_path}/fail ] && {{ echo "boom s3cret"; exit 1; }}\nexit 0\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"credHelpers": {"reg.example": "t"}}))
    assert store_credentials("reg.example", "u", "s3cret", config_file=str(cfg)) == "t"
    text = log.read_text()
    assert "argv: store\n" in text and "s3cret" not in text.split("\n")[0]
    assert json.loads(text.split("\n", 1)[1].split("\n")[0]) == {"ServerURL": "reg.example", "Username": "u", "Secret": "s3cret"}
    assert json.loads(cfg.read_text())["auths"] == {"reg.example": {}}
    # a failing helper: an error without the secret, nothing stored
    (tmp_path / "fail").touch()
    cfg.write_text(json.dumps({"credHelpers": {"reg.example": "t"}}))
    with pytest.raises(AuthError) as e:
        store_credentials("reg.example", "u", "s3cret", config_file=str(cfg))
    assert "s3cret" not in str(e.value) and "boom" in str(e.value)
    assert json.loads(cfg.read_text()) == {"credHelpers": {"reg.example": "t"}}


def test_parse_challenge():
    from nerdpy.engine.distribution.auth import parse_challenge

    ch = parse_challenge('Bearer realm="https://auth.example/token",service="registry.example",'
                         'scope="repository:a/b:pull,push"')
    assert ch.scheme == "bearer"
    assert ch.params == {"realm": "https://auth.example/token", "service": "registry.example",
                         "scope": "repository:a/b:pull,push"}
    assert parse_challenge('Basic realm="Registry Realm"').scheme == "basic"
    assert parse_challenge("Bearer realm=https://auth.example/token, service=reg").params == {
        "realm": "https://auth.example/token", "service": "reg"}
    assert parse_challenge("").scheme == ""


def test_basic_challenge_needs_credentials():
    from nerdpy.engine.distribution.auth import CredentialsRefused, answer_challenge
    from nerdpy.engine.distribution.credentials import Credentials

    with pytest.raises(CredentialsRefused):
        answer_challenge(None, 'Basic realm="x"', None, registry="r.example")
    got = answer_challenge(None, 'Basic realm="x"', Credentials("u", "p"), registry="r.example")
    assert got.authorization == "Basic " + base64.b64encode(b"u:p").decode()
    with pytest.raises(AuthError, match="unsupported authentication"):
        answer_challenge(None, 'Negotiate abc', Credentials("u", "p"), registry="r.example")
