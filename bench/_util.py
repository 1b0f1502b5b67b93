"""Helpers the benchmarks share: which nerdpy is measured, result rows, scratch dirs and their
cleanup, the bench's own default bridge."""
from __future__ import annotations

import glob
import hashlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = "/var/tmp/nerdpy-bench"

# what a package build of the checkout needs (pyproject's packages and package data)
_SOURCES = ("pyproject.toml", "README.md", "nerdpy", "compose")

_exe: list[str] | None = None
_exe_label = ""


def remove_work_dir(work: str) -> None:
    """Unmount everything under a benchmark's scratch dir (rootfs overlays, the netns root that
    nerdpy binds onto itself like `ip netns`), deepest first, then delete it."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for p in sorted((p for p in points if p == work or p.startswith(work + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", p], capture_output=True)
    shutil.rmtree(work, ignore_errors=True)


# -- the nerdpy being measured -------------------------------------------------------------------

def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True, check=True).stdout


def _checkout_key() -> str:
    """HEAD's short hash, plus a hash of the package's uncommitted changes when there are any
    (so a dirty tree gets a venv of its own and an edit after it a new one)."""
    head = _git("rev-parse", "--short=12", "HEAD").strip()
    dirty = _git("status", "--porcelain", "--", *_SOURCES).strip()
    if not dirty:
        return head
    h = hashlib.sha256()
    files = _git("ls-files", "-co", "--exclude-standard", "--", *_SOURCES).split("\n")
    for rel in sorted(f for f in files if f):
        h.update(rel.encode() + b"\0")
        try:
            with open(os.path.join(ROOT, rel), "rb") as f:
                h.update(f.read())
        except OSError:  # deleted in the working tree
            h.update(b"\1")
    return f"{head}-dirty-{h.hexdigest()[:8]}"


def _build_venv(venv: str) -> None:
    """`pip install` of a copy of the checkout (non-editable, as a user would have it), built
    outside the working tree so that no build/ or egg-info lands in it, then byte-compiled (this
    environment sets PYTHONDONTWRITEBYTECODE, so nothing would write the .pyc files otherwise)."""
    src = tempfile.mkdtemp(prefix="nerdpy-bench-src-")
    try:
        files = _git("ls-files", "-co", "--exclude-standard", "--", *_SOURCES).split("\n")
        for rel in (f for f in files if f):
            if os.path.exists(os.path.join(ROOT, rel)):
                os.makedirs(os.path.join(src, os.path.dirname(rel)), exist_ok=True)
                shutil.copy2(os.path.join(ROOT, rel), os.path.join(src, rel))
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True, capture_output=True)
        r = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", src], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"pip install failed: {r.stderr.strip()[-400:]}")
        site = glob.glob(os.path.join(venv, "lib", "python3*", "site-packages"))[0]
        subprocess.run([os.path.join(venv, "bin", "python"), "-m", "compileall", "-q",
                        os.path.join(site, "nerdpy"), os.path.join(site, "compose")], check=True, capture_output=True)
        subprocess.run([os.path.join(venv, "bin", "nerdpy"), "--version"], check=True, capture_output=True)
        open(os.path.join(venv, ".done"), "w").close()
    except BaseException:
        shutil.rmtree(venv, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(src, ignore_errors=True)


def nerdpy_exe() -> list[str]:
    """The argv prefix that runs nerdpy as a user has it: `$NERDPY_BENCH_EXE` (split on spaces)
    when set; else the `nerdpy` console script of a venv with a pip install of this checkout,
    cached in /var/tmp/nerdpy-bench/venv-<checkout key> (older venv-* removed); else, if that
    cannot be built, `python -m nerdpy` from the checkout. nerdpy_label() says which."""
    global _exe, _exe_label
    if _exe is not None:
        return list(_exe)
    env = os.environ.get("NERDPY_BENCH_EXE", "").strip()
    if env:
        _exe, _exe_label = env.split(), os.environ.get("NERDPY_BENCH_LABEL", f"NERDPY_BENCH_EXE={env}")
        return list(_exe)
    try:
        key = _checkout_key()
        venv = os.path.join(CACHE, f"venv-{key}")
        if not os.path.exists(os.path.join(venv, ".done")):
            os.makedirs(CACHE, exist_ok=True)
            for old in glob.glob(os.path.join(CACHE, "venv-*")):
                if old != venv:
                    shutil.rmtree(old, ignore_errors=True)
            print(f"building {venv} (pip install of the checkout)...", file=sys.stderr, flush=True)
            _build_venv(venv)
        _exe = [os.path.join(venv, "bin", "nerdpy")]
        _exe_label = f"`{_exe[0]}` (pip install of checkout {key})"
    except Exception as e:  # noqa: BLE001 - any failure: measure the checkout directly, and say so
        _exe = [sys.executable, "-m", "nerdpy"]
        _exe_label = (f"`{sys.executable} -m nerdpy` from the checkout (FALLBACK: the venv could not be built: "
                      f"{str(e).splitlines()[-1] if str(e) else type(e).__name__}; a dev install's import "
                      "hooks may add some 40 ms per start)")
    return list(_exe)


def nerdpy_label() -> str:
    nerdpy_exe()
    return _exe_label


def export_exe() -> None:
    """Make child processes (the parts) measure the same nerdpy without rebuilding anything."""
    exe = nerdpy_exe()
    if exe[1:3] == ["-m", "nerdpy"]:  # the fallback: importable from any cwd (compose runs in project dirs)
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    os.environ["NERDPY_BENCH_EXE"] = " ".join(exe)
    os.environ["NERDPY_BENCH_LABEL"] = _exe_label


# -- timing and result rows ----------------------------------------------------------------------

def timed(argv: list[str], env: dict | None = None, cwd: str | None = None) -> float:
    """Wall time of one command, which must succeed."""
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {r.stderr.decode(errors='replace')[-800:]}")
    return dt


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def emit_row(work: str, nerdpy: float | None, baselines: dict[str, float | None] | None = None,
             target: str = "", met: bool | None = None, note: str = "", unit: str = "s") -> None:
    """One line of the summary table, for `python -m bench` to collect: `ROW<TAB>{json}`.
    Figures are medians in seconds (or MB when unit is "MB"); a baseline of None means not
    installed here."""
    row = {"work": work, "nerdpy": nerdpy, "baselines": baselines or {}, "target": target, "met": met,
           "note": note, "unit": unit}
    print("ROW\t" + json.dumps(row), flush=True)


def fmt(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "-"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


# -- the bench's own default bridge --------------------------------------------------------------

def bench_bridge() -> tuple[str, str]:
    """A bridge name and a /24 no route on this host uses, for nerdpy's default network."""
    used = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    octet = next(o for o in range(160, 250) if f"10.{o}." not in used)
    name = f"npbench{os.getpid() % 10000}"
    return name, f"10.{octet}.0.0/24"


