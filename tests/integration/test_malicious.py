"""Malicious and broken input, end to end (issue 8): crafted layers pushed to the real registry
and pulled, a registry that lies, loops and stalls, hostile archives for `load`, hostile tars for
`cp` into a container. Each is refused with one clear line (exit 125 for pull, 1 for load and cp)
or contained, and the host is untouched: a sentinel directory on the host is watched throughout.

What the unit tests already prove for `archive.apply_layer` (tests/unit/test_archive.py, 47
cases) is shown here once more through `nerdpy pull` and `nerdpy run`: the refusal leaves no
image, no snapshot and no temp file (and `system check` agrees), and what is contained is where
the container sees it. The layer limits and the registry read timeout are lowered through
NERDPY_LAYER_MAX_* and NERDPY_REGISTRY_TIMEOUT so that bombs and stalls take seconds."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import hostleaks
import world


_no_leaks = hostleaks.module_unchanged()  # the host as before this module's tests


# -- the host sentinel ---------------------------------------------------------------------------
class Sentinel:
    """A directory on the host that crafted input aims at; nothing may change under it, nor
    appear in the host's /tmp under the names the input uses."""

    def __init__(self, path: str):
        self.path = path
        self.tag = "np8-" + secrets.token_hex(4)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "secret.txt"), "w") as f:
            f.write("host secret\n")
        self.before = self.state()

    def state(self) -> dict:
        out = {}
        for root, dirs, files in os.walk(self.path):
            for n in dirs + files:
                p = os.path.join(root, n)
                st = os.lstat(p)
                data = open(p, "rb").read() if os.path.isfile(p) and not os.path.islink(p) else b""
                out[os.path.relpath(p, self.path)] = (st.st_mode, st.st_nlink, st.st_size, st.st_mtime_ns,
                                                      hashlib.sha256(data).hexdigest())
        st = os.stat(self.path)
        out["."] = (st.st_mode, st.st_nlink, st.st_mtime_ns)
        out["tmp"] = sorted(n for n in os.listdir("/tmp") if self.tag in n)
        return out

    def assert_untouched(self) -> None:
        assert self.state() == self.before, "the host sentinel changed"
        with open("/etc/passwd") as f:
            assert "pwned" not in f.read()


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory):
    s = Sentinel(str(tmp_path_factory.mktemp("host-sentinel")))
    yield s
    s.assert_untouched()


# -- helpers -------------------------------------------------------------------------------------------
def one_line_error(r, code: int) -> str:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    err = r.stderr if isinstance(r.stderr, str) else r.stderr.decode()
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("nerdpy: "), err
    print(lines[0][:300])
    return lines[0]


def snapshot_rows(data_root: str) -> int:
    if not os.path.exists(os.path.join(data_root, "meta.db")):
        return 0
    db = sqlite3.connect(f"file:{data_root}/meta.db?mode=ro", uri=True)
    try:
        return db.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
    finally:
        db.close()


