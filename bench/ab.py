"""Before/after rows for a change on a hot path: two checkouts' own code, interleaved run by run.

    python3 -m bench.ab BEFORE_CHECKOUT AFTER_CHECKOUT [--runs 30] [--only exec,ps]

Each side runs `python -m nerdpy` from /tmp with `PYTHONPATH=<checkout>` (its own code, whatever
nerdpy is installed) and its .pyc files cached under a `PYTHONPYCACHEPREFIX` of its own (written
by a warm-up run, so neither side compiles; PYTHONDONTWRITEBYTECODE is dropped), on a data root
of its own made by its own code: the test busybox image (tests/world.py's registry), 50 created
containers and one running, 30 tags of the image. Timed: `--version`, `run --rm --network none
busybox true`, `exec C true`, `ps -a`, `images`. Each row: the medians (and minimum) of wall time and of CPU time (user +
sys of the command and the processes it waited for) of each side, and the median of the paired
differences (the two sides run back to back, in alternating order): the steadiest figure on a
loaded machine. Everything it made is removed at the end.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, os.path.dirname(HERE))

from bench._util import remove_work_dir  # noqa: E402

WORKS = ("--version", "run --rm --network none busybox true", "exec C true", "ps -a", "images")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--only", default="", help="comma-separated substrings of the works to time")
    a = ap.parse_args()
    import world

    work = tempfile.mkdtemp(prefix="nerdpy-ab-")
    reg = None
    sides = {"before": os.path.abspath(a.before), "after": os.path.abspath(a.after)}
    base_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    base_env.update(NERDPY_RUN_ROOT=os.path.join(work, "run"), NERDPY_CONFIG="/nonexistent")

    def env(side: str) -> dict:
        return dict(base_env, PYTHONPATH=sides[side], PYTHONPYCACHEPREFIX=os.path.join(work, "pyc-" + side))

    def np(side: str) -> list[str]:
        return [sys.executable, "-m", "nerdpy", "--data-root", os.path.join(work, "data-" + side)]

    def call(side: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(np(side) + list(args), cwd="/tmp", env=env(side), capture_output=True, text=True)

    cids: dict[str, str] = {}
    try:
        reg = world.Registry(os.path.join(work, "registry"))
        image = world.Images(reg).busybox
        for side in sides:
            r = call(side, "pull", "-q", image)
            if r.returncode != 0:
                raise SystemExit(f"{side}: pull failed: {r.stderr.strip()}")
            for _ in range(50):
                call(side, "create", image, "true")
            cids[side] = call(side, "run", "-d", "--network", "none", image, "sleep", "100000").stdout.strip()
            for n in range(29):
                call(side, "tag", image, f"{image.rsplit(':', 1)[0]}:t{n}")
        argvs = {
            "--version": lambda s: [sys.executable, "-m", "nerdpy", "--version"],
            "run --rm --network none busybox true": lambda s: np(s) + ["run", "--rm", "--network", "none", image, "true"],
            "exec C true": lambda s: np(s) + ["exec", cids[s], "true"],
            "ps -a": lambda s: np(s) + ["ps", "-a"],
            "images": lambda s: np(s) + ["images"],
        }
        works = [w for w in WORKS if not a.only or any(o in w for o in a.only.split(","))]
        for w in works:  # warm-up: the .pyc files
            for side in sides:
                subprocess.run(argvs[w](side), cwd="/tmp", env=env(side), capture_output=True)
        wall = {(w, s): [] for w in works for s in sides}
        cpu = {(w, s): [] for w in works for s in sides}
        for i in range(a.runs):
            for w in works:
                for side in (("before", "after") if i % 2 == 0 else ("after", "before")):
                    t0 = time.perf_counter()
                    p = subprocess.Popen(argvs[w](side), cwd="/tmp", env=env(side),
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    _, status, ru = os.wait4(p.pid, 0)
                    wall[(w, side)].append(time.perf_counter() - t0)
                    cpu[(w, side)].append(ru.ru_utime + ru.ru_stime)
                    p.returncode = 0
                    if status != 0:
                        raise SystemExit(f"{side}: {w} failed (status {status})")
        print(f"before: {sides['before']}\nafter:  {sides['after']}\n{a.runs} runs, interleaved; "
              f"load average {os.getloadavg()[0]:.2f}\n")
        print("| command | before wall | after wall | before CPU | after CPU | paired after-before (wall / CPU) |")
        print("| --- | --- | --- | --- | --- | --- |")
        ms = lambda xs: f"{statistics.median(xs) * 1000:.0f} ms (min {min(xs) * 1000:.0f})"  # noqa: E731
        for w in works:
            dw = statistics.median(y - x for x, y in zip(wall[(w, "before")], wall[(w, "after")])) * 1000
            dc = statistics.median(y - x for x, y in zip(cpu[(w, "before")], cpu[(w, "after")])) * 1000
            print(f"| {w} | {ms(wall[(w, 'before')])} | {ms(wall[(w, 'after')])} | {ms(cpu[(w, 'before')])} | "
                  f"{ms(cpu[(w, 'after')])} | {dw:+.1f} / {dc:+.1f} ms |")
    finally:
        for side, cid in cids.items():
            call(side, "rm", "-f", cid)
            call(side, "container", "prune", "-f")
        world.kill_monitors(os.path.join(work, "run"))
        if reg is not None:
            reg.stop()
        remove_work_dir(work)


if __name__ == "__main__":
    main()
