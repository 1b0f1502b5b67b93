"""`nerdpy push`, `login` and `logout` against the real registry (Debian's docker-registry), checked
independently: skopeo reads back what was pushed, a recording proxy counts the requests, the
docker config and a fake credential helper show what was stored."""
from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import json
import os
import re
import stat
import subprocess
import threading

import pytest

import world


# -- helpers ------------------------------------------------------------------------------------
def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("nerdpy: "), r.stderr
    return lines[0]


def skopeo_raw(ref: str, creds: str | None = None, ca_dir: str | None = None) -> bytes:
    args = ["skopeo", "inspect", "--raw"]
    args += ["--cert-dir", ca_dir] if ca_dir else ["--tls-verify=false"]
    if creds:
        args += ["--creds", creds]
    return world.sh(*args, f"docker://{ref}").stdout


def inspect(nerdpy, name: str) -> dict:
    return json.loads(nerdpy("image", "inspect", name, check=True).stdout)[0]


def digest_line(r) -> tuple[str, str, int]:
    m = re.fullmatch(r"(\S+): digest: (sha256:[0-9a-f]{64}) size: (\d+)", r.stdout.splitlines()[-1])
    assert m, r.stdout
    return m.group(1), m.group(2), int(m.group(3))


class RecordingProxy:
    """Forwards every request to a registry and records (method, path, headers). With `bearer`,
    it asks for Bearer tokens that /token hands out for the scopes asked for (to anyone, or only
    for `auth` Basic credentials), and refuses requests the token's scopes do not cover, as a
    token-auth registry does."""

    def __init__(self, upstream: str, bearer: bool = False, auth: tuple[str, str] | None = None,
                 faults: set[str] = frozenset()):
        self.upstream = upstream
        self.faults = set(faults)
        self.bearer = bearer
        self.auth = auth
        self.log: list[tuple[str, str, dict]] = []
        self.token_requests: list[str] = []
        self.tokens: dict[str, set[str]] = {}
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                proxy.handle(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def requests(self, method: str | None = None, contains: str = "") -> list[tuple[str, str, dict]]:
        return [e for e in self.log if (method is None or e[0] == method) and contains in e[1]]

    @staticmethod
    def _body(h) -> bytes:
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(h.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    h.rfile.readline()
                    return out
                out += h.rfile.read(size)
                h.rfile.readline()
        n = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(n) if n else b""

    def _reply(self, h, status: int, headers: dict, body: bytes = b"", head: bool = False):
        h.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                h.send_header(k, v)
        h.send_header("Content-Length", headers.get("Content-Length", str(len(body))) if head else str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)

    def _allowed(self, h, path: str) -> str | None:
        """None when the Bearer token covers the request, else the scope it needs."""
        if path == "/v2/":
            want = None
        else:
            repo = re.split(r"/(?:blobs|manifests|tags)/", path[4:].split("?")[0])[0]
            need = "pull" if h.command in ("GET", "HEAD") else "push"
            want = f"repository:{repo}:{need}"
        auth = h.headers.get("Authorization", "")
        scopes = self.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if scopes is None:
            return want or "registry:catalog:*"
        if want is None:
            return None
        granted = {s.rsplit(":", 1)[0] + ":" + a for s in scopes for a in s.rsplit(":", 1)[1].split(",")}
        if want not in granted:
            return want
        m = re.search(r"[?&]from=([^&]+)", path)
        if m:
            from urllib.parse import unquote

            source = unquote(m.group(1))
            if f"repository:{source}:pull" not in granted:
                return f"repository:{source}:pull"
        return None

    def handle(self, h):
        path, head = h.path, h.command == "HEAD"
        body = self._body(h)
        headers = {k: v for k, v in h.headers.items()}
        self.log.append((h.command, path, headers))
        if self.bearer and path.startswith("/token"):
            from urllib.parse import parse_qs, urlsplit

            self.token_requests.append(path)
            if self.auth:
                want = "Basic " + base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
                if headers.get("Authorization") != want:
                    return self._reply(h, 401, {"Content-Type": "application/json"}, b'{"details":"bad credentials"}')
            scopes = set(parse_qs(urlsplit(path).query).get("scope", []))
            if "no-cross-scope" in self.faults and len(scopes) > 1:
                return self._reply(h, 403, {"Content-Type": "application/json"}, b'{"details":"access denied"}')
            token = "tok-" + os.urandom(8).hex()
            self.tokens[token] = scopes
            return self._reply(h, 200, {"Content-Type": "application/json"}, json.dumps({"token": token}).encode())
        if self.bearer and path.startswith("/v2/"):
            missing = self._allowed(h, path)
            if missing is not None:
                realm = f'Bearer realm="http://{self.host}/token",service="recording",scope="{missing}"'
                return self._reply(h, 401, {"WWW-Authenticate": realm, "Content-Type": "application/json"},
                                   b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}', head)
        if "patch-dropped" in self.faults and h.command == "PATCH" and len(self.requests("PATCH")) == 2:
            # the chunk never reaches the registry
            return self._reply(h, 503, {"Content-Type": "text/plain"}, b"try again")
        conn = http.client.HTTPConnection(self.upstream, timeout=60)
        fwd = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "transfer-encoding", "connection")}
        fwd["Content-Length"] = str(len(body))
        conn.request(h.command, path, body=body if body or h.command in ("PUT", "POST", "PATCH") else None, headers=fwd)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        self._reply(h, resp.status, dict(resp.getheaders()), data, head)


