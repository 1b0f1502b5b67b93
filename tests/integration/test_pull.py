"""`nerdpy pull` against the real registry (Debian's docker-registry), checked independently:
digests from skopeo, files and xattrs in the snapshot directories, blobs hashed on disk."""
from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

import world


# -- helpers ------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def skopeo_raw(ref: str, config: bool = False, creds: str | None = None) -> bytes:
    args = ["skopeo", "inspect", "--raw", "--tls-verify=false"]
    if config:
        args.insert(2, "--config")
    if creds:
        args += ["--creds", creds]
    return world.sh(*args, f"docker://{ref}").stdout


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def repo_of(ref: str) -> str:
    return ref.rsplit(":", 1)[0]


def one_line_error(r: subprocess.CompletedProcess) -> str:
    """The command failed with docker's exit code for tool errors and one clean stderr line."""
    assert r.returncode == 125, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("nerdpy: "), r.stderr
    return lines[0]


def inspect(nerdpy, name: str) -> dict:
    r = nerdpy("image", "inspect", name, check=True)
    docs = json.loads(r.stdout)
    assert len(docs) == 1
    return docs[0]


def db(data_root: str) -> sqlite3.Connection:
    conn = sqlite3.connect(os.path.join(data_root, "meta.db"))
    conn.row_factory = sqlite3.Row
    return conn


def snapshots(data_root: str) -> dict[str, sqlite3.Row]:
    with db(data_root) as conn:
        return {r["chain_id"]: r for r in conn.execute("SELECT * FROM snapshots")}


def chain_ids(diff_ids: list[str]) -> list[str]:
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else sha256(f"{out[-1]} {d}".encode()))
    return out


def snapshot_fs(data_root: str, chain_id: str) -> str:
    row = snapshots(data_root)[chain_id]
    return os.path.join(data_root, "snapshots", str(row["id"]), "fs")


def blob_dir(data_root: str) -> str:
    return os.path.join(data_root, "content", "blobs", "sha256")


def verify_store(data_root: str, allow_temp: bool = True) -> None:
    """Every blob's bytes hash to its name; every snapshot row has its directory and every
    numbered directory has its row (temp/ingest leftovers of a killed process are allowed)."""
    bdir = blob_dir(data_root)
    if not os.path.isdir(bdir):
        return
    for name in os.listdir(bdir):
        path = os.path.join(bdir, name)
        if name.startswith(".ingest-"):
            assert allow_temp, f"leftover ingest file {name}"
            continue
        assert len(name) == 64, name
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        assert h.hexdigest() == name, f"blob {name} is corrupt"
    if not os.path.exists(os.path.join(data_root, "meta.db")):
        return
    rows = snapshots(data_root)
    ids = {str(r["id"]) for r in rows.values()}
    with db(data_root) as conn:
        ids |= {str(r["id"]) for r in conn.execute("SELECT id FROM active_snapshots")}
    sdir = os.path.join(data_root, "snapshots")
    for r in rows.values():
        assert os.path.isdir(os.path.join(sdir, str(r["id"]), "fs")), f"snapshot {r['id']} has no directory"
        if r["parent"] is not None:
            assert r["parent"] in rows, f"snapshot {r['chain_id']} has no parent row"
    for name in os.listdir(sdir):
        if name == ".locks" or name.startswith(".tmp-") or name.startswith(".trash-"):
            assert allow_temp or name == ".locks", f"leftover {name}"
            continue
        assert name in ids, f"snapshot dir {name} has no row"


def image_files(nerdpy, ref: str) -> dict:
    """The image's manifest, config, and the data-root paths of its chain (bottom first)."""
    info = inspect(nerdpy, ref)
    chains = chain_ids(info["RootFS"]["Layers"])
    return {"info": info, "chains": chains, "dirs": [snapshot_fs(nerdpy.data_root, c) for c in chains]}


# -- every image kind ---------------------------------------------------------------------------
KINDS = ["busybox", "busybox_v2s2", "zstd", "layered"]


