"""Network setup benchmark: attach_container + detach_container on a default-style bridge
network, in process (as `run` and the monitor call them), with and without a published port;
where the time goes (netns creation, each CNI plugin's ADD and DEL).

    python3 -m bench.network [--runs 20]

Uses a scratch data root, conflist directory and bridge (`npbenchN`, a free 10.x/24), all
removed afterwards. Needs root and the CNI plugins.
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
from collections import defaultdict


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()

    from nerdpy.engine.config import Settings
    from nerdpy.engine.network import cni
    from nerdpy.engine.network.attach import NetworkRequest, attach_container, detach_container
    from nerdpy.engine.network.netns import create_netns, delete_netns
    from nerdpy.engine.network.networks import find_network, remove_host_state
    from nerdpy.engine.network.ports import parse_publish
    from nerdpy.engine.store import open_store

    from bench._util import bench_bridge, emit_row, leftovers

    bridge = bench_bridge()
    work = tempfile.mkdtemp(prefix="nerdpy-bench-net-")
    settings = Settings(data_root=f"{work}/data", run_root=f"{work}/run", cni_netconfpath=f"{work}/net.d")
    settings.bridge_name, settings.bridge_subnet = bridge
    print(f"the checkout's nerdpy, in process; bridge {bridge[0]} {bridge[1]}")
    store = open_store(settings)

    per_plugin: dict[str, list[float]] = defaultdict(list)
    original = cni.exec_plugin

    def timed_plugin(kind, command, conf, rt, paths):
        t0 = time.perf_counter()
        try:
            return original(kind, command, conf, rt, paths)
        finally:
            per_plugin[f"{command} {kind}"].append(time.perf_counter() - t0)

    cni.exec_plugin = timed_plugin
    try:
        # warm up: the bridge, the plugins' chains, the page cache
        cid = secrets.token_hex(32)
        attach_container(store, cid, [NetworkRequest("bridge")], parse_publish("80"))
        detach_container(store, cid)
        per_plugin.clear()

        t_ns = []
        for _ in range(args.runs):
            path = f"{work}/run/netns/default/bench"
            t0 = time.perf_counter()
            create_netns(path)
            delete_netns(path)
            t_ns.append(time.perf_counter() - t0)
        print(f"netns create+delete: median {1000 * statistics.median(t_ns):.1f} ms")

        for label, ports in (("no ports", []), ("one published port", parse_publish("80"))):
            per_plugin.clear()
            t_att, t_det = [], []
            for _ in range(args.runs):
                cid = secrets.token_hex(32)
                t0 = time.perf_counter()
                attach_container(store, cid, [NetworkRequest("bridge")], ports)
                t1 = time.perf_counter()
                detach_container(store, cid)
                t2 = time.perf_counter()
                t_att.append(t1 - t0)
                t_det.append(t2 - t1)
            total = [a + d for a, d in zip(t_att, t_det)]
            print(f"default bridge, {label}: attach median {1000 * statistics.median(t_att):.0f} ms, "
                  f"detach {1000 * statistics.median(t_det):.0f} ms, "
                  f"together {1000 * statistics.median(total):.0f} ms")
            for name, ts in sorted(per_plugin.items()):
                print(f"    {name:<16} median {1000 * statistics.median(ts):5.1f} ms")
            emit_row(f"default bridge attach + detach, {label} (in process)", statistics.median(total), {}, "-",
                     None, f"attach {1000 * statistics.median(t_att):.0f} ms, detach "
                           f"{1000 * statistics.median(t_det):.0f} ms; part of `run` on the bridge")
    finally:
        cni.exec_plugin = original
        remove_host_state(store, find_network(store, "bridge"))
        store.close()
        from bench._util import remove_work_dir

        remove_work_dir(work)
        left = leftovers(work, bridge)
        if left:
            print("LEFT BEHIND after cleanup:\n  " + "\n  ".join(left))


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("needs root")
    main()
