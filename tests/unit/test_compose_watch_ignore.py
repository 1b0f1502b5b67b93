"""compose watch's .dockerignore-style patterns, `config --variables`' scan, and the shapes
`compose events` prints."""
from __future__ import annotations

from compose.interpolate import variables
from compose.ops import ComposeEvent
from compose.watch import DEFAULT_IGNORES, Ignore, Rule


def test_ignore_patterns():
    ig = Ignore.parse(["*.tmp", "build/", "**/secret*", "!keep.tmp", "node_modules", "# a comment", ""])
    assert ig.ignored("a.tmp") and not ig.ignored("keep.tmp")
    assert not ig.ignored("sub/a.tmp")                      # `*` does not cross `/`
    assert ig.ignored("build") and ig.ignored("build/x/y.o")  # a directory covers what is below
    assert ig.ignored("secret.key") and ig.ignored("a/b/secret.key")
    assert ig.ignored("node_modules/x/y.js") and not ig.ignored("src/app.py")


def test_default_ignores_and_rule_cover(tmp_path):
    r = Rule(service="web", action="sync", path=str(tmp_path), target="/app",
             ignore=Ignore.parse(DEFAULT_IGNORES + ["*.log"]))
    assert r.covers(str(tmp_path / "src" / "a.py")) == "src/a.py"
    assert r.covers(str(tmp_path)) == "."
    for ignored in (".git/HEAD", "src/.a.py.swp", "src/a.py~", "x.log"):
        assert r.covers(str(tmp_path / ignored)) is None, ignored
    assert r.covers(str(tmp_path) + "-other/x") is None


def test_variables_scan():
    v = variables({"services": {"web": {"image": "${IMG:-busybox}", "environment": {
        "A": "$PLAIN", "B": "${REQ:?needed}", "C": "${ALT:+yes}", "D": "$$NOT", "E": "${X:-${Y}}"}}}})
    assert list(v) == ["ALT", "IMG", "PLAIN", "REQ", "X", "Y"]
    assert v["IMG"]["DefaultValue"] == "busybox" and v["REQ"]["Required"] is True
    assert v["ALT"]["PresenceValue"] == "yes" and v["X"]["DefaultValue"] == "${Y}"


def test_event_shapes():
    ev = ComposeEvent(1_700_000_000_123_456_789, "start", "abc", "web", {"name": "p-web-1", "image": "busybox"})
    j = ev.as_json()
    assert set(j) == {"time", "type", "service", "id", "action", "attributes"}
    assert j["type"] == "container" and j["time"].endswith(("Z", ":00", ":30")) and ".123456789" in j["time"]
    assert ev.as_line().endswith("container start abc (image=busybox, name=p-web-1)")


def test_include_patterns(tmp_path):
    r = Rule(service="web", action="sync", path=str(tmp_path), target="/app",
             ignore=Ignore.parse(DEFAULT_IGNORES + ["skip.py"]), include=Ignore.parse(["*.py", "src/"]))
    assert r.covers(str(tmp_path / "a.py")) == "a.py"
    assert r.covers(str(tmp_path / "src" / "x.txt")) == "src/x.txt"
    assert r.covers(str(tmp_path / "notes.txt")) is None
    assert r.covers(str(tmp_path / "skip.py")) is None      # ignore wins over include
