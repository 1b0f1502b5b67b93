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