def nerdpy_env(work: str, bridge: tuple[str, str] | None = None) -> dict:
    """The environment for a nerdpy with everything under `work` (data root given with
    --data-root), its default bridge the bench's own."""
    env = dict(os.environ, NERDPY_RUN_ROOT=os.path.join(work, "run"), NERDPY_CONFIG="/nonexistent",
               NERDPY_CNI_NETCONFPATH=os.path.join(work, "net.d"), HOME=os.path.join(work, "home"))
    os.makedirs(env["HOME"], exist_ok=True)
    env.pop("DOCKER_CONFIG", None)
    if bridge:
        env["NERDPY_BRIDGE_NAME"], env["NERDPY_BRIDGE_SUBNET"] = bridge
    return env


def cleanup_nerdpy(np: list[str], env: dict, bridge: tuple[str, str] | None = None) -> None:
    """Remove every container and network of a bench's nerdpy, its default bridge and the
    firewall rules that name it."""
    data_root = np[np.index("--data-root") + 1] if "--data-root" in np else None
    if data_root and os.path.exists(os.path.join(data_root, "meta.db")):
        left = subprocess.run(np + ["ps", "-a", "-q", "--no-trunc"], env=env, capture_output=True,
                              text=True).stdout.split()
        if left:
            subprocess.run(np + ["rm", "-f", *left], env=env, capture_output=True)
        subprocess.run(np + ["network", "prune", "-f"], env=env, capture_output=True)
    if bridge:
        name = bridge[0]
        if os.path.exists(f"/sys/class/net/{name}"):
            subprocess.run(["ip", "link", "delete", name], capture_output=True)
        for chain in ("CNI-ISOLATION-STAGE-1", "CNI-ISOLATION-STAGE-2"):
            r = subprocess.run(["iptables", "-w", "-t", "filter", "-S", chain], capture_output=True, text=True)
            for rule in r.stdout.splitlines():
                words = rule.split()
                if rule.startswith("-A ") and name in words:
                    subprocess.run(["iptables", "-w", "-t", "filter", "-D", *shlex.split(rule)[1:]],
                                   capture_output=True)


def leftovers(work: str, bridge: tuple[str, str] | None = None) -> list[str]:
    """What is left on the host that is the bench's: mounts under `work`, the bridge, iptables
    rules naming the bridge or its subnet. Call after remove_work_dir."""
    found = []
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {p}" for p in (line.split()[4] for line in f) if p.startswith(work)]
    if bridge:
        if os.path.exists(f"/sys/class/net/{bridge[0]}"):
            found.append(f"link {bridge[0]}")
        prefix = bridge[1].rsplit(".", 2)[0] + "."  # 10.N.
        rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout.splitlines()
        found += [f"iptables {r}" for r in rules if bridge[0] in r.split() or f" {prefix}" in r]
    return found


def print_medians(results: dict[str, list[float]]) -> dict[str, float]:
    """Print each work's median and runs (seconds); return the medians."""
    import statistics

    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"\n{'work':40} {'median s':>9}  runs")
    for k, v in med.items():
        print(f"{k:40} {v:9.2f}  {', '.join(f'{x:.2f}' for x in results[k])}")
    return med
