"""Container lifecycle benchmarks, nerdpy against bare `runc run` and podman (when installed),
interleaved run by run:

- `run --rm --network none busybox true` (nerdpy, `runc run` on the same rootfs, podman)
- `run --rm busybox true` on each one's default bridge network (end to end: CNI add and del)
- `run -d busybox sleep 60` + `rm -f` of that container, default network
- `exec C true` in a running container
- the memory of one container's monitor (podman: conmon)
- `ps -a` with many containers, `images` with many images (tags of one image)

    python3 -m bench.run [--runs 15] [--containers 200] [--images 100]

Starts a throwaway registry with the test busybox image (tests/world.py), pulls it into a
scratch data root (and into podman) first, so nothing timed includes a pull. nerdpy's default
network uses a bridge and /24 of its own, removed afterwards with everything else the bench made.
Prints the details, and ROW lines for `python -m bench`'s table.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, os.path.dirname(HERE))

from bench._util import (bench_bridge, cleanup_nerdpy, emit_row, fmt, leftovers, median, nerdpy_env,  # noqa: E402
                         nerdpy_exe, nerdpy_label, remove_work_dir, timed)

PODMAN_RUN_NONE = 0.146  # DESIGN.md's podman figures, for when podman is not installed
PODMAN_RUN_BRIDGE = 0.327


def runc_bundle(work: str, rootfs_src: str) -> str:
    bundle = os.path.join(work, "bundle")
    os.makedirs(bundle)
    shutil.copytree(rootfs_src, os.path.join(bundle, "rootfs"), symlinks=True)
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    spec = json.load(open(os.path.join(bundle, "config.json")))
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["true"]
    json.dump(spec, open(os.path.join(bundle, "config.json"), "w"))
    return bundle


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


def out(argv: list[str], env: dict | None = None) -> str:
    r = subprocess.run(argv, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {r.stderr[-800:]}")
    return r.stdout.strip()


def ratio_met(n: float | None, base: float | None, limit: float, fallback: float | None = None) -> tuple[bool | None, str]:
    """Whether n <= limit x base; against DESIGN.md's figure when the baseline is not installed."""
    if n is None:
        return None, ""
    if base is not None:
        return n <= limit * base, ""
    if fallback is not None:
        return n <= limit * fallback, f"podman not installed: against DESIGN.md's {fmt(fallback)}"
    return None, "podman not installed"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--containers", type=int, default=200)
    ap.add_argument("--images", type=int, default=100)
    args = ap.parse_args()

    import world

    work = tempfile.mkdtemp(prefix="nerdpy-bench-run-")
    reg = world.Registry(os.path.join(work, "registry"))
    bridge = bench_bridge()
    env = nerdpy_env(work, bridge)
    data_root = os.path.join(work, "data")
    np = nerdpy_exe() + ["--data-root", data_root]
    podman = shutil.which("podman")
    ctr = shutil.which("ctr") and shutil.which("containerd")
    pod_containers: list[str] = []
    pod_tags: list[str] = []
    image = None
    try:
        images = world.Images(reg)
        image = images.busybox
        print(f"nerdpy: {nerdpy_label()}; default bridge {bridge[0]} {bridge[1]}")
        subprocess.run(np + ["pull", "-q", image], check=True, env=env, stdout=subprocess.DEVNULL)
        snap = os.path.join(data_root, "snapshots")
        lower = next(os.path.join(snap, d, "fs") for d in sorted(os.listdir(snap)) if d.isdigit())
        bundle = runc_bundle(work, lower)
        runc_root = os.path.join(work, "runc")
        if podman:  # pulled beforehand: only the run is timed (plain HTTP registry on loopback)
            r = subprocess.run([podman, "pull", "-q", "--tls-verify=false", image], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"podman pull failed, podman left out: {r.stderr.strip()[-300:]}")
                podman = None
        pm = [podman] if podman else []

        # warm up each way once (the bridges get created, the page cache filled)
        timed(np + ["run", "--rm", image, "true"], env)
        if podman:
            timed(pm + ["run", "--rm", image, "true"])

        t: dict[str, list[float]] = {}

        def add(key: str, value: float) -> None:
            t.setdefault(key, []).append(value)

        for i in range(args.runs):
            add("none nerdpy", timed(np + ["run", "--rm", "--network", "none", image, "true"], env))
            add("none runc", timed(["runc", "--root", runc_root, "run", "--bundle", bundle, f"bench{i}"]))
            if podman:
                add("none podman", timed(pm + ["run", "--rm", "--network", "none", image, "true"]))
            add("bridge nerdpy", timed(np + ["run", "--rm", image, "true"], env))
            if podman:
                add("bridge podman", timed(pm + ["run", "--rm", image, "true"]))
            t0 = time.perf_counter()
            cid = out(np + ["run", "-d", image, "sleep", "60"], env)
            t1 = time.perf_counter()
            timed(np + ["rm", "-f", cid], env)
            t2 = time.perf_counter()
            add("rund nerdpy", t2 - t0)
            add("rund-run nerdpy", t1 - t0)
            add("rund-rm nerdpy", t2 - t1)
            if podman:
                t0 = time.perf_counter()
                cid = out(pm + ["run", "-d", image, "sleep", "60"])
                pod_containers.append(cid)
                t1 = time.perf_counter()
                timed(pm + ["rm", "-f", "-t", "0", cid])
                t2 = time.perf_counter()
                pod_containers.remove(cid)
                add("rund podman", t2 - t0)
                add("rund-run podman", t1 - t0)
                add("rund-rm podman", t2 - t1)

        # exec, and the memory of a running container's monitor
        ncid = out(np + ["run", "-d", image, "sleep", "600"], env)
        pcid = None
        if podman:
            pcid = out(pm + ["run", "-d", image, "sleep", "600"])
            pod_containers.append(pcid)
        for _ in range(args.runs):
            add("exec nerdpy", timed(np + ["exec", ncid, "true"], env))
            if podman:
                add("exec podman", timed(pm + ["exec", pcid, "true"]))
        time.sleep(0.5)
        with open(os.path.join(work, "run", "default", ncid, "monitor.pid")) as f:
            mon_mb = rss_kb(int(f.read().split()[0])) / 1024
        conmon_mb = None
        if podman:
            conmon_pid = out(pm + ["inspect", "--format", "{{.State.ConmonPid}}", pcid])
            conmon_mb = rss_kb(int(conmon_pid)) / 1024
        subprocess.run(np + ["rm", "-f", ncid], env=env, check=True, stdout=subprocess.DEVNULL)
        if pcid:
            subprocess.run(pm + ["rm", "-f", "-t", "0", pcid], check=True, stdout=subprocess.DEVNULL)
            pod_containers.remove(pcid)

        # ps -a with many (created) containers
        for _ in range(args.containers):
            out(np + ["create", image, "true"], env)
            if podman:
                pod_containers.append(out(pm + ["create", image, "true"]))
        for _ in range(7):
            add("ps nerdpy", timed(np + ["ps", "-a"], env))
            if podman:
                add("ps podman", timed(pm + ["ps", "-a"]))
        out(np + ["container", "prune", "-f"], env)
        if podman and pod_containers:
            out(pm + ["rm", "-f", "-t", "0", *pod_containers])
            pod_containers.clear()

        # images with many images: tags of the one image
        repo = image.rsplit(":", 1)[0]
        for n in range(args.images - 1):
            out(np + ["tag", image, f"{repo}:t{n}"], env)
        if podman:
            pod_tags = [f"{repo}:t{n}" for n in range(args.images - 1)]
            out(pm + ["tag", image, *pod_tags])
        for _ in range(7):
            add("images nerdpy", timed(np + ["images"], env))
            if podman:
                add("images podman", timed(pm + ["images"]))
        n_rows = len(out(np + ["images"], env).splitlines()) - 1

        m = {k: median(v) for k, v in t.items()}
        g = m.get

        print(f"\n{'work':48} {'nerdpy':>9} {'runc':>9} {'podman':>9}   runs: {args.runs}")
        for label, key in (("run --rm --network none busybox true", "none"),
                           ("run --rm busybox true (default bridge)", "bridge"),
                           ("run -d busybox sleep 60 + rm -f", "rund"),
                           ("  of which run -d", "rund-run"), ("  of which rm -f", "rund-rm"),
                           ("exec C true", "exec"),
                           (f"ps -a, {args.containers} containers", "ps"),
                           (f"images, {n_rows} rows", "images")):
            print(f"{label:48} {fmt(g(key + ' nerdpy')):>9} {fmt(g(key + ' runc')):>9} {fmt(g(key + ' podman')):>9}")
        print(f"monitor RSS per running container: nerdpy monitor {mon_mb:.1f} MB"
              + (f", podman's conmon {conmon_mb:.1f} MB" if conmon_mb is not None else "")
              + " (containerd-shim 13 MB per DESIGN.md)")
        if not podman:
            print("podman not installed: ratios against DESIGN.md's figures where it has them")
        print("podman: `rm -f -t 0` (its rm -f otherwise waits 10 s for sleep to take SIGTERM; "
              "docker and nerdpy kill)")

        n = g("none nerdpy")
        met, note = ratio_met(n, g("none podman"), 0.5, PODMAN_RUN_NONE)
        base = {"runc": g("none runc"), "podman": g("none podman") if podman else None}
        if not ctr:
            base["ctr"] = None
        emit_row("`run --rm --network none busybox true`", n, base, "<= 75 ms and <= 0.5x podman (146 ms)",
                 None if met is None else (met and n <= 0.075), note)
        met, note = ratio_met(g("bridge nerdpy"), g("bridge podman"), 0.6, PODMAN_RUN_BRIDGE)
        emit_row("`run --rm busybox true`, default bridge", g("bridge nerdpy"),
                 {"podman": g("bridge podman") if podman else None}, "<= 0.6x podman (327 ms)", met,
                 note or "each on its own default network")
        met, note = ratio_met(g("rund nerdpy"), g("rund podman"), 0.5)
        emit_row("`run -d busybox sleep 60` + `rm -f`", g("rund nerdpy"), {"podman": g("rund podman") if podman else None},
                 "<= 0.5x podman", met,
                 note or f"run -d {fmt(g('rund-run nerdpy'))} + rm -f {fmt(g('rund-rm nerdpy'))}; "
                         f"podman {fmt(g('rund-run podman'))} + {fmt(g('rund-rm podman'))} (rm -f -t 0)")
        met, note = ratio_met(g("exec nerdpy"), g("exec podman"), 0.5)
        emit_row("`exec C true`", g("exec nerdpy"), {"podman": g("exec podman") if podman else None},
                 "<= 0.5x podman", met, note)
        emit_row(f"`ps -a`, {args.containers} containers", g("ps nerdpy"), {"podman": g("ps podman") if podman else None},
                 "<= 150 ms", g("ps nerdpy") <= 0.150)
        emit_row(f"`images`, {n_rows} images", g("images nerdpy"), {"podman": g("images podman") if podman else None},
                 "<= 150 ms", g("images nerdpy") <= 0.150, "tags of one image")
        emit_row("monitor RSS per running container", mon_mb, {"podman": conmon_mb}, "<= 12 MB (containerd-shim 13 MB)",
                 mon_mb <= 12, "podman: conmon", unit="MB")
    finally:
        if podman:
            if pod_containers:
                subprocess.run([podman, "rm", "-f", "-t", "0", *pod_containers], capture_output=True)
            if image:
                subprocess.run([podman, "rmi", "-f", image, *pod_tags], capture_output=True)
        cleanup_nerdpy(np, env, bridge)
        reg.stop()
        remove_work_dir(work)
        left = leftovers(work, bridge)
        if left:
            print("LEFT BEHIND after cleanup:\n  " + "\n  ".join(left))


if __name__ == "__main__":
    main()