def assert_nothing_pulled(nerdpy) -> None:
    """No image, no snapshot (row or directory), no temp file; every stored blob is what its
    name says; the store checks clean."""
    assert nerdpy("images", "-q").stdout == ""
    assert snapshot_rows(nerdpy.data_root) == 0
    sdir = os.path.join(nerdpy.data_root, "snapshots")
    assert [n for n in (os.listdir(sdir) if os.path.isdir(sdir) else []) if n != ".locks"] == []
    bdir = os.path.join(nerdpy.data_root, "content", "blobs", "sha256")
    for name in os.listdir(bdir) if os.path.isdir(bdir) else []:
        assert not name.startswith("."), f"temp file {name} left"
        with open(os.path.join(bdir, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == name, f"unverified blob {name} stored"
    if os.path.exists(os.path.join(nerdpy.data_root, "meta.db")):
        r = nerdpy("system", "check")
        assert r.returncode == 0 and "warning" not in r.stdout, r.stdout


def E(name, kind="file", data=b"", link="", mode=None, dev=(0, 0), pax=None):
    ti = tarfile.TarInfo(name)
    ti.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "link": tarfile.LNKTYPE,
               "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE}[kind]
    ti.linkname = link
    ti.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
    ti.mtime = 1_600_000_000
    ti.devmajor, ti.devminor = dev
    if pax:
        ti.pax_headers = dict(pax)
    if kind == "file":
        ti.size = len(data)
    return ti, data


def make_tar(entries, eof: bool = True) -> bytes:
    buf = io.BytesIO()
    tf = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)
    for item in entries:
        if isinstance(item, bytes):
            tf.fileobj.write(item)
            tf.offset += len(item)
            continue
        ti, data = item
        tf.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    if eof:
        tf.close()
    return buf.getvalue()


def gnu_sparse(name: str, realsize: int, regions: list[tuple[int, bytes]]) -> bytes:
    """An old-GNU sparse member: (offset, data) regions, holes elsewhere."""
    data = b"".join(d for _, d in regions)
    ti = tarfile.TarInfo(name)
    ti.type, ti.size, ti.mode, ti.mtime = tarfile.GNUTYPE_SPARSE, len(data), 0o644, 1_600_000_000
    hdr = bytearray(ti.tobuf(format=tarfile.GNU_FORMAT))
    for i, (off, d) in enumerate(regions):
        pos = 386 + 24 * i
        hdr[pos:pos + 12] = b"%012o" % off
        hdr[pos + 12:pos + 24] = b"%012o" % len(d)
    hdr[482] = 0
    hdr[483:495] = b"%012o" % realsize
    hdr[148:156] = b" " * 8
    hdr[148:156] = b"%06o\0 " % sum(hdr)
    return bytes(hdr) + data + b"\0" * ((-len(data)) % 512)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_custom(layout: str, tag: str, layers: list[tuple[bytes, str]], config: dict | None = None) -> None:
    """An image whose layer blobs are given as they are to be served: (blob, diff ID)."""
    descs, diff_ids = [], []
    for blob, diff_id in layers:
        d, n = world._blob(layout, blob)
        mt = "application/vnd.oci.image.layer.v1.tar+gzip" if blob[:2] == b"\x1f\x8b" else \
            "application/vnd.oci.image.layer.v1.tar"
        descs.append({"mediaType": mt, "digest": d, "size": n})
        diff_ids.append(diff_id)
    cfg = {"architecture": "amd64", "os": "linux", "config": config or world.BUSYBOX_CONFIG,
           "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    cd, cn = world._blob(layout, json.dumps(cfg).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
                "layers": descs}
    md, mn = world._blob(layout, json.dumps(manifest).encode())
    world._add_to_index(layout, {"mediaType": manifest["mediaType"], "digest": md, "size": mn,
                                 "annotations": {"org.opencontainers.image.ref.name": tag}})


# -- crafted layers through the real registry ------------------------------------------------------------
def _gzip_bomb() -> tuple[bytes, str]:
    """~1 GiB of zeros after one valid entry, from about 1 MB of gzip members."""
    member = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = member.compress(b"\0" * (1 << 20)) + member.flush()
    head = make_tar([E("f", data=b"hello")], eof=False)
    return gzip.compress(head, mtime=0) + zeros * 1024, _sha(b"not computed: refused before the end")


def _declared_huge() -> tuple[bytes, str]:
    ti, _ = E("huge")
    ti.size = 40 << 30  # the header alone claims 40 GiB: over the 32 GiB default for one file
    raw = ti.tobuf(format=tarfile.PAX_FORMAT)
    return gzip.compress(raw, mtime=0), _sha(raw)


def _plain(entries) -> tuple[bytes, str]:
    raw = make_tar(entries)
    return gzip.compress(raw, mtime=0), _sha(raw)


LIMITS = {"NERDPY_LAYER_MAX_ENTRIES": "1000", "NERDPY_LAYER_MAX_BYTES": str(64 << 20),
          "NERDPY_LAYER_MAX_FILE_BYTES": str(1 << 30)}

# (case, layer from the sentinel path, environment, words in the error)
REFUSED = [
    ("hardlink-absolute-out", lambda s: _plain([E("h", "link", link=f"{s}/secret.txt")]), None, ["h"]),
    ("hardlink-up-and-out", lambda s: _plain([E("h", "link", link="../" * 12 + s.lstrip("/") + "/secret.txt")]),
     None, ["h"]),
    ("hardlink-through-symlink", lambda s: _plain([E("s", "sym", link=s), E("h", "link", link="s/secret.txt")]),
     None, ["h"]),
    ("dotdot-name", lambda s: _plain([E("../" * 12 + s.lstrip("/") + "/pwned.txt", data=b"pwned")]), None, [".."]),
    ("dotdot-deep-name", lambda s: _plain([E("a", "dir"), E("a/../../pwned.txt", data=b"pwned")]), None, [".."]),
    ("whiteout-of-root", lambda s: _plain([E(".wh..")]), None, []),
    ("whiteout-of-parent", lambda s: _plain([E("a", "dir"), E("a/.wh...")]), None, []),
    ("symlink-loop", lambda s: _plain([E("a", "sym", link="b"), E("b", "sym", link="a"), E("a/f", data=b"x")]),
     None, []),
    ("overlay-xattr-smuggled", lambda s: _plain([E("d", "dir", pax={"SCHILY.xattr.trusted.overlay.redirect": s})]),
     None, ["overlay"]),
    ("gzip-bomb", lambda s: _gzip_bomb(), LIMITS, ["more than"]),
    ("entry-count-bomb", lambda s: _plain([E(f"d{i}", "dir") for i in range(3000)]), LIMITS, ["more than 1000 entries"]),
    ("sparse-10g-over-the-limit", lambda s: (lambda raw: (gzip.compress(raw, mtime=0), _sha(raw)))(
        make_tar([gnu_sparse("bomb", 10 << 30, [(0, b"head"), ((10 << 30) - 4, b"tail")])])), LIMITS, ["exceeds"]),
    ("declared-40g-file", lambda s: _declared_huge(), None, ["exceeds the limit"]),
]


@pytest.fixture(scope="module")
def crafted(registry, sentinel, tmp_path_factory):
    """Every crafted image pushed to the session's registry: the refused ones alone (one layer,
    so that no snapshot may be left at all) and one image holding the contained cases."""
    layout = str(tmp_path_factory.mktemp("crafted"))
    refs = {}
    for case, make, _env, _words in REFUSED:
        write_custom(layout, case, [make(sentinel.path)])
        refs[case] = f"{registry.host}/evil/{case}:latest"
        world.push_layout(layout, case, refs[case])
    s, tag = sentinel.path, sentinel.tag
    base = world._tar(world.busybox_entries())
    contained = [
        (gzip.compress(base, mtime=0), _sha(base)),
        # an absolute link, then a file written through it: lands under the snapshot's own <s>
        _plain([E("abs", "sym", link=s), E("abs/through-absolute.txt", data=b"pwned\n")]),
        # ".." never climbs above the root while a link is resolved
        _plain([E("up", "sym", link="../" * 12), E("up" + s + "/through-relative.txt", data=b"pwned\n")]),
        # a chain of links, the last one absolute, to the host's /tmp
        _plain([E("c1", "sym", link="c2"), E("c2", "sym", link="c3"), E("c3", "sym", link="/tmp"),
                E(f"c1/{tag}-chain.txt", data=b"pwned\n")]),
        # a link to the host's /etc, then a file through it: the image's /etc
        _plain([E("etclink", "sym", link="/etc"), E(f"etclink/{tag}-etc.txt", data=b"pwned\n")]),
        # device nodes are allowed (as docker allows them) and contained by the device cgroup
        _plain([E("devs", "dir"), E("devs/mem", "chr", mode=0o666, dev=(1, 1)),
                E("devs/sda", "blk", mode=0o666, dev=(8, 0))]),
        # a 10 GB sparse file within the limits: written with its holes
        (lambda raw: (gzip.compress(raw, mtime=0), _sha(raw)))(
            make_tar([gnu_sparse("sparse.bin", 10 << 30, [(0, b"head"), ((10 << 30) - 4, b"tail")])])),
    ]
    write_custom(layout, "contained", contained)
    refs["contained"] = f"{registry.host}/evil/contained:latest"
    world.push_layout(layout, "contained", refs["contained"])
    return refs


@pytest.mark.parametrize("case", [c[0] for c in REFUSED])
def test_crafted_layer_is_refused(case, crafted, sentinel, nerdpy):
    _case, _make, env, words = next(c for c in REFUSED if c[0] == case)
    t0 = time.monotonic()
    r = nerdpy("pull", crafted[case], env=env)
    took = time.monotonic() - t0
    line = one_line_error(r, 125)
    for w in words:
        assert w in line, line
    assert took < 20, f"{case}: refusal took {took:.1f}s"
    assert_nothing_pulled(nerdpy)
    sentinel.assert_untouched()


def test_crafted_layers_are_contained(crafted, sentinel, nerdpy):
    ref = crafted["contained"]
    r = nerdpy("pull", ref)
    assert r.returncode == 0, r.stderr
    sentinel.assert_untouched()
    s, tag = sentinel.path, sentinel.tag
    script = "; ".join([
        f"cat {s}/through-absolute.txt {s}/through-relative.txt /tmp/{tag}-chain.txt /etc/{tag}-etc.txt",
        "readlink /abs; readlink /c3; readlink /etclink",
        "head -c 1 /devs/mem; echo mem=$?",
        "head -c 1 /devs/sda; echo sda=$?",
        "stat -c %s /sparse.bin; head -c 4 /sparse.bin; echo; tail -c 4 /sparse.bin; echo",
    ])
    r = nerdpy("run", "--rm", "--network", "none", ref, "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    out = r.stdout.split()
    assert out[:4] == ["pwned"] * 4, r.stdout
    assert out[4:7] == [s, "/tmp", "/etc"], r.stdout
    # the device cgroup keeps the nodes from reaching the devices
    assert "mem=1" in out and "sda=1" in out, r.stdout
    assert r.stderr.count("Operation not permitted") == 2, r.stderr
    assert out[-3:] == [str(10 << 30), "head", "tail"], r.stdout
    # the sparse file takes next to nothing on disk
    db = sqlite3.connect(f"file:{nerdpy.data_root}/meta.db?mode=ro", uri=True)
    ids = [i for (i,) in db.execute("SELECT id FROM snapshots")]
    db.close()
    found = [os.path.join(nerdpy.data_root, "snapshots", str(i), "fs", "sparse.bin") for i in ids]
    found = [p for p in found if os.path.exists(p)]
    assert len(found) == 1 and os.stat(found[0]).st_blocks * 512 < (1 << 20)
    sentinel.assert_untouched()
    assert not os.path.exists(f"/tmp/{tag}-chain.txt") and not os.path.exists(f"/etc/{tag}-etc.txt")


# -- a registry that lies, loops and stalls ------------------------------------------------------------
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


class FakeRegistry:
    """The distribution API v2 on loopback, serving what a test puts in it; `hook(handler)` may
    answer a request itself (return True). `host` and `alias` (localhost) are two hosts of one
    server, for redirects to "another host"."""

    def __init__(self, bearer: bool = False):
        self.manifests: dict[tuple[str, str], tuple[str, bytes]] = {}
        self.blobs: dict[str, bytes] = {}
        self.log: list[tuple[str, str, dict]] = []
        self.hook = None
        self.bearer = bearer
        self.token = "tok-" + secrets.token_hex(8)
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                fake._serve(self, head=False)

            def do_HEAD(self):
                fake._serve(self, head=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.alias = f"localhost:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def add_image(self, repo: str, tag: str, layers: list[bytes], config: bytes | None = None,
                  change=None, content_type: str | None = None) -> bytes:
        """Layers are raw tars (gzipped here); `change(manifest dict)` may lie before it is sent."""
        descs, diffs = [], []
        for raw in layers:
            blob = gzip.compress(raw, mtime=0)
            self.blobs[_sha(blob)] = blob
            descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _sha(blob),
                          "size": len(blob)})
            diffs.append(_sha(raw))
        if config is None:
            config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                                 "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
        self.blobs[_sha(config)] = config
        m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
             "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _sha(config),
                        "size": len(config)}, "layers": descs}
        if change:
            m = change(m) or m
        data = m if isinstance(m, bytes) else json.dumps(m).encode()
        ct = content_type or (m.get("mediaType") if isinstance(m, dict) else None) or OCI_MANIFEST
        self.manifests[(repo, tag)] = (ct, data)
        self.manifests[(repo, _sha(data))] = (ct, data)
        return data

    def send(self, h, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)

    def _serve(self, h, head: bool):
        path = h.path.split("?")[0]
        self.log.append((h.command, h.path, dict(h.headers)))
        if self.hook and self.hook(h):
            return
        if path.startswith("/token"):
            return self.send(h, 200, json.dumps({"token": self.token}).encode(), {"Content-Type": "application/json"})
        if path.startswith("/elsewhere/"):  # "another host": no auth here
            path = "/v2/" + path[len("/elsewhere/"):]
        elif self.bearer and path.startswith("/v2/") and h.headers.get("Authorization") != f"Bearer {self.token}":
            realm = f'Bearer realm="http://{self.host}/token",service="fake"'
            return self.send(h, 401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                             {"WWW-Authenticate": realm, "Content-Type": "application/json"}, head)
        if path == "/v2/":
            return self.send(h, 200, b"{}", {"Content-Type": "application/json"}, head)
        if "/manifests/" in path:
            repo, ref = path[4:].split("/manifests/")
            got = self.manifests.get((repo, ref))
            if not got:
                return self.send(h, 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}',
                                 {"Content-Type": "application/json"}, head)
            ct, data = got
            return self.send(h, 200, data, {"Content-Type": ct, "Docker-Content-Digest": _sha(data)}, head)
        if "/blobs/" in path:
            digest = path.rsplit("/", 1)[1]
            data = self.blobs.get(digest)
            if data is None:
                return self.send(h, 404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}',
                                 {"Content-Type": "application/json"}, head)
            rng = h.headers.get("Range")
            if rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
                return self.send(h, 206, data[start:], {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}",
                                                        "Content-Type": "application/octet-stream"}, head)
            return self.send(h, 200, data, {"Content-Type": "application/octet-stream"}, head)
        return self.send(h, 404, b"", {}, head)


