"""The integration-test world: real registries (Debian's docker-registry) and test images built
independently of nerdpy, with umoci, skopeo, Python's tarfile and busybox-static.

Images are built once into a cache directory keyed by this file's source and the busybox
binary, then pushed into each session's fresh registry.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BUSYBOX = "/bin/busybox"
APPLETS = ("sh true false echo cat ls sleep env id ps wc head mkdir rm touch hostname top nc wget ip "
           "mount grep sed printf test stat date kill ping tail cp mv ln chmod chown readlink find "
           "uname whoami yes seq tr cut sort uniq du df dd tee xargs basename dirname pwd").split()
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def tools_missing() -> list[str]:
    need = ["docker-registry", "skopeo", "umoci", "openssl", "htpasswd"]
    missing = [t for t in need if shutil.which(t) is None]
    if not os.path.exists(BUSYBOX):
        missing.append("busybox-static")
    return missing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sh(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, capture_output=True, **kw)


# -- registries ---------------------------------------------------------------------------
class Registry:
    def __init__(self, root: str, tls: tuple[str, str] | None = None, htpasswd: str | None = None):
        self.root = root
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = ("https://" if tls else "http://") + self.host
        os.makedirs(root, exist_ok=True)
        conf = [
            "version: 0.1",
            "log:\n  level: error\n  accesslog:\n    disabled: true",
            f"storage:\n  filesystem:\n    rootdirectory: {root}/data\n  delete:\n    enabled: true",
            f"http:\n  addr: {self.host}",
        ]
        if tls:
            conf[-1] += f"\n  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}"
        if htpasswd:
            conf.append(f"auth:\n  htpasswd:\n    realm: nerdpy-test\n    path: {htpasswd}")
        self.config = os.path.join(root, "config.yml")
        with open(self.config, "w") as f:
            f.write("\n".join(conf) + "\n")
        self.log = open(os.path.join(root, "registry.log"), "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", self.config], stdout=self.log, stderr=self.log)
        self._wait(tls)

    def _wait(self, tls) -> None:
        import ssl

        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        for _ in range(200):
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {open(self.log.name).read()[-2000:]}")
            try:
                urllib.request.urlopen(self.url + "/v2/", timeout=1, context=ctx if tls else None)
                return
            except urllib.error.HTTPError:
                return  # 401 from an auth registry: it is up
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# -- OCI layouts written by hand (for layers umoci cannot express) -------------------------------
def _blob(layout: str, data: bytes) -> tuple[str, int]:
    d = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", d)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


def _tar(entries: list[tuple]) -> bytes:
    """entries: (name, kind, payload) with kind file|dir|symlink|whiteout."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, payload in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, payload or 0o755
                tf.addfile(ti)
            elif kind == "symlink":
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, payload, 0o777
                tf.addfile(ti)
            else:
                data = payload if isinstance(payload, bytes) else payload.encode()
                ti.size, ti.mode = len(data), 0o755 if kind == "exec" else 0o644
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def busybox_entries(extra: list[tuple] = ()) -> list[tuple]:
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    entries = [("bin", "dir", 0o755), ("bin/busybox", "exec", bb)]
    entries += [(f"bin/{a}", "symlink", "busybox") for a in APPLETS]
    entries += [
        ("etc", "dir", 0o755),
        ("etc/passwd", "file", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
                               "app:x:1000:1000:app:/home/app:/bin/sh\n"),
        ("etc/group", "file", "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nextra:x:2000:app\n"),
        ("tmp", "dir", 0o1777), ("root", "dir", 0o700), ("home", "dir", 0o755), ("home/app", "dir", 0o755),
        ("proc", "dir", 0o755), ("sys", "dir", 0o755), ("dev", "dir", 0o755),
    ]
    return entries + list(extra)


def write_image(layout: str, tag: str, layers: list[bytes], config: dict, compress: str = "gzip",
                arch: str = "amd64", index: bool = True) -> dict:
    """Write an OCI image (manifest + config + layers) into `layout`; returns the manifest descriptor."""
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    descs, diff_ids = [], []
    for raw in layers:
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        if compress == "gzip":
            data = gzip.compress(raw, mtime=0)
            mt = "application/vnd.oci.image.layer.v1.tar+gzip"
        elif compress == "zstd":
            import zstandard

            data = zstandard.ZstdCompressor(level=3).compress(raw)
            mt = "application/vnd.oci.image.layer.v1.tar+zstd"
        else:
            data, mt = raw, "application/vnd.oci.image.layer.v1.tar"
        d, n = _blob(layout, data)
        descs.append({"mediaType": mt, "digest": d, "size": n})
    cfg = {"created": "2024-01-02T03:04:05Z", "architecture": arch, "os": "linux",
           "config": config, "rootfs": {"type": "layers", "diff_ids": diff_ids},
           "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "tests/world.py"}] * len(layers)}
    cd, cn = _blob(layout, json.dumps(cfg).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
                "layers": descs}
    md, mn = _blob(layout, json.dumps(manifest).encode())
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn,
            "platform": {"os": "linux", "architecture": arch}}
    if index:
        _add_to_index(layout, dict(desc, annotations={"org.opencontainers.image.ref.name": tag}))
    return desc


