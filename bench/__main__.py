"""Every benchmark, one after the other, summed up in one table and written to docs/performance.md.

    python3 -m bench [--quick] [--only startup,run,...] [--no-write]

Each part measures nerdpy and the baselines installed here (bare runc, podman, containerd's ctr,
skopeo, GNU tar, podman-compose) interleaved, run by run, prints its details and emits `ROW`
lines; this collects the rows into one table (work | nerdpy | each baseline | ratios | target |
met) and writes it, the machine, its load and the details to docs/performance.md.

nerdpy is measured as a user runs it: the `nerdpy` console script of a venv with a pip install
of this checkout (bench/_util.nerdpy_exe; `NERDPY_BENCH_EXE="..."` measures another one).
Run by hand on an otherwise idle machine, never by CI: these machines are noisy and a loaded one
inflates every figure (the load average at the start and the end is in the header).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

from bench._util import ROOT, emit_row, export_exe, fmt, nerdpy_exe, nerdpy_label

# name -> (module, arguments for a normal run, arguments for --quick)
PARTS = {
    "startup": (None, ["15"], ["5"]),
    "run": ("bench.run", ["--runs", "15"], ["--runs", "3", "--containers", "50", "--images", "30"]),
    "network": ("bench.network", ["--runs", "20"], ["--runs", "5"]),
    "pull": ("bench.pull", ["--runs", "3"], ["--runs", "1"]),
    "push": ("bench.push", ["--runs", "3"], ["--runs", "1"]),
    "compose": ("bench.compose", ["--runs", "5"], ["--runs", "1"]),
    "logs": ("bench.logs", ["--runs", "3"], ["--runs", "1"]),
}

# the table's baseline columns, in this order (then any other a part names)
BASELINES = ["runc", "podman", "ctr", "download+tar", "skopeo", "podman-compose"]


def startup(runs: int) -> None:
    """`nerdpy --version` and `--help`, the console script itself, interleaved with the floor:
    its interpreter doing nothing."""
    exe = nerdpy_exe()
    py = os.path.join(os.path.dirname(exe[0]), "python") if len(exe) == 1 else exe[0]
    if not os.path.exists(py):
        py = sys.executable
    cmds = {"--version": exe + ["--version"], "--help": exe + ["--help"], "floor": [py, "-c", "pass"]}
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for argv in cmds.values():  # warm the page cache
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    for _ in range(runs):
        for k, argv in cmds.items():
            t0 = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k in ("--version", "--help"):
        print(f"nerdpy {k:10s} {med[k] * 1000:7.1f} ms median of {runs} (target 60 ms); "
              f"runs {', '.join(f'{x * 1000:.0f}' for x in times[k])}")
    print(f"{py} -c pass  {med['floor'] * 1000:7.1f} ms median (this interpreter's floor)")
    for k in ("--version", "--help"):
        emit_row(f"`nerdpy {k}`", med[k], {}, "<= 60 ms", med[k] <= 0.060,
                 f"`python -c pass`: {fmt(med['floor'])}")


def run_part(name: str, module: str | None, argv: list[str]) -> tuple[str, list[dict]]:
    """Run one part, echoing its output as it comes; its text and its rows."""
    rows, lines = [], []
    if module is None:
        import contextlib
        import io

        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                startup(int(argv[0]))
            rc, err = 0, ""
        except Exception as e:  # noqa: BLE001
            rc, err = 1, repr(e)
        stream = buf.getvalue().splitlines(keepends=True)
    else:
        proc = subprocess.Popen([sys.executable, "-m", module, *argv], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        stream = proc.stdout
    for line in stream:
        if line.startswith("ROW\t"):
            rows.append(json.loads(line[4:]))
        else:
            lines.append(line)
            print(line, end="", flush=True)
    if module is not None:
        err = proc.stderr.read()
        rc = proc.wait()
    text = "".join(lines)
    if rc:
        tail = f"(exit {rc})\n{err[-2000:]}"
        print(tail, flush=True)
        text += tail
        rows.append({"work": f"part `{name}` FAILED", "nerdpy": None, "baselines": {}, "target": "",
                     "met": False, "note": f"exit {rc}, see its details", "unit": "s"})
    return text, rows


def table(rows: list[dict]) -> str:
    cols = [b for b in BASELINES if any(b in r["baselines"] for r in rows)]
    cols += sorted({b for r in rows for b in r["baselines"]} - set(cols))
    head = ["work", "nerdpy", *cols, "nerdpy / baseline", "target", "met?", "note"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        unit = r.get("unit", "s")
        cells = [r["work"], fmt(r["nerdpy"], unit)]
        ratios = []
        for c in cols:
            if c not in r["baselines"]:
                cells.append("")
            elif r["baselines"][c] is None:
                cells.append("not installed")
            else:
                b = r["baselines"][c]
                cells.append(fmt(b, unit))
                if r["nerdpy"] is not None and b:
                    ratios.append(f"{r['nerdpy'] / b:.2f}x {c}")
        met = {True: "yes", False: "**no**", None: "-"}[r["met"]]
        cells += ["; ".join(ratios), r["target"], met, r.get("note", "")]
        out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out) + "\n"


def machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.1f} GB RAM, "
    except (OSError, ValueError, IndexError):
        pass
    return (f"{platform.node()}: {os.cpu_count()} cores{f' ({model})' if model else ''}, {mem}"
            f"{platform.machine()}, Linux {platform.release()}")


def versions() -> str:
    found = []
    for tool, argv in (("runc", ["runc", "--version"]), ("podman", ["podman", "--version"]),
                       ("podman-compose", ["podman-compose", "version"]), ("skopeo", ["skopeo", "--version"]),
                       ("tar", ["tar", "--version"]), ("containerd", ["containerd", "--version"])):
        if not shutil.which(argv[0]):
            found.append(f"{tool}: not installed")
            continue
        r = subprocess.run(argv, capture_output=True, text=True)
        lines = (r.stdout + r.stderr).strip().splitlines()
        if tool == "podman-compose":  # it prints podman's version and its own amid other lines
            lines = [" ".join(line.replace("composer", "compose").split()) for line in lines if "compose" in line]
        found.append(lines[0] if lines else tool)
    return "; ".join(found)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer runs (a smoke test of the benchmarks)")
    ap.add_argument("--only", help="comma-separated parts: " + ",".join(PARTS))
    ap.add_argument("--no-write", action="store_true", help="do not write docs/performance.md")
    args = ap.parse_args()
    parts = args.only.split(",") if args.only else list(PARTS)
    for p in parts:
        if p not in PARTS:
            raise SystemExit(f"no part {p!r}; parts: {', '.join(PARTS)}")

    export_exe()  # build (or find) the venv once, before anything is timed; the parts inherit it
    label = nerdpy_label()
    print(f"nerdpy measured: {label}", flush=True)
    if "FALLBACK" in label:
        print("WARNING: not the installed console script; startup figures include a dev checkout's costs",
              flush=True)
    started = datetime.datetime.now()
    load0 = os.getloadavg()
    sections, rows = [], []
    for name in parts:
        module, normal, quick = PARTS[name]
        print(f"\n== {name}", flush=True)
        text, part_rows = run_part(name, module, quick if args.quick else normal)
        sections.append((name, text))
        rows += part_rows
    load1 = os.getloadavg()
    minutes = (datetime.datetime.now() - started).total_seconds() / 60

    tab = table(rows)
    print("\n" + tab)
    if args.no_write:
        return
    cmd = "python3 -m bench" + (" --quick" if args.quick else "") + (f" --only {args.only}" if args.only else "")
    la = lambda v: " / ".join(f"{x:.2f}" for x in v)  # noqa: E731
    head = (
        "# Performance\n\n"
        f"- measured {started:%Y-%m-%d %H:%M} with `{cmd}` ({minutes:.0f} minutes)\n"
        f"- machine {machine()}\n"
        f"- load average (1 / 5 / 15 min) {la(load0)} at the start, {la(load1)} at the end\n"
        f"- nerdpy measured: {label}\n"
        f"- baselines: {versions()}\n\n"
        "Medians of runs interleaved with the baselines' (nerdpy, baseline, nerdpy, ...); the ratio is "
        "nerdpy / baseline. Targets are issue 7's and DESIGN.md's; figures in parentheses are DESIGN.md's "
        "baselines on these machines. \"not installed\": that baseline is not on this machine. "
        "Run by hand on an idle machine (`python3 -m bench`), never by CI.\n\n"
    )
    body = "".join(f"\n## {name}\n\n```\n{text.rstrip()}\n```\n" for name, text in sections)
    with open(os.path.join(ROOT, "docs", "performance.md"), "w") as f:
        f.write(head + tab + "\nThe details, part by part:\n" + body)


if __name__ == "__main__":
    main()
