"""`nerdpy save` and `nerdpy load`, checked against skopeo (which reads what save writes and writes
archives for load) and against what is left in the store when an archive is refused."""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

import world
from conftest import Nerdpy


# -- helpers ------------------------------------------------------------------------------------
def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def inspect(nerdpy, name: str) -> dict:
    return json.loads(nerdpy("image", "inspect", name, check=True).stdout)[0]


def blobs(nerdpy) -> set[str]:
    d = os.path.join(nerdpy.data_root, "content", "blobs", "sha256")
    return set(os.listdir(d)) if os.path.isdir(d) else set()


def leftovers(nerdpy) -> list[str]:
    out = []
    staging = os.path.join(nerdpy.data_root, "content", "staging")
    if os.path.isdir(staging):
        out += os.listdir(staging)
    snaps = os.path.join(nerdpy.data_root, "snapshots")
    if os.path.isdir(snaps):
        out += [n for n in os.listdir(snaps) if n != ".locks"]
    return out


def raw(nerdpy, *args, stdin=None, stdout=None) -> subprocess.CompletedProcess:
    """nerdpy with binary stdin/stdout (the fixture's runner is text-only)."""
    return subprocess.run([sys.executable, "-m", "nerdpy", "--data-root", nerdpy.data_root, *args],
                          stdin=stdin, stdout=stdout if stdout is not None else subprocess.PIPE,
                          stderr=subprocess.PIPE, env=nerdpy.env, timeout=120)


@pytest.fixture
def fresh(tmp_path):
    """A second nerdpy with its own, empty data root."""
    home = tmp_path / "home2"
    home.mkdir()
    return Nerdpy(str(tmp_path / "data2"), str(home), str(tmp_path / "run2"))


