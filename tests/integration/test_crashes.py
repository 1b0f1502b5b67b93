"""kill -9 at random points (issue 8, crashes).

A harness starts a nerdpy command, SIGKILLs it after a random delay (seeded; spread over the
measured duration of that command), and then checks that the next command works and that
`system check` finds the store consistent (or that `system check --repair` makes it so). At
least 20 kills each for `pull`, `run -d`, `rm -f`, `load` and `compose up -d`; once every container
is removed nothing may be left on the host (mounts, netns, runc state, monitors, veths, rules).

The operations run in three threads (pull+load, run+rm, compose), each against its own data
root, so that the whole harness stays within a few minutes on two cores; the seed and the number
of kills per operation can be changed with NERDPY_CRASH_SEED and NERDPY_CRASH_KILLS.

Also here: a monitor killed with kill -9 (a `--rm` container, a container with a published
port) leaves its container reported truthfully and removable, and `rm -f` frees the port."""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import hostleaks
import world
from conftest import Nerdpy, remove_everything

KILLS = int(os.environ.get("NERDPY_CRASH_KILLS", "20"))
SEED = int(os.environ.get("NERDPY_CRASH_SEED", "8"))


_no_leaks = hostleaks.module_unchanged()  # the host as before this module's tests


@pytest.fixture(scope="module")
def crash_image(registry, tmp_path_factory):
    """busybox and a second layer of 300 small files and 3 MiB of random bytes: a pull or load
    spends time in each phase (resolve, download, unpack, naming), so kills land in all of them."""
    layout = str(tmp_path_factory.mktemp("crash-layout"))
    files = [("many", "dir", 0o755)] + [(f"many/f{i}", "file", os.urandom(2048)) for i in range(300)]
    files.append(("big.bin", "file", os.urandom(3 << 20)))
    world.write_image(layout, "crash", [world._tar(world.busybox_entries()), world._tar(files)], world.BUSYBOX_CONFIG)
    ref = f"{registry.host}/test/crash:latest"
    world.push_layout(layout, "crash", ref)
    archive = str(tmp_path_factory.mktemp("crash-archive") / "crash.tar")
    world.sh("skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}",
             f"docker-archive:{archive}:example.test/crash:1")
    return ref, archive


