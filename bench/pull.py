"""Pull + unpack benchmark: nerdpy against podman (when installed) and download-alone + tar -xzf.

    python3 -m bench.pull [--runs 3] [--source DIR]

Builds a large single-layer image (a Debian root made with debootstrap when available, else a
copy of the biggest part of this host's /usr), pushes it gzip- and zstd-compressed to a local
registry, then times, interleaved, each way of getting it onto disk. Prints medians and ratios.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._util import CACHE, emit_row, nerdpy_exe, nerdpy_label, print_medians  # noqa: E402


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_root() -> str:
    root = os.path.join(CACHE, "debian")
    if os.path.exists(os.path.join(root, ".done")):
        return root
    if shutil.which("debootstrap"):
        shutil.rmtree(root, ignore_errors=True)
        r = subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,perl",
                            "bookworm", root], capture_output=True, text=True)
        if r.returncode == 0:
            open(os.path.join(root, ".done"), "w").close()
            return root
        print("debootstrap failed; using /usr from this host", file=sys.stderr)
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    for part in ("usr/lib/python3", "usr/share/perl", "usr/lib/x86_64-linux-gnu", "usr/bin", "usr/share/doc"):
        src = "/" + part
        if os.path.isdir(src):
            sh("cp", "-a", src, os.path.join(root, part.replace("/", "_")))
    open(os.path.join(root, ".done"), "w").close()
    return root


def tree_stats(root: str) -> tuple[int, int]:
    files = size = 0
    for d, dirs, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            st = os.lstat(p)
            files += 1
            size += st.st_size
    return files, size


def build_layout(root: str, compression: str) -> str:
    out = os.path.join(CACHE, f"oci-{compression}")
    if os.path.exists(os.path.join(out, ".done")):
        return out
    shutil.rmtree(out, ignore_errors=True)
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs)
    tar_path = os.path.join(CACHE, "layer.tar")
    if not os.path.exists(tar_path):
        sh("tar", "--numeric-owner", "--exclude=./.done", "-C", root, "-cf", tar_path + ".tmp", ".")
        os.rename(tar_path + ".tmp", tar_path)
    diff = hashlib.sha256()
    with open(tar_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            diff.update(chunk)
    comp_path = os.path.join(out, "layer.tmp")
    if compression == "gzip":
        sh("sh", "-c", f"gzip -6 -c {tar_path} > {comp_path}")
        mt = "application/vnd.oci.image.layer.v1.tar+gzip"
    else:
        import zstandard

        with open(tar_path, "rb") as fi, open(comp_path, "wb") as fo:
            zstandard.ZstdCompressor(level=3, threads=2).copy_stream(fi, fo)
        mt = "application/vnd.oci.image.layer.v1.tar+zstd"
    h = hashlib.sha256()
    with open(comp_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    layer_digest = h.hexdigest()
    os.rename(comp_path, os.path.join(blobs, layer_digest))

    def put(obj) -> tuple[str, int]:
        data = json.dumps(obj).encode()
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, d), "wb") as f:
            f.write(data)
        return d, len(data)

    cfg_d, cfg_n = put({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff.hexdigest()]}})
    man_d, man_n = put({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                   "digest": "sha256:" + cfg_d, "size": cfg_n},
                        "layers": [{"mediaType": mt, "digest": "sha256:" + layer_digest,
                                    "size": os.path.getsize(os.path.join(blobs, layer_digest))}]})
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + man_d,
            "size": man_n, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
    open(os.path.join(out, ".done"), "w").close()
    return out


def start_registry(tmp: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    conf = os.path.join(tmp, "registry.yml")
    with open(conf, "w") as f:
        f.write(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp}/reg\n"
                f"http:\n  addr: 127.0.0.1:{port}\nlog:\n  level: error\n")
    proc = subprocess.Popen(["docker-registry", "serve", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    host = f"127.0.0.1:{port}"
    import urllib.request

    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://{host}/v2/", timeout=1)
            break
        except Exception:
            time.sleep(0.1)
    return proc, host


def push(layout: str, ref: str) -> None:
    # skopeo 1.9 would recompress zstd layers: push blobs and manifest ourselves
    import urllib.request

    host, _, rest = ref.partition("/")
    repo, _, tag = rest.partition(":")
    blobs = os.path.join(layout, "blobs", "sha256")
    index = json.load(open(os.path.join(layout, "index.json")))
    man_d = index["manifests"][0]["digest"][7:]
    manifest = json.load(open(os.path.join(blobs, man_d)))
    for desc in [manifest["config"], *manifest["layers"]]:
        d = desc["digest"]
        req = urllib.request.Request(f"http://{host}/v2/{repo}/blobs/uploads/", method="POST")
        loc = urllib.request.urlopen(req).headers["Location"]
        if loc.startswith("/"):
            loc = f"http://{host}{loc}"
        sep = "&" if "?" in loc else "?"
        with open(os.path.join(blobs, d[7:]), "rb") as f:
            req = urllib.request.Request(f"{loc}{sep}digest={d}", data=f, method="PUT",
                                         headers={"Content-Length": str(desc["size"]),
                                                  "Content-Type": "application/octet-stream"})
            urllib.request.urlopen(req)
    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{tag}", method="PUT",
                                 data=open(os.path.join(blobs, man_d), "rb").read(),
                                 headers={"Content-Type": manifest["mediaType"]})
    urllib.request.urlopen(req)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    os.makedirs(CACHE, exist_ok=True)
    root = make_root()
    files, size = tree_stats(root)
    print(f"image content: {files} files, {size / 1e6:.0f} MB")
    layouts = {c: build_layout(root, c) for c in ("gzip", "zstd")}
    tmp = tempfile.mkdtemp(prefix="nerdpy-bench-")
    env = dict(os.environ, NERDPY_CONFIG="/nonexistent", NERDPY_RUN_ROOT=os.path.join(tmp, "run"),
               HOME=os.path.join(tmp, "home"))
    print(f"nerdpy: {nerdpy_label()}")
    reg, host = start_registry(tmp)
    results: dict[str, list[float]] = {}
    refs = {c: f"{host}/bench/debian:{c}" for c in layouts}
    podman = shutil.which("podman")
    try:
        for c, layout in layouts.items():
            push(layout, refs[c])
        for _ in range(args.runs):
            for c, ref in refs.items():
                dr = os.path.join(tmp, "nerdpy")
                results.setdefault(f"nerdpy pull ({c})", []).append(timed(lambda: sh(
                    *nerdpy_exe(), "--data-root", dr, "pull", "-q", ref, stdout=subprocess.DEVNULL, env=env)))
                shutil.rmtree(dr)
                if podman:
                    def pp():
                        sh("podman", "pull", "-q", "--tls-verify=false", ref, stdout=subprocess.DEVNULL)
                    results.setdefault(f"podman pull ({c})", []).append(timed(pp))
                    subprocess.run(["podman", "rmi", "-f", ref], capture_output=True)
            d = os.path.join(tmp, "dl")
            results.setdefault("download alone (skopeo)", []).append(timed(lambda: sh(
                "skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{refs['gzip']}", f"dir:{d}",
                stdout=subprocess.DEVNULL)))
            layer = max((os.path.join(d, n) for n in os.listdir(d)), key=os.path.getsize)
            x = os.path.join(tmp, "x")
            os.makedirs(x)
            results.setdefault("tar -xzf alone", []).append(timed(lambda: sh("tar", "-xzf", layer, "-C", x)))
            shutil.rmtree(x)
            shutil.rmtree(d)
    finally:
        reg.terminate()
        if podman:
            for ref in refs.values():
                subprocess.run(["podman", "rmi", "-f", ref], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    med = print_medians(results)
    base = med["download alone (skopeo)"] + med["tar -xzf alone"]
    print(f"\nnerdpy gzip / (download + tar -xzf) = {med['nerdpy pull (gzip)'] / base:.2f}x (target <= 1.3x)")
    print(f"nerdpy zstd / nerdpy gzip          = {med['nerdpy pull (zstd)'] / med['nerdpy pull (gzip)']:.2f}x")
    for c in ("gzip", "zstd"):
        if f"podman pull ({c})" in med:
            print(f"nerdpy / podman ({c}) = {med[f'nerdpy pull ({c})'] / med[f'podman pull ({c})']:.2f}x (target <= 0.7x)")
        else:
            ref = {"gzip": 8.8, "zstd": 6.0}[c]
            print(f"podman not installed; against DESIGN.md's podman {c} figure {ref} s: "
                  f"{med[f'nerdpy pull ({c})'] / ref:.2f}x (target <= 0.7x)")
    ctr = shutil.which("ctr") and shutil.which("containerd")
    for c, design in (("gzip", 8.8), ("zstd", 6.0)):
        n = med[f"nerdpy pull ({c})"]
        pod = med.get(f"podman pull ({c})")
        met = n <= 0.7 * (pod if pod is not None else design)
        note = "" if pod is not None else f"podman not installed: against DESIGN.md's {design} s"
        baselines = {"podman": pod}
        if not ctr:
            baselines["ctr"] = None
        target = f"<= 0.7x podman ({design} s)"
        if c == "gzip":
            baselines["download+tar"] = base
            met = met and n <= 1.3 * base
            target += ", <= 1.3x download + `tar -xzf`"
            note = "; ".join(x for x in (note, f"download (skopeo) {med['download alone (skopeo)']:.2f} s + "
                                                f"`tar -xzf` {med['tar -xzf alone']:.2f} s") if x)
        emit_row(f"pull + unpack, {size / 1e6:.0f} MB / {files} files, {c}", n, baselines, target, met, note)


if __name__ == "__main__":
    main()