def tar_bytes(members: list[tuple]) -> bytes:
    """(name, data) regular files, or (name, "symlink", target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for m in members:
            ti = tarfile.TarInfo(m[0])
            if len(m) == 3:
                ti.type, ti.linkname = tarfile.SYMTYPE, m[2]
                tf.addfile(ti)
            else:
                ti.size = len(m[1])
                tf.addfile(ti, io.BytesIO(m[1]))
    return buf.getvalue()


def before_diff_ids(nerdpy, name: str) -> list[str]:
    return inspect(nerdpy, name)["RootFS"]["Layers"]


def refused(nerdpy, r, *words) -> str:
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    err = r.stderr if isinstance(r.stderr, str) else r.stderr.decode()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("nerdpy: "), err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


# -- save ----------------------------------------------------------------------------------------
def test_save_is_read_by_skopeo(images, nerdpy, tmp_path):
    nerdpy("pull", "-q", images.layered, check=True)
    out = tmp_path / "layered.tar"
    r = nerdpy("save", "-o", str(out), images.layered)
    assert r.returncode == 0 and r.stdout == "", r.stderr
    with tarfile.open(out) as tf:
        names = tf.getnames()
        manifest = json.load(tf.extractfile("manifest.json"))
        index = json.load(tf.extractfile("index.json"))
        assert json.load(tf.extractfile("oci-layout")) == {"imageLayoutVersion": "1.0.0"}
        assert json.load(tf.extractfile("repositories"))
    assert {"manifest.json", "index.json", "oci-layout", "repositories"} <= set(names)
    image_id = inspect(nerdpy, images.layered)["Id"]
    assert manifest == [{"Config": f"blobs/sha256/{image_id[7:]}", "RepoTags": [images.layered],
                         "Layers": [f"blobs/sha256/{layer['digest'][7:]}"
                                    for layer in json.loads(images.raw_manifest(images.layered))["layers"]]}]
    # the OCI layout inside names the registry's manifest, with docker's annotations
    assert index["manifests"][0]["digest"] == images.manifest_digest(images.layered)
    assert index["manifests"][0]["annotations"] == {"io.containerd.image.name": images.layered,
                                                    "org.opencontainers.image.ref.name": "latest"}
    # skopeo reads the docker-archive: the same config...
    seen = json.loads(world.sh("skopeo", "inspect", "--raw", f"docker-archive:{out}").stdout)
    assert seen["config"]["digest"] == image_id
    # ... and copies it to an OCI layout (converting the config to OCI's, same layers)
    oci = tmp_path / "oci"
    world.sh("skopeo", "copy", "-q", f"docker-archive:{out}", f"oci:{oci}")
    config = json.loads(world.sh("skopeo", "inspect", "--config", "--raw", f"oci:{oci}").stdout)
    assert config["rootfs"]["diff_ids"] == before_diff_ids(nerdpy, images.layered)
    # ... and it reads the OCI layout in the same tar as an OCI archive, digests unchanged
    oci2 = tmp_path / "oci2"
    world.sh("skopeo", "copy", "-q", f"oci-archive:{out}", f"oci:{oci2}")
    assert sha256(world.sh("skopeo", "inspect", "--raw", f"oci:{oci2}").stdout) == images.manifest_digest(images.layered)


def test_save_load_round_trip_into_a_fresh_store(images, nerdpy, fresh, tmp_path):
    nerdpy("pull", "-q", images.layered, check=True)
    before = inspect(nerdpy, images.layered)
    out = tmp_path / "img.tar"
    with open(out, "wb") as f:  # to stdout when it is not a terminal
        r = raw(nerdpy, "save", images.layered, stdout=f)
    assert r.returncode == 0, r.stderr
    with open(out, "rb") as f:  # from stdin
        r = raw(fresh, "load", stdin=f)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == f"Loaded image: {images.layered}\n"
    after = inspect(fresh, images.layered)
    for key in ("Id", "RepoTags", "RootFS", "Config", "Descriptor"):
        assert after[key] == before[key], key
    world_verify = __import__("test_pull").verify_store
    world_verify(fresh.data_root, allow_temp=False)
    r = fresh("run", "--rm", "--network", "none", images.layered, "cat", "/hello.txt")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello from layer 2\n"
    # loading the same archive again changes nothing
    r = fresh("load", "-q", "-i", str(out))
    assert r.returncode == 0 and r.stdout == f"Loaded image: {images.layered}\n", r.stderr


def test_load_an_archive_written_by_skopeo(images, nerdpy, tmp_path):
    out = tmp_path / "sk.tar"
    world.sh("skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{images.layered}",
             f"docker-archive:{out}:example.com/team/app:v3")
    with tarfile.open(out) as tf:  # the old layout: <hex>.tar layers, legacy dirs of symlinks
        assert any(m.issym() for m in tf.getmembers())
        assert "index.json" not in tf.getnames()
    r = nerdpy("load", "-i", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Loaded image: example.com/team/app:v3\n"
    info = inspect(nerdpy, "example.com/team/app:v3")
    assert info["Id"] == images.config_digest(images.layered)
    r = nerdpy("run", "--rm", "--network", "none", "example.com/team/app:v3", "ls", "/data")
    assert r.returncode == 0 and r.stdout == "new.txt\n", r.stderr
    # untagged: docker's "Loaded image ID"
    out2 = tmp_path / "untagged.tar"
    world.sh("skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{images.busybox}", f"docker-archive:{out2}")
    r = nerdpy("load", "-i", str(out2))
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"Loaded image ID: {images.config_digest(images.busybox)}\n"
    ids = nerdpy("images", "-q", "--no-trunc").stdout.split()
    assert images.config_digest(images.busybox) in ids


def test_oci_archive_round_trip(images, nerdpy, fresh, tmp_path):
    nerdpy("pull", "-q", images.zstd, check=True)
    out = tmp_path / "oci.tar"
    nerdpy("save", "--format", "oci-archive", "-o", str(out), images.zstd, check=True)
    with tarfile.open(out) as tf:
        assert "manifest.json" not in tf.getnames()
    oci = tmp_path / "oci"
    world.sh("skopeo", "copy", "-q", f"oci-archive:{out}", f"oci:{oci}")
    assert sha256(world.sh("skopeo", "inspect", "--raw", f"oci:{oci}").stdout) == images.manifest_digest(images.zstd)
    r = fresh("load", "-i", str(out))
    assert r.returncode == 0 and r.stdout == f"Loaded image: {images.zstd}\n", r.stderr
    assert inspect(fresh, images.zstd)["Descriptor"]["digest"] == images.manifest_digest(images.zstd)
    # an oci-archive written by skopeo, named by its ref.name annotation
    sk = tmp_path / "sk-oci.tar"
    world.sh("skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{images.busybox}",
             f"oci-archive:{sk}:localhost/from/skopeo:1")
    r = fresh("load", "-i", str(sk))
    assert r.returncode == 0 and r.stdout == "Loaded image: localhost/from/skopeo:1\n", r.stderr
    assert inspect(fresh, "localhost/from/skopeo:1")["Id"] == images.config_digest(images.busybox)


def test_several_images_in_one_archive(images, nerdpy, fresh, tmp_path):
    for ref in (images.busybox, images.layered, images.zstd):
        nerdpy("pull", "-q", ref, check=True)
    nerdpy("tag", images.busybox, f"{images.registry.host}/test/busybox:second", check=True)
    out = tmp_path / "all.tar"
    # a repository without a tag saves every tag of it
    r = nerdpy("save", "-o", str(out), f"{images.registry.host}/test/busybox", images.layered, images.zstd)
    assert r.returncode == 0, r.stderr
    with tarfile.open(out) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))
    assert sorted(t for e in manifest for t in e["RepoTags"]) == sorted(
        [images.busybox, f"{images.registry.host}/test/busybox:second", images.layered, images.zstd])
    r = fresh("load", "-i", str(out))
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == sorted(
        f"Loaded image: {n}" for n in [images.busybox, f"{images.registry.host}/test/busybox:second",
                                       images.layered, images.zstd])
    names = fresh("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert len(names) == 4
    for ref in (images.busybox, images.layered, images.zstd):
        assert inspect(fresh, ref)["Id"] == inspect(nerdpy, ref)["Id"]


def test_save_refuses_a_terminal_and_unknown_images(images, nerdpy, tmp_path):
    nerdpy("pull", "-q", images.busybox, check=True)
    master, slave = os.openpty()
    try:
        r = raw(nerdpy, "save", images.busybox, stdout=slave)
    finally:
        os.close(slave)
        os.close(master)
    refused(nerdpy, r, "cowardly refusing to save to a terminal")
    out = tmp_path / "x.tar"
    r = nerdpy("save", "-o", str(out), images.busybox, "no/such:image")
    refused(nerdpy, r, "no/such")
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".x.tar")]


# -- load refusals -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_archive(images, tmp_path_factory):
    """A docker-archive of the layered image, written by skopeo (independent of nerdpy)."""
    out = str(tmp_path_factory.mktemp("good") / "layered.tar")
    world.sh("skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{images.layered}",
             f"docker-archive:{out}:good/layered:1")
    return out


def _rewrite(path: str, change) -> bytes:
    """The archive with each member passed through change(name, data) -> data."""
    buf = io.BytesIO()
    with tarfile.open(path) as src, tarfile.open(fileobj=buf, mode="w") as dst:
        for m in src.getmembers():
            if m.isreg():
                data = change(m.name, src.extractfile(m).read())
                m.size = len(data)
                dst.addfile(m, io.BytesIO(data))
            else:
                dst.addfile(m)
    return buf.getvalue()


def _flip(name: str, data: bytes) -> bytes:
    if name.endswith(".tar") and len(data) > 100000:
        return data[:5000] + bytes([data[5000] ^ 0xFF]) + data[5001:]
    return data


def _layer_not_in_config(name: str, data: bytes) -> bytes:
    # a layer tar that is valid but differs from the diff ID the config lists
    if name.endswith(".tar") and len(data) < 100000:
        return world._tar([("hello.txt", "file", "something else\n")])
    return data


CASES = {
    "empty": (lambda good: b"", ["empty"]),
    "garbage": (lambda good: os.urandom(8192), ["invalid or corrupt archive"]),
    "truncated": (lambda good: open(good, "rb").read()[: os.path.getsize(good) // 2], ["corrupt"]),
    "truncated-gzip": (lambda good: __import__("gzip").compress(open(good, "rb").read())[:300000], ["corrupt"]),
    "bitflip-in-a-blob": (lambda good: _rewrite(good, _flip), []),
    "layer-not-in-config": (lambda good: _rewrite(good, _layer_not_in_config), ["does not match"]),
    "dotdot": (lambda good: tar_bytes([("../evil.txt", b"x"), ("manifest.json", b"[]")]), ["'..'", "../evil.txt"]),
    "absolute": (lambda good: tar_bytes([("/tmp/evil-abs.txt", b"x"), ("manifest.json", b"[]")]), ["absolute"]),
    "escaping-symlink": (lambda good: tar_bytes([("a/link", "symlink", "../../etc/passwd"), ("manifest.json", b"[]")]),
                         ["leaves the archive"]),
    "oversized-manifest": (lambda good: tar_bytes([("manifest.json", b"[" + b" " * (21 << 20) + b"]")]),
                           ["manifest.json", "20 MiB"]),
    "no-image": (lambda good: tar_bytes([("hello.txt", b"hi")]), ["no image"]),
    "missing-layer": (lambda good: tar_bytes([
        ("manifest.json", json.dumps([{"Config": "c.json", "RepoTags": ["x/y:z"], "Layers": ["nope/layer.tar"]}]).encode()),
        ("c.json", json.dumps({"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}).encode())]),
        ["nope/layer.tar"]),
}


def test_load_refuses_bad_archives_and_leaves_nothing(images, good_archive, nerdpy, tmp_path):
    nerdpy("pull", "-q", images.busybox, check=True)
    listing = ("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    images_before = nerdpy(*listing).stdout
    blobs_before = blobs(nerdpy)
    snaps_before = leftovers(nerdpy)
    for case, (make, words) in CASES.items():
        bad = tmp_path / f"{case}.tar"
        bad.write_bytes(make(good_archive))
        with open(bad, "rb") as f:
            r = raw(nerdpy, "load", stdin=f)
        try:
            refused(nerdpy, r, *words)
        except AssertionError as e:
            raise AssertionError(f"case {case}: {e}") from None
        assert blobs(nerdpy) == blobs_before, case
        assert leftovers(nerdpy) == snaps_before, case
    assert nerdpy(*listing).stdout == images_before
    assert not os.path.exists("/tmp/evil-abs.txt") and not (tmp_path / "evil.txt").exists()
    refused(nerdpy, nerdpy("load", "-i", str(tmp_path / "missing.tar")), "missing.tar")


def test_load_of_a_name_in_use_moves_it(images, nerdpy, good_archive):
    nerdpy("pull", "-q", images.busybox, check=True)
    nerdpy("tag", images.busybox, "good/layered:1", check=True)
    r = nerdpy("load", "-i", good_archive)
    assert r.returncode == 0, r.stderr
    old = images.config_digest(images.busybox)
    assert r.stdout.splitlines() == [
        f"The image good/layered:1 already exists, renaming the old one with ID {old} to empty string",
        "Loaded image: good/layered:1"]
    assert inspect(nerdpy, "good/layered:1")["Id"] == images.config_digest(images.layered)