def _add_to_index(layout: str, desc: dict) -> None:
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    path = os.path.join(layout, "index.json")
    idx = json.load(open(path)) if os.path.exists(path) else {"schemaVersion": 2, "manifests": []}
    name = (desc.get("annotations") or {}).get("org.opencontainers.image.ref.name")
    idx["manifests"] = [m for m in idx["manifests"]
                        if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") != name]
    idx["manifests"].append(desc)
    with open(path, "w") as f:
        json.dump(idx, f)


def push_layout(layout: str, tag: str, dest: str, creds: tuple[str, str] | None = None,
                ca: str | None = None) -> None:
    """Push a manifest or index and its blobs as they are (no recompression), over plain HTTP(S)."""
    import ssl

    host, _, rest = dest.partition("/")
    repo, _, dtag = rest.rpartition(":")
    scheme = "https" if ca else "http"
    ctx = ssl.create_default_context(cafile=ca) if ca else None
    hdr = {}
    if creds:
        hdr["Authorization"] = "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
    idx = json.load(open(os.path.join(layout, "index.json")))
    top = next(m for m in idx["manifests"] if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag)

    def blob_bytes(d):
        return open(os.path.join(layout, "blobs", "sha256", d[7:]), "rb").read()

    def put_blob(d):
        req = urllib.request.Request(f"{scheme}://{host}/v2/{repo}/blobs/uploads/", method="POST", headers=hdr)
        loc = urllib.request.urlopen(req, context=ctx).headers["Location"]
        if loc.startswith("/"):
            loc = f"{scheme}://{host}{loc}"
        sep = "&" if "?" in loc else "?"
        data = blob_bytes(d)
        req = urllib.request.Request(f"{loc}{sep}digest={d}", data=data, method="PUT",
                                     headers=dict(hdr, **{"Content-Type": "application/octet-stream"}))
        urllib.request.urlopen(req, context=ctx)

    def put_manifest(desc, ref):
        data = blob_bytes(desc["digest"])
        doc = json.loads(data)
        if "manifests" in doc:
            for m in doc["manifests"]:
                put_manifest(m, m["digest"])
        else:
            for b in [doc["config"]] + doc["layers"]:
                put_blob(b["digest"])
        req = urllib.request.Request(f"{scheme}://{host}/v2/{repo}/manifests/{ref}", data=data, method="PUT",
                                     headers=dict(hdr, **{"Content-Type": doc.get("mediaType", desc["mediaType"])}))
        urllib.request.urlopen(req, context=ctx)

    put_manifest(top, dtag)


# -- the images -----------------------------------------------------------------------------------
BUSYBOX_CONFIG = {"Cmd": ["sh"], "Env": [PATH_ENV], "Labels": {"org.nerdpy.test": "busybox"},
                  "ExposedPorts": {"80/tcp": {}}, "WorkingDir": "/"}


def cache_dir() -> str:
    h = hashlib.sha256()
    h.update(open(__file__, "rb").read())
    h.update(open(BUSYBOX, "rb").read())
    d = os.path.join(os.environ.get("NERDPY_TEST_CACHE", "/var/tmp/nerdpy-test-cache"), h.hexdigest()[:16])
    os.makedirs(d, exist_ok=True)
    return d


def build_images() -> str:
    """Build every test image once; returns the cache dir holding the OCI layouts."""
    root = cache_dir()
    done = os.path.join(root, ".done")
    if os.path.exists(done):
        return root
    # 1. busybox with umoci (its own tar writer and gzip), config set by umoci
    umoci_layout = os.path.join(root, "umoci")
    shutil.rmtree(umoci_layout, ignore_errors=True)
    bundle = tempfile.mkdtemp(prefix="bundle-", dir=root)
    sh("umoci", "init", "--layout", umoci_layout)
    sh("umoci", "new", "--image", f"{umoci_layout}:busybox")
    shutil.rmtree(bundle)
    sh("umoci", "unpack", "--image", f"{umoci_layout}:busybox", bundle)
    rootfs = os.path.join(bundle, "rootfs")
    for name, kind, payload in busybox_entries():
        path = os.path.join(rootfs, name)
        if kind == "dir":
            os.makedirs(path, exist_ok=True)
            os.chmod(path, payload)
        elif kind == "symlink":
            os.symlink(payload, path)
        else:
            with open(path, "wb") as f:
                f.write(payload if isinstance(payload, bytes) else payload.encode())
            os.chmod(path, 0o755 if kind == "exec" else 0o644)
    sh("umoci", "repack", "--image", f"{umoci_layout}:busybox", bundle)
    shutil.rmtree(bundle)
    sh("umoci", "config", "--image", f"{umoci_layout}:busybox", "--config.cmd", "sh",
       "--config.env", PATH_ENV, "--config.label", "org.nerdpy.test=busybox",
       "--config.exposedports", "80/tcp", "--config.workingdir", "/",
       "--created", "2024-01-02T03:04:05Z")
    # 2. hand-written layouts: zstd, layered (whiteout + opaque), multi-platform index
    hand = os.path.join(root, "hand")
    shutil.rmtree(hand, ignore_errors=True)
    base = _tar(busybox_entries([("data", "dir", 0o755), ("data/old.txt", "file", "old\n")]))
    write_image(hand, "zstd", [base], BUSYBOX_CONFIG, compress="zstd")
    layer2 = _tar([("etc/.wh.group", "file", b""), ("data/.wh..wh..opq", "file", b""),
                   ("data", "dir", 0o755), ("data/new.txt", "file", "new\n"),
                   ("hello.txt", "file", "hello from layer 2\n")])
    write_image(hand, "layered", [base, layer2], dict(BUSYBOX_CONFIG, Cmd=["cat", "/hello.txt"]))
    amd = write_image(hand, "amd64", [_tar(busybox_entries([("platform", "file", "amd64\n")]))],
                      BUSYBOX_CONFIG, index=False)
    arm = write_image(hand, "arm64", [_tar([("platform", "file", "arm64\n")])],
                      {"Cmd": ["/bin/sh"]}, arch="arm64", index=False)
    att = write_image(hand, "att", [_tar([("attestation.json", "file", "{}")])], {}, arch="unknown", index=False)
    att["platform"] = {"os": "unknown", "architecture": "unknown"}
    att["annotations"] = {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": amd["digest"]}
    arm["platform"] = {"os": "linux", "architecture": "arm64", "variant": "v8"}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [amd, arm, att]}
    idd, idn = _blob(hand, json.dumps(index).encode())
    _add_to_index(hand, {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": idd, "size": idn,
                         "annotations": {"org.opencontainers.image.ref.name": "multiarch"}})
    open(done, "w").close()
    return root


class Images:
    """References of the test images in one registry."""

    def __init__(self, registry: Registry):
        self.registry = registry
        root = build_images()
        umoci_layout = os.path.join(root, "umoci")
        hand = os.path.join(root, "hand")
        h = registry.host
        self.busybox = f"{h}/test/busybox:latest"
        self.busybox_v2s2 = f"{h}/test/busybox-v2s2:latest"
        self.zstd = f"{h}/test/zstd:latest"
        self.layered = f"{h}/test/layered:latest"
        self.multiarch = f"{h}/test/multiarch:latest"
        skopeo = ["skopeo", "copy", "-q", "--dest-tls-verify=false"]
        sh(*skopeo, f"oci:{umoci_layout}:busybox", f"docker://{self.busybox}")
        sh(*skopeo, "--format", "v2s2", f"oci:{umoci_layout}:busybox", f"docker://{self.busybox_v2s2}")
        push_layout(hand, "zstd", self.zstd)
        push_layout(hand, "layered", self.layered)
        push_layout(hand, "multiarch", self.multiarch)

    @staticmethod
    def raw_manifest(ref: str, creds: str | None = None) -> bytes:
        args = ["skopeo", "inspect", "--raw", "--tls-verify=false"]
        if creds:
            args += ["--creds", creds]
        return sh(*args, f"docker://{ref}").stdout

    def manifest_digest(self, ref: str) -> str:
        return "sha256:" + hashlib.sha256(self.raw_manifest(ref)).hexdigest()

    def config_digest(self, ref: str) -> str:
        doc = json.loads(self.raw_manifest(ref))
        if "manifests" in doc:
            return ""
        return doc["config"]["digest"]


class AuthRegistry(Registry):
    """A registry behind TLS (self-signed) and htpasswd Basic auth, holding the busybox image."""

    username = "tester"
    password = "s3cret-pass"

    def __init__(self, root: str):
        os.makedirs(root, exist_ok=True)
        self.ca_path = os.path.join(root, "cert.pem")
        key = os.path.join(root, "key.pem")
        sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
           "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", self.ca_path)
        htpasswd = os.path.join(root, "htpasswd")
        with open(htpasswd, "wb") as f:
            f.write(sh("htpasswd", "-Bbn", self.username, self.password).stdout)
        super().__init__(root, tls=(self.ca_path, key), htpasswd=htpasswd)
        hand = os.path.join(build_images(), "hand")
        self.image = f"{self.host}/private/busybox:latest"
        push_layout(hand, "zstd", self.image, creds=(self.username, self.password), ca=self.ca_path)


def kill_monitors(run_root: str) -> None:
    """SIGKILL every container monitor working under `run_root` (a monitor's cwd is its run dir;
    its command line names no path)."""
    import signal

    root = os.path.realpath(str(run_root))
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if (cwd == root or cwd.startswith(root + "/")) and b"monitor.py" in cmd:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


def http_get(url: str, tries: int = 50) -> str:
    """The body at `url`, retried while nothing answers yet (a container still starting)."""
    for _ in range(tries):
        try:
            return urllib.request.urlopen(url, timeout=2).read().decode()
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answered at {url}")
