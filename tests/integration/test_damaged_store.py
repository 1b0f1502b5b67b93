"""A damaged store (issue 17): an emptied or truncated meta.db, a layer blob whose bytes no longer
match its digest, a running container whose monitor files and state.json are gone.

The database's damage is named by every command (never taken for a new store); `system check
--repair` keeps the damaged file, rebuilds the DB from the records on disk, says what it
recovered, and never removes anything of a container whose processes are alive. `save` and
`push` refuse a corrupt blob. A container without its records shows as running (runc and /proc say so), and
`stop` stops it for real."""
from __future__ import annotations

import glob
import os
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest


@pytest.fixture
def bb(nerdpy, images):
    nerdpy("pull", "-q", images.busybox, check=True)
    return images.busybox


def _cid(nerdpy, name: str) -> str:
    return nerdpy("inspect", "-f", "{{.Id}}", name, check=True).stdout.strip()


def _pid(nerdpy, name: str) -> int:
    return int(nerdpy("inspect", "-f", "{{.State.Pid}}", name, check=True).stdout.strip())


def _alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def _checkpoint(db: str) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _scene(nerdpy, bb):
    """A running container, a stopped one, an image under two names, a volume."""
    nerdpy("run", "-d", "--name", "web", "-v", "keep:/data", bb, "sleep", "1000", check=True)
    nerdpy("create", "--name", "idle", bb, "true", check=True)
    nerdpy("tag", bb, "example.test/mine:1", check=True)
    return _cid(nerdpy, "web"), _pid(nerdpy, "web")


