"""Push and save/load benchmark: nerdpy against skopeo and podman (when installed).

    python3 -m bench.push [--runs 3]

Uses bench.pull's large Debian image (gzip), pulled once into a nerdpy data root. Each push goes
to a fresh, empty registry (so nothing can be skipped or mounted); `save` writes the image to a
file, `load` reads it into a fresh data root (unpacking included, as docker and podman do).
Prints medians and ratios.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._util import emit_row, nerdpy_exe, nerdpy_label, print_medians  # noqa: E402
from bench.pull import CACHE, build_layout, make_root, push as push_layout, sh, start_registry, timed  # noqa: E402

ENV = dict(os.environ, NERDPY_CONFIG="/nonexistent")


def nerdpy(data_root: str, *args, **kw):
    return sh(*nerdpy_exe(), "--data-root", data_root, *args, env=ENV, **kw)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    os.makedirs(CACHE, exist_ok=True)
    layout = build_layout(make_root(), "gzip")
    tmp = tempfile.mkdtemp(prefix="nerdpy-bench-push-")
    ENV.update(NERDPY_RUN_ROOT=os.path.join(tmp, "run"), HOME=os.path.join(tmp, "home"))
    print(f"nerdpy: {nerdpy_label()}")
    src_dir = os.path.join(tmp, "src")
    os.makedirs(src_dir)
    src, src_host = start_registry(src_dir)
    results: dict[str, list[float]] = {}
    podman = shutil.which("podman")
    ref = f"{src_host}/bench/debian:gzip"
    try:
        push_layout(layout, ref)
        data = os.path.join(tmp, "data")
        nerdpy(data, "pull", "-q", ref, stdout=subprocess.DEVNULL)
        if podman:
            sh("podman", "pull", "-q", "--tls-verify=false", ref, stdout=subprocess.DEVNULL)
        for run in range(args.runs):
            for who in ("nerdpy", "skopeo", "podman"):
                if who == "podman" and not podman:
                    continue
                d = os.path.join(tmp, f"dest-{who}-{run}")
                os.makedirs(d)
                reg, host = start_registry(d)
                try:
                    dest = f"{host}/bench/{who}:latest"
                    if who == "nerdpy":
                        nerdpy(data, "tag", ref, dest)
                        t = timed(lambda: nerdpy(data, "push", "-q", dest, stdout=subprocess.DEVNULL))
                        nerdpy(data, "rmi", dest, stdout=subprocess.DEVNULL)
                    elif who == "skopeo":
                        t = timed(lambda: sh("skopeo", "copy", "-q", "--dest-tls-verify=false",
                                             f"oci:{layout}:latest", f"docker://{dest}", stdout=subprocess.DEVNULL))
                    else:
                        t = timed(lambda: sh("podman", "push", "-q", "--tls-verify=false", ref, dest,
                                             stdout=subprocess.DEVNULL))
                    results.setdefault(f"{who} push", []).append(t)
                finally:
                    reg.terminate()
                    reg.wait()
                    shutil.rmtree(d, ignore_errors=True)
            archive = os.path.join(tmp, "image.tar")
            results.setdefault("nerdpy save", []).append(timed(lambda: nerdpy(data, "save", "-o", archive, ref)))
            fresh = os.path.join(tmp, "fresh")
            results.setdefault("nerdpy load", []).append(timed(lambda: nerdpy(
                fresh, "load", "-q", "-i", archive, stdout=subprocess.DEVNULL)))
            shutil.rmtree(fresh)
            os.unlink(archive)
            sk = os.path.join(tmp, "skopeo.tar")
            results.setdefault("skopeo copy oci: -> docker-archive:", []).append(timed(lambda: sh(
                "skopeo", "copy", "-q", f"oci:{layout}:latest", f"docker-archive:{sk}:bench/debian:gzip",
                stdout=subprocess.DEVNULL)))
            os.unlink(sk)
            if podman:
                pa = os.path.join(tmp, "podman.tar")
                results.setdefault("podman save", []).append(timed(lambda: sh("podman", "save", "-q", "-o", pa, ref)))
                subprocess.run(["podman", "rmi", "-f", ref], capture_output=True)
                results.setdefault("podman load", []).append(timed(lambda: sh("podman", "load", "-q", "-i", pa,
                                                                              stdout=subprocess.DEVNULL)))
                os.unlink(pa)
    finally:
        src.terminate()
        if podman:
            subprocess.run(["podman", "rmi", "-f", ref], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    med = print_medians(results)
    print(f"\nnerdpy push / skopeo copy = {med['nerdpy push'] / med['skopeo push']:.2f}x (target <= 1x)")
    if podman:
        for k in ("push", "save", "load"):
            print(f"nerdpy {k} / podman {k} = {med[f'nerdpy {k}'] / med[f'podman {k}']:.2f}x (target <= 1x)")
    else:
        print("podman not installed: save/load shown alone")
    g = med.get
    pod = (lambda k: g(f"podman {k}")) if podman else (lambda k: None)

    def met(k: str, *bases) -> bool | None:
        known = [b for b in bases if b is not None]
        return all(med[f"nerdpy {k}"] <= b for b in known) if known else None

    emit_row("push, the gzip image, to an empty registry", med["nerdpy push"],
             {"skopeo": med["skopeo push"], "podman": pod("push")}, "<= 1x skopeo and podman",
             met("push", med["skopeo push"], pod("push")), "skopeo: `copy oci: docker://`")
    emit_row("`save` of the gzip image", med["nerdpy save"],
             {"skopeo": med["skopeo copy oci: -> docker-archive:"], "podman": pod("save")}, "<= 1x podman",
             met("save", pod("save")), "skopeo: `copy oci: docker-archive:`")
    emit_row("`load` of it (unpack included)", med["nerdpy load"], {"podman": pod("load")}, "<= 1x podman",
             met("load", pod("load")))


if __name__ == "__main__":
    main()