# -- the harness ------------------------------------------------------------------------------------
class Crasher:
    """Kills one kind of command at random points and keeps the figures."""

    def __init__(self, op: str):
        self.op = op
        self.rng = random.Random(f"{SEED}-{op}")
        self.kills = 0          # SIGKILLs sent
        self.live = 0           # ... that found the command still running
        self.repaired = 0       # times `system check` failed and --repair was needed
        self.found: list[str] = []
        self.warnings = 0       # problems `system check` reports as warnings (leftovers it may clean)
        self.warned: set[str] = set()
        self.left: dict[str, int] = {}  # what the killed command left, as `ps -a` shows it
        self.estimate = 1.0

    def timed(self, n: Nerdpy, *args) -> subprocess.CompletedProcess:
        t0 = time.monotonic()
        r = n(*args, timeout=180)
        took = time.monotonic() - t0
        self.estimate = took if self.kills == 0 else 0.7 * self.estimate + 0.3 * took
        return r

    def kill_during(self, n: Nerdpy, *args) -> None:
        delay = self.estimate * self.rng.uniform(0.1, 0.95)
        p = subprocess.Popen([sys.executable, "-m", "nerdpy", "--data-root", n.data_root, *args], env=n.env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            p.wait(delay)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait()
            self.live += 1
        self.kills += 1

    def check(self, n: Nerdpy) -> None:
        r = n("system", "check", "-q", timeout=180)
        assert "Traceback" not in r.stderr, r.stderr
        for line in r.stdout.splitlines():
            if line.startswith("warning"):
                self.warnings += 1
                self.warned.add(re.sub(r"[0-9a-f]{12,}|\d+", "N", line.split(":", 2)[-1].strip()))
        if r.returncode == 0:
            return
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        self.found += [line for line in r.stdout.splitlines() if line.startswith("error")]
        self.repaired += 1
        rep = n("system", "check", "--repair", timeout=180)
        assert rep.returncode == 0, f"{self.op}: --repair left errors:\n{r.stdout}\n{rep.stdout}{rep.stderr}"
        again = n("system", "check", timeout=180)
        assert again.returncode == 0 and "no problems found" in again.stdout, again.stdout

    def line(self) -> str:
        left = ", ".join(f"{k} {v}" for k, v in sorted(self.left.items()))
        return (f"{self.op:<12} kills {self.kills:3d}  hit a running command {self.live:3d}  "
                f"check warnings {self.warnings:2d}  check failed -> --repair {self.repaired:2d}"
                + (f"  left: {left}" if left else "")
                + (f"  warnings: {'; '.join(sorted(self.warned))[:300]}" if self.warned else "")
                + (f"  errors: {'; '.join(sorted(set(self.found)))[:300]}" if self.found else ""))


def collect_leftovers(n: Nerdpy) -> None:
    """Garbage collection (here through `system prune`) takes what killed creates left (writable
    layers no container owns): `system check` has nothing left to say about layers."""
    r = n("system", "prune", "-f", timeout=120)
    assert r.returncode == 0, r.stderr
    r = n("system", "check", timeout=120)
    assert r.returncode == 0 and "writable layer" not in r.stdout, r.stdout


def runner(tmp_path, name: str) -> Nerdpy:
    d = tmp_path / name
    (d / "home").mkdir(parents=True, exist_ok=True)
    return Nerdpy(str(d / "data"), str(d / "home"), str(d / "run"), netconf=str(d / "net.d"))


def verify_blobs(data_root: str) -> None:
    bdir = os.path.join(data_root, "content", "blobs", "sha256")
    for name in os.listdir(bdir) if os.path.isdir(bdir) else []:
        if name.startswith("."):
            continue
        with open(os.path.join(bdir, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == name, f"blob {name} is corrupt"


# -- the operations -----------------------------------------------------------------------------------
def crash_pull(tmp_path, ref: str, stats: dict) -> None:
    c = stats["pull"] = Crasher("pull")
    first = runner(tmp_path, "pull-measure")
    r = c.timed(first, "pull", "-q", ref)
    assert r.returncode == 0, r.stderr
    i = 0
    while c.kills < KILLS:
        n = runner(tmp_path, f"pull-{i}")
        # every fourth time two kills in a row, the second on top of the first one's leftovers
        for _ in range(2 if i % 4 == 3 else 1):
            c.kill_during(n, "pull", "-q", ref)
        if i % 2:
            c.check(n)
        r = c.timed(n, "pull", "-q", ref)
        assert r.returncode == 0 and r.stdout == ref + "\n", (c.op, i, r.stdout, r.stderr)
        if not i % 2:
            c.check(n)
        verify_blobs(n.data_root)
        i += 1
    r = n("run", "--rm", "--network", "none", ref, "sh", "-c", "ls /many | wc -l; wc -c < /big.bin")
    assert r.returncode == 0 and r.stdout.split() == ["300", str(3 << 20)], (r.stdout, r.stderr)
    hostleaks.assert_nothing_left(n, exclusive=False)


def crash_load(tmp_path, archive: str, stats: dict) -> None:
    c = stats["load"] = Crasher("load")
    first = runner(tmp_path, "load-measure")
    r = c.timed(first, "load", "-q", "-i", archive)
    assert r.returncode == 0, r.stderr
    i = 0
    while c.kills < KILLS:
        n = runner(tmp_path, f"load-{i}")
        for _ in range(2 if i % 4 == 3 else 1):
            c.kill_during(n, "load", "-i", archive)
        if i % 2:
            c.check(n)
        r = c.timed(n, "load", "-q", "-i", archive)
        assert r.returncode == 0 and r.stdout == "Loaded image: example.test/crash:1\n", (c.op, i, r.stdout, r.stderr)
        if not i % 2:
            c.check(n)
        verify_blobs(n.data_root)
        i += 1
    r = n("run", "--rm", "--network", "none", "example.test/crash:1", "sh", "-c", "ls /many | wc -l")
    assert r.returncode == 0 and r.stdout.split() == ["300"], (r.stdout, r.stderr)
    hostleaks.assert_nothing_left(n, exclusive=False)


def crash_run_and_rm(n: Nerdpy, image: str, ports: list[int], stats: dict) -> None:
    c = stats["run -d"] = Crasher("run -d")
    r = c.timed(n, "run", "-d", "--name", "measure", image, "sleep", "600")
    assert r.returncode == 0, r.stderr
    for i in range(KILLS):
        pub = ["-p", f"{ports[i % len(ports)]}:80"] if i % 3 == 0 else []
        c.kill_during(n, "run", "-d", "--name", f"k{i}", *pub, image, "sleep", "600")
        # what a killed run left is listed truthfully: ps and inspect agree, without errors
        ps = n("ps", "-a", "--format", "{{.Names}} {{.State}}")
        assert ps.returncode == 0 and not ps.stderr, ps.stderr
        states = dict(line.split() for line in ps.stdout.splitlines())
        left = states.get(f"k{i}", "nothing")
        c.left[left] = c.left.get(left, 0) + 1
        if f"k{i}" in states:
            st = n("inspect", "-f", "{{.State.Status}}", f"k{i}")
            assert st.returncode == 0 and st.stdout.strip() == states[f"k{i}"], (st.stdout, st.stderr, states)
        if i % 2:
            c.check(n)
        r = c.timed(n, "run", "-d", "--name", f"ok{i}", image, "sleep", "600")
        assert r.returncode == 0, (c.op, i, r.stderr)
        if not i % 2:
            c.check(n)
    # every second run is up, with an address of its own
    oks = [f"ok{i}" for i in range(KILLS)]
    docs = json.loads(n("inspect", *oks, check=True).stdout)
    assert all(d["State"]["Status"] == "running" for d in docs)
    ips = [d["NetworkSettings"]["IPAddress"] for d in docs]
    assert all(ips) and len(set(ips)) == len(ips), ips

    c = stats["rm -f"] = Crasher("rm -f")
    c.estimate = 1.0
    names = n("ps", "-a", "--format", "{{.Names}}", check=True).stdout.split()
    assert len(names) >= KILLS
    for i, name in enumerate(sorted(names)[:KILLS]):
        c.kill_during(n, "rm", "-f", name)
        ps = n("ps", "-a", "--format", "{{.Names}} {{.State}}")
        assert ps.returncode == 0 and not ps.stderr, ps.stderr
        left = dict(line.split() for line in ps.stdout.splitlines()).get(name, "gone")
        c.left[left] = c.left.get(left, 0) + 1
        if i % 2:
            c.check(n)
        r = c.timed(n, "rm", "-f", name)
        if r.returncode != 0:
            # the killed rm got as far as removing it: that is the only excuse
            assert r.returncode == 1 and "no such container" in r.stderr.lower(), (c.op, name, r.returncode, r.stderr)
        if not i % 2:
            c.check(n)
    rest = sorted(names)[KILLS:]
    if rest:
        r = n("rm", "-f", *rest)
        assert r.returncode == 0, r.stderr
    assert n("ps", "-a", "-q", check=True).stdout == ""
    hostleaks.assert_nothing_left(n, exclusive=False)
    collect_leftovers(n)
    # every port a killed run had published is free again
    args = [x for p in ports for x in ("-p", f"{p}:{1000 + ports.index(p)}")]
    r = n("run", "--rm", *args, image, "true")
    assert r.returncode == 0, r.stderr
    hostleaks.assert_nothing_left(n, exclusive=False)


COMPOSE = """
name: crashp
services:
  web:
    image: {image}
    command: ["sleep", "600"]
    ports: ["{port}:80"]
    volumes: ["data:/data"]
  db:
    image: {image}
    command: ["sleep", "600"]
    depends_on: [web]
volumes:
  data:
"""


def crash_compose(n: Nerdpy, image: str, port: int, stats: dict) -> None:
    c = stats["compose up"] = Crasher("compose up")
    path = os.path.join(os.path.dirname(n.data_root), "compose.yaml")
    with open(path, "w") as f:
        f.write(textwrap.dedent(COMPOSE.format(image=image, port=port)))
    up = ("compose", "-f", path, "up", "-d")
    down = ("compose", "-f", path, "down", "-t", "0", "-v")
    r = c.timed(n, *up)
    assert r.returncode == 0, r.stderr
    links = set()

    def converged(first: bool = False):
        ps = n("ps", "-a", "--format", "{{.Names}} {{.State}}", check=True).stdout
        assert sorted(ps.splitlines()) == ["crashp-db-1 running", "crashp-web-1 running"], ps
        if first or not c.kills % 5:
            nets = json.loads(n("network", "inspect", "crashp_default", check=True).stdout)
            links.add(nets[0].get("Options", {}).get("com.docker.network.bridge.name") or "")

    converged(first=True)
    d = n(*down)
    assert d.returncode == 0, d.stderr
    for i in range(KILLS):
        c.kill_during(n, *up)
        ps = n("ps", "-a", "--format", "{{.State}}")
        assert ps.returncode == 0 and not ps.stderr, ps.stderr
        left = "+".join(sorted(ps.stdout.split())) or "nothing"
        c.left[left] = c.left.get(left, 0) + 1
        if i % 2:
            c.check(n)
        r = c.timed(n, *up)
        assert r.returncode == 0, (c.op, i, r.stderr)
        converged()
        if not i % 2:
            c.check(n)
        d = n(*down)
        assert d.returncode == 0, (c.op, i, d.stderr)
    assert n("ps", "-a", "-q", check=True).stdout == ""
    assert "crashp" not in n("network", "ls", "--format", "{{.Name}}", check=True).stdout
    assert "crashp" not in n("volume", "ls", "--format", "{{.Name}}", check=True).stdout
    hostleaks.assert_nothing_left(n, exclusive=False)
    collect_leftovers(n)
    # the project's bridges went with its networks
    for link in links:
        assert link.startswith("br-"), links
        assert subprocess.run(["ip", "link", "show", link], capture_output=True).returncode != 0, link
    r = n("run", "--rm", "-p", f"{port}:80", image, "true")
    assert r.returncode == 0, r.stderr


def test_kill_9_at_random_points(crash_image, images, nerdpy, tmp_path):
    ref, archive = crash_image
    nerdpy("pull", "-q", images.busybox, check=True)
    comp = runner(tmp_path, "compose")
    comp("pull", "-q", images.busybox, check=True)
    ports = [world.free_port() for _ in range(3)]
    stats: dict[str, Crasher] = {}
    errors: list[BaseException] = []

    def guard(fn, *args):
        def run():
            try:
                fn(*args)
            except BaseException as e:  # noqa: BLE001 (re-raised in the test's thread)
                errors.append(e)
        return threading.Thread(target=run)

    t0 = time.monotonic()
    threads = [
        guard(lambda: (crash_pull(tmp_path, ref, stats), crash_load(tmp_path, archive, stats))),
        guard(crash_run_and_rm, nerdpy, images.busybox, ports, stats),
        guard(crash_compose, comp, images.busybox, world.free_port(), stats),
    ]
    try:
        _harness(threads, t0, stats, errors, nerdpy, comp)
    finally:
        # a failed run leaves no running containers, rules or bridges to a retry or the session
        remove_everything(comp, stop=True)


def _harness(threads, t0, stats, errors, nerdpy, comp) -> None:
    for t in threads:
        t.start()
    for t in threads:
        t.join(280)
    took = time.monotonic() - t0
    print(f"\ncrash harness, seed {SEED}, {took:.0f}s:")
    for c in stats.values():
        print("  " + c.line())
    if errors:
        raise errors[0]
    assert not any(t.is_alive() for t in threads), "the harness did not finish in time"
    # now that no other store uses the session's bridge: nothing of the two that had containers
    hostleaks.assert_nothing_left(nerdpy)
    hostleaks.assert_nothing_left(comp)
    for op in ("pull", "load", "run -d", "rm -f", "compose up"):
        assert stats[op].kills >= KILLS, stats[op].line()
        # most kills must land while the command runs, or the harness proves little
        assert stats[op].live >= KILLS * 0.5, stats[op].line()


# -- a monitor killed with kill -9 ----------------------------------------------------------------------
def _monitor_pid(nerdpy, name: str) -> int:
    cid = nerdpy("inspect", "-f", "{{.Id}}", name, check=True).stdout.strip()
    with open(os.path.join(nerdpy.run_root, "default", cid, "monitor.pid")) as f:
        return int(f.read().split()[0])


def _status(nerdpy, name: str) -> str:
    r = nerdpy("inspect", "-f", "{{.State.Status}}", name)
    return r.stdout.strip() if r.returncode == 0 else "gone"


def _wait(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def test_monitor_killed_under_a_rm_container(nerdpy, images):
    bb = images.busybox
    nerdpy("pull", "-q", bb, check=True)
    # killed while its container runs: still running, truthfully; rm -f removes it all
    nerdpy("run", "-d", "--rm", "--name", "rm1", bb, "sleep", "600", check=True)
    os.kill(_monitor_pid(nerdpy, "rm1"), signal.SIGKILL)
    time.sleep(0.3)
    assert _status(nerdpy, "rm1") == "running"
    assert nerdpy("ps", "--format", "{{.Names}} {{.State}}").stdout == "rm1 running\n"
    nerdpy("rm", "-f", "rm1", check=True)
    assert nerdpy("ps", "-a", "-q").stdout == ""
    hostleaks.assert_nothing_left(nerdpy)
    # killed, then its container exits: nobody is left to honour --rm; it is shown exited (not
    # running, not gone while its files are there), and rm removes it
    nerdpy("run", "-d", "--rm", "--name", "rm2", bb, "sleep", "600", check=True)
    pid = int(nerdpy("inspect", "-f", "{{.State.Pid}}", "rm2", check=True).stdout)
    os.kill(_monitor_pid(nerdpy, "rm2"), signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)
    assert _wait(lambda: _status(nerdpy, "rm2") in ("exited", "gone"))
    ps = nerdpy("ps", "-a", "--format", "{{.Names}} {{.State}}")
    assert ps.returncode == 0 and not ps.stderr
    if _status(nerdpy, "rm2") == "exited":
        assert ps.stdout == "rm2 exited\n"
        assert nerdpy("ps", "-q").stdout == ""
        r = nerdpy("rm", "rm2")
        assert r.returncode == 0, r.stderr
    else:
        assert ps.stdout == ""
    assert nerdpy("ps", "-a", "-q").stdout == ""
    hostleaks.assert_nothing_left(nerdpy)


HTTPD = "while true; do printf 'HTTP/1.0 200 OK\\r\\n\\r\\nhello\\n' | nc -l -p 80; done"


def test_monitor_killed_with_a_published_port(nerdpy, images):
    bb = images.busybox
    nerdpy("pull", "-q", bb, check=True)
    port = world.free_port()
    nerdpy("run", "-d", "--name", "web", "-p", f"{port}:80", bb, "sh", "-c", HTTPD, check=True)
    assert "hello" in world.http_get(f"http://127.0.0.1:{port}/")
    os.kill(_monitor_pid(nerdpy, "web"), signal.SIGKILL)
    time.sleep(0.3)
    # the container still serves: that is the truth, and ps says so, port included
    assert _status(nerdpy, "web") == "running"
    assert nerdpy("ps", "--format", "{{.Names}} {{.Ports}}").stdout == f"web 0.0.0.0:{port}->80/tcp\n"
    assert "hello" in world.http_get(f"http://127.0.0.1:{port}/")
    # the port is still taken for another container ...
    r = nerdpy("run", "--rm", "-p", f"{port}:80", bb, "true")
    assert r.returncode == 125 and "already allocated" in r.stderr, r.stderr
    # ... until rm -f, which frees it: its rules go, and a new container gets it and serves on it
    nerdpy("rm", "-f", "web", check=True)
    hostleaks.assert_nothing_left(nerdpy)
    nerdpy("run", "-d", "--name", "web2", "-p", f"{port}:80", bb, "sh", "-c", HTTPD, check=True)
    assert "hello" in world.http_get(f"http://127.0.0.1:{port}/")
    nerdpy("rm", "-f", "web2", check=True)
    assert nerdpy("ps", "-a", "-q").stdout == ""
    hostleaks.assert_nothing_left(nerdpy)
    db = sqlite3.connect(f"file:{nerdpy.data_root}/meta.db?mode=ro", uri=True)
    assert db.execute("SELECT COUNT(*) FROM net_sandboxes").fetchone()[0] == 0
    db.close()


# -- what a create killed midway leaves ----------------------------------------------------------------
def test_gc_collects_the_layer_of_a_create_killed_midway(nerdpy, images):
    """create prepares the writable layer, then records the container: killed in between, it
    leaves a layer no container owns. `system check` warns of it, and garbage collection (rmi,
    image prune, system prune) removes it, never the layer of a real container."""
    bb = images.busybox
    nerdpy("pull", "-q", bb, check=True)
    nerdpy("run", "-d", "--name", "keep", bb, "sleep", "600", check=True)
    layers = sorted(
        r[0] for r in sqlite3.connect(f"file:{nerdpy.data_root}/meta.db?mode=ro", uri=True)
        .execute("SELECT key FROM active_snapshots").fetchall())
    assert len(layers) == 1
    # exactly what the killed create left: its layer, prepared through the engine, and no row
    orphan = "default/" + "f" * 64
    code = ("import sys; from nerdpy.engine.config import load_settings; from nerdpy.engine.store import open_store; "
            "from nerdpy.engine.images.image import resolve_image, image_chain_id; "
            "s = open_store(load_settings({'data_root': sys.argv[1], 'run_root': sys.argv[2]})); "
            "s.snapshots.prepare(sys.argv[3], image_chain_id(s, resolve_image(s, sys.argv[4])))")
    subprocess.run([sys.executable, "-c", code, nerdpy.data_root, nerdpy.run_root, orphan, bb],
                   env=nerdpy.env, check=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(hostleaks.__file__))))
    r = nerdpy("system", "check")
    assert r.returncode == 0 and "a writable layer whose container is gone" in r.stdout, r.stdout
    r = nerdpy("system", "prune", "-f")
    assert r.returncode == 0, r.stderr
    r = nerdpy("system", "check")
    assert r.returncode == 0 and "writable layer" not in r.stdout, r.stdout
    after = sorted(
        r[0] for r in sqlite3.connect(f"file:{nerdpy.data_root}/meta.db?mode=ro", uri=True)
        .execute("SELECT key FROM active_snapshots").fetchall())
    assert after == layers
    assert nerdpy("exec", "keep", "true").returncode == 0
    nerdpy("rm", "-f", "keep", check=True)
    hostleaks.assert_nothing_left(nerdpy)