@pytest.mark.parametrize("kind", KINDS)
def test_pull_each_kind(kind, images, nerdpy):
    ref = getattr(images, kind)
    raw = skopeo_raw(ref)
    manifest = json.loads(raw)
    config_bytes = skopeo_raw(ref, config=True)
    config = json.loads(config_bytes)

    r = nerdpy("pull", ref)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert f"Digest: {sha256(raw)}" in lines
    assert "Status: Downloaded newer image for " + ref in lines
    assert lines[-1] == ref
    # plain progress (stdout is not a terminal): docker's per-layer lines
    assert lines[0] == f"latest: Pulling from {ref.split('/', 1)[1].rsplit(':', 1)[0]}"
    for layer in manifest["layers"]:
        assert f"{layer['digest'][7:19]}: Pull complete" in lines

    info = inspect(nerdpy, ref)
    assert info["Id"] == manifest["config"]["digest"] == sha256(config_bytes)
    assert info["RepoTags"] == [ref]
    assert info["RepoDigests"] == [f"{repo_of(ref)}@{sha256(raw)}"]
    assert info["Config"]["Cmd"] == config["config"]["Cmd"]
    assert info["Config"]["Env"] == [world.PATH_ENV]
    assert info["Config"]["Labels"] == {"org.nerdpy.test": "busybox"}
    assert info["Config"]["ExposedPorts"] == {"80/tcp": {}}
    assert info["RootFS"] == {"Type": "layers", "Layers": config["rootfs"]["diff_ids"]}
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert info["Created"].startswith("2024-01-02T03:04:05")
    assert info["Size"] > 1_000_000

    # every blob is stored, under its digest
    for d in [manifest["config"]["digest"]] + [layer["digest"] for layer in manifest["layers"]]:
        assert os.path.exists(os.path.join(blob_dir(nerdpy.data_root), d[7:]))
    # the chain is unpacked: the bottom layer has busybox, byte for byte
    chains = chain_ids(config["rootfs"]["diff_ids"])
    assert set(snapshots(nerdpy.data_root)) == set(chains)
    bottom = snapshot_fs(nerdpy.data_root, chains[0])
    with open(world.BUSYBOX, "rb") as f, open(os.path.join(bottom, "bin/busybox"), "rb") as g:
        assert f.read() == g.read()
    assert os.readlink(os.path.join(bottom, "bin/sh")) == "busybox"
    assert os.stat(os.path.join(bottom, "bin/busybox")).st_mode & 0o777 == 0o755
    assert os.stat(os.path.join(bottom, "tmp")).st_mode & 0o7777 == 0o1777
    verify_store(nerdpy.data_root, allow_temp=False)

    # a second pull changes nothing
    again = nerdpy("pull", ref)
    assert again.returncode == 0, again.stderr
    assert "Status: Image is up to date for " + ref in again.stdout
    assert f"Digest: {sha256(raw)}" in again.stdout


def test_pull_quiet_prints_only_the_reference(images, nerdpy):
    r = nerdpy("pull", "-q", images.busybox)
    assert r.returncode == 0, r.stderr
    assert r.stdout == images.busybox + "\n"
    assert r.stderr == ""


def test_pull_progress_modes(images, nerdpy):
    # rich progress (as on a terminal) still ends with docker's summary lines
    r = nerdpy("pull", "--progress", "tty", images.zstd, env={"COLUMNS": "120"})
    assert r.returncode == 0, r.stderr
    assert f"Digest: {images.manifest_digest(images.zstd)}" in r.stdout.splitlines()
    assert r.stdout.splitlines()[-1] == images.zstd
    assert "Traceback" not in r.stderr
    r = nerdpy("pull", "--progress", "quiet", images.zstd)
    assert r.returncode == 0, r.stderr
    assert "Pulling from" not in r.stdout and "Status: Image is up to date" in r.stdout


def test_pull_by_digest(images, nerdpy):
    digest = images.manifest_digest(images.busybox)
    ref = f"{repo_of(images.busybox)}@{digest}"
    r = nerdpy("pull", ref)
    assert r.returncode == 0, r.stderr
    assert f"Digest: {digest}" in r.stdout
    info = inspect(nerdpy, ref)
    assert info["Id"] == images.config_digest(images.busybox)
    assert f"{repo_of(images.busybox)}@{digest}" in info["RepoDigests"]
    # a digest that is not there
    bad = f"{repo_of(images.busybox)}@sha256:{'0' * 64}"
    msg = one_line_error(nerdpy("pull", bad))
    assert "not found" in msg


def test_shared_layers_are_stored_and_unpacked_once(images, nerdpy):
    # busybox (OCI) and busybox-v2s2 (Docker) carry the same layer and config
    nerdpy("pull", images.busybox, check=True)
    n_blobs = len(os.listdir(blob_dir(nerdpy.data_root)))
    r = nerdpy("pull", images.busybox_v2s2, check=True)
    assert ": Already exists" in r.stdout
    # only the v2s2 manifest is new
    assert len(os.listdir(blob_dir(nerdpy.data_root))) == n_blobs + 1
    assert len(snapshots(nerdpy.data_root)) == 1
    a, b = inspect(nerdpy, images.busybox), inspect(nerdpy, images.busybox_v2s2)
    assert a["Id"] == b["Id"]


