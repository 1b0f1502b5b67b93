"""`system info/df/prune/check/events` and `doctor` against a real store, containers and registry:
the numbers agree with `images` and `ps -s`, prune removes what docker's does, check finds a
corrupt blob and a lost snapshot and its repair lets `pull` restore them, the journal shows
commands' events in docker's formats, and doctor reports this host and a PATH without runc."""
from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time

import pytest


@pytest.fixture
def bb(nerdpy, images):
    nerdpy("pull", "-q", images.busybox, check=True)
    return images.busybox


def test_info_fields(nerdpy, bb):
    nerdpy("run", "--name", "stopped", bb, "true", check=True)
    data = json.loads(nerdpy("system", "info", "--format", "{{json .}}", check=True).stdout)
    assert data["Driver"] == "overlayfs" and data["DockerRootDir"] == nerdpy.data_root
    assert data["Containers"] == 1 and data["ContainersStopped"] == 1 and data["ContainersRunning"] == 0
    assert data["Images"] == 1 and data["Namespace"] == "default"
    assert data["CgroupVersion"] in ("1", "2") and data["CgroupDriver"] == "cgroupfs"
    assert os.path.basename(data["RuncPath"]) == "runc" and data["RuncVersion"]
    assert "bridge" in data["CNIPlugins"] and data["CNIPath"]
    text = nerdpy("system", "info", check=True).stdout
    for needle in ("Storage Driver: overlayfs", "Cgroup Version:", f"Docker Root Dir: {nerdpy.data_root}",
                   "runc path: ", "CNI path: ", " Containers: 1", "  Stopped: 1", " Images: 1"):
        assert needle in text, text
    assert nerdpy("system", "info", "-f", "{{.Driver}} {{.Images}}").stdout == "overlayfs 1\n"


def test_df_agrees_with_images_and_ps(nerdpy, bb):
    nerdpy("run", "--name", "writer", "-v", "/vol", bb, "sh", "-c",
           "dd if=/dev/zero of=/big bs=1k count=300 2>/dev/null; echo data > /vol/v", check=True)
    rows = {r["Type"]: r for r in map(json.loads, nerdpy("system", "df", "--format", "{{json .}}",
                                                         check=True).stdout.splitlines())}
    assert nerdpy("images", "--format", "{{.Size}}").stdout.strip() == rows["Images"]["Size"]
    # ps -s: docker's "rw (virtual rw+image)"; df counts the rw part
    assert nerdpy("ps", "-a", "-s", "--format", "{{.Size}}").stdout.split(" (virtual ")[0] == rows["Containers"]["Size"]
    assert rows["Images"]["TotalCount"] == "1" and rows["Images"]["Active"] == "1"
    assert rows["Images"]["Reclaimable"].startswith("0B")
    assert rows["Containers"]["TotalCount"] == "1" and rows["Containers"]["Active"] == "0"
    assert rows["Containers"]["Reclaimable"] == rows["Containers"]["Size"] + " (100%)"
    assert rows["Local Volumes"]["TotalCount"] == "1" and rows["Local Volumes"]["Size"] == "5B"
    table = nerdpy("system", "df", check=True).stdout.splitlines()
    assert table[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    verbose = nerdpy("system", "df", "-v", check=True).stdout
    assert "Images space usage:" in verbose and "Containers space usage:" in verbose
    assert "writer" in verbose and "Local Volumes space usage:" in verbose


def test_prune(nerdpy, bb):
    nerdpy("run", "--name", "done", "-v", "/anon", bb, "sh", "-c", "echo x > /x", check=True)
    dangling = nerdpy("commit", "done", check=True).stdout.strip()
    nerdpy("volume", "create", "named", check=True)
    nerdpy("run", "-d", "--name", "up", bb, "sleep", "600", check=True)
    done_id = nerdpy("inspect", "-f", "{{.Id}}", "done").stdout.strip()
    # no answer is a no
    r = nerdpy("system", "prune", input="")
    assert "WARNING! This will remove" in r.stdout and "Total reclaimed space: 0B" in r.stdout
    assert nerdpy("ps", "-a", "-q").stdout.count("\n") == 2
    r = nerdpy("system", "prune", "-f", check=True)
    assert "Deleted Containers:\n" + done_id in r.stdout
    assert f"deleted: {dangling}" in r.stdout and "Total reclaimed space:" in r.stdout
    assert nerdpy("ps", "-a", "--format", "{{.Names}}").stdout == "up\n"
    assert nerdpy("images", "-q").stdout.count("\n") == 1  # busybox stays: `up` uses it
    assert len(nerdpy("volume", "ls", "-q").stdout.split()) == 2  # volumes only with --volumes
    r = nerdpy("system", "prune", "-f", "--volumes", check=True)
    assert nerdpy("volume", "ls", "-q").stdout == "named\n"  # anonymous ones only (docker 23+)
    assert "Deleted Volumes:" in r.stdout
    nerdpy("rm", "-f", "up", check=True)
    r = nerdpy("system", "prune", "-a", "-f", check=True)
    assert "untagged: " in r.stdout
    assert nerdpy("images", "-q").stdout == ""
    assert os.listdir(os.path.join(nerdpy.data_root, "content", "blobs", "sha256")) == []


def _busybox_layer(nerdpy, ref) -> tuple[str, str]:
    """(layer blob path, snapshot directory) of the single-layer busybox image."""
    info = json.loads(nerdpy("image", "inspect", ref, check=True).stdout)[0]
    digest = info["LayerDescriptors"][0]["digest"]
    db = sqlite3.connect(f"file:{nerdpy.data_root}/meta.db?mode=ro", uri=True)
    (snap_id,) = db.execute("SELECT id FROM snapshots WHERE chain_id = ?", (info["RootFS"]["Layers"][0],)).fetchone()
    db.close()
    return (os.path.join(nerdpy.data_root, "content", "blobs", "sha256", digest[7:]),
            os.path.join(nerdpy.data_root, "snapshots", str(snap_id)))


def test_check_finds_damage_and_repair_lets_pull_restore(nerdpy, bb):
    r = nerdpy("system", "check")
    assert r.returncode == 0 and "no problems found" in r.stdout, r.stdout + r.stderr
    blob, snapdir = _busybox_layer(nerdpy, bb)
    with open(blob, "r+b") as f:  # flip one byte
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 0xFF]))
    subprocess.run(["rm", "-rf", snapdir], check=True)
    r = nerdpy("system", "check")
    assert r.returncode == 1, r.stdout
    assert re.search(r"error: blob sha256:\w+: content does not match its digest", r.stdout), r.stdout
    assert re.search(r"error: snapshot sha256:\w+: its directory .* is gone", r.stdout), r.stdout
    assert "--repair" in r.stdout
    r = nerdpy("system", "check", "--repair")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "-> deleted" in r.stdout and "-> name removed" in r.stdout
    # the broken image is gone from the list; pull restores it all and it runs again
    assert nerdpy("images", "-q").stdout == ""
    nerdpy("pull", "-q", bb, check=True)
    r = nerdpy("system", "check")
    assert r.returncode == 0 and "no problems found" in r.stdout, r.stdout
    assert nerdpy("run", "--rm", bb, "echo", "ok", check=True).stdout == "ok\n"


