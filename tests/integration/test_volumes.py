"""`volume create/ls/inspect/rm/prune` and volumes in containers: filled from the image on first
use, refused removal while any container (even a stopped one) uses them, anonymous volumes."""
from __future__ import annotations

import json
import os
import re

import pytest


@pytest.fixture
def bb(nerdpy, images):
    nerdpy("pull", "-q", images.busybox, check=True)
    return images.busybox


def vol_dir(nerdpy, name: str) -> str:
    return os.path.join(nerdpy.data_root, "volumes", "default", name, "_data")


def test_volume_create_ls_inspect_rm(nerdpy):
    assert nerdpy("volume", "create", "--label", "team=a", "--label", "tier=db", "data1").stdout == "data1\n"
    assert nerdpy("volume", "create", "data1").stdout == "data1\n"          # exists: fine, as docker
    anon = nerdpy("volume", "create", check=True).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", anon)
    r = nerdpy("volume", "create", "bad/name")
    assert r.returncode == 1 and "invalid volume name" in r.stderr
    r = nerdpy("volume", "create", "-d", "nfs", "x2")
    assert r.returncode == 1 and "not supported" in r.stderr

    lines = nerdpy("volume", "ls", check=True).stdout.splitlines()
    assert re.match(r"DRIVER\s+VOLUME NAME$", lines[0])
    assert sorted(lines[1:]) == sorted([f"local     {anon}", "local     data1"])
    assert sorted(nerdpy("volume", "ls", "-q").stdout.split()) == sorted([anon, "data1"])
    assert nerdpy("volume", "ls", "-q", "--filter", "label=team=a").stdout == "data1\n"
    assert nerdpy("volume", "ls", "-q", "--filter", "name=ata").stdout == "data1\n"
    out = nerdpy("volume", "ls", "--filter", "label=tier", "--format", '{{.Name}} {{.Driver}} {{.Label "team"}}').stdout
    assert out == "data1 local a\n"
    row = json.loads(nerdpy("volume", "ls", "--filter", "name=data1", "--format", "json").stdout)
    assert row["Name"] == "data1" and row["Labels"] == "team=a,tier=db" and row["Mountpoint"] == vol_dir(nerdpy, "data1")

    info = json.loads(nerdpy("volume", "inspect", "data1", check=True).stdout)
    assert len(info) == 1
    v = info[0]
    assert v["Name"] == "data1" and v["Driver"] == "local" and v["Scope"] == "local"
    assert v["Labels"] == {"team": "a", "tier": "db"}
    assert v["Mountpoint"] == vol_dir(nerdpy, "data1") and os.path.isdir(v["Mountpoint"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", v["CreatedAt"])
    assert nerdpy("volume", "inspect", "-f", "{{.Name}}:{{.Labels.team}}", "data1").stdout == "data1:a\n"
    assert nerdpy("inspect", "--type", "volume", "-f", "{{.Mountpoint}}", "data1").stdout.strip() == v["Mountpoint"]
    r = nerdpy("volume", "inspect", "data1", "nope")
    assert r.returncode == 1 and "no such volume: nope" in r.stderr and json.loads(r.stdout)[0]["Name"] == "data1"

    assert nerdpy("volume", "rm", "data1", anon).stdout == f"data1\n{anon}\n"
    assert not os.path.exists(os.path.dirname(vol_dir(nerdpy, "data1")))
    r = nerdpy("volume", "rm", "data1")
    assert r.returncode == 1 and "no such volume: data1" in r.stderr
    assert nerdpy("volume", "rm", "-f", "data1").returncode == 0
    assert nerdpy("volume", "ls", "-q").stdout == ""


def test_new_volume_is_filled_from_the_image(nerdpy, bb):
    # a new named volume mounted on /etc receives the image's /etc, owners and modes kept
    r = nerdpy("run", "--name", "c1", "-v", "etcvol:/etc", bb, "cat", "/etc/passwd")
    assert r.returncode == 0 and r.stdout.startswith("root:x:0:0:"), r.stderr
    d = vol_dir(nerdpy, "etcvol")
    # plus the mount points of /etc/hostname, /etc/hosts and /etc/resolv.conf, which go on top of
    # the volume (docker sorts mounts by depth and leaves the same empty files in the volume)
    assert sorted(os.listdir(d)) == ["group", "hostname", "hosts", "passwd", "resolv.conf"]
    assert open(os.path.join(d, "passwd")).read() == r.stdout
    assert oct(os.stat(os.path.join(d, "passwd")).st_mode & 0o777) == "0o644"
    # a volume created beforehand but still empty is filled too (docker copies into empty volumes)
    nerdpy("volume", "create", "early", check=True)
    nerdpy("run", "--rm", "-v", "early:/home", bb, "true", check=True)
    assert os.listdir(vol_dir(nerdpy, "early")) == ["app"]
    # a volume with content is left alone; nocopy skips the copy
    with open(os.path.join(vol_dir(nerdpy, "early"), "mine"), "w") as f:
        f.write("mine\n")
    r = nerdpy("run", "--rm", "-v", "early:/etc", bb, "ls", "/etc")
    assert r.stdout.split() == ["app", "hostname", "hosts", "mine", "resolv.conf"]
    nerdpy("run", "--rm", "-v", "empty:/etc:nocopy", bb, "true", check=True)
    assert sorted(os.listdir(vol_dir(nerdpy, "empty"))) == ["hostname", "hosts", "resolv.conf"]
    # what a container writes stays in the volume and is seen by the next one
    nerdpy("run", "--rm", "-v", "etcvol:/data", bb, "sh", "-c", "echo kept > /data/note", check=True)
    assert nerdpy("run", "--rm", "-v", "etcvol:/x:ro", bb, "cat", "/x/note").stdout == "kept\n"
    r = nerdpy("run", "--rm", "-v", "etcvol:/x:ro", bb, "touch", "/x/new")
    assert r.returncode != 0 and "Read-only file system" in r.stderr


def test_volume_in_use_cannot_be_removed(nerdpy, bb):
    nerdpy("run", "--name", "user", "-v", "shared:/data", bb, "true", check=True)   # exited, not removed
    r = nerdpy("volume", "rm", "shared")
    assert r.returncode == 1 and "volume is in use" in r.stderr
    r = nerdpy("volume", "rm", "-f", "shared")
    assert r.returncode == 1 and "volume is in use" in r.stderr
    assert os.path.isdir(vol_dir(nerdpy, "shared"))
    assert nerdpy("volume", "ls", "-q", "--filter", "dangling=false").stdout == "shared\n"
    nerdpy("rm", "user", check=True)
    assert nerdpy("volume", "ls", "-q", "--filter", "dangling=true").stdout == "shared\n"
    assert nerdpy("volume", "rm", "shared").stdout == "shared\n"


def test_anonymous_volumes(nerdpy, bb):
    nerdpy("run", "--name", "a1", "-v", "/data", bb, "sh", "-c", "echo x > /data/f", check=True)
    name = nerdpy("inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", "a1").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", name)
    assert nerdpy("volume", "ls", "-q").stdout == name + "\n"
    labels = json.loads(nerdpy("volume", "inspect", name).stdout)[0]["Labels"]
    assert labels == {"com.docker.volume.anonymous": ""}
    # the same volume again on restart
    nerdpy("start", "-a", "a1", check=True)
    assert nerdpy("volume", "ls", "-q").stdout == name + "\n"
    nerdpy("rm", "-v", "a1", check=True)
    assert nerdpy("volume", "ls", "-q").stdout == ""
    # --rm removes the anonymous volumes too, but not named ones
    nerdpy("run", "--rm", "-v", "/anon", "-v", "named:/named", bb, "true", check=True)
    assert nerdpy("volume", "ls", "-q").stdout == "named\n"


def test_volume_prune(nerdpy, bb):
    nerdpy("volume", "create", "keep-named", check=True)
    nerdpy("volume", "create", "--label", "gone=yes", "labelled", check=True)
    nerdpy("run", "--name", "holder", "-v", "in-use:/data", "-v", "/anon-used", bb, "true", check=True)
    nerdpy("run", "--name", "tmp", "-v", "/anon-free", bb, "true", check=True)
    free = nerdpy("inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", "tmp").stdout.strip()
    nerdpy("rm", "tmp", check=True)           # without -v: its anonymous volume stays, unused
    before = set(nerdpy("volume", "ls", "-q").stdout.split())
    assert len(before) == 5 and free in before
    # no -f: asks first; "n" keeps everything
    r = nerdpy("volume", "prune", input="n\n")
    assert "Are you sure you want to continue? [y/N]" in r.stdout and r.returncode == 0
    assert set(nerdpy("volume", "ls", "-q").stdout.split()) == before
    # default: unused anonymous volumes only
    r = nerdpy("volume", "prune", "-f", check=True)
    assert r.stdout.startswith("Deleted Volumes:\n" + free + "\n") and "Total reclaimed space:" in r.stdout
    assert set(nerdpy("volume", "ls", "-q").stdout.split()) == before - {free}
    # with a filter and -a: only the matching unused volume
    r = nerdpy("volume", "prune", "-f", "-a", "--filter", "label=gone", check=True)
    assert "labelled" in r.stdout and "keep-named" not in r.stdout
    # -a: every unused volume; volumes of the (stopped) container stay
    r = nerdpy("volume", "prune", "-a", input="y\n", check=True)
    assert "keep-named" in r.stdout
    left = set(nerdpy("volume", "ls", "-q").stdout.split())
    assert "in-use" in left and len(left) == 2