# -- whiteouts and opaque directories --------------------------------------------------------------
def test_layered_image_whiteout_and_opaque_dir(images, nerdpy, tmp_path):
    nerdpy("pull", images.layered, check=True)
    f = image_files(nerdpy, images.layered)
    lower, upper = f["dirs"]
    # layer 1 as it was pushed
    assert open(os.path.join(lower, "etc/group")).read().startswith("root:x:0:")
    assert open(os.path.join(lower, "data/old.txt")).read() == "old\n"
    # layer 2: etc/.wh.group became an overlay whiteout (char device 0:0) ...
    st = os.lstat(os.path.join(upper, "etc/group"))
    import stat as stat_mod

    assert stat_mod.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 0 and os.minor(st.st_rdev) == 0
    assert not os.path.lexists(os.path.join(upper, "etc/.wh.group"))
    # ... and data/.wh..wh..opq the opaque xattr on data/
    assert os.getxattr(os.path.join(upper, "data"), "trusted.overlay.opaque") == b"y"
    assert not os.path.lexists(os.path.join(upper, "data/.wh..wh..opq"))
    assert sorted(os.listdir(os.path.join(upper, "data"))) == ["new.txt"]
    assert open(os.path.join(upper, "hello.txt")).read() == "hello from layer 2\n"

    # mounted as overlay (the way a container sees it): group gone, old.txt hidden
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"ro,lowerdir={upper}:{lower}", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"overlay mount unavailable: {r.stderr}")
    try:
        assert not os.path.lexists(mnt / "etc/group")
        assert (mnt / "etc/passwd").exists()
        assert sorted(os.listdir(mnt / "data")) == ["new.txt"]
        assert (mnt / "hello.txt").read_text() == "hello from layer 2\n"
        assert (mnt / "bin/busybox").exists()
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


# -- multi-platform index ---------------------------------------------------------------------------
def _index(images) -> dict:
    return json.loads(images.raw_manifest(images.multiarch))


def _entry(index: dict, arch: str) -> dict:
    return next(m for m in index["manifests"] if m["platform"]["architecture"] == arch)


def test_multiarch_default_is_host_platform(images, nerdpy):
    if platform.machine() not in ("x86_64", "amd64"):
        pytest.skip("host is not amd64")
    index = _index(images)
    r = nerdpy("pull", images.multiarch)
    assert r.returncode == 0, r.stderr
    assert f"Digest: {images.manifest_digest(images.multiarch)}" in r.stdout
    f = image_files(nerdpy, images.multiarch)
    assert f["info"]["Architecture"] == "amd64"
    assert open(os.path.join(f["dirs"][-1], "platform")).read() == "amd64\n"
    # the image is named by the index digest; its config is the amd64 one
    assert f["info"]["RepoDigests"] == [f"{repo_of(images.multiarch)}@{images.manifest_digest(images.multiarch)}"]
    amd = json.loads(images.raw_manifest(f"{repo_of(images.multiarch)}@{_entry(index, 'amd64')['digest']}"))
    assert f["info"]["Id"] == amd["config"]["digest"]
    # neither arm64 nor the attestation was fetched
    stored = set(os.listdir(blob_dir(nerdpy.data_root)))
    assert _entry(index, "arm64")["digest"][7:] not in stored
    assert _entry(index, "unknown")["digest"][7:] not in stored


def test_multiarch_platform_flag(images, nerdpy):
    index = _index(images)
    r = nerdpy("pull", "--platform", "linux/arm64", images.multiarch)
    assert r.returncode == 0, r.stderr
    f = image_files(nerdpy, images.multiarch)
    assert f["info"]["Architecture"] == "arm64"
    assert open(os.path.join(f["dirs"][-1], "platform")).read() == "arm64\n"
    assert f["info"]["Config"]["Cmd"] == ["/bin/sh"]
    stored = set(os.listdir(blob_dir(nerdpy.data_root)))
    assert _entry(index, "arm64")["digest"][7:] in stored
    assert _entry(index, "amd64")["digest"][7:] not in stored
    assert _entry(index, "unknown")["digest"][7:] not in stored
    # switching the platform of the same name reports a change, and moves the image ID
    if platform.machine() in ("x86_64", "amd64"):
        r = nerdpy("pull", "--platform", "linux/amd64", images.multiarch)
        assert r.returncode == 0, r.stderr
        assert "Status: Downloaded newer image" in r.stdout
        assert inspect(nerdpy, images.multiarch)["Architecture"] == "amd64"


def test_multiarch_all_platforms_skips_attestation(images, nerdpy):
    index = _index(images)
    r = nerdpy("pull", "--all-platforms", images.multiarch)
    assert r.returncode == 0, r.stderr
    stored = set(os.listdir(blob_dir(nerdpy.data_root)))
    for arch in ("amd64", "arm64"):
        m = json.loads(images.raw_manifest(f"{repo_of(images.multiarch)}@{_entry(index, arch)['digest']}"))
        for d in [m["config"]] + m["layers"]:
            assert d["digest"][7:] in stored
    att = _entry(index, "unknown")
    assert att["digest"][7:] not in stored


def test_docker_manifest_list(images, registry, nerdpy, tmp_path):
    """A Docker manifest list (not an OCI index) with the same entries as the multiarch index."""
    import shutil

    layout = str(tmp_path / "layout")
    shutil.copytree(os.path.join(world.build_images(), "hand"), layout)
    index = json.loads(images.raw_manifest(images.multiarch))
    doc = dict(index, mediaType="application/vnd.docker.distribution.manifest.list.v2+json")
    data = json.dumps(doc).encode()
    digest = sha256(data)
    with open(os.path.join(layout, "blobs", "sha256", digest[7:]), "wb") as f:
        f.write(data)
    world._add_to_index(layout, {"mediaType": doc["mediaType"], "digest": digest, "size": len(data),
                                 "annotations": {"org.opencontainers.image.ref.name": "dockerlist"}})
    ref = f"{registry.host}/test/dockerlist:latest"
    world.push_layout(layout, "dockerlist", ref)
    r = nerdpy("pull", "--platform", "linux/arm64", ref)
    assert r.returncode == 0, r.stderr
    assert f"Digest: {digest}" in r.stdout
    info = inspect(nerdpy, ref)
    assert info["Architecture"] == "arm64"
    assert info["Descriptor"]["mediaType"] == doc["mediaType"]


