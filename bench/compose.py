"""`compose up -d` benchmark: a 10-service project (no healthchecks) and a 3-service project
whose web service waits for a healthcheck-gated db (`condition: service_healthy`, checked
every 500 ms), each `up -d` from nothing and `down` after; beside podman-compose when it is
installed (which does not wait for health: nerdctl #2386/#4709 and podman-compose alike).

    python3 -m bench.compose [--runs 5]

Starts a throwaway registry with the test busybox image (tests/world.py) and pulls it first,
so no run includes a pull. Containers are on the project's bridge network (CNI), as compose
projects are. Prints the median wall time of each.

Measured on the 2-core machines (median of 3; podman 4.3.1 and podman-compose 1.0.3 from
Debian, set up as DESIGN.md says: runc, cgroupfs, ulimits in /etc/containers/containers.conf):

    10 services                  nerdpy   2.61 s (down 2.32 s)   podman-compose  15.94 s
    3 services, health-gated     nerdpy   2.52 s (down 2.94 s)   podman-compose   4.90 s

The health-gated nerdpy time includes about 1.5 s of real waiting (db becomes healthy 1 s
after it starts, at the next 500 ms check); podman-compose starts web without waiting.
`down` includes up to 1 s per container for the services' `sleep 1` loop to see SIGTERM.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, os.path.dirname(HERE))

from bench._util import (bench_bridge, cleanup_nerdpy, emit_row, leftovers, nerdpy_env, nerdpy_exe,  # noqa: E402
                         nerdpy_label, remove_work_dir)

PROJECT = "nerdpybench"

LOOP = "trap 'exit 0' TERM; while true; do sleep 1; done"


def ten_services(image: str) -> str:
    out = ["services:"]
    for i in range(10):
        out += [f"  s{i}:", f"    image: {image}", f"    command: [\"sh\", \"-c\", \"{LOOP}\"]"]
    return "\n".join(out) + "\n"


def gated(image: str) -> str:
    return f"""services:
  db:
    image: {image}
    command: ["sh", "-c", "sleep 1; touch /tmp/ready; {LOOP}"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 500ms
      retries: 20
  web:
    image: {image}
    command: ["sh", "-c", "{LOOP}"]
    depends_on:
      db:
        condition: service_healthy
  worker:
    image: {image}
    command: ["sh", "-c", "{LOOP}"]
    depends_on: [web]
"""


def timed(argv: list[str], env: dict | None, cwd: str) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {r.stderr.decode()[-800:]}")
    return dt


def podman_networks() -> set[str]:
    r = subprocess.run(["podman", "network", "ls", "--format", "{{.Name}}"], capture_output=True, text=True)
    return set(r.stdout.split())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    import world

    work = tempfile.mkdtemp(prefix="nerdpy-bench-compose-")
    reg = world.Registry(os.path.join(work, "registry"))
    bridge = bench_bridge()
    env = nerdpy_env(work, bridge)
    np = nerdpy_exe() + ["--data-root", os.path.join(work, "data")]
    podman_compose = shutil.which("podman-compose")
    pod_nets = podman_networks() if podman_compose else set()
    image = None
    try:
        images = world.Images(reg)
        image = images.busybox
        print(f"nerdpy: {nerdpy_label()}")
        subprocess.run(np + ["pull", "-q", image], check=True, env=env, stdout=subprocess.DEVNULL)
        projects = {"10 services": ten_services(image), "3 services, health-gated": gated(image)}
        if podman_compose:
            subprocess.run(["podman", "pull", "--tls-verify=false", image], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"compose up -d, median of {args.runs} runs (down not included), interleaved with podman-compose")
        for label, text in projects.items():
            d = os.path.join(work, label.split()[0] + ("g" if "gated" in label else ""))
            os.makedirs(d)
            with open(os.path.join(d, "compose.yaml"), "w") as f:
                f.write(text)
            ups, downs, pups = [], [], []
            for _ in range(args.runs):
                ups.append(timed(np + ["compose", "-p", PROJECT, "up", "-d"], env, d))
                downs.append(timed(np + ["compose", "-p", PROJECT, "down", "-t", "1"], env, d))
                if podman_compose:
                    pups.append(timed([podman_compose, "-p", PROJECT, "up", "-d"], None, d))
                    timed([podman_compose, "-p", PROJECT, "down", "-t", "1"], None, d)
            up, pup = statistics.median(ups), (statistics.median(pups) if pups else None)
            line = f"{label:28s} nerdpy {up:6.2f} s (down {statistics.median(downs):.2f} s)"
            if podman_compose:
                line += f"   podman-compose {pup:6.2f} s"
            else:
                line += "   podman-compose: not installed"
            print(line, flush=True)
            if label == "10 services":
                emit_row("`compose up -d`, 10 services", up, {"podman-compose": pup}, "faster than podman-compose",
                         None if pup is None else up < pup, f"nerdpy `down`: {statistics.median(downs):.2f} s")
            else:
                emit_row("`compose up -d`, 3 services, one health-gated", up, {"podman-compose": pup}, "-", None,
                         "nerdpy waits for db to be healthy (about 1.5 s); podman-compose does not wait")
    finally:
        if podman_compose:
            for net in podman_networks() - pod_nets:
                if net.startswith(PROJECT):
                    subprocess.run(["podman", "network", "rm", "-f", net], capture_output=True)
            if image:
                subprocess.run(["podman", "rmi", "-f", image], capture_output=True)
        cleanup_nerdpy(np, env, bridge)
        reg.stop()
        remove_work_dir(work)
        left = leftovers(work, bridge)
        if left:
            print("LEFT BEHIND after cleanup:\n  " + "\n  ".join(left))

if __name__ == "__main__":
    main()