@pytest.fixture
def proxy(registry):
    made = []

    def make(upstream=None, **kw):
        p = RecordingProxy(upstream or registry.host, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()


@pytest.fixture(scope="module")
def registry2(tmp_path_factory):
    reg = world.Registry(str(tmp_path_factory.mktemp("registry2")))
    yield reg
    reg.stop()


def hosts_dir(tmp_path, reg) -> str:
    d = tmp_path / "certs.d" / reg.host
    d.mkdir(parents=True, exist_ok=True)
    (d / "hosts.toml").write_text(f'server = "https://{reg.host}"\nca = "{reg.ca_path}"\n')
    return str(tmp_path / "certs.d")


def skopeo_cert_dir(tmp_path, reg) -> str:
    d = tmp_path / "skopeo-certs"
    d.mkdir(exist_ok=True)
    (d / "ca.crt").write_text(open(reg.ca_path).read())
    return str(d)


# -- push ---------------------------------------------------------------------------------------
def test_push_then_skopeo_reads_the_same_manifest(images, nerdpy, tmp_path):
    src = images.busybox
    nerdpy("pull", "-q", src, check=True)
    host = images.registry.host
    dest = f"{host}/pushed/busybox:v1"
    nerdpy("tag", src, dest, check=True)
    r = nerdpy("push", dest)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"The push refers to repository [{host}/pushed/busybox]"
    tag, digest, size = digest_line(r)
    raw = skopeo_raw(dest)
    assert tag == "v1" and digest == sha256(raw) == images.manifest_digest(src) and size == len(raw)
    layer = json.loads(raw)["layers"][0]["digest"]
    # the layer came from test/busybox on the same registry: mounted, not uploaded
    assert f"{layer[7:19]}: Mounted from test/busybox" in lines
    # an independent client copies it back whole
    out = tmp_path / "oci"
    world.sh("skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{dest}", f"oci:{out}")
    assert (out / "blobs" / "sha256" / layer[7:]).exists()
    # quiet: only the reference
    r = nerdpy("push", "-q", dest)
    assert r.returncode == 0 and r.stdout == dest + "\n", (r.stdout, r.stderr)


def test_second_push_skips_present_blobs_and_mount_is_used(images, nerdpy, proxy):
    p = proxy()
    src = images.layered.replace(images.registry.host, p.host)
    nerdpy("pull", "-q", src, check=True)
    dest = f"{p.host}/mounted/layered:latest"
    nerdpy("tag", src, dest, check=True)
    manifest = json.loads(skopeo_raw(images.layered))
    blobs = [manifest["config"]["digest"]] + [layer["digest"] for layer in manifest["layers"]]
    p.log.clear()
    r = nerdpy("push", dest)
    assert r.returncode == 0, r.stderr
    for layer in manifest["layers"]:
        assert f"{layer['digest'][7:19]}: Mounted from test/layered" in r.stdout
    mounts = p.requests("POST", "mount=")
    assert {m[1].split("mount=")[1].split("&")[0].replace("%3A", ":") for m in mounts} == set(blobs)
    assert all("from=test%2Flayered" in m[1] or "from=test/layered" in m[1] for m in mounts)
    # nothing was uploaded: no PATCH, no blob PUT
    assert p.requests("PATCH") == []
    assert [e for e in p.requests("PUT") if "/blobs/" in e[1]] == []
    assert len(p.requests("PUT", "/manifests/latest")) == 1
    assert sha256(skopeo_raw(dest.replace(p.host, images.registry.host))) == images.manifest_digest(images.layered)

    # again: every blob is HEADed and skipped
    p.log.clear()
    r = nerdpy("push", dest)
    assert r.returncode == 0, r.stderr
    for layer in manifest["layers"]:
        assert f"{layer['digest'][7:19]}: Layer already exists" in r.stdout
    assert p.requests("POST") == [] and p.requests("PATCH") == []
    heads = {e[1].rsplit("/", 1)[1] for e in p.requests("HEAD", "/blobs/")}
    assert heads == set(blobs)


SMALL_CHUNKS = {"NERDPY_PUSH_CHUNK_SIZE": str(8 << 20)}  # the default (32 MiB) would send 20 MiB at once


@pytest.fixture(scope="module")
def big_image(registry, tmp_path_factory):
    """A 20 MiB layer of random bytes (incompressible: a large blob) on top of busybox."""
    layout = str(tmp_path_factory.mktemp("big"))
    payload = os.urandom(20 << 20)
    layers = [world._tar(world.busybox_entries()), world._tar([("big.bin", "file", payload)])]
    world.write_image(layout, "big", layers, world.BUSYBOX_CONFIG, compress="none")
    ref = f"{registry.host}/test/big:latest"
    world.push_layout(layout, "big", ref)
    return ref, sha256(payload)


def test_large_layer_goes_in_chunks_to_another_registry(big_image, registry2, images, nerdpy, proxy, tmp_path):
    src, payload_digest = big_image
    nerdpy("pull", "-q", src, check=True)
    p = proxy(registry2.host)
    dest = f"{p.host}/big/copy:v2"
    nerdpy("tag", src, dest, check=True)
    r = nerdpy("push", dest, env=SMALL_CHUNKS)
    assert r.returncode == 0, r.stderr
    manifest = json.loads(skopeo_raw(src))
    big = max(manifest["layers"], key=lambda layer: layer["size"])
    assert big["size"] > 20 << 20
    # the large blob: PATCHes of at most 8 MiB with Content-Range, then a PUT ?digest= without a body
    patches = p.requests("PATCH")
    ranges = [e[2].get("Content-Range") for e in patches]
    assert len(patches) >= 3, ranges
    offsets = [tuple(int(x) for x in rng.split("-")) for rng in ranges]
    assert offsets[0][0] == 0 and offsets[-1][1] == big["size"] - 1
    assert all(b - a + 1 <= 8 << 20 for a, b in offsets)
    assert all(offsets[i + 1][0] == offsets[i][1] + 1 for i in range(len(offsets) - 1))
    closing = [e for e in p.requests("PUT", "digest=") if big["digest"][7:] in e[1]]
    assert len(closing) == 1 and closing[0][2].get("Content-Length") == "0"
    # the small ones: monolithic (POST then one PUT with the bytes)
    small = [e for e in p.requests("PUT", "digest=") if manifest["config"]["digest"][7:] in e[1]]
    assert len(small) == 1 and int(small[0][2]["Content-Length"]) == manifest["config"]["size"]
    # skopeo copies it back, and the file inside is what was written
    _, digest, _ = digest_line(r)
    assert digest == sha256(skopeo_raw(dest.replace(p.host, registry2.host)))
    out = tmp_path / "oci"
    world.sh("skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{registry2.host}/big/copy:v2", f"oci:{out}")
    import tarfile
    import urllib.request

    # (skopeo recompresses layers for oci:; look for the file in whichever layer holds it)
    index = json.loads((out / "index.json").read_text())
    copied = json.loads((out / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_text())
    found = []
    for layer in copied["layers"]:
        with tarfile.open(out / "blobs" / "sha256" / layer["digest"][7:], "r:*") as tf:
            if "big.bin" in tf.getnames():
                found.append(sha256(tf.extractfile("big.bin").read()))
    assert found == [payload_digest]
    # and the registry holds the blob byte for byte
    url = f"http://{registry2.host}/v2/big/copy/blobs/{big['digest']}"
    assert sha256(urllib.request.urlopen(url).read()) == big["digest"]


def test_chunked_upload_resumes_where_the_registry_stands(big_image, registry2, nerdpy, proxy):
    src, _ = big_image
    nerdpy("pull", "-q", src, check=True)
    p = proxy(registry2.host, faults={"patch-dropped"})
    dest = f"{p.host}/big/resumed:v1"
    nerdpy("tag", src, dest, check=True)
    r = nerdpy("push", dest, env=SMALL_CHUNKS)
    assert r.returncode == 0, r.stderr
    ranges = [tuple(int(x) for x in e[2]["Content-Range"].split("-")) for e in p.requests("PATCH")]
    # the second chunk failed: the client asked the registry where the upload stands and sent
    # that chunk again, not the first one
    assert len(p.requests("GET", "/blobs/uploads/")) == 1
    assert ranges[0][0] == 0 and ranges[1] == ranges[2] and ranges.count(ranges[0]) == 1
    assert all(ranges[i + 1][0] == ranges[i][1] + 1 for i in range(2, len(ranges) - 1))
    assert digest_line(r)[1] == sha256(skopeo_raw(dest.replace(p.host, registry2.host)))


def test_push_all_tags(images, nerdpy):
    nerdpy("pull", "-q", images.busybox, check=True)
    nerdpy("pull", "-q", images.zstd, check=True)
    repo = f"{images.registry.host}/alltags/app"
    nerdpy("tag", images.busybox, f"{repo}:one", check=True)
    nerdpy("tag", images.zstd, f"{repo}:two", check=True)
    r = nerdpy("push", "--all-tags", repo)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines.count(f"The push refers to repository [{repo}]") == 1
    done = [line for line in lines if ": digest: " in line]
    assert [line.split(":")[0] for line in done] == ["one", "two"]
    assert f"one: digest: {images.manifest_digest(images.busybox)}" in done[0]
    assert f"two: digest: {images.manifest_digest(images.zstd)}" in done[1]
    tags = json.loads(world.sh("skopeo", "list-tags", "--tls-verify=false", f"docker://{repo}").stdout)["Tags"]
    assert sorted(tags) == ["one", "two"]
    assert "tag can't be used" in one_line_error(nerdpy("push", "-a", f"{repo}:one"))


def test_push_index_when_every_platform_is_stored(registry, images, nerdpy, tmp_path):
    layout = str(tmp_path / "layout")
    amd = world.write_image(layout, "a", [world._tar(world.busybox_entries([("p", "file", "amd64\n")]))],
                            world.BUSYBOX_CONFIG, index=False)
    arm = world.write_image(layout, "b", [world._tar([("p", "file", "arm64\n")])], {}, arch="arm64", index=False)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [amd, arm]}
    d, n = world._blob(layout, json.dumps(index).encode())
    world._add_to_index(layout, {"mediaType": index["mediaType"], "digest": d, "size": n,
                                 "annotations": {"org.opencontainers.image.ref.name": "multi"}})
    src = f"{registry.host}/test/twoplatforms:latest"
    world.push_layout(layout, "multi", src)
    # every platform stored: the index goes, with both manifests
    nerdpy("pull", "-q", "--all-platforms", src, check=True)
    dest = f"{registry.host}/pushed/twoplatforms:latest"
    nerdpy("tag", src, dest, check=True)
    r = nerdpy("push", dest)
    assert r.returncode == 0, r.stderr
    assert digest_line(r)[1] == d == sha256(skopeo_raw(dest))
    for m in (amd, arm):
        assert sha256(skopeo_raw(f"{registry.host}/pushed/twoplatforms@{m['digest']}")) == m["digest"]
    # only the host's platform stored: its manifest goes alone
    nerdpy("rmi", src, dest, check=True)
    nerdpy("pull", "-q", "--platform", "linux/arm64", src, check=True)
    dest2 = f"{registry.host}/pushed/oneplatform:latest"
    nerdpy("tag", src, dest2, check=True)
    r = nerdpy("push", dest2)
    assert r.returncode == 0, r.stderr
    assert digest_line(r)[1] == arm["digest"] == sha256(skopeo_raw(dest2))


def test_push_errors(images, nerdpy):
    msg = one_line_error(nerdpy("push", f"{images.registry.host}/nothing/here:v1"))
    assert "does not exist locally" in msg
    msg = one_line_error(nerdpy("push", "UPPERCASE:v1"))
    assert "reference" in msg
    nerdpy("pull", "-q", images.busybox, check=True)
    port = world.free_port()
    nerdpy("tag", images.busybox, f"127.0.0.1:{port}/x/y:z", check=True)
    msg = one_line_error(nerdpy("push", f"127.0.0.1:{port}/x/y:z"))
    assert f"127.0.0.1:{port}" in msg


def test_push_through_a_token_registry_asks_for_push_and_mount_scopes(images, nerdpy, proxy):
    p = proxy(bearer=True)
    src = images.busybox.replace(images.registry.host, p.host)
    nerdpy("pull", "-q", src, check=True)
    dest = f"{p.host}/scoped/busybox:latest"
    nerdpy("tag", src, dest, check=True)
    p.token_requests.clear()
    r = nerdpy("push", dest)
    assert r.returncode == 0, r.stderr
    assert "Mounted from test/busybox" in r.stdout
    from urllib.parse import parse_qs, urlsplit

    asked = [parse_qs(urlsplit(t).query)["scope"] for t in p.token_requests]
    assert ["repository:scoped/busybox:pull,push"] in asked
    assert any(sorted(s) == ["repository:scoped/busybox:pull,push", "repository:test/busybox:pull"] for s in asked)
    assert sha256(skopeo_raw(dest.replace(p.host, images.registry.host))) == images.manifest_digest(images.busybox)


def test_a_refused_mount_falls_back_to_an_upload(images, nerdpy, proxy):
    p = proxy(bearer=True, faults={"no-cross-scope"})
    src = images.busybox.replace(images.registry.host, p.host)
    nerdpy("pull", "-q", src, check=True)
    dest = f"{p.host}/nomount/busybox:latest"
    nerdpy("tag", src, dest, check=True)
    r = nerdpy("push", dest)
    assert r.returncode == 0, r.stderr
    assert "Mounted from" not in r.stdout and ": Pushed" in r.stdout
    assert sha256(skopeo_raw(dest.replace(p.host, images.registry.host))) == images.manifest_digest(images.busybox)


# -- login / logout -----------------------------------------------------------------------------
def _config(nerdpy) -> dict:
    with open(os.path.join(nerdpy.home, ".docker", "config.json")) as f:
        return json.load(f)


def test_login_then_push_and_pull_with_stored_credentials(auth_registry, images, nerdpy, tmp_path):
    reg = auth_registry
    hosts = hosts_dir(tmp_path, reg)
    r = nerdpy("--hosts-dir", hosts, "login", reg.host, "-u", reg.username, "-p", reg.password)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "Login Succeeded"
    assert "WARNING! Using --password via the CLI is insecure" in r.stderr
    path = os.path.join(nerdpy.home, ".docker", "config.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    entry = _config(nerdpy)["auths"][reg.host]
    assert base64.b64decode(entry["auth"]).decode() == f"{reg.username}:{reg.password}"
    # pull and push with what was stored
    nerdpy("--hosts-dir", hosts, "pull", "-q", reg.image, check=True)
    dest = f"{reg.host}/private/pushed:v1"
    nerdpy("tag", reg.image, dest, check=True)
    r = nerdpy("--hosts-dir", hosts, "push", dest)
    assert r.returncode == 0, r.stderr
    creds = f"{reg.username}:{reg.password}"
    certs = skopeo_cert_dir(tmp_path, reg)
    assert digest_line(r)[1] == sha256(skopeo_raw(dest, creds=creds, ca_dir=certs))
    nerdpy("rmi", dest, reg.image, check=True)
    r = nerdpy("--hosts-dir", hosts, "pull", dest)
    assert r.returncode == 0, r.stderr
    # logout forgets them; pulling is refused again
    r = nerdpy("logout", reg.host)
    assert r.returncode == 0 and r.stdout == f"Removing login credentials for {reg.host}\n"
    assert reg.host not in _config(nerdpy).get("auths", {})
    assert nerdpy("logout", reg.host).stdout == f"Not logged in to {reg.host}\n"
    nerdpy("rmi", dest, check=True)
    msg = one_line_error(nerdpy("--hosts-dir", hosts, "pull", dest))
    assert "authentication required" in msg


def test_login_wrong_password_stores_nothing(auth_registry, nerdpy, tmp_path):
    reg = auth_registry
    r = nerdpy("--hosts-dir", hosts_dir(tmp_path, reg), "login", reg.host, "-u", reg.username,
               "--password-stdin", input="not-the-password\n")
    assert r.returncode != 0
    assert "incorrect username or password" in r.stderr
    assert "not-the-password" not in r.stderr + r.stdout
    assert not os.path.exists(os.path.join(nerdpy.home, ".docker", "config.json"))
    # an untrusted certificate is a clear error too
    msg = one_line_error(nerdpy("login", reg.host, "-u", reg.username, "--password-stdin", input=reg.password))
    assert "certificate" in msg.lower()


def test_login_password_stdin_and_flag_errors(auth_registry, nerdpy, tmp_path):
    reg = auth_registry
    hosts = hosts_dir(tmp_path, reg)
    r = nerdpy("--hosts-dir", hosts, "login", "-u", reg.username, "--password-stdin", f"https://{reg.host}/",
               input=reg.password + "\n")
    assert r.returncode == 0, r.stderr
    assert "Using --password via the CLI" not in r.stderr
    assert "stored unencrypted" in r.stderr
    assert list(_config(nerdpy)["auths"]) == [reg.host]
    # stored credentials are tried first when none are given
    r = nerdpy("--hosts-dir", hosts, "login", reg.host)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["Authenticating with existing credentials...", "Login Succeeded"]
    r = nerdpy("login", "--password-stdin", reg.host, input="x")
    assert r.returncode != 0 and "Must provide --username with --password-stdin" in r.stderr
    r = nerdpy("login", "-u", "a", "-p", "b", "--password-stdin", reg.host, input="x")
    assert r.returncode != 0 and "mutually exclusive" in r.stderr
    r = nerdpy("login", "example.invalid")
    assert "non TTY" in r.stderr and r.returncode != 0


def test_login_with_a_credential_helper(auth_registry, nerdpy, tmp_path):
    reg = auth_registry
    hosts = hosts_dir(tmp_path, reg)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    state = tmp_path / "helper"
    state.mkdir()
    helper = bindir / "docker-credential-fake"
    helper.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {state}/argv\n'
        f'cat > {state}/stdin-$1\n'
        'case "$1" in\n'
        f'  store) cp {state}/stdin-store {state}/stored ;;\n'
        f'  get) [ -f {state}/stored ] || {{ echo "credentials not found in native keychain"; exit 1; }}; cat {state}/stored ;;\n'
        f'  erase) rm -f {state}/stored ;;\n'
        'esac\n'
    )
    helper.chmod(0o755)
    os.makedirs(os.path.join(nerdpy.home, ".docker"))
    with open(os.path.join(nerdpy.home, ".docker", "config.json"), "w") as f:
        json.dump({"credsStore": "fake", "auths": {}}, f)
    env = {"PATH": f"{bindir}:{os.environ['PATH']}"}
    r = nerdpy("--hosts-dir", hosts, "login", reg.host, "-u", reg.username, "--password-stdin",
               input=reg.password, env=env)
    assert r.returncode == 0, r.stderr
    assert "stored unencrypted" not in r.stderr
    # the helper got `store` with the secret on stdin, never in argv
    assert (state / "argv").read_text().split("\n")[0] == "store"
    assert reg.password not in (state / "argv").read_text()
    assert json.loads((state / "stdin-store").read_text()) == {
        "ServerURL": reg.host, "Username": reg.username, "Secret": reg.password}
    doc = _config(nerdpy)
    assert doc["auths"] == {reg.host: {}} and doc["credsStore"] == "fake"
    assert reg.password not in open(os.path.join(nerdpy.home, ".docker", "config.json")).read()
    # pulling uses the helper's `get`
    r = nerdpy("--hosts-dir", hosts, "pull", "-q", reg.image, env=env)
    assert r.returncode == 0, r.stderr
    # logout: `erase` with the server on stdin
    r = nerdpy("logout", reg.host, env=env)
    assert r.returncode == 0 and "Removing login credentials" in r.stdout, r.stderr
    assert (state / "stdin-erase").read_text() == reg.host
    assert not (state / "stored").exists()
    assert _config(nerdpy)["auths"] == {}


def test_login_through_a_token_server(images, nerdpy, proxy):
    p = proxy(bearer=True, auth=("alice", "wonder-land"))
    r = nerdpy("login", p.host, "-u", "alice", "--password-stdin", input="wrong")
    assert r.returncode != 0 and "incorrect username or password" in r.stderr
    assert not os.path.exists(os.path.join(nerdpy.home, ".docker", "config.json"))
    r = nerdpy("login", p.host, "-u", "alice", "--password-stdin", input="wonder-land")
    assert r.returncode == 0, r.stderr
    assert any("account=alice" in t for t in p.token_requests)
    # the stored credentials get tokens for pull and push
    src = images.busybox.replace(images.registry.host, p.host)
    nerdpy("pull", "-q", src, check=True)
    nerdpy("tag", src, f"{p.host}/tokened/bb:1", check=True)
    r = nerdpy("push", f"{p.host}/tokened/bb:1")
    assert r.returncode == 0, r.stderr
