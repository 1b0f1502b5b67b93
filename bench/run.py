"""Container start benchmark: `nerdpy run --rm --network none busybox true` against bare
`runc run` on the same rootfs and `podman run` (when installed), interleaved; plus the monitor's
memory per running container and `ps -a` with many containers.

    python3 -m bench.run [--runs 15] [--containers 200]

Starts a throwaway registry with the test busybox image (tests/world.py), pulls it into a
scratch data root, then times each way of running `true`. Prints medians and ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))


def timed(argv: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {r.stderr.decode()[-500:]}")
    return dt


def nerdpy_argv(data_root: str) -> list[str]:
    # the interpreter directly: a version manager's shim (pyenv) would add 200 ms of its own
    return [sys.executable, "-m", "nerdpy", "--data-root", data_root]


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--containers", type=int, default=200)
    args = ap.parse_args()

    import world

    work = tempfile.mkdtemp(prefix="nerdpy-bench-run-")
    reg = world.Registry(os.path.join(work, "registry"))
    try:
        images = world.Images(reg)
        data_root = os.path.join(work, "data")
        env = dict(os.environ, NERDPY_RUN_ROOT=os.path.join(work, "run"), NERDPY_CONFIG="/nonexistent")
        np = nerdpy_argv(data_root)
        subprocess.run(np + ["pull", "-q", images.busybox], check=True, env=env, stdout=subprocess.DEVNULL)
        snap = os.path.join(data_root, "snapshots")
        lower = next(os.path.join(snap, d, "fs") for d in sorted(os.listdir(snap)) if d.isdigit())
        bundle = runc_bundle(work, lower)
        podman = shutil.which("podman")
        if podman:  # pulled beforehand: only the run is timed (plain HTTP registry on loopback)
            if subprocess.run([podman, "pull", "-q", "--tls-verify=false", images.busybox],
                              capture_output=True).returncode != 0:
                podman = None

        rows: dict[str, list[float]] = {"nerdpy": [], "runc": []}
        if podman:
            rows["podman"] = []
        for i in range(args.runs):
            rows["nerdpy"].append(timed(np + ["run", "--rm", "--network", "none", images.busybox, "true"], env))
            rows["runc"].append(timed(["runc", "--root", os.path.join(work, "runc"), "run", "--bundle", bundle,
                                       f"bench{i}"]))
            if podman:
                rows["podman"].append(timed([podman, "run", "--rm", "--network", "none", images.busybox, "true"]))
        med = {k: statistics.median(v) * 1000 for k, v in rows.items()}
        print(f"run --rm --network none busybox true ({args.runs} runs, medians)")
        for k, v in med.items():
            ratio = "" if k == "nerdpy" else f"   nerdpy/{k} = {med['nerdpy'] / v:.2f}x"
            print(f"  {k:8s} {v:8.1f} ms{ratio}")
        if not podman:
            print("  podman   not installed (DESIGN.md baseline: 146 ms)")

        # memory of one monitor
        cid = subprocess.run(np + ["run", "-d", images.busybox, "sleep", "300"], env=env, check=True,
                             capture_output=True, text=True).stdout.strip()
        with open(os.path.join(work, "run", "default", cid, "monitor.pid")) as f:
            mpid = int(f.read().split()[0])
        print(f"monitor RSS per running container: {rss_kb(mpid) / 1024:.1f} MB (target 12 MB; containerd-shim 13 MB)")
        subprocess.run(np + ["rm", "-f", cid], env=env, check=True, stdout=subprocess.DEVNULL)

        # ps -a with many (created) containers
        for _ in range(args.containers):
            subprocess.run(np + ["create", images.busybox, "true"], env=env, check=True, stdout=subprocess.DEVNULL)
        ps = [timed(np + ["ps", "-a"], env) for _ in range(7)]
        print(f"ps -a with {args.containers} containers: {statistics.median(ps) * 1000:.1f} ms median (target 150 ms)")
        subprocess.run(np + ["container", "prune", "-f"], env=env, stdout=subprocess.DEVNULL)
    finally:
        reg.stop()
        from bench._util import remove_work_dir

        remove_work_dir(work)


if __name__ == "__main__":
    main()