@pytest.mark.parametrize("plat", ["linux/s390x", "windows/amd64"])
def test_multiarch_unknown_platform(plat, images, nerdpy):
    r = nerdpy("pull", "--platform", plat, images.multiarch)
    msg = one_line_error(r)
    assert plat in msg and "no matching manifest" in msg
    assert nerdpy("images", "-q").stdout == ""


def test_single_platform_image_with_other_platform(images, nerdpy):
    # docker refuses an explicit --platform that the (single-platform) image does not have
    msg = one_line_error(nerdpy("pull", "--platform", "linux/arm64", images.busybox))
    assert "does not match the specified platform" in msg and "linux/arm64" in msg
    assert nerdpy("images", "-q").stdout == ""
    r = nerdpy("pull", "--platform", "linux/amd64", images.busybox)
    assert r.returncode == 0, r.stderr


def test_invalid_platform(images, nerdpy):
    msg = one_line_error(nerdpy("pull", "--platform", "linux/", images.multiarch))
    assert "platform" in msg


# -- auth, TLS and hosts.toml -----------------------------------------------------------------------
def _write_docker_config(nerdpy, doc: dict) -> None:
    d = os.path.join(nerdpy.home, ".docker")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(doc, f)


def _auths(reg, user=None, password=None) -> dict:
    token = base64.b64encode(f"{user or reg.username}:{password or reg.password}".encode()).decode()
    return {"auths": {reg.host: {"auth": token}}}


def _hosts_dir(tmp_path, host: str, text: str) -> str:
    d = tmp_path / "certs.d"
    (d / host).mkdir(parents=True, exist_ok=True)
    (d / host / "hosts.toml").write_text(text)
    return str(d)


def test_auth_anonymous_is_refused(auth_registry, nerdpy):
    r = nerdpy("--insecure-registry", auth_registry.host, "pull", auth_registry.image)
    msg = one_line_error(r)
    assert "authentication required" in msg or "denied" in msg
    assert "login" in msg


def test_auth_wrong_password(auth_registry, nerdpy):
    _write_docker_config(nerdpy, _auths(auth_registry, password="wrong"))
    msg = one_line_error(nerdpy("--insecure-registry", auth_registry.host, "pull", auth_registry.image))
    assert "incorrect username or password" in msg


def test_auth_untrusted_certificate(auth_registry, nerdpy):
    _write_docker_config(nerdpy, _auths(auth_registry))
    msg = one_line_error(nerdpy("pull", auth_registry.image))
    assert "certificate" in msg.lower()


def test_auth_config_and_insecure_registry(auth_registry, nerdpy):
    _write_docker_config(nerdpy, _auths(auth_registry))
    r = nerdpy("--insecure-registry", auth_registry.host, "pull", auth_registry.image)
    assert r.returncode == 0, r.stderr
    digest = sha256(skopeo_raw(auth_registry.image, creds=f"{auth_registry.username}:{auth_registry.password}"))
    assert f"Digest: {digest}" in r.stdout
    assert nerdpy("images", "--format", "{{.Repository}}:{{.Tag}}").stdout == auth_registry.image + "\n"


def test_auth_docker_config_env(auth_registry, nerdpy, tmp_path):
    # $DOCKER_CONFIG names the directory holding config.json, instead of ~/.docker
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "config.json").write_text(json.dumps(_auths(auth_registry)))
    r = nerdpy("--insecure-registry", auth_registry.host, "pull", "-q", auth_registry.image,
               env={"DOCKER_CONFIG": str(elsewhere)})
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("style", ["server", "host", "relative"])
def test_auth_ca_from_hosts_toml(style, auth_registry, nerdpy, tmp_path):
    _write_docker_config(nerdpy, _auths(auth_registry))
    if style == "server":
        text = f'server = "https://{auth_registry.host}"\nca = "{auth_registry.ca_path}"\n'
    elif style == "host":
        text = (f'server = "https://{auth_registry.host}"\n\n[host."https://{auth_registry.host}"]\n'
                f'  capabilities = ["pull", "resolve"]\n  ca = "{auth_registry.ca_path}"\n')
    else:
        text = 'ca = "ca.crt"\n'
    hosts = _hosts_dir(tmp_path, auth_registry.host, text)
    if style == "relative":
        import shutil

        shutil.copy(auth_registry.ca_path, os.path.join(hosts, auth_registry.host, "ca.crt"))
    r = nerdpy("--hosts-dir", hosts, "pull", auth_registry.image)
    assert r.returncode == 0, r.stderr
    info = inspect(nerdpy, auth_registry.image)
    assert info["RepoTags"] == [auth_registry.image]