@pytest.fixture
def fake():
    made = []

    def make(**kw) -> FakeRegistry:
        r = FakeRegistry(**kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


def _small_layer(n: int = 200_000) -> bytes:
    return make_tar([E("data.bin", data=os.urandom(n))])


def _lying_manifests():
    def index_type(m):
        m["mediaType"] = OCI_INDEX          # says index, is a manifest (and is served as one)
    def layer_is_config(m):
        m["layers"][0]["mediaType"] = "application/vnd.oci.image.config.v1+json"
    def size_too_small(m):
        m["layers"][0]["size"] -= 1000     # the blob is longer than the manifest says
    def deep(m):
        return b'{"schemaVersion": 2, "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    def schema1(m):
        return json.dumps({"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []}).encode()
    def not_an_object(m):
        return b'["schemaVersion", 2]'
    def bad_digest(m):
        m["layers"][0]["digest"] = "sha256:../../../../etc/passwd"
    return [
        ("mediatype-says-index", index_type, None, []),
        ("layer-mediatype-is-config", layer_is_config, None, ["media type"]),
        ("layer-larger-than-descriptor", size_too_small, None, ["larger than"]),
        ("deeply-nested-json", deep, OCI_MANIFEST, []),
        ("schema1", schema1, "application/vnd.docker.distribution.manifest.v1+prettyjws", ["schema"]),
        ("not-an-object", not_an_object, OCI_MANIFEST, []),
        ("digest-with-path", bad_digest, None, []),
    ]


@pytest.mark.parametrize("case", [c[0] for c in _lying_manifests()])
def test_lying_manifests_are_refused(case, fake, nerdpy):
    _c, change, ct, words = next(c for c in _lying_manifests() if c[0] == case)
    reg = fake()
    reg.add_image("lies/img", "latest", [_small_layer()], change=change, content_type=ct)
    line = one_line_error(nerdpy("pull", f"{reg.host}/lies/img:latest"), 125)
    for w in words:
        assert w in line.lower(), line
    assert_nothing_pulled(nerdpy)


def test_config_that_is_not_json_is_refused(fake, nerdpy):
    reg = fake()
    for name, config in (("garbage", b"\xff\xfe not json at all"), ("nested", b"[" * 100_000 + b"]" * 100_000),
                         ("list", b"[1, 2, 3]"), ("no-rootfs", b'{"architecture": "amd64", "os": "linux"}')):
        reg.add_image(f"cfg/{name}", "latest", [_small_layer()], config=config)
        one_line_error(nerdpy("pull", f"{reg.host}/cfg/{name}:latest"), 125)
        assert_nothing_pulled(nerdpy)


def test_redirect_loops_are_refused(fake, nerdpy):
    reg = fake()
    reg.add_image("loop/self", "latest", [_small_layer()])
    reg.add_image("loop/pingpong", "latest", [_small_layer()])
    reg.add_image("loop/blob", "latest", [_small_layer()])

    def hook(h):
        p = h.path
        if p.startswith("/v2/loop/self/manifests/"):
            reg.send(h, 307, headers={"Location": p})
            return True
        if p.startswith("/v2/loop/pingpong/manifests/") or p.startswith("/pong/"):
            reg.send(h, 302, headers={"Location": ("/pong" + p) if p.startswith("/v2/") else p[len("/pong"):]})
            return True
        if p.startswith("/v2/loop/blob/blobs/") or p.startswith("/b2/"):
            reg.send(h, 307, headers={"Location": ("/b2" + p) if p.startswith("/v2/") else p[len("/b2"):]})
            return True
        return False

    reg.hook = hook
    line = one_line_error(nerdpy("pull", f"{reg.host}/loop/self:latest"), 125)
    assert "redirect" in line, line
    line = one_line_error(nerdpy("pull", f"{reg.host}/loop/pingpong:latest"), 125)
    assert "redirect" in line, line
    t0 = time.monotonic()
    line = one_line_error(nerdpy("pull", f"{reg.host}/loop/blob:latest"), 125)
    assert "redirect" in line and time.monotonic() - t0 < 30, line
    assert_nothing_pulled(nerdpy)
    # each loop was cut off after a few hops, not followed forever
    assert len(reg.log) < 200, len(reg.log)


def test_stalled_registry_times_out_or_resumes(fake, nerdpy):
    env = {"NERDPY_REGISTRY_TIMEOUT": "1"}
    reg = fake()
    reg.add_image("stall/manifest", "latest", [_small_layer()])
    data = _small_layer(400_000)
    reg.add_image("stall/once", "latest", [data])
    reg.add_image("stall/always", "latest", [_small_layer()])
    stalled: dict[str, int] = {}

    def hook(h):
        p = h.path
        if p.startswith("/v2/stall/manifest/manifests/"):
            reg.release.wait(60)            # accepts, then never answers
            return True
        if "/blobs/" in p and (p.startswith("/v2/stall/once/") or p.startswith("/v2/stall/always/")):
            digest = p.rsplit("/", 1)[1]
            blob = reg.blobs[digest]
            if len(blob) < 10000:           # the config
                return False
            n = stalled[p] = stalled.get(p, 0) + 1
            if p.startswith("/v2/stall/once/") and n > 1:
                return False                # the retry is served (from its Range)
            # headers and half the body, then nothing more
            h.send_response(200)
            h.send_header("Content-Length", str(len(blob)))
            h.send_header("Content-Type", "application/octet-stream")
            h.end_headers()
            h.wfile.write(blob[: len(blob) // 2])
            h.wfile.flush()
            reg.release.wait(60)
            return True
        return False

    reg.hook = hook
    t0 = time.monotonic()
    line = one_line_error(nerdpy("pull", f"{reg.host}/stall/manifest:latest", env=env, timeout=90), 125)
    assert "timed out" in line and time.monotonic() - t0 < 20, line
    assert_nothing_pulled(nerdpy)

    # a blob that stalls once: the retry resumes where it stopped, and the image is whole
    t0 = time.monotonic()
    r = nerdpy("pull", "-q", f"{reg.host}/stall/once:latest", env=env, timeout=90)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 30
    ranged = [hdrs.get("Range") for method, path, hdrs in reg.log if path.startswith("/v2/stall/once/blobs/")
              and hdrs.get("Range")]
    assert ranged and ranged[0].startswith("bytes=") and int(ranged[0][6:-1]) > 0, ranged
    unpacked = [os.path.join(root, "data.bin") for root, _d, files in os.walk(os.path.join(nerdpy.data_root, "snapshots"))
                if "data.bin" in files]
    assert len(unpacked) == 1 and os.path.getsize(unpacked[0]) == 400_000
    layer = make_tar([E("data.bin", data=open(unpacked[0], "rb").read())])
    assert _sha(layer) == _sha(data)
    nerdpy("rmi", f"{reg.host}/stall/once:latest", check=True)

    # a blob that always stalls: a clear error after the retries, not a hang
    t0 = time.monotonic()
    line = one_line_error(nerdpy("pull", f"{reg.host}/stall/always:latest", env=env, timeout=120), 125)
    took = time.monotonic() - t0
    assert "failed" in line or "timed out" in line, line
    assert took < 60, took
    assert_nothing_pulled(nerdpy)


def test_bearer_token_does_not_follow_a_redirect_to_another_host(fake, nerdpy):
    reg = fake(bearer=True)
    reg.add_image("auth/img", "latest", [_small_layer()])

    def hook(h):
        if "/blobs/" in h.path and h.path.startswith("/v2/") and \
                h.headers.get("Authorization") == f"Bearer {reg.token}":
            # to "another host" (localhost instead of 127.0.0.1), as registries send blobs to a CDN
            reg.send(h, 307, headers={"Location": f"http://{reg.alias}/elsewhere/{h.path[len('/v2/'):]}"})
            return True
        return False

    reg.hook = hook
    r = nerdpy("pull", "-q", f"{reg.host}/auth/img:latest")
    assert r.returncode == 0, r.stderr
    away = [hdrs for method, path, hdrs in reg.log if path.startswith("/elsewhere/")]
    assert away, "no blob went through the redirect"
    assert all("Authorization" not in hdrs for hdrs in away), away
    assert all(hdrs.get("Host", "").startswith("localhost:") for hdrs in away)
    # while the registry itself did get the token
    assert any(hdrs.get("Authorization") == f"Bearer {reg.token}" for _m, p, hdrs in reg.log if p.startswith("/v2/auth"))


def test_failing_registry_gives_one_clear_line(fake, nerdpy):
    reg = fake()
    reg.add_image("err/img", "latest", [_small_layer()])

    def hook(h):
        if "/manifests/" in h.path:
            reg.send(h, 500, b'{"errors":[{"code":"UNKNOWN","message":"the registry is on fire"}]}',
                     {"Content-Type": "application/json"})
            return True
        return False

    reg.hook = hook
    line = one_line_error(nerdpy("pull", f"{reg.host}/err/img:latest"), 125)
    assert "500" in line and "on fire" in line, line
    # retried a few times, then given up
    assert 2 <= len([1 for m, p, _h in reg.log if "/manifests/" in p]) <= 10
    assert_nothing_pulled(nerdpy)


# -- hostile archives for load -------------------------------------------------------------------------------
def _tar(members: list[tuple]) -> bytes:
    """(name, bytes) files, (name, "sym"|"lnk", target) links."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for m in members:
            ti = tarfile.TarInfo(m[0])
            if len(m) == 3:
                ti.type = tarfile.SYMTYPE if m[1] == "sym" else tarfile.LNKTYPE
                ti.linkname = m[2]
                tf.addfile(ti)
            else:
                ti.size = len(m[1])
                tf.addfile(ti, io.BytesIO(m[1]))
    return buf.getvalue()


def _docker_archive(config: bytes, layer_names: list[str], extra: list[tuple] = ()) -> bytes:
    cfg = _sha(config)[7:]
    m = [{"Config": f"{cfg}.json", "RepoTags": ["evil/load:1"], "Layers": layer_names}]
    return _tar([("manifest.json", json.dumps(m).encode()), (f"{cfg}.json", config), *extra])


def _load_cases(s: str):
    layer = make_tar([E("f.txt", data=b"fine")])
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
                                                                        "diff_ids": [_sha(layer)]}}).encode()
    big_cfg = b'{"architecture": "amd64", "pad": "' + b" " * (21 << 20) + b'"}'
    big_manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "pad": " " * (5 << 20)}).encode()
    index = lambda d, n: json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": d,  # noqa: E731
                                                                        "size": n}]}).encode()
    return [
        ("hardlink-up-and-out", _tar([("l.tar", "lnk", "../../../../" + s.lstrip("/") + "/secret.txt"),
                                      ("manifest.json", b"[]")]), ["'..'"]),
        ("hardlink-absolute", _tar([("l.tar", "lnk", f"{s}/secret.txt"), ("manifest.json", b"[]")]), ["absolute"]),
        ("symlink-absolute-as-layer", _docker_archive(cfg, ["l.tar"], [("l.tar", "sym", f"{s}/secret.txt")]),
         ["absolute"]),
        ("symlink-chain-out", _tar([("a", "sym", "b"), ("b", "sym", "c/../../x"), ("manifest.json", b"[]")]),
         ["leaves the archive"]),
        ("symlinked-dir-then-file", _tar([("blobs", "sym", "../../.." + s), ("blobs/sha256/x", b"x")]),
         ["leaves the archive"]),
        ("symlink-loop-as-layer", _docker_archive(cfg, ["a.tar"], [("a.tar", "sym", "b.tar"), ("b.tar", "sym", "a.tar")]),
         ["a.tar"]),
        ("dotdot-member", _tar([("x/../../" + s.lstrip("/") + "/pwned.txt", b"pwned"), ("manifest.json", b"[]")]),
         ["'..'"]),
        ("deeply-nested-manifest-json", _tar([("manifest.json", b"[" * 100_000 + b"]" * 100_000)]), ["manifest.json"]),
        ("deeply-nested-index-json", _tar([("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                                           ("index.json", b'{"m":' * 50_000 + b"1" + b"}" * 50_000)]), ["index.json"]),
        ("oversized-index-json", _tar([("index.json", b" " * (21 << 20))]), ["index.json", "20 MiB"]),
        ("oversized-repositories", _tar([("repositories", b"{" + b" " * (21 << 20) + b"}"), ("manifest.json", b"[]")]),
         ["repositories", "20 MiB"]),
        ("oversized-config", _docker_archive(big_cfg, ["l.tar"], [("l.tar", layer)]), ["20 MiB"]),
        ("oversized-oci-manifest", _tar([("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                                         (f"blobs/sha256/{_sha(big_manifest)[7:]}", big_manifest),
                                         ("index.json", index(_sha(big_manifest), len(big_manifest)))]), ["MiB"]),
        ("manifest-json-wrong-types", _tar([("manifest.json", b'[{"Config": 5, "RepoTags": "x", "Layers": 7}]')]), []),
        ("blob-name-not-hex", _tar([("blobs/sha256/../../x", b"x")]), []),
    ]


def test_load_refuses_hostile_archives(nerdpy, sentinel, tmp_path):
    cases = _load_cases(sentinel.path)
    assert len(cases) >= 15
    for case, data, words in cases:
        path = tmp_path / f"{case}.tar"
        path.write_bytes(data)
        r = nerdpy("load", "-i", str(path))
        try:
            line = one_line_error(r, 1)
            for w in words:
                assert w in line, line
        except AssertionError as e:
            raise AssertionError(f"case {case}: {e}") from None
        assert nerdpy("images", "-q").stdout == "", case
        staging = os.path.join(nerdpy.data_root, "content", "staging")
        assert not (os.path.isdir(staging) and os.listdir(staging)), (case, os.listdir(staging))
        sentinel.assert_untouched()
    assert_nothing_pulled(nerdpy)


# -- hostile tars for cp into a container -----------------------------------------------------------------------
@pytest.fixture
def box(nerdpy, images):
    nerdpy("pull", "-q", images.busybox, check=True)
    nerdpy("run", "-d", "--name", "box", images.busybox, "sh", "-c",
           "mkdir -p /d/sub && ln -s /tmp /d/tmplink && exec sleep 600", check=True)
    for _ in range(50):
        if nerdpy("exec", "box", "test", "-L", "/d/tmplink").returncode == 0:
            break
        time.sleep(0.1)
    return "box"


def _cp_in(nerdpy, tar: bytes, dest: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nerdpy", "--data-root", nerdpy.data_root, "cp", "-", dest],
                          input=tar, capture_output=True, env=nerdpy.env, timeout=60)


def test_cp_refuses_hostile_tars(nerdpy, box, sentinel):
    s, tag = sentinel.path, sentinel.tag
    cases = [
        # ".." names that climb above the destination (docker: "... is outside of ...")
        ("dotdot", [E(f"../../../../../../../../tmp/{tag}-dotdot", data=b"pwned")], "outside"),
        ("dotdot-deep", [E("a", "dir"), E(f"a/../../{tag}-deep", data=b"pwned")], "outside"),
        ("dotdot-to-sentinel", [E("../" * 12 + s.lstrip("/") + "/pwned.txt", data=b"pwned")], "outside"),
        # a link, then a file through it (CVE-2018-15664 class): absolute, relative, a chain
        ("symlink-absolute-then-file", [E("l1", "sym", link=s), E("l1/pwned.txt", data=b"pwned")], "through"),
        ("symlink-relative-then-file", [E("l2", "sym", link="../" * 12 + s.lstrip("/")),
                                        E("l2/pwned.txt", data=b"pwned")], "through"),
        ("symlink-chain-then-file", [E("c1", "sym", link="c2"), E("c2", "sym", link="/tmp"),
                                     E(f"c1/{tag}-chain", data=b"pwned")], "through"),
        ("symlink-in-container-then-file", [E(f"d/tmplink/{tag}-inner", data=b"pwned")], "through"),
        ("hardlink-up-and-out", [E("h", "link", link="../" * 12 + s.lstrip("/") + "/secret.txt")], "outside"),
    ]
    for case, entries, word in cases:
        r = _cp_in(nerdpy, make_tar(entries), "box:/")
        line = one_line_error(r, 1)
        assert word in line, (case, line)
        sentinel.assert_untouched()
    assert not [n for n in os.listdir("/tmp") if tag in n]
    # nothing of it landed in the container either (the first refused entry stops the copy)
    r = nerdpy("exec", "box", "sh", "-c", f"find / -xdev -name '*{tag}*' -o -xdev -name pwned.txt")
    assert r.returncode == 0 and r.stdout == "", r.stdout
    # a hardlink to an absolute host path means the container's path: here nothing is there
    r = _cp_in(nerdpy, make_tar([E("h2", "link", link="/etc/shadow")]), "box:/")
    assert r.returncode == 1 and b"Traceback" not in r.stderr, r.stderr
    assert os.stat("/etc/shadow").st_nlink == 1
    sentinel.assert_untouched()


def test_cp_while_the_container_swaps_links(nerdpy, box, sentinel, tmp_path):
    """The CVE-2018-15664 race itself: while `cp` works, the container keeps swapping a directory
    for a link to / (its own /, and the host's path of the sentinel). Every copy lands in the
    container or fails; none reaches the host."""
    s, tag = sentinel.path, sentinel.tag
    # /race/x is by turns an empty directory and a link to /; the container has its own <s>/
    swap = (f"mkdir -p {s} /race; while true; do rm -rf /race/x; mkdir /race/x; rm -rf /race/x; "
            f"ln -s / /race/x; done")
    nerdpy("exec", "-d", "box", "sh", "-c", swap, check=True)
    payload = tmp_path / f"{tag}-race"
    payload.write_text("pwned\n")
    for i in range(12):
        for dest in (f"box:/race/x{s}/", "box:/race/x/tmp/"):
            r = nerdpy("cp", str(payload), dest)
            assert "Traceback" not in r.stderr, r.stderr
        r = nerdpy("cp", f"box:/race/x{s}/secret.txt", str(tmp_path / f"out{i}"))
        assert "Traceback" not in r.stderr, r.stderr
        assert not (tmp_path / f"out{i}").exists() or (tmp_path / f"out{i}").read_text() != "host secret\n"
    sentinel.assert_untouched()
    assert not [n for n in os.listdir("/tmp") if tag in n]