def test_check_repairs_snapshot_from_blob_and_containers(nerdpy, bb):
    nerdpy("run", "--name", "c", bb, "sh", "-c", "echo x > /x", check=True)
    _blob, snapdir = _busybox_layer(nerdpy, bb)
    subprocess.run(["rm", "-rf", snapdir], check=True)
    cid = nerdpy("inspect", "-f", "{{.Id}}", "c").stdout.strip()
    subprocess.run(["rm", "-rf", os.path.join(nerdpy.data_root, "containers", "default", cid)], check=True)
    stale = os.path.join(nerdpy.data_root, "tmp", "layer-999999999-dead")
    os.makedirs(os.path.dirname(stale), exist_ok=True)
    open(stale, "w").close()
    r = nerdpy("system", "check")
    assert r.returncode == 1 and "container default/c: its directory is gone" in r.stdout, r.stdout
    assert "temp tmp/layer-999999999-dead" in r.stdout
    r = nerdpy("system", "check", "--repair")
    assert r.returncode == 0, r.stdout
    assert "unpacked again from its layer blob" in r.stdout and "directory recreated" in r.stdout
    assert not os.path.exists(stale)
    assert nerdpy("system", "check").returncode == 0
    # the image runs without a pull, and so does the container (its layer was intact)
    assert nerdpy("run", "--rm", bb, "echo", "ok", check=True).stdout == "ok\n"
    assert nerdpy("start", "-a", "c").returncode == 0
    assert nerdpy("run", "--rm", bb, "true").returncode == 0


def _events(nerdpy, *args) -> list[str]:
    return nerdpy("system", "events", *args, check=True).stdout.splitlines()