@pytest.mark.parametrize("how", ["credHelpers", "credsStore"])
def test_auth_credential_helper(how, auth_registry, nerdpy, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    seen = tmp_path / "helper-stdin"
    helper = bindir / "docker-credential-test"
    helper.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = get ] || exit 1\ncat > {seen}\n'
        f'printf \'{{"ServerURL":"%s","Username":"{auth_registry.username}","Secret":"{auth_registry.password}"}}\' '
        f'"$(cat {seen})"\n'
    )
    helper.chmod(0o755)
    if how == "credHelpers":
        _write_docker_config(nerdpy, {"auths": {}, "credHelpers": {auth_registry.host: "test"}})
    else:
        _write_docker_config(nerdpy, {"auths": {auth_registry.host: {}}, "credsStore": "test"})
    env = {"PATH": f"{bindir}:{os.environ['PATH']}"}
    r = nerdpy("--insecure-registry", auth_registry.host, "pull", auth_registry.image, env=env)
    assert r.returncode == 0, r.stderr
    # the server name went to the helper on stdin, not in argv
    assert seen.read_text().strip() == auth_registry.host
    # a helper that is not installed: one clear line
    _write_docker_config(nerdpy, {how: {auth_registry.host: "missing"} if how == "credHelpers" else "missing"})
    nerdpy("rmi", auth_registry.image, check=True)
    msg = one_line_error(nerdpy("--insecure-registry", auth_registry.host, "pull", auth_registry.image, env=env))
    assert "docker-credential-missing" in msg


# -- mirrors ------------------------------------------------------------------------------------------
def test_mirror_for_a_fake_registry(images, nerdpy, tmp_path):
    hosts = _hosts_dir(tmp_path, "example.invalid",
                       'server = "https://example.invalid"\n\n'
                       f'[host."http://{images.registry.host}"]\n  capabilities = ["pull", "resolve"]\n')
    r = nerdpy("--hosts-dir", hosts, "pull", "example.invalid/test/busybox")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == ["Using default tag: latest", "latest: Pulling from test/busybox"]
    assert f"Digest: {images.manifest_digest(images.busybox)}" in r.stdout
    assert r.stdout.splitlines()[-1] == "example.invalid/test/busybox:latest"
    info = inspect(nerdpy, "example.invalid/test/busybox")
    assert info["Id"] == images.config_digest(images.busybox)
    assert info["RepoTags"] == ["example.invalid/test/busybox:latest"]
    # without the mirror the fake host cannot be reached
    nerdpy("rmi", "example.invalid/test/busybox", check=True)
    msg = one_line_error(nerdpy("--hosts-dir", str(tmp_path / "none"), "pull", "example.invalid/test/busybox"))
    assert "example.invalid" in msg


def test_mirror_for_docker_hub(images, nerdpy, tmp_path):
    hosts = _hosts_dir(tmp_path, "docker.io",
                       'server = "https://registry-1.docker.io"\n\n'
                       f'[host."http://{images.registry.host}"]\n  capabilities = ["pull", "resolve"]\n')
    r = nerdpy("--hosts-dir", hosts, "pull", "test/busybox:latest")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "docker.io/test/busybox:latest"
    assert "Status: Downloaded newer image for test/busybox:latest" in r.stdout
    out = nerdpy("images", "--format", "{{.Repository}}:{{.Tag}}").stdout
    assert out == "test/busybox:latest\n"


# -- errors ---------------------------------------------------------------------------------------------
def test_registry_down(nerdpy):
    port = world.free_port()
    t0 = time.monotonic()
    msg = one_line_error(nerdpy("pull", f"127.0.0.1:{port}/test/busybox:latest"))
    assert time.monotonic() - t0 < 30
    assert f"127.0.0.1:{port}" in msg
    assert "reach" in msg or "refused" in msg


@pytest.mark.parametrize("suffix", ["test/busybox:nope", "test/nothere:latest"])
def test_not_found(suffix, images, nerdpy):
    msg = one_line_error(nerdpy("pull", f"{images.registry.host}/{suffix}"))
    assert "not found" in msg
    assert nerdpy("images", "-q").stdout == ""


def test_invalid_reference(nerdpy):
    msg = one_line_error(nerdpy("pull", "UPPER/Case"))
    assert "reference" in msg


