"""Many nerdpy processes at once against one store (issue 8, concurrency): parallel `run -d` and
`rm -f` (every command succeeds, distinct addresses, the host as before), two racing `run --name`,
parallel pulls of images that share layers (each blob stored once, each chain unpacked once),
and readers (`ps`, `images`, `inspect`) that never fail nor see a half-written object while
other processes run, remove and pull."""
from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

import hostleaks
import world


@pytest.fixture(scope="module", autouse=True)
def _no_leaks(tmp_path_factory):
    base = str(tmp_path_factory.getbasetemp())
    before = hostleaks.HostState.take(base)
    yield
    hostleaks.settle(lambda: _same(before, hostleaks.HostState.take(base)))


def _same(before, after):
    assert not before.diff(after), f"host state changed: {json.dumps(before.diff(after), indent=1)}"


@pytest.fixture
def bb(nerdpy, images):
    nerdpy("pull", "-q", images.busybox, check=True)
    return images.busybox


def spawn(nerdpy, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nerdpy", "--data-root", nerdpy.data_root, *args],
                            env=nerdpy.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def all_at_once(nerdpy, argvs: list[list[str]], timeout: float = 180) -> list[tuple[int, str, str]]:
    procs = [spawn(nerdpy, *a) for a in argvs]
    out = []
    for p in procs:
        o, e = p.communicate(timeout=timeout)
        out.append((p.returncode, o, e))
    return out


def session_state(nerdpy) -> dict:
    """The host as this test's store sees it: veths on our bridges, rules of our containers,
    mounts and netns files under our roots, the containers in the DB."""
    bridges, subnets = hostleaks.our_networks(os.path.dirname(nerdpy.data_root))
    return {
        "mounts": hostleaks.mounts_under(nerdpy.data_root) + hostleaks.mounts_under(nerdpy.run_root),
        "netns": sorted(p for p in hostleaks.netns_files(os.path.dirname(nerdpy.run_root))
                        if p.startswith(nerdpy.run_root)),
        "veth": hostleaks.veths(bridges),
        "rules": hostleaks.rules(hostleaks.our_container_ids(nerdpy.data_root), subnets),
        "monitors": [p for p in hostleaks.processes(nerdpy.run_root) if "monitor.py" in p],
        "runc": hostleaks.runc_states(os.path.dirname(nerdpy.run_root)),
        "containers": nerdpy("ps", "-a", "-q", "--no-trunc", check=True).stdout.split(),
    }


def one_line_error(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("nerdpy: "), err
    return lines[0]


# -- 20 parallel run -d, then 20 parallel rm -f ----------------------------------------------------
def test_twenty_parallel_runs_then_twenty_parallel_removals(nerdpy, bb):
    before = session_state(nerdpy)
    assert before["containers"] == [] and before["veth"] == [] and before["rules"] == []
    ports = [world.free_port() for _ in range(5)]
    argvs = []
    for i in range(20):
        a = ["run", "-d", "--name", f"par{i}"]
        if i % 4 == 0:
            a += ["-p", f"{ports[i // 4]}:80"]
        argvs.append(a + [bb, "sleep", "600"])
    t0 = time.monotonic()
    results = all_at_once(nerdpy, argvs)
    took_run = time.monotonic() - t0
    for argv, (rc, out, err) in zip(argvs, results):
        assert rc == 0, (argv, rc, err)
        assert re.fullmatch(r"[0-9a-f]{64}\n", out), (argv, out, err)
    ids = [out.strip() for _rc, out, _err in results]
    assert len(set(ids)) == 20

    docs = json.loads(nerdpy("inspect", *ids, check=True).stdout)
    assert [d["Id"] for d in docs] == ids
    assert {d["Name"].lstrip("/") for d in docs} == {f"par{i}" for i in range(20)}
    assert all(d["State"]["Status"] == "running" for d in docs), [d["State"]["Status"] for d in docs]
    ips = [d["NetworkSettings"]["IPAddress"] for d in docs]
    assert all(ips) and len(set(ips)) == 20, ips
    macs = [d["NetworkSettings"]["MacAddress"] for d in docs]
    assert len(set(macs)) == 20, macs
    assert sorted(nerdpy("ps", "-q", "--no-trunc", check=True).stdout.split()) == sorted(ids)
    # the published ports are each held by exactly the container that asked for them
    published = {d["Name"].lstrip("/"): d["NetworkSettings"]["Ports"] for d in docs}
    for i, port in enumerate(ports):
        assert published[f"par{i * 4}"]["80/tcp"][0]["HostPort"] == str(port)
    mid = session_state(nerdpy)
    assert len(mid["veth"]) == 20 and len(mid["netns"]) == 20
    assert len(mid["monitors"]) == 20 and len(mid["runc"]) == 20
    # each container's masquerade chain (3 rules) and two forward accepts; DNAT for the five ports
    assert len(mid["rules"]) >= 20 * 5 + 5 * 3, mid["rules"]
    rootfs = [m for m in mid["mounts"] if m.endswith("/rootfs")]
    assert len(rootfs) == 20

    t0 = time.monotonic()
    results = all_at_once(nerdpy, [["rm", "-f", name] for name in (f"par{i}" for i in range(20))])
    took_rm = time.monotonic() - t0
    for i, (rc, out, err) in enumerate(results):
        assert rc == 0, (i, err)
        assert out == f"par{i}\n", (i, out, err)
    after = session_state(nerdpy)
    assert after == before, json.dumps({k: (before[k], after[k]) for k in before if before[k] != after[k]}, indent=1)
    hostleaks.assert_nothing_left(nerdpy)
    # the ports are free again: all five at once in one container
    r = nerdpy("run", "--rm", *[x for p in ports for x in ("-p", f"{p}:{8000 + p % 1000}")], bb, "true")
    assert r.returncode == 0, r.stderr
    print(f"20 parallel run -d: {took_run:.1f}s, 20 parallel rm -f: {took_rm:.1f}s")


# -- two racing run --name ----------------------------------------------------------------------------
def test_two_racing_runs_with_one_name(nerdpy, bb):
    for round_ in range(3):
        results = all_at_once(nerdpy, [["run", "-d", "--name", "x", bb, "sleep", "600"]] * 2)
        codes = sorted(rc for rc, _o, _e in results)
        assert codes == [0, 125], (round_, results)
        winner = next(o.strip() for rc, o, _e in results if rc == 0)
        loser_err = next(e for rc, _o, e in results if rc != 0)
        line = one_line_error(loser_err)
        # docker's words, naming the winner
        assert f'the container name "/x" is already in use by container "{winner}"' in line, line
        # the loser left nothing: one container, one rootfs, one netns, one veth
        assert nerdpy("ps", "-a", "-q", "--no-trunc", check=True).stdout.split() == [winner]
        st = session_state(nerdpy)
        assert len([m for m in st["mounts"] if m.endswith("/rootfs")]) == 1, st
        assert len(st["netns"]) == 1 and len(st["veth"]) == 1, st
        assert nerdpy("inspect", "-f", "{{.Name}} {{.State.Status}}", "x").stdout.split() in (
            ["/x", "running"], ["x", "running"])
        nerdpy("rm", "-f", "x", check=True)
    hostleaks.assert_nothing_left(nerdpy)


# -- parallel pulls of images that share layers ------------------------------------------------------
def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _chains(diff_ids: list[str]) -> list[str]:
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else _sha(f"{out[-1]} {d}".encode()))
    return out


@pytest.fixture(scope="module")
def sharing(registry, tmp_path_factory):
    """Five images over one base: two pairs share a second layer, one of each pair adds its own
    third, and the last is the same chain as the fourth in zstd (other blobs, same snapshots)."""
    layout = str(tmp_path_factory.mktemp("sharing"))
    base = world._tar(world.busybox_entries([("base.bin", "file", os.urandom(2 << 20))]))
    a = world._tar([("a", "dir", 0o755)] + [(f"a/f{i}", "file", os.urandom(1024)) for i in range(200)])
    b = world._tar([("b.bin", "file", os.urandom(1 << 20))])
    u2 = world._tar([("u2.txt", "file", "two\n")])
    u4 = world._tar([("u4.txt", "file", "four\n")])
    specs = {
        "s0": ([base, a], "gzip"),
        "s1": ([base, a, u2], "gzip"),
        "s2": ([base, b], "gzip"),
        "s3": ([base, b, u4], "gzip"),
        "s4": ([base, b], "zstd"),
    }
    refs, blobs, chains = [], set(), set()
    for tag, (layers, comp) in specs.items():
        desc = world.write_image(layout, tag, layers, world.BUSYBOX_CONFIG, compress=comp)
        ref = f"{registry.host}/test/sharing-{tag}:latest"
        world.push_layout(layout, tag, ref)
        refs.append(ref)
        manifest = json.load(open(os.path.join(layout, "blobs", "sha256", desc["digest"][7:])))
        blobs |= {desc["digest"][7:], manifest["config"]["digest"][7:]}
        blobs |= {layer["digest"][7:] for layer in manifest["layers"]}
        chains |= set(_chains([_sha(raw) for raw in layers]))
    return refs, blobs, chains


def test_parallel_pulls_of_images_sharing_layers(sharing, nerdpy):
    refs, want_blobs, want_chains = sharing
    assert len(want_chains) == 5
    results = all_at_once(nerdpy, [["pull", "-q", ref] for ref in refs])
    for ref, (rc, out, err) in zip(refs, results):
        assert rc == 0, (ref, err)
        assert out == ref + "\n", (ref, out)
    bdir = os.path.join(nerdpy.data_root, "content", "blobs", "sha256")
    # every blob once, nothing else (no temp file left behind by a loser of a race)
    assert sorted(os.listdir(bdir)) == sorted(want_blobs)
    for name in os.listdir(bdir):
        with open(os.path.join(bdir, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == name
    db = sqlite3.connect(f"file:{nerdpy.data_root}/meta.db?mode=ro", uri=True)
    rows = db.execute("SELECT id, chain_id FROM snapshots").fetchall()
    used = db.execute("SELECT value FROM counters WHERE name = 'snapshot'").fetchone()[0]
    db.close()
    # each chain unpacked exactly once: one row each, no number handed out twice or thrown away
    assert sorted(c for _i, c in rows) == sorted(want_chains)
    assert used == len(want_chains)
    sdir = os.path.join(nerdpy.data_root, "snapshots")
    assert sorted(n for n in os.listdir(sdir) if n != ".locks") == sorted(str(i) for i, _c in rows)
    out = nerdpy("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout
    assert sorted(out.split()) == sorted(refs)
    r = nerdpy("system", "check")
    assert r.returncode == 0 and "no problems found" in r.stdout, r.stdout
    # and again, all five at once on a store that has them all: nothing changes
    results = all_at_once(nerdpy, [["pull", "-q", ref] for ref in refs])
    assert all(rc == 0 for rc, _o, _e in results), results
    assert sorted(os.listdir(bdir)) == sorted(want_blobs)


# -- readers while others write ----------------------------------------------------------------------
def test_readers_never_fail_nor_see_half_written_objects(nerdpy, bb, sharing):
    refs = sharing[0]
    nerdpy("run", "-d", "--name", "stable-up", bb, "sleep", "600", check=True)
    nerdpy("run", "--name", "stable-down", bb, "true", check=True)
    stop = threading.Event()
    failures: list[str] = []
    counts: dict[str, int] = {}

    def record(kind: str, ok: bool, detail: str) -> None:
        counts[kind] = counts.get(kind, 0) + 1
        if not ok:
            failures.append(f"{kind}: {detail[:600]}")

    def call(*args):
        r = subprocess.run([sys.executable, "-m", "nerdpy", "--data-root", nerdpy.data_root, *args],
                           env=nerdpy.env, capture_output=True, text=True, timeout=120)
        return r

    def writer_runs(tag: str):
        i = 0
        while not stop.is_set():
            name = f"w{tag}-{i}"
            r = call("run", "-d", "--name", name, bb, "sleep", "600")
            record("writer run", r.returncode == 0, r.stderr)
            r = call("rm", "-f", name)
            record("writer rm", r.returncode == 0, r.stderr)
            r = call("run", "--rm", bb, "true")
            record("writer run --rm", r.returncode == 0, r.stderr)
            i += 1

    def writer_pulls():
        i = 0
        while not stop.is_set():
            ref = refs[i % len(refs)]
            r = call("pull", "-q", ref)
            record("writer pull", r.returncode == 0, r.stderr)
            r = call("rmi", ref)
            record("writer rmi", r.returncode == 0, r.stderr)
            i += 1

    def reader():
        while not stop.is_set():
            r = call("ps", "-a", "--format", "json")
            ok = r.returncode == 0 and not r.stderr
            try:
                rows = [json.loads(line) for line in r.stdout.splitlines()]
                names = {row["Names"] for row in rows}
                ok = ok and {"stable-up", "stable-down"} <= names and all(row["ID"] and row["State"] for row in rows)
            except (ValueError, KeyError):
                ok = False
            record("ps --format json", ok, r.stdout + r.stderr)
            r = call("ps", "-a")
            record("ps", r.returncode == 0 and not r.stderr and r.stdout.startswith("CONTAINER ID"), r.stdout + r.stderr)
            r = call("images", "--format", "json")
            ok = r.returncode == 0 and not r.stderr
            try:
                rows = [json.loads(line) for line in r.stdout.splitlines()]
                ok = ok and any(f"{row['Repository']}:{row['Tag']}" == bb for row in rows)
            except (ValueError, KeyError):
                ok = False
            record("images --format json", ok, r.stdout + r.stderr)
            r = call("inspect", "stable-up", "stable-down", bb)
            try:
                docs = json.loads(r.stdout)
                ok = (r.returncode == 0 and not r.stderr and len(docs) == 3
                      and docs[0]["State"]["Status"] == "running" and docs[1]["State"]["Status"] == "exited"
                      and docs[2]["RepoTags"] == [bb])
            except (ValueError, KeyError, TypeError):
                ok = False
            record("inspect", ok, r.stdout[-300:] + r.stderr)

    threads = [threading.Thread(target=writer_runs, args=(t,)) for t in "ab"]
    threads += [threading.Thread(target=writer_pulls)] + [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(20)
    stop.set()
    for t in threads:
        t.join(180)
    assert not failures, "\n".join(failures[:10])
    assert counts.get("inspect", 0) >= 5 and counts.get("writer run", 0) >= 4 and counts.get("writer pull", 0) >= 3, counts
    print("calls:", counts)
    nerdpy("rm", "-f", "stable-up", "stable-down", check=True)
    assert nerdpy("ps", "-a", "-q").stdout == ""
    r = nerdpy("system", "check")
    assert r.returncode == 0, r.stdout
    hostleaks.assert_nothing_left(nerdpy)