def test_events_journal(nerdpy, bb, tmp_path):
    start = time.time() - 1
    nerdpy("run", "--name", "ev", bb, "sh", "-c", "echo x > /x", check=True)
    image_id = nerdpy("commit", "-m", "note", "ev", "evimg:1", check=True).stdout.strip()
    cid = nerdpy("inspect", "-f", "{{.Id}}", "ev").stdout.strip()
    nerdpy("export", "-o", str(tmp_path / "ev.tar"), "ev", check=True)
    imported = nerdpy("import", str(tmp_path / "ev.tar"), "evimp", check=True).stdout.strip()
    until = time.time() + 1
    lines = _events(nerdpy, "--since", str(start), "--until", str(until))
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)"
    assert any(re.fullmatch(stamp + rf" container commit {cid} \(comment=note, image=[^,]+, imageID={image_id}, "
                            r"imageRef=docker.io/library/evimg:1, name=ev\)", line) for line in lines), lines
    assert any(re.fullmatch(stamp + rf" image import {imported} \(name=docker.io/library/evimp:latest\)", line)
               for line in lines), lines
    # the container's own life, recorded by the commands and its monitor
    actions = [line.split()[2] for line in lines if f" {cid} " in line]
    assert actions[:4] == ["create", "attach", "start", "die"], lines  # docker's order (issue 15: attach)
    assert any(re.fullmatch(stamp + rf" container create {cid} \(image={re.escape(bb)}, name=ev\)", line)
               for line in lines), lines
    # filters, --format json, relative times
    only = _events(nerdpy, "--since", "5m", "--until", "0s", "--filter", "type=image")
    # (the fixture's pull is an image event too, as in docker, since issue 15)
    assert [x.split()[2] for x in only] in (["import"], ["pull", "import"]) and all(" image " in x for x in only), only
    js = [json.loads(x) for x in _events(nerdpy, "--since", str(start), "--until", "0s", "--filter", "event=create",
                                         "--format", "{{json .}}")]
    assert len(js) == 1 and js[0]["Type"] == "container" and js[0]["Action"] == "create"
    assert js[0]["Actor"] == {"ID": cid, "Attributes": {"image": bb, "name": "ev"}}
    assert js[0]["status"] == "create" and js[0]["id"] == cid and js[0]["from"] == bb and "timeNano" in js[0]
    tmpl = _events(nerdpy, "--since", str(start), "--until", "0s", "-f", "container=ev", "-f", "event=create",
                   "--format", "{{.Type}} {{.Status}} {{.Actor.Attributes.name}}")
    assert tmpl == ["container create ev"]
    assert _events(nerdpy, "--since", str(start), "--until", str(start + 0.5)) == []
    # another namespace sees its own events only
    assert nerdpy("-n", "other", "system", "events", "--since", str(start), "--until", "0s").stdout == ""


def test_events_follow(nerdpy, bb):
    argv = [sys.executable, "-m", "nerdpy", "--data-root", nerdpy.data_root, "system", "events",
            "--filter", "type=container"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=nerdpy.env)
    try:
        time.sleep(1.0)  # let it start following
        nerdpy("run", "--name", "f", bb, "true", check=True)
        nerdpy("commit", "f", "followed", check=True)
        seen = []
        for _ in range(10):  # create, start, die, then the commit
            line = proc.stdout.readline()
            seen.append(line)
            if " container commit " in line:
                break
        assert " container commit " in line and "name=f" in line, seen
        assert " container create " in seen[0], seen
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0


def test_doctor(nerdpy):
    r = nerdpy("doctor")
    assert r.returncode == 0, r.stdout
    for name in ("root", "runc", "runc CVE-2024-21626", "overlayfs", "cgroups", "CNI plugins", "iptables",
                 "data root", "free space"):
        assert re.search(rf"^\[ ok \] {re.escape(name)}: ", r.stdout, re.M), r.stdout
    r = nerdpy("doctor", env={"PATH": "/nonexistent"})
    assert r.returncode == 1
    assert re.search(r"^\[FAIL\] runc: runc not found on PATH", r.stdout, re.M), r.stdout
    fix = r.stdout.split("[FAIL] runc:", 1)[1].splitlines()[1]
    assert fix.strip().startswith("fix: ") and ("apt-get install -y runc" in fix or "export PATH=" in fix)
    rows = [json.loads(x) for x in nerdpy("doctor", "--format", "{{json .}}").stdout.splitlines()]
    assert {r["Name"] for r in rows} >= {"runc", "overlayfs"} and all(r["Status"] == "ok" for r in rows)


def test_orphaned_mount_reported_by_check_and_unmounted_by_prune(nerdpy, bb):
    nerdpy("run", "--name", "gone", bb, "true", check=True)
    cid = nerdpy("inspect", "-f", "{{.Id}}", "gone").stdout.strip()
    rootfs = os.path.join(nerdpy.data_root, "containers", "default", cid, "rootfs")
    # a crash after the container stopped, before its rootfs was unmounted
    code = ("from nerdpy.engine.config import load_settings; from nerdpy.engine.store import open_store;"
            "from nerdpy.engine.snapshots.mount import mount_all;"
            f"s = open_store(load_settings({{'data_root': {nerdpy.data_root!r}}}));"
            f"mount_all(s.snapshots.mounts('default/{cid}'), {rootfs!r})")
    subprocess.run([sys.executable, "-c", code], check=True, env=nerdpy.env)
    assert os.path.ismount(rootfs)
    want = f"warning: mount {rootfs}: rootfs of a container that is not running"
    for _ in range(50):  # (the monitor, busy with the mount until it exits, may linger a moment)
        r = nerdpy("system", "check")
        if want in r.stdout:
            break
        time.sleep(0.1)
    assert r.returncode == 0 and want in r.stdout, r.stdout
    r = nerdpy("system", "prune", "-f", check=True)
    assert f"Unmounted:\n{rootfs}\n" in r.stdout and not os.path.ismount(rootfs)
    assert nerdpy("ps", "-a", "-q").stdout == ""