# -- a misbehaving registry: dropped connections, 5xx, redirects --------------------------------------
class FlakyProxy:
    """An HTTP front for the test registry that misbehaves on purpose, and logs what it saw.

    faults: "drop" (a blob's first GET sends half its body, then hangs up), "503" (the first GET
    of each manifest and blob answers 503), "redirect" (blob GETs are redirected to another host
    name, localhost, which serves them without asking for credentials). With `auth`, /v2/ asks for
    Basic credentials; with `bearer` too, /v2/ asks for a Bearer token that /token hands out (to
    anyone when `auth` is None, else only for those Basic credentials), as Docker Hub does."""

    def __init__(self, upstream: str, faults: set[str], auth: tuple[str, str] | None = None,
                 bearer: bool = False):
        import http.server
        import threading

        self.upstream = upstream
        self.faults = faults
        self.auth = auth
        self.bearer = bearer
        self.token = "tok-" + os.urandom(8).hex()
        self.log: list[tuple[str, str, dict]] = []
        self.seen: set[str] = set()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_HEAD(self):
                proxy.handle(self, head=True)

            def do_GET(self):
                proxy.handle(self, head=False)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def _upstream(self, method: str, path: str, headers: dict):
        import http.client

        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        conn.request(method, path, headers={k: v for k, v in headers.items() if k in ("Accept", "Range")})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()

    def handle(self, h, head: bool):
        path, headers = h.path, dict(h.headers)
        self.log.append((h.command, path, headers))
        first = path not in self.seen
        self.seen.add(path)

        def send(status, hdrs, body=b"", length=None):
            h.send_response(status)
            for k, v in hdrs.items():
                if k.lower() not in ("content-length", "connection", "transfer-encoding", "date"):
                    h.send_header(k, v)
            h.send_header("Content-Length", str(len(body) if length is None else length))
            h.end_headers()
            if not head:
                h.wfile.write(body)

        if path.startswith("/direct/"):
            status, hdrs, body = self._upstream("GET", "/v2/" + path[len("/direct/"):], headers)
            return send(status, hdrs, body)
        if self.bearer and path.startswith("/token"):
            import base64 as b64

            if self.auth:
                want = "Basic " + b64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
                if headers.get("Authorization") != want:
                    return send(401, {"Content-Type": "application/json"}, b'{"details":"incorrect username or password"}')
            return send(200, {"Content-Type": "application/json"}, json.dumps({"token": self.token}).encode())
        if self.bearer and path.startswith("/v2/"):
            if headers.get("Authorization") != f"Bearer {self.token}":
                realm = f'Bearer realm="http://{self.host}/token",service="flaky"'
                if path != "/v2/":
                    realm += f',scope="repository:{path[4:].split("/manifests/")[0].split("/blobs/")[0]}:pull"'
                return send(401, {"WWW-Authenticate": realm, "Content-Type": "application/json"},
                            b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
        elif self.auth and path.startswith("/v2/"):
            import base64 as b64

            want = "Basic " + b64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            if headers.get("Authorization") != want:
                return send(401, {"WWW-Authenticate": 'Basic realm="flaky"', "Content-Type": "application/json"},
                            b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
        is_blob = "/blobs/sha256:" in path
        is_manifest = "/manifests/" in path
        if "503" in self.faults and first and (is_blob or is_manifest) and not head:
            return send(503, {"Content-Type": "text/plain"}, b"try again")
        if "redirect" in self.faults and is_blob and not head:
            h.send_response(307)
            h.send_header("Location", f"http://localhost:{self.port}/direct/{path[len('/v2/'):]}")
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        status, hdrs, body = self._upstream(h.command, path, headers)
        if "corrupt" in self.faults and is_blob and status == 200 and len(body) > 1000 and not head:
            body = body[:500] + bytes([body[500] ^ 0xFF]) + body[501:]
        if "wrongtype" in self.faults and is_manifest:
            hdrs["Content-Type"] = "application/vnd.oci.image.index.v1+json"
        if "huge" in self.faults and is_manifest and not head:
            body = body + b" " * (5 << 20)
            hdrs.pop("Docker-Content-Digest", None)
        if "drop" in self.faults and is_blob and first and status == 200 and not head and len(body) > 1000:
            h.send_response(200)
            h.send_header("Content-Length", str(len(body)))
            h.send_header("Content-Type", "application/octet-stream")
            h.end_headers()
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            import socket

            h.connection.shutdown(socket.SHUT_RDWR)
            return
        send(status, hdrs, body, length=int(hdrs.get("Content-Length", len(body))) if head else None)


@pytest.fixture
def flaky(registry):
    made = []

    def make(faults, auth=None, bearer=False):
        p = FlakyProxy(registry.host, set(faults), auth, bearer)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()


def test_dropped_blob_downloads_resume_with_range(images, flaky, nerdpy):
    proxy = flaky({"drop"})
    ref = images.busybox.replace(images.registry.host, proxy.host)
    r = nerdpy("pull", ref)
    assert r.returncode == 0, r.stderr
    assert f"Digest: {images.manifest_digest(images.busybox)}" in r.stdout
    layer = json.loads(images.raw_manifest(images.busybox))["layers"][0]
    gets = [hdrs for method, path, hdrs in proxy.log if method == "GET" and path.endswith(layer["digest"])]
    assert len(gets) == 2
    assert "Range" not in gets[0], gets
    # the second GET asks only for what is missing (at most one read buffer of the first half is lost)
    rng = gets[1].get("Range", "")
    assert rng.startswith("bytes=") and rng.endswith("-"), gets[1]
    assert layer["size"] // 2 - (256 << 10) <= int(rng[6:-1]) <= layer["size"] // 2
    assert gets[0].get("Accept-Encoding") == "identity"
    verify_store(nerdpy.data_root, allow_temp=False)
    assert inspect(nerdpy, ref)["Id"] == images.config_digest(images.busybox)


def test_5xx_answers_are_retried(images, flaky, nerdpy):
    proxy = flaky({"503"})
    ref = images.layered.replace(images.registry.host, proxy.host)
    r = nerdpy("pull", ref)
    assert r.returncode == 0, r.stderr
    assert f"Digest: {images.manifest_digest(images.layered)}" in r.stdout
    verify_store(nerdpy.data_root, allow_temp=False)


def test_redirect_to_another_host_drops_credentials(images, flaky, nerdpy):
    proxy = flaky({"redirect"}, auth=("flaky-user", "flaky-pass"))
    ref = images.busybox.replace(images.registry.host, proxy.host)
    msg = one_line_error(nerdpy("pull", ref))
    assert "authentication required" in msg or "denied" in msg
    token = base64.b64encode(b"flaky-user:flaky-pass").decode()
    d = os.path.join(nerdpy.home, ".docker")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"auths": {proxy.host: {"auth": token}}}, f)
    r = nerdpy("pull", ref)
    assert r.returncode == 0, r.stderr
    direct = [hdrs for method, path, hdrs in proxy.log if path.startswith("/direct/")]
    assert direct, "blobs were not fetched through the redirect"
    assert all("Authorization" not in hdrs for hdrs in direct)
    assert all(hdrs.get("Host", "").startswith("localhost:") for hdrs in direct)


