"""`nerdpy cp` against real containers: both directions, running and stopped, docker's
trailing-slash and `/.` semantics, tar streams on stdin/stdout, volumes, and symlinks in the
container that try to lead outside its root (the CVE-2018-15664 class).

To stay fast, the tests share one data root with two containers made once: `up` (running) and
`down` (stopped). What lands in the stopped one is checked in its writable layer on the host,
what lands in the running one with `exec`."""
from __future__ import annotations

import io
import os
import secrets
import subprocess
import sys
import tarfile
import time

import pytest

SETUP = ("mkdir -p /d/sub /x/y && echo in-sub > /d/sub/f && echo top > /d/top.txt && ln -s /etc /d/l && "
         "ln -s / /evil && ln -s ../../../../ /rel && ln -s ../../../../../../tmp /x/y/up && "
         "echo in-volume > /vol/v.txt")


class World:
    def __init__(self, root: str, image: str):
        self.root = root
        self.data_root = os.path.join(root, "data")
        self.run_root = os.path.join(root, "run")
        self.bind = os.path.join(root, "bind")
        os.makedirs(self.bind)
        with open(os.path.join(self.bind, "b.txt"), "w") as f:
            f.write("from bind\n")
        from conftest import BRIDGE_NAME, BRIDGE_SUBNET

        # the session's bridge and a conflist dir of its own, never the host's default network
        self.env = dict(os.environ, HOME=root, NERDPY_CONFIG="/nonexistent", NERDPY_RUN_ROOT=self.run_root,
                        NERDPY_BRIDGE_NAME=BRIDGE_NAME, NERDPY_BRIDGE_SUBNET=BRIDGE_SUBNET,
                        NERDPY_CNI_NETCONFPATH=os.path.join(root, "net.d"))
        self.image = image

    def __call__(self, *args, input=None, check=False, text=True):
        r = subprocess.run([sys.executable, "-m", "nerdpy", "--data-root", self.data_root, *args],
                           input=input, capture_output=True, env=self.env, text=text, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError(f"nerdpy {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r

    def upper(self, name: str) -> str:
        """The writable layer of a container, on the host."""
        cid = self("inspect", "-f", "{{.Id}}", name, check=True).stdout.strip()
        import sqlite3

        db = sqlite3.connect(f"file:{self.data_root}/meta.db?mode=ro", uri=True)
        row = db.execute("SELECT id FROM active_snapshots WHERE key = ?", (f"default/{cid}",)).fetchone()
        db.close()
        if row:
            return os.path.join(self.data_root, "snapshots", str(row[0]), "fs")
        raise AssertionError(f"no writable layer found for {name}")


def mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


def wait_for(pred, timeout=10.0, interval=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()


@pytest.fixture(scope="module")
def world(tmp_path_factory, images):
    w = World(str(tmp_path_factory.mktemp("cp")), images.busybox)
    w("pull", "-q", images.busybox, check=True)
    for name in ("up", "down"):
        w("run", "-d", "--name", name, "-v", f"vol-{name}:/vol", "-v", f"{w.bind}:/bind", images.busybox,
          "sh", "-c", f"test -e /ready || {{ {SETUP} && touch /marker-{name} /ready; }}; exec sleep 600",
          check=True)
    for name in ("up", "down"):
        assert wait_for(lambda: w("exec", name, "test", "-e", "/ready").returncode == 0)
    w("stop", "-t", "0", "down", check=True)
    assert wait_for(lambda: len(mounts_under(os.path.join(w.data_root, "containers"))) == 1)
    w.down_upper = w.upper("down")
    yield w
    # removal tears the network down too; then whatever could not be removed is stopped
    left = w("ps", "-a", "-q", "--no-trunc").stdout.split()
    if left:
        w("rm", "-f", *left)
    w("network", "prune", "-f")
    __import__("world").kill_monitors(w.run_root)
    runc_root = os.path.join(w.run_root, "runc", "default")
    for cid in os.listdir(runc_root) if os.path.isdir(runc_root) else []:
        subprocess.run(["runc", "--root", runc_root, "delete", "-f", cid], capture_output=True)
    for p in sorted(mounts_under(w.root), key=len, reverse=True):
        subprocess.run(["umount", "-l", p], capture_output=True)


@pytest.fixture(params=["up", "down"])
def box(request, world):
    return request.param


def read_in(world, box, *paths) -> list[str | None]:
    """Contents of files in a container: `exec cat` when it runs, its writable layer when stopped."""
    if box == "up":
        out = []
        for p in paths:
            r = world("exec", "up", "cat", p)
            out.append(r.stdout if r.returncode == 0 else None)
        return out
    res = []
    for p in paths:
        try:
            with open(os.path.join(world.down_upper, p.lstrip("/"))) as f:
                res.append(f.read())
        except OSError:
            res.append(None)
    return res


# -- container -> host ----------------------------------------------------------------------------
def test_cp_from_container_files_and_dirs(world, box, tmp_path):
    # a file to a new path, then into an existing directory (keeping its name)
    r = world("cp", f"{box}:/etc/passwd", str(tmp_path / "pw"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "pw").read_text().startswith("root:x:0:0:")
    (tmp_path / "dir").mkdir()
    world("cp", f"{box}:/d/top.txt", str(tmp_path / "dir"), check=True)
    assert (tmp_path / "dir" / "top.txt").read_text() == "top\n"
    # an existing file is overwritten
    world("cp", f"{box}:/d/top.txt", str(tmp_path / "pw"), check=True)
    assert (tmp_path / "pw").read_text() == "top\n"
    # a directory to a new path: created with the contents; symlinks are copied, not followed
    world("cp", f"{box}:/d", str(tmp_path / "new"), check=True)
    assert (tmp_path / "new" / "sub" / "f").read_text() == "in-sub\n"
    assert os.readlink(tmp_path / "new" / "l") == "/etc"
    # a directory into an existing directory: copied as a subdirectory; SRC/. copies the contents
    world("cp", f"{box}:/d", str(tmp_path / "dir"), check=True)
    assert (tmp_path / "dir" / "d" / "sub" / "f").read_text() == "in-sub\n"
    (tmp_path / "dot").mkdir()
    world("cp", f"{box}:/d/.", str(tmp_path / "dot"), check=True)
    assert sorted(os.listdir(tmp_path / "dot")) == ["l", "sub", "top.txt"]
    # -L follows a symlink given as the source
    world("cp", "-L", f"{box}:/d/l", str(tmp_path / "followed"), check=True)
    assert "root:x:0:0" in (tmp_path / "followed" / "passwd").read_text()
    # errors as docker: a dir onto a file, a file to a missing dir/, a missing source, file/
    r = world("cp", f"{box}:/d", str(tmp_path / "pw"))
    assert r.returncode == 1 and "cannot copy a directory to a file" in r.stderr
    r = world("cp", f"{box}:/d/top.txt", str(tmp_path / "nodir") + "/")
    assert r.returncode == 1 and "no such directory" in r.stderr.lower()
    assert not (tmp_path / "nodir").exists()
    r = world("cp", f"{box}:/nonexistent", str(tmp_path / "x"))
    assert r.returncode == 1 and f"Could not find the file /nonexistent in container {box}" in r.stderr
    r = world("cp", f"{box}:/d/top.txt/", str(tmp_path / "x"))
    assert r.returncode == 1 and "not a directory" in r.stderr
    # volumes and bind mounts are seen, running or stopped
    world("cp", f"{box}:/vol/v.txt", str(tmp_path), check=True)
    world("cp", f"{box}:/bind/b.txt", str(tmp_path), check=True)
    assert (tmp_path / "v.txt").read_text() == "in-volume\n"
    assert (tmp_path / "b.txt").read_text() == "from bind\n"


def test_cp_to_stdout_as_tar(world, box):
    r = world("cp", f"{box}:/d", "-", text=False)
    assert r.returncode == 0, r.stderr
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tf:
        assert sorted(m.name for m in tf.getmembers()) == ["d", "d/l", "d/sub", "d/sub/f", "d/top.txt"]
        assert tf.getmember("d/l").issym() and tf.getmember("d/l").linkname == "/etc"
        assert tf.extractfile("d/sub/f").read() == b"in-sub\n"


# -- host -> container ----------------------------------------------------------------------------
def test_cp_to_container(world, box, tmp_path):
    (tmp_path / "hello.txt").write_text("hello\n")
    owned = tmp_path / "owned.txt"
    owned.write_text("owned\n")
    os.chown(owned, 1000, 2000)
    src = tmp_path / "tree"
    (src / "inner").mkdir(parents=True)
    (src / "inner" / "a.txt").write_text("a\n")
    (src / "b.txt").write_text("b\n")
    os.symlink("inner/a.txt", src / "link")
    t = f"/tmp/to-{box}"
    world("exec", "up", "mkdir", t) if box == "up" else os.makedirs(world.down_upper + t)
    for argv in (
        [str(tmp_path / "hello.txt"), f"{box}:{t}/"],                  # into a dir: keeps its name
        [str(tmp_path / "hello.txt"), f"{box}:{t}/renamed.txt"],       # to a new file name
        [str(src), f"{box}:{t}/newdir"],                               # a dir to a new path
        [str(src), f"{box}:{t}"],                                      # a dir into an existing dir
        [str(src) + "/.", f"{box}:{t}/newdir"],                        # contents only, merged
        [str(owned), f"{box}:{t}/plain.txt"],
        ["-a", str(owned), f"{box}:{t}/archived.txt"],                 # -a keeps uid/gid
        [str(tmp_path / "hello.txt"), f"{box}:/vol/"],                 # into a volume
    ):
        r = world("cp", *argv)
        assert r.returncode == 0, (argv, r.stderr)
    got = read_in(world, box, f"{t}/hello.txt", f"{t}/renamed.txt", f"{t}/newdir/inner/a.txt",
                  f"{t}/tree/b.txt", f"{t}/newdir/b.txt")
    assert got == ["hello\n", "hello\n", "a\n", "b\n", "b\n"]
    vol = os.path.join(world.data_root, "volumes", "default", f"vol-{box}", "_data", "hello.txt")
    assert open(vol).read() == "hello\n"
    if box == "up":
        r = world("exec", "up", "sh", "-c", f"readlink {t}/tree/link; stat -c %u:%g {t}/plain.txt {t}/archived.txt")
        assert r.stdout.split() == ["inner/a.txt", "0:0", "1000:2000"]
    else:
        assert os.readlink(f"{world.down_upper}{t}/tree/link") == "inner/a.txt"
        st1, st2 = os.stat(f"{world.down_upper}{t}/plain.txt"), os.stat(f"{world.down_upper}{t}/archived.txt")
        assert (st1.st_uid, st1.st_gid, st2.st_uid, st2.st_gid) == (0, 0, 1000, 2000)
    # errors as docker
    r = world("cp", str(src), f"{box}:/d/top.txt")
    assert r.returncode == 1 and "cannot copy a directory to a file" in r.stderr
    r = world("cp", str(tmp_path / "hello.txt"), f"{box}:/nowhere/")
    assert r.returncode == 1
    r = world("cp", str(tmp_path / "hello.txt"), f"{box}:/nowhere/x")
    assert r.returncode == 1 and f"Could not find the file /nowhere in container {box}" in r.stderr
    r = world("cp", str(tmp_path / "missing"), f"{box}:/tmp")
    assert r.returncode == 1
    r = world("cp", f"{box}:/a", "up:/b")
    assert r.returncode != 0 and "between containers" in r.stderr


def test_cp_tar_from_stdin(world, box):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = b"from a tar\n"
        ti = tarfile.TarInfo(f"from-stdin-{box}/f.txt")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    r = world("cp", "-", f"{box}:/tmp", input=buf.getvalue(), text=False)
    assert r.returncode == 0, r.stderr
    r = world("cp", "-", f"{box}:/etc/passwd", input=buf.getvalue(), text=False)
    assert r.returncode == 1 and b"must be a directory" in r.stderr
    assert read_in(world, box, f"/tmp/from-stdin-{box}/f.txt") == ["from a tar\n"]


# -- symlinks never lead outside the container (CVE-2018-15664 class) ------------------------------
def test_cp_symlinks_stay_inside_the_container(world, box, tmp_path):
    assert os.path.exists("/etc/shadow")
    # reading: /evil -> /, /rel -> ../../../../ resolve to the container's root, never the host's
    for link in ("/evil", "/rel"):
        r = world("cp", f"{box}:{link}/etc/shadow", str(tmp_path / "shadow"))
        assert r.returncode == 1 and "Could not find the file" in r.stderr, r.stderr
        assert not (tmp_path / "shadow").exists()
        world("cp", f"{box}:{link}/etc/passwd", str(tmp_path / "passwd"), check=True)
        assert "app:x:1000:1000:app:/home/app:/bin/sh" in (tmp_path / "passwd").read_text()
    # writing: through /evil, /rel and a relative link deep in a tree, the host's /tmp is untouched
    (tmp_path / "payload").write_text("payload\n")
    names = []
    for via in ("/evil/tmp", "/rel/tmp", "/x/y/up"):
        name = "nerdpy-cp-escape-" + secrets.token_hex(6)
        names.append(name)
        r = world("cp", str(tmp_path / "payload"), f"{box}:{via}/{name}")
        assert r.returncode == 0, r.stderr
        assert not os.path.exists(f"/tmp/{name}")
    # a destination that is itself a link to / means the container's root
    root_name = "nerdpy-cp-root-" + secrets.token_hex(6)
    os.rename(tmp_path / "payload", tmp_path / root_name)
    world("cp", str(tmp_path / root_name), f"{box}:/evil", check=True)
    assert not os.path.exists(f"/{root_name}")
    assert read_in(world, box, *[f"/tmp/{n}" for n in names], f"/{root_name}") == ["payload\n"] * 4
    # a hostile tar on stdin: a symlink to /tmp, then a file through it: refused, nothing written
    pwn = "nerdpy-cp-pwn-" + secrets.token_hex(6)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo(f"link-{box}")
        ti.type, ti.linkname = tarfile.SYMTYPE, "/tmp"
        tf.addfile(ti)
        ti = tarfile.TarInfo(f"link-{box}/{pwn}")
        ti.size = 3
        tf.addfile(ti, io.BytesIO(b"pwn"))
    r = world("cp", "-", f"{box}:/d", input=buf.getvalue(), text=False)
    assert r.returncode == 1 and b"refusing to extract through" in r.stderr, r.stderr
    assert not os.path.exists(f"/tmp/{pwn}")
    assert read_in(world, box, f"/tmp/{pwn}") == [None]


def test_cp_host_side_does_not_follow_container_links(world, tmp_path):
    """A container's symlink copied to the host is a symlink: extracting never writes through it."""
    (tmp_path / "outside").mkdir()
    world("exec", "up", "sh", "-c", f"mkdir /p && ln -s {tmp_path}/outside /p/link && mkdir /p/link2", check=True)
    world("cp", "up:/p", str(tmp_path / "copy"), check=True)
    assert os.path.islink(tmp_path / "copy" / "link")
    assert os.listdir(tmp_path / "outside") == []


def test_stopped_copies_leave_no_mount(world):
    assert mounts_under(os.path.join(world.data_root, "containers")) == \
        [os.path.join(world.data_root, "containers", "default", world("inspect", "-f", "{{.Id}}", "up").stdout.strip(),
                      "rootfs")]


def test_cp_created_container_and_its_new_volume(world, tmp_path):
    """A container never started: cp sees the image where its (still empty) volume will go, and a
    file copied there ends up in the volume when the volume is filled at the first start."""
    world("create", "--name", "fresh", "-v", "vol-fresh:/etc", world.image, "cat", "/etc/copied", check=True)
    world("cp", "fresh:/etc/passwd", str(tmp_path / "pw"), check=True)
    assert (tmp_path / "pw").read_text().startswith("root:x:0:0")
    (tmp_path / "copied").write_text("copied before start\n")
    world("cp", str(tmp_path / "copied"), "fresh:/etc/", check=True)
    r = world("start", "-a", "fresh")
    assert r.returncode == 0 and r.stdout == "copied before start\n", r.stderr
    vol = os.path.join(world.data_root, "volumes", "default", "vol-fresh", "_data")
    # the /etc/hosts-style mount points land in the volume too, as with docker
    assert sorted(os.listdir(vol)) == ["copied", "group", "hostname", "hosts", "passwd", "resolv.conf"]