def _assert_rebuilt(nerdpy, bb, cid, pid):
    cdir = os.path.join(nerdpy.data_root, "containers", "default", cid)
    assert os.path.isdir(cdir) and _alive(pid)
    kept = glob.glob(os.path.join(nerdpy.data_root, "meta.db.damaged-*"))
    assert kept, os.listdir(nerdpy.data_root)
    ps = nerdpy("ps", "-a", "--format", "{{.Names}} {{.State}}", check=True).stdout.split("\n")
    assert "web running" in ps and "idle created" in ps, ps
    names = nerdpy("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout
    assert "example.test/mine:1" in names, names
    assert "keep" in nerdpy("volume", "ls", "-q", check=True).stdout
    assert nerdpy("exec", "web", "echo", "hi", check=True).stdout == "hi\n"
    nerdpy("stop", "-t", "1", "web", check=True)
    assert not _alive(pid)
    r = nerdpy("system", "check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert nerdpy("run", "--rm", bb, "echo", "ok", check=True).stdout == "ok\n"
    nerdpy("rm", "-f", "web", "idle", check=True)


def test_emptied_database_is_named_and_rebuilt(nerdpy, bb):
    cid, pid = _scene(nerdpy, bb)
    db = os.path.join(nerdpy.data_root, "meta.db")
    _checkpoint(db)
    with open(db, "w"):
        pass  # emptied
    for args in (("ps", "-a"), ("images",), ("run", "--rm", bb, "true")):
        r = nerdpy(*args)
        assert r.returncode == 125, (args, r.stdout, r.stderr)
        assert "meta.db is empty but the data root holds" in r.stderr and "--repair" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    r = nerdpy("system", "check")
    assert r.returncode == 1 and "error: database meta.db: metadata database" in r.stdout, r.stdout + r.stderr
    assert os.path.getsize(db) == 0  # a check without --repair changes nothing
    r = nerdpy("system", "check", "--repair")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "-> rebuilt" in r.stdout and "container(s) from the records beside their directories" in r.stdout
    assert "image name(s) from their records" in r.stdout, r.stdout
    _assert_rebuilt(nerdpy, bb, cid, pid)


def test_truncated_database_is_named_and_rebuilt(nerdpy, bb):
    cid, pid = _scene(nerdpy, bb)
    db = os.path.join(nerdpy.data_root, "meta.db")
    _checkpoint(db)
    size = os.path.getsize(db)
    os.truncate(db, size // 2)
    r = nerdpy("ps", "-a")
    assert r.returncode == 125 and "is damaged" in r.stderr and "--repair" in r.stderr, r.stderr
    r = nerdpy("system", "check", "--repair")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "-> rebuilt" in r.stdout, r.stdout
    _assert_rebuilt(nerdpy, bb, cid, pid)


def test_repair_never_removes_a_running_container_without_a_record(nerdpy, bb):
    nerdpy("run", "-d", "--network", "none", "--name", "web", bb, "sleep", "1000", check=True)
    cid, pid = _cid(nerdpy, "web"), _pid(nerdpy, "web")
    cdir = os.path.join(nerdpy.data_root, "containers", "default", cid)
    os.unlink(os.path.join(cdir, "record.json"))  # an older store: no record beside it
    db = os.path.join(nerdpy.data_root, "meta.db")
    _checkpoint(db)
    with open(db, "w"):
        pass
    r = nerdpy("system", "check", "--repair")
    assert "not recovered" in r.stdout and f"container default/{cid[:12]}: no record" in r.stdout, r.stdout
    assert "a running container that has no record (its files are kept)" in r.stdout, r.stdout
    assert r.returncode == 1
    # and again: a second repair (now on a sound DB) does not remove it either
    r = nerdpy("system", "check", "--repair")
    assert "a running container that has no record" in r.stdout and r.returncode == 1, r.stdout
    nerdpy("system", "prune", "-a", "-f", check=True)  # nor does prune (GC, mounts)
    assert os.path.isdir(os.path.join(cdir, "rootfs")) and _alive(pid)
    assert os.path.ismount(os.path.join(cdir, "rootfs"))
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not _alive(pid):
            break
        time.sleep(0.05)


def test_save_refuses_a_corrupt_layer_blob(nerdpy, bb, tmp_path):
    manifest = subprocess.run(
        ["python3", "-c", "import json,sys,glob,os\n"
         f"root={nerdpy.data_root!r}\n"
         "for p in glob.glob(root+'/content/blobs/sha256/*'):\n"
         "    try: d=json.load(open(p))\n"
         "    except Exception: continue\n"
         "    if isinstance(d,dict) and 'layers' in d: print(d['layers'][0]['digest'])"],
        capture_output=True, text=True, check=True).stdout.split()[0]
    blob = os.path.join(nerdpy.data_root, "content", "blobs", "sha256", manifest.split(":")[1])
    with open(blob, "r+b") as f:
        f.seek(200)
        b = f.read(1)
        f.seek(200)
        f.write(bytes([b[0] ^ 0xFF]))
    out = tmp_path / "bb.tar"
    r = nerdpy("save", "-o", str(out), bb)
    assert r.returncode == 1, r.stdout + r.stderr  # docker save's code for a failed save
    assert f"blob {manifest} is corrupt" in r.stderr and "system check --repair" in r.stderr, r.stderr
    assert not out.exists()


def test_running_container_without_its_records_is_running_and_stops(nerdpy, bb):
    nerdpy("run", "-d", "--name", "web", bb, "sleep", "1000", check=True)
    cid, pid = _cid(nerdpy, "web"), _pid(nerdpy, "web")
    # the monitor dies and its files and the state record go
    mon = os.path.join(nerdpy.run_root, "default", cid, "monitor.pid")
    mpid = int(open(mon).read().split()[0])
    os.kill(mpid, signal.SIGKILL)
    for _ in range(100):
        if not _alive(mpid):
            break
        time.sleep(0.05)
    shutil.rmtree(os.path.join(nerdpy.run_root, "default", cid), ignore_errors=True)
    os.unlink(os.path.join(nerdpy.data_root, "containers", "default", cid, "state.json"))
    assert _alive(pid)
    st = nerdpy("ps", "-a", "--format", "{{.Names}} {{.State}}", check=True).stdout
    assert "web running" in st, st
    r = nerdpy("system", "check")
    assert r.returncode == 1 and f"runs as pid {pid} with no monitor" in r.stdout, r.stdout
    r = nerdpy("stop", "-t", "1", "web")
    assert r.returncode == 0 and r.stdout == "web\n", r.stdout + r.stderr
    assert not _alive(pid)
    st = nerdpy("ps", "-a", "--format", "{{.Names}} {{.State}}", check=True).stdout
    assert "web exited" in st, st
    r = nerdpy("system", "check")
    assert r.returncode == 0, r.stdout
    nerdpy("rm", "web", check=True)


def test_push_refuses_a_corrupt_layer_blob(nerdpy, bb, images):
    blobs = os.path.join(nerdpy.data_root, "content", "blobs", "sha256")
    before = set(os.listdir(blobs))
    nerdpy("run", "--name", "c", "--network", "none", bb, "sh", "-c", f"echo {os.getpid()} {time.time()} > /f",
           check=True)
    ref = f"{images.registry.host}/corrupt/app:1"
    nerdpy("commit", "c", ref, check=True)
    new = [n for n in set(os.listdir(blobs)) - before if open(os.path.join(blobs, n), "rb").read(2) == b"\x1f\x8b"]
    assert len(new) == 1, new  # the committed layer, which the registry has never seen
    layer = os.path.join(blobs, new[0])
    with open(layer, "r+b") as f:
        f.seek(40)
        b = f.read(1)
        f.seek(40)
        f.write(bytes([b[0] ^ 0xFF]))
    r = nerdpy("push", ref)
    assert r.returncode != 0, r.stdout + r.stderr
    assert f"blob sha256:{new[0]} is corrupt" in r.stderr and "Traceback" not in r.stderr, r.stderr
    nerdpy("rm", "c", check=True)
