"""Compose and data: anonymous volumes (an image's VOLUME, a `volumes:` entry without a source)
survive `up` recreating a container, as docker compose keeps them; `up -V` renews them;
`down -v` removes them."""
from __future__ import annotations

import json
import textwrap

import pytest
import world

T = 90
LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"


@pytest.fixture(scope="module")
def dbimage(registry, tmp_path_factory):
    layout = str(tmp_path_factory.mktemp("dbimage") / "layout")
    entries = world.busybox_entries([("var", "dir", 0o755), ("var/lib", "dir", 0o755),
                                     ("var/lib/db", "dir", 0o755), ("var/lib/db/seed", "file", "from-image\n")])
    world.write_image(layout, "composedb", [world._tar(entries)],
                      dict(world.BUSYBOX_CONFIG, Volumes={"/var/lib/db": {}}))
    ref = f"{registry.host}/test/composedb:latest"
    world.push_layout(layout, "composedb", ref)
    return ref


def compose_file(path, image: str, greeting: str) -> str:
    with open(path, "w") as f:
        f.write(textwrap.dedent(f"""
            name: data
            services:
              db:
                image: {image}
                environment: {{GREETING: {greeting}}}
                command: ["sh", "-c", "{LOOP}"]
                volumes: [/extra]
            """))
    return str(path)


def mounts(nerdpy, name: str) -> dict[str, str]:
    info = json.loads(nerdpy("inspect", name, check=True).stdout)[0]
    return {m["Destination"]: m["Name"] for m in info["Mounts"]}


def test_anonymous_volumes_kept_on_recreate_renewed_by_V_removed_by_down_v(nerdpy, dbimage, tmp_path):
    f = compose_file(tmp_path / "compose.yaml", dbimage, "one")
    nerdpy("compose", "-f", f, "up", "-d", check=True, timeout=T)
    nerdpy("compose", "-f", f, "exec", "-T", "db", "sh", "-c", "echo kept > /var/lib/db/row; echo kept > /extra/x",
           check=True, timeout=T)
    before = mounts(nerdpy, "data-db-1")
    assert sorted(before) == ["/extra", "/var/lib/db"]
    old_id = json.loads(nerdpy("inspect", "data-db-1", check=True).stdout)[0]["Id"]

    compose_file(f, dbimage, "two")           # a definition change: recreated, data kept
    r = nerdpy("compose", "-f", f, "up", "-d", timeout=T)
    assert r.returncode == 0 and "Recreate" in r.stderr, r.stderr
    assert json.loads(nerdpy("inspect", "data-db-1", check=True).stdout)[0]["Id"] != old_id
    assert mounts(nerdpy, "data-db-1") == before
    r = nerdpy("compose", "-f", f, "exec", "-T", "db", "sh", "-c", "cat /var/lib/db/row /extra/x; echo $GREETING",
               timeout=T)
    assert r.stdout.split() == ["kept", "kept", "two"], r.stderr
    assert sorted(nerdpy("volume", "ls", "-q").stdout.split()) == sorted(before.values())

    compose_file(f, dbimage, "three")         # -V: new anonymous volumes, the old ones removed
    nerdpy("compose", "-f", f, "up", "-d", "-V", check=True, timeout=T)
    after = mounts(nerdpy, "data-db-1")
    assert sorted(after) == ["/extra", "/var/lib/db"] and not set(after.values()) & set(before.values())
    r = nerdpy("compose", "-f", f, "exec", "-T", "db", "sh", "-c", "ls /var/lib/db /extra", timeout=T)
    assert r.stdout.split() == ["/extra:", "/var/lib/db:", "seed"], r.stdout   # fresh from the image
    assert sorted(nerdpy("volume", "ls", "-q").stdout.split()) == sorted(after.values())

    nerdpy("compose", "-f", f, "down", "-v", "-t", "1", check=True, timeout=T)
    assert nerdpy("volume", "ls", "-q").stdout == ""


def test_changed_network_or_volume_definition_recreates_its_users(nerdpy, images, tmp_path):
    f = tmp_path / "compose.yaml"

    def write(net_label: str, vol_label: str) -> str:
        f.write_text(textwrap.dedent(f"""
            name: defs
            services:
              app:
                image: {images.busybox}
                command: ["sh", "-c", "{LOOP}"]
                networks: [back]
                volumes: ["named:/named", "/anon"]
              other:
                image: {images.busybox}
                command: ["sh", "-c", "{LOOP}"]
                network_mode: none
            networks:
              back: {{labels: {{tier: "{net_label}"}}}}
            volumes:
              named: {{labels: {{tier: "{vol_label}"}}}}
            """))
        return str(f)

    def cid(name):
        return json.loads(nerdpy("inspect", name, check=True).stdout)[0]["Id"]

    nerdpy("compose", "-f", write("a", "a"), "up", "-d", check=True, timeout=T)
    nerdpy("compose", "-f", str(f), "exec", "-T", "app", "sh", "-c", "echo kept > /anon/x", check=True, timeout=T)
    app, other = cid("defs-app-1"), cid("defs-other-1")
    r = nerdpy("compose", "-f", str(f), "up", "-d", timeout=T)                  # nothing changed
    assert r.returncode == 0 and (cid("defs-app-1"), cid("defs-other-1")) == (app, other), r.stderr

    r = nerdpy("compose", "-f", write("b", "a"), "up", "-d", timeout=T)         # the network changed
    assert r.returncode == 0, r.stderr
    assert cid("defs-app-1") != app and cid("defs-other-1") == other
    net = json.loads(nerdpy("network", "inspect", "defs_back", check=True).stdout)[0]
    assert net["Labels"]["tier"] == "b"                                        # the network made anew
    r = nerdpy("compose", "-f", str(f), "exec", "-T", "app", "cat", "/anon/x", timeout=T)
    assert r.stdout == "kept\n", r.stderr                                       # its anonymous volume kept
    app = cid("defs-app-1")

    r = nerdpy("compose", "-f", write("b", "b"), "up", "-d", timeout=T)         # the volume changed
    assert r.returncode == 0, r.stderr
    assert cid("defs-app-1") != app and cid("defs-other-1") == other
    assert "defs_named exists but doesn't match" in r.stderr
    nerdpy("compose", "-f", str(f), "down", "-v", "-t", "1", check=True, timeout=T)
    assert nerdpy("volume", "ls", "-q").stdout == ""