@pytest.mark.parametrize("fault, words", [
    ("corrupt", "digest"),
    ("wrongtype", "disagrees"),
    ("huge", "larger than"),
])
def test_bad_content_is_refused(fault, words, images, flaky, nerdpy):
    proxy = flaky({fault})
    ref = images.busybox.replace(images.registry.host, proxy.host)
    msg = one_line_error(nerdpy("pull", ref))
    assert words in msg
    assert nerdpy("images", "-q").stdout == ""
    layer = json.loads(images.raw_manifest(images.busybox))["layers"][0]["digest"]
    bdir = blob_dir(nerdpy.data_root)
    stored = os.listdir(bdir) if os.path.isdir(bdir) else []
    assert layer[7:] not in stored
    assert not [n for n in stored if n.startswith(".")]
    verify_store(nerdpy.data_root, allow_temp=False)


def test_bearer_token_anonymous(images, flaky, nerdpy):
    proxy = flaky(set(), bearer=True)
    ref = images.busybox.replace(images.registry.host, proxy.host)
    r = nerdpy("pull", ref)
    assert r.returncode == 0, r.stderr
    tokens = [(path, hdrs) for method, path, hdrs in proxy.log if path.startswith("/token")]
    assert tokens, "no token was asked for"
    from urllib.parse import parse_qs, urlsplit

    q = parse_qs(urlsplit(tokens[0][0]).query)
    assert q["scope"] == ["repository:test/busybox:pull"] and q["service"] == ["flaky"]
    assert "Authorization" not in tokens[0][1]
    # one token serves the whole pull
    assert len(tokens) == 1


def test_bearer_token_with_credentials(images, flaky, nerdpy):
    proxy = flaky(set(), auth=("hub-user", "hub-pass"), bearer=True)
    ref = images.busybox.replace(images.registry.host, proxy.host)
    msg = one_line_error(nerdpy("pull", ref))
    assert "authentication required" in msg and "login" in msg
    d = os.path.join(nerdpy.home, ".docker")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"auths": {proxy.host: {"auth": base64.b64encode(b"hub-user:wrong").decode()}}}, f)
    msg = one_line_error(nerdpy("pull", ref))
    assert "incorrect username or password" in msg
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"auths": {proxy.host: {"auth": base64.b64encode(b"hub-user:hub-pass").decode()}}}, f)
    r = nerdpy("pull", ref)
    assert r.returncode == 0, r.stderr
    assert f"Digest: {images.manifest_digest(images.busybox)}" in r.stdout


# -- concurrency -------------------------------------------------------------------------------------------
def _pull_cmd(nerdpy, *args) -> list[str]:
    return [sys.executable, "-m", "nerdpy", "--data-root", nerdpy.data_root, "pull", *args]


