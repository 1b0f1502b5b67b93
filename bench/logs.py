"""Log throughput: a container writing 20 MB to stdout, through nerdpy's monitor (docker's
json-file log) against podman (conmon, k8s-file log) and bare `runc run` writing straight to a
file (no monitor, no log format: the floor), interleaved run by run:

- `run --rm --network none busybox sh -c 'yes | head -c 20000000'`: 2-byte lines, 10 million
  log records
- the same with 1000-byte lines (20,000 records)

Each runs attached with its output sent to /dev/null, as a user would time it.

    python3 -m bench.logs [--runs 3] [--mb 20] [--also LABEL=EXE ...]

`--also before="env PYTHONPATH=/tmp/old python3 -m nerdpy"` measures another nerdpy beside this
one in the same run (split on spaces, as NERDPY_BENCH_EXE). Prints the details, and ROW lines
for `python -m bench`'s table.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, os.path.dirname(HERE))

from bench._util import (cleanup_nerdpy, emit_row, fmt, median, nerdpy_env, nerdpy_exe, nerdpy_label,  # noqa: E402
                         remove_work_dir, timed)

PODMAN_YES = 1.9  # issue 17's podman figure for 20 MB of `yes`, for when podman is not installed


def workloads(total: int) -> dict[str, str]:
    return {"yes": f"yes | head -c {total}",
            "1000": f"yes {'x' * 999} | head -c {total}"}


def runc_bundle(work: str, rootfs_src: str, name: str, script: str) -> str:
    bundle = os.path.join(work, f"bundle-{name}")
    os.makedirs(bundle)
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["sh", "-c", script]
    spec["root"] = {"path": rootfs_src, "readonly": True}
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    return bundle


def timed_to_file(argv: list[str], path: str) -> float:
    """Wall time of one command with its stdout written to a file (removed afterwards)."""
    import time

    with open(path, "wb") as out:
        t0 = time.perf_counter()
        r = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE)
        dt = time.perf_counter() - t0
    size = os.path.getsize(path)
    os.unlink(path)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {r.stderr.decode(errors='replace')[-800:]}")
    return dt if size else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mb", type=int, default=20)
    ap.add_argument("--also", action="append", default=[], help="LABEL=EXE: another nerdpy to measure")
    args = ap.parse_args()

    import world

    total = args.mb * 1000 * 1000
    work = tempfile.mkdtemp(prefix="nerdpy-bench-logs-")
    reg = world.Registry(os.path.join(work, "registry"))
    env = nerdpy_env(work)
    data_root = os.path.join(work, "data")
    nerdpys = {"nerdpy": nerdpy_exe() + ["--data-root", data_root]}
    for spec in args.also:
        label, _, exe = spec.partition("=")
        nerdpys[label] = exe.split() + ["--data-root", os.path.join(work, f"data-{label}")]
    podman = shutil.which("podman")
    runc_root = os.path.join(work, "runc")
    image = None
    try:
        image = world.Images(reg).busybox
        print(f"nerdpy: {nerdpy_label()}")
        for label, np in nerdpys.items():
            subprocess.run(np + ["pull", "-q", image], check=True, env=env, stdout=subprocess.DEVNULL, cwd=work)
        snap = os.path.join(data_root, "snapshots")
        lower = next(os.path.join(snap, d, "fs") for d in sorted(os.listdir(snap)) if d.isdigit())
        if podman:
            r = subprocess.run([podman, "pull", "-q", "--tls-verify=false", image], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"podman pull failed, podman left out: {r.stderr.strip()[-300:]}")
                podman = None
        t: dict[str, list[float]] = {}
        for i in range(args.runs):
            for name, script in workloads(total).items():
                for label, np in nerdpys.items():
                    # from the scratch dir: `python -m nerdpy` would import the checkout's from its cwd
                    t.setdefault(f"{name} {label}", []).append(
                        timed(np + ["run", "--rm", "--network", "none", image, "sh", "-c", script], env, cwd=work))
                if podman:
                    t.setdefault(f"{name} podman", []).append(
                        timed([podman, "run", "--rm", "--network", "none", "--log-driver", "k8s-file", image,
                               "sh", "-c", script]))
                bundle = runc_bundle(work, lower, f"{name}{i}", script)
                t.setdefault(f"{name} runc", []).append(timed_to_file(
                    ["runc", "--root", runc_root, "run", "--bundle", bundle, f"bench-logs-{name}{i}"],
                    os.path.join(work, "runc-out")))
        m = {k: median(v) for k, v in t.items()}
        cols = [*nerdpys, "podman", "runc"]
        print(f"\n{'work (' + str(args.mb) + ' MB to stdout)':40}" + "".join(f"{c:>12}" for c in cols)
              + f"   runs: {args.runs}")
        for name, label in (("yes", "2-byte lines (yes)"), ("1000", "1000-byte lines")):
            print(f"{label:40}" + "".join(f"{fmt(m.get(f'{name} {c}')):>12}" for c in cols))
        print("runc: `runc run` with stdout to a file (no monitor, no log format): the floor")
        for name, label in (("yes", f"{args.mb} MB of `yes` (2-byte lines) to stdout"),
                            ("1000", f"{args.mb} MB of 1000-byte lines to stdout")):
            n, p = m.get(f"{name} nerdpy"), m.get(f"{name} podman")
            base = {"podman": p, "runc": m.get(f"{name} runc")}
            base.update({k: m.get(f"{name} {k}") for k in nerdpys if k != "nerdpy"})
            if p is not None:
                met, note = n <= 2 * p, ""
            elif name == "yes":
                met, note = n <= 2 * PODMAN_YES, f"podman not installed: against issue 17's {fmt(PODMAN_YES)}"
            else:
                met, note = None, "podman not installed"
            emit_row(f"`run` writing {label}", n, base, "<= 2x podman", met,
                     note or "attached, output to /dev/null; podman with --log-driver k8s-file")
    finally:
        for np in nerdpys.values():
            cleanup_nerdpy(np, env)
        if podman and image:
            subprocess.run([podman, "rmi", "-f", image], capture_output=True)
        subprocess.run(["sh", "-c", f"for c in $(runc --root {runc_root} list -q 2>/dev/null); do "
                        f"runc --root {runc_root} delete -f $c; done"], capture_output=True)
        reg.stop()
        remove_work_dir(work)


if __name__ == "__main__":
    main()
