"""Every benchmark, one after the other, with their output collected into docs/performance.md.

    python3 -m bench [--quick] [--only run,pull,...]

Each part prints its own table (medians, and ratios against the baselines installed here:
bare runc, podman, podman-compose, skopeo, tar). Run by hand on an otherwise idle machine,
never by CI: these machines are noisy and a loaded one inflates every figure.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# name -> (module, arguments for a normal run, arguments for --quick)
PARTS = {
    "startup": (None, [], []),
    "run": ("bench.run", ["--runs", "15"], ["--runs", "5", "--containers", "50"]),
    "network": ("bench.network", ["--runs", "20"], ["--runs", "5"]),
    "pull": ("bench.pull", ["--runs", "3"], ["--runs", "1"]),
    "push": ("bench.push", ["--runs", "3"], ["--runs", "1"]),
    "compose": ("bench.compose", ["--runs", "5"], ["--runs", "1"]),
}


def startup() -> str:
    """`nerdpy --version` and `--help`: the interpreter itself, not a version manager's shim."""
    import statistics
    import time

    lines = []
    for args in (["--version"], ["--help"]):
        times = []
        for _ in range(15):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "nerdpy", *args], stdout=subprocess.DEVNULL, check=True)
            times.append(time.perf_counter() - t0)
        lines.append(f"nerdpy {' '.join(args):10s} {statistics.median(times) * 1000:7.1f} ms median (target 60 ms)")
    t = []
    for _ in range(15):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        t.append(time.perf_counter() - t0)
    lines.append(f"python3 -c pass    {statistics.median(t) * 1000:7.1f} ms median (this interpreter's floor)")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer runs (a smoke test of the benchmarks)")
    ap.add_argument("--only", help="comma-separated parts: " + ",".join(PARTS))
    ap.add_argument("--no-write", action="store_true", help="do not write docs/performance.md")
    args = ap.parse_args()
    parts = args.only.split(",") if args.only else list(PARTS)
    sections = []
    for name in parts:
        module, normal, quick = PARTS[name]
        print(f"== {name}", flush=True)
        if module is None:
            text = startup()
        else:
            r = subprocess.run([sys.executable, "-m", module, *(quick if args.quick else normal)], cwd=ROOT,
                               capture_output=True, text=True)
            text = r.stdout + (f"(exit {r.returncode})\n{r.stderr[-2000:]}" if r.returncode else "")
        print(text, flush=True)
        sections.append((name, text))
    if args.no_write:
        return
    head = (f"# Performance\n\nMeasured {datetime.date.today()} on {platform.node()} "
            f"({os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}) with "
            f"`python3 -m bench{' --quick' if args.quick else ''}`. Medians; ratios are nerdpy / baseline. "
            "Targets are in issue 7 and DESIGN.md.\n")
    body = "".join(f"\n## {name}\n\n```\n{text.rstrip()}\n```\n" for name, text in sections)
    with open(os.path.join(ROOT, "docs", "performance.md"), "w") as f:
        f.write(head + body)


if __name__ == "__main__":
    main()