def test_parallel_pulls_of_the_same_image(images, nerdpy):
    procs = [subprocess.Popen(_pull_cmd(nerdpy, "-q", images.layered), env=nerdpy.env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(5)]
    results = [(p.wait(120), *p.communicate()) for p in procs]
    for rc, out, err in results:
        assert rc == 0, err
        assert out == images.layered + "\n"
    manifest = json.loads(images.raw_manifest(images.layered))
    want = {manifest["config"]["digest"][7:], images.manifest_digest(images.layered)[7:]}
    want |= {layer["digest"][7:] for layer in manifest["layers"]}
    assert sorted(os.listdir(blob_dir(nerdpy.data_root))) == sorted(want)
    config = json.loads(skopeo_raw(images.layered, config=True))
    assert set(snapshots(nerdpy.data_root)) == set(chain_ids(config["rootfs"]["diff_ids"]))
    # each chain unpacked exactly once: no snapshot number was used twice
    with db(nerdpy.data_root) as conn:
        used = conn.execute("SELECT value FROM counters WHERE name = 'snapshot'").fetchone()[0]
    assert used == 2
    assert sorted(n for n in os.listdir(os.path.join(nerdpy.data_root, "snapshots")) if n != ".locks") == ["1", "2"]
    verify_store(nerdpy.data_root, allow_temp=False)
    out = nerdpy("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout
    assert out == images.layered + "\n"


def test_parallel_pulls_of_different_images(images, nerdpy):
    refs = [images.busybox, images.busybox_v2s2, images.zstd, images.layered, images.multiarch]
    procs = [subprocess.Popen(_pull_cmd(nerdpy, "-q", ref), env=nerdpy.env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for ref in refs]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    verify_store(nerdpy.data_root, allow_temp=False)
    out = nerdpy("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout
    assert sorted(out.split()) == sorted(refs)


# -- crash safety ------------------------------------------------------------------------------------------
PART = 6 << 20


@pytest.fixture(scope="module")
def big_image(registry, tmp_path_factory):
    """Busybox plus three layers of 6 MiB random content each (gzip cannot shrink them):
    slow enough to be killed at different points."""
    layout = str(tmp_path_factory.mktemp("big-layout"))
    rnd = os.urandom(3 * PART)
    parts = [rnd[i * PART:(i + 1) * PART] for i in range(3)]
    layers = [world._tar(world.busybox_entries())]
    layers += [world._tar([("big", "dir", 0o755), (f"big/part{i}.bin", "file", p)]) for i, p in enumerate(parts)]
    world.write_image(layout, "big", layers, world.BUSYBOX_CONFIG)
    ref = f"{registry.host}/test/big:latest"
    world.push_layout(layout, "big", ref)
    return ref, chain_ids([sha256(layer) for layer in layers]), [hashlib.sha256(p).hexdigest() for p in parts]


def _check_big(root: str, chains: list[str], hashes: list[str]) -> None:
    """The whole chain is unpacked, and the random files are intact."""
    rows = snapshots(root)
    assert set(rows) == set(chains)
    for i, h in enumerate(hashes):
        with open(os.path.join(snapshot_fs(root, chains[i + 1]), f"big/part{i}.bin"), "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == h


def test_kill_9_mid_pull_then_pull_again(big_image, nerdpy, tmp_path):
    ref, chains, hashes = big_image
    # how long a whole pull takes here, to spread the kills over it
    t0 = time.monotonic()
    first = nerdpy("pull", "-q", ref)
    full = time.monotonic() - t0
    assert first.returncode == 0, first.stderr
    _check_big(nerdpy.data_root, chains, hashes)

    base = tmp_path / "crash"
    fracs = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    for i, frac in enumerate(fracs):
        root = str(base / str(i))
        nerdpy.data_root = root
        # every third time, kill twice in a row (the second on top of the first one's leftovers)
        delays = (frac * full, frac * full * 0.7) if i % 3 == 0 else (frac * full,)
        for delay in delays:
            p = subprocess.Popen(_pull_cmd(nerdpy, "-q", ref), env=nerdpy.env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            p.send_signal(signal.SIGKILL)
            p.wait()
            verify_store(root)
        r = nerdpy("pull", ref)
        assert r.returncode == 0, (i, r.stderr)
        verify_store(root)
        _check_big(root, chains, hashes)
        if i % 3 == 2:
            assert nerdpy("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout == ref + "\n"
            # removing the image collects the leftovers of the killed pulls too
            nerdpy("rmi", ref, check=True)
            assert os.listdir(blob_dir(root)) == []
            assert os.listdir(os.path.join(root, "snapshots")) == [".locks"]
            with db(root) as conn:
                assert conn.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0] == 0


def test_kill_9_during_image_removal(big_image, nerdpy):
    """Garbage collection killed at any point leaves a store whose rows and directories agree,
    so the next pull unpacks whatever is missing."""
    ref, chains, hashes = big_image
    root = nerdpy.data_root
    nerdpy("pull", "-q", ref, check=True)
    t0 = time.monotonic()
    nerdpy("image", "prune", "-a", "-f", check=True)
    full = time.monotonic() - t0
    nerdpy("pull", "-q", ref, check=True)
    for frac in (0.55, 0.7, 0.85):
        p = subprocess.Popen([sys.executable, "-m", "nerdpy", "--data-root", root, "image", "prune", "-a", "-f"],
                             env=nerdpy.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(frac * full)
        p.send_signal(signal.SIGKILL)
        p.wait()
        verify_store(root)
        r = nerdpy("pull", "-q", ref)
        assert r.returncode == 0, r.stderr
        verify_store(root)
        _check_big(root, chains, hashes)
    nerdpy("rmi", ref, check=True)
    assert os.listdir(blob_dir(root)) == []
    assert os.listdir(os.path.join(root, "snapshots")) == [".locks"]
