"""An image's `VOLUME`s become anonymous volumes, as docker makes them: listed in `.Mounts` and
`volume ls`, filled from the image on first start, kept across stop/start and by a plain `rm`,
removed by `rm -v` and `--rm`; a user mount on the same path replaces them."""
from __future__ import annotations

import json
import os

import pytest
import world

T = 60


@pytest.fixture(scope="module")
def dbimage(registry, tmp_path_factory):
    """A database-like image: VOLUME /var/lib/db, seeded with a file by the image."""
    layout = str(tmp_path_factory.mktemp("dbimage") / "layout")
    entries = world.busybox_entries([("var", "dir", 0o755), ("var/lib", "dir", 0o755),
                                     ("var/lib/db", "dir", 0o750), ("var/lib/db/seed", "file", "from-image\n")])
    world.write_image(layout, "db", [world._tar(entries)],
                      dict(world.BUSYBOX_CONFIG, Volumes={"/var/lib/db": {}, "/scratch/": {}}))
    ref = f"{registry.host}/test/db:latest"
    world.push_layout(layout, "db", ref)
    return ref


def anon_volumes(nerdpy) -> list[str]:
    return sorted(nerdpy("volume", "ls", "-q", "--filter", "dangling=false", check=True).stdout.split())


def test_image_volumes_are_anonymous_volumes(nerdpy, dbimage):
    nerdpy("pull", "-q", dbimage, check=True, timeout=T)
    script = "cat /var/lib/db/seed; echo $(date +%N) >> /var/lib/db/log; wc -l < /var/lib/db/log"
    r = nerdpy("run", "--name", "db", dbimage, "sh", "-c", script, timeout=T)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["from-image", "1"]
    mounts = json.loads(nerdpy("inspect", "db", check=True).stdout)[0]["Mounts"]
    assert sorted(m["Destination"] for m in mounts) == ["/scratch", "/var/lib/db"]
    names = sorted(m["Name"] for m in mounts)
    assert all(m["Type"] == "volume" and m["Driver"] == "local" and m["RW"] for m in mounts)
    assert anon_volumes(nerdpy) == names
    db = next(m for m in mounts if m["Destination"] == "/var/lib/db")
    assert open(os.path.join(db["Source"], "seed")).read() == "from-image\n"   # filled from the image
    assert oct(os.stat(db["Source"]).st_mode & 0o777) == "0o750"
    # stop/start keeps the data (the container's own volumes, not new ones)
    r = nerdpy("start", "-a", "db", timeout=T)
    assert r.returncode == 0 and r.stdout.split() == ["from-image", "2"], r.stderr
    assert anon_volumes(nerdpy) == names
    # a plain rm keeps them (dangling now), rm -v removes them
    nerdpy("rm", "db", check=True)
    assert sorted(nerdpy("volume", "ls", "-q").stdout.split()) == names
    nerdpy("volume", "prune", "-f", check=True)
    assert nerdpy("volume", "ls", "-q").stdout == ""
    nerdpy("create", "--name", "db2", dbimage, "true", check=True, timeout=T)
    created = sorted(nerdpy("volume", "ls", "-q").stdout.split())
    assert len(created) == 2                                  # named at create, as docker does
    nerdpy("rm", "-v", "db2", check=True)
    assert nerdpy("volume", "ls", "-q").stdout == ""


def test_rm_flag_and_user_mount_override(nerdpy, dbimage, tmp_path):
    nerdpy("pull", "-q", dbimage, check=True, timeout=T)
    r = nerdpy("run", "--rm", dbimage, "cat", "/var/lib/db/seed", timeout=T)
    assert r.returncode == 0 and r.stdout == "from-image\n", r.stderr
    assert nerdpy("volume", "ls", "-q").stdout == ""          # --rm removed them
    # a named volume on the same path replaces the image's anonymous one
    r = nerdpy("run", "--name", "c", "-v", "mydb:/var/lib/db/", "--tmpfs", "/scratch", dbimage,
               "cat", "/var/lib/db/seed", timeout=T)
    assert r.returncode == 0 and r.stdout == "from-image\n", r.stderr
    mounts = json.loads(nerdpy("inspect", "c", check=True).stdout)[0]["Mounts"]
    assert sorted((m["Type"], m["Destination"]) for m in mounts) == [("tmpfs", "/scratch"), ("volume", "/var/lib/db")]
    nerdpy("rm", "-v", "c", check=True)
    assert nerdpy("volume", "ls", "-q").stdout == "mydb\n"     # rm -v keeps named volumes
