"""`images`, `image inspect/tag/rm/prune`, `tag`, `rmi` on images pulled from the real registry,
checked against skopeo's digests and against what is left on disk."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys

import pytest

import world


# -- helpers ------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _raw(ref: str) -> bytes:
    """The registry's manifest bytes, through skopeo (cached: the registry does not change)."""
    return world.Images.raw_manifest(ref)


class Skopeo:
    """What skopeo says about the test images (independent of nerdpy)."""

    def __init__(self, images):
        self.images = images

    def __getattr__(self, name):
        return getattr(self.images, name)

    def raw_manifest(self, ref: str) -> bytes:
        return _raw(ref)

    def manifest_digest(self, ref: str) -> str:
        return "sha256:" + hashlib.sha256(_raw(ref)).hexdigest()

    def config_digest(self, ref: str) -> str:
        return json.loads(_raw(ref))["config"]["digest"]


def blobs(nerdpy) -> set[str]:
    d = os.path.join(nerdpy.data_root, "content", "blobs", "sha256")
    return {"sha256:" + n for n in os.listdir(d) if not n.startswith(".")}


def snapshot_dirs(nerdpy) -> set[str]:
    return {n for n in os.listdir(os.path.join(nerdpy.data_root, "snapshots")) if n != ".locks"}


def snapshot_chains(nerdpy) -> set[str]:
    conn = sqlite3.connect(os.path.join(nerdpy.data_root, "meta.db"))
    try:
        return {r[0] for r in conn.execute("SELECT chain_id FROM snapshots")}
    finally:
        conn.close()


def chain_ids(diff_ids: list[str]) -> list[str]:
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


def image_blobs(images, ref: str) -> set[str]:
    """Manifest, config and layer digests of a single-platform image, from skopeo."""
    m = json.loads(images.raw_manifest(ref))
    return {images.manifest_digest(ref), m["config"]["digest"]} | {layer["digest"] for layer in m["layers"]}


def image_chains(nerdpy, ref: str) -> list[str]:
    info = json.loads(nerdpy("image", "inspect", ref, check=True).stdout)[0]
    return chain_ids(info["RootFS"]["Layers"])


def names(nerdpy) -> list[str]:
    return nerdpy("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout.splitlines()


def short_id(images, ref: str) -> str:
    return images.config_digest(ref)[7:19]


def table(out: str) -> list[list[str]]:
    """Split docker's tab-writer output (columns separated by 2+ spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in out.splitlines()]


@pytest.fixture(scope="module")
def pulled_root(images, tmp_path_factory):
    """A data root holding busybox and layered, pulled once per module."""
    root = str(tmp_path_factory.mktemp("pulled") / "data")
    env = dict(os.environ, NERDPY_CONFIG="/nonexistent")
    for ref in (images.busybox, images.layered):
        subprocess.run([sys.executable, "-m", "nerdpy", "--data-root", root, "pull", "-q", ref],
                       check=True, capture_output=True, env=env)
    return root


@pytest.fixture
def pulled(images, nerdpy, pulled_root):
    """busybox and layered in this test's own data root (a copy: whiteouts, xattrs and all)."""
    subprocess.run(["cp", "-a", pulled_root, nerdpy.data_root], check=True)
    return Skopeo(images)


# -- listing ------------------------------------------------------------------------------------
def test_images_default_table(pulled, nerdpy):
    r = nerdpy("images")
    assert r.returncode == 0, r.stderr
    rows = table(r.stdout)
    assert rows[0] == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    body = {(row[0], row[1]): row for row in rows[1:]}
    assert len(body) == 2
    for ref in (pulled.busybox, pulled.layered):
        repo = ref.rsplit(":", 1)[0]
        row = body[(repo, "latest")]
        assert row[2] == short_id(pulled, ref)
        assert row[3].endswith("ago")
        assert re.fullmatch(r"[\d.]+(B|kB|MB)", row[4])
    # `image ls` and `image list` are the same command
    assert nerdpy("image", "ls").stdout == r.stdout
    assert nerdpy("image", "list").stdout == r.stdout


def test_images_quiet(pulled, nerdpy):
    r = nerdpy("images", "-q")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == sorted([short_id(pulled, pulled.busybox), short_id(pulled, pulled.layered)])
    assert all(re.fullmatch(r"[0-9a-f]{12}", line) for line in r.stdout.splitlines())
    full = nerdpy("images", "-q", "--no-trunc").stdout.split()
    assert sorted(full) == sorted([pulled.config_digest(pulled.busybox), pulled.config_digest(pulled.layered)])


def test_images_digests_and_no_trunc(pulled, nerdpy):
    rows = table(nerdpy("images", "--digests", check=True).stdout)
    assert rows[0] == ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    got = {row[0]: (row[2], row[3]) for row in rows[1:]}
    for ref in (pulled.busybox, pulled.layered):
        assert got[ref.rsplit(":", 1)[0]] == (pulled.manifest_digest(ref), short_id(pulled, ref))
    rows = table(nerdpy("images", "--no-trunc", check=True).stdout)
    ids = {row[0]: row[2] for row in rows[1:]}
    for ref in (pulled.busybox, pulled.layered):
        assert ids[ref.rsplit(":", 1)[0]] == pulled.config_digest(ref)


def test_images_filter_reference(pulled, nerdpy):
    host = pulled.registry.host
    out = nerdpy("images", "--filter", f"reference={host}/test/lay*", "--format", "{{.Repository}}", check=True)
    assert out.stdout == f"{host}/test/layered\n"
    # docker's path.Match: `*` does not cross a `/`
    assert nerdpy("images", "--filter", "reference=*layered*", "-q", check=True).stdout == ""
    out = nerdpy("images", "--filter", "reference=*/test/*:latest", "--format", "{{.Repository}}", check=True)
    assert sorted(out.stdout.split()) == sorted(r.rsplit(":", 1)[0] for r in (pulled.busybox, pulled.layered))
    # several reference filters: any of them
    out = nerdpy("images", "-f", f"reference={host}/test/busybox", "-f", f"reference={host}/test/layered",
                 "--format", "{{.Repository}}", check=True)
    assert len(out.stdout.split()) == 2
    # `images REPOSITORY`
    out = nerdpy("images", f"{host}/test/busybox", "--format", "{{.Repository}}:{{.Tag}}", check=True)
    assert out.stdout == pulled.busybox + "\n"
    # a filter that does not exist
    r = nerdpy("images", "--filter", "colour=blue")
    assert r.returncode == 125 and "colour" in r.stderr and "Traceback" not in r.stderr


def _make_dangling(images, nerdpy) -> str:
    """Move the name local/moving:1 from zstd to busybox: the zstd image is left without a
    name (dangling), as docker does. Returns the dangling image's ID."""
    nerdpy("pull", "-q", images.zstd, check=True)
    nerdpy("tag", images.zstd, "local/moving:1", check=True)
    nerdpy("rmi", images.zstd, check=True)
    nerdpy("tag", images.busybox, "local/moving:1", check=True)
    return images.config_digest(images.zstd)


def test_images_filter_dangling(pulled, nerdpy):
    assert nerdpy("images", "--filter", "dangling=true", "-q", check=True).stdout == ""
    zstd_id = _make_dangling(pulled, nerdpy)
    rows = table(nerdpy("images", "--filter", "dangling=true", check=True).stdout)
    assert rows[1:] == [[*rows[1][:2], zstd_id[7:19], *rows[1][3:]]]
    assert rows[1][:2] == ["<none>", "<none>"]
    out = nerdpy("images", "--filter", "dangling=false", "--format", "{{.Repository}}:{{.Tag}}", check=True)
    assert sorted(out.stdout.split()) == sorted([pulled.busybox, pulled.layered, "local/moving:1"])
    # the dangling image is also in the plain listing
    assert "<none>:<none>" in names(nerdpy)
    r = nerdpy("images", "--filter", "dangling=maybe")
    assert r.returncode == 125 and "Traceback" not in r.stderr


def test_images_formats(pulled, nerdpy):
    out = nerdpy("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout
    assert sorted(out.splitlines()) == sorted([pulled.busybox, pulled.layered])
    out = nerdpy("images", "--format", "{{.ID}} {{.Digest}}", check=True).stdout
    assert f"{short_id(pulled, pulled.busybox)} {pulled.manifest_digest(pulled.busybox)}" in out.splitlines()
    # json: one JSON object per line, with docker's keys
    lines = nerdpy("images", "--format", "json", check=True).stdout.splitlines()
    assert len(lines) == 2
    docs = [json.loads(line) for line in lines]
    for doc in docs:
        assert {"Repository", "Tag", "ID", "Digest", "CreatedSince", "CreatedAt", "Size"} <= set(doc)
    by_repo = {d["Repository"]: d for d in docs}
    bb = by_repo[pulled.busybox.rsplit(":", 1)[0]]
    assert bb["Tag"] == "latest" and bb["ID"] == short_id(pulled, pulled.busybox)
    assert bb["Digest"] == pulled.manifest_digest(pulled.busybox)
    # {{json .}} is the same object
    same = [json.loads(line) for line in nerdpy("images", "--format", "{{json .}}", check=True).stdout.splitlines()]
    assert sorted(json.dumps(d, sort_keys=True) for d in same) == sorted(json.dumps(d, sort_keys=True) for d in docs)
    # table with a template: header from the fields
    rows = table(nerdpy("images", "--format", "table {{.Repository}}\t{{.Tag}}\t{{.ID}}", check=True).stdout)
    assert rows[0] == ["REPOSITORY", "TAG", "IMAGE ID"]
    assert sorted(tuple(r) for r in rows[1:]) == sorted(
        (ref.rsplit(":", 1)[0], "latest", short_id(pulled, ref)) for ref in (pulled.busybox, pulled.layered))
    # bare `table` is the default table
    assert nerdpy("images", "--format", "table", check=True).stdout == nerdpy("images", check=True).stdout


# -- inspect ------------------------------------------------------------------------------------------
def test_image_inspect_format_and_missing(pulled, nerdpy):
    r = nerdpy("image", "inspect", "-f", "{{.Id}} {{.Os}}/{{.Architecture}}", pulled.busybox)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{pulled.config_digest(pulled.busybox)} linux/amd64\n"
    r = nerdpy("image", "inspect", "--format", "{{json .RepoTags}}", pulled.layered, check=True)
    assert json.loads(r.stdout) == [pulled.layered]
    # by ID prefix, and several at once
    docs = json.loads(nerdpy("image", "inspect", short_id(pulled, pulled.layered), pulled.busybox, check=True).stdout)
    assert [d["Id"] for d in docs] == [pulled.config_digest(pulled.layered), pulled.config_digest(pulled.busybox)]
    # missing: exit 1, "no such image", the found ones still printed
    r = nerdpy("image", "inspect", pulled.busybox, "nothere:latest")
    assert r.returncode == 1
    assert "no such image: nothere:latest" in r.stderr.lower()
    assert len(json.loads(r.stdout)) == 1


# -- tag and rmi -------------------------------------------------------------------------------------------
def test_tag_then_rmi_by_name(pulled, nerdpy):
    before = blobs(nerdpy)
    r = nerdpy("tag", pulled.busybox, "local/bb:mine")
    assert r.returncode == 0, r.stderr
    assert sorted(names(nerdpy)) == sorted([pulled.busybox, pulled.layered, "local/bb:mine"])
    info = json.loads(nerdpy("image", "inspect", "local/bb:mine", check=True).stdout)[0]
    assert info["Id"] == pulled.config_digest(pulled.busybox)
    assert sorted(info["RepoTags"]) == sorted([pulled.busybox, "docker.io/local/bb:mine"]) or \
        sorted(info["RepoTags"]) == sorted([pulled.busybox, "local/bb:mine"])
    # docker's normalisation: local/bb:mine is docker.io/local/bb:mine
    assert nerdpy("image", "inspect", "docker.io/local/bb:mine").returncode == 0
    # the same tag again is fine; `image tag` is the same command
    assert nerdpy("image", "tag", pulled.busybox, "local/bb:mine").returncode == 0
    # a tag with a digest is refused
    r = nerdpy("tag", pulled.busybox, "local/bb@sha256:" + "a" * 64)
    assert r.returncode == 125 and "Traceback" not in r.stderr
    # tag of a missing image
    r = nerdpy("tag", "nothere", "local/x:1")
    assert r.returncode != 0 and "no such image" in r.stderr.lower()

    r = nerdpy("rmi", "local/bb:mine")
    assert r.returncode == 0, r.stderr
    assert "Untagged: local/bb:mine" in r.stdout.splitlines()
    assert "Deleted:" not in r.stdout
    assert sorted(names(nerdpy)) == sorted([pulled.busybox, pulled.layered])
    assert blobs(nerdpy) == before


def test_rmi_last_name_deletes_content(pulled, nerdpy):
    bb_blobs = image_blobs(pulled, pulled.busybox)
    bb_chains = image_chains(nerdpy, pulled.busybox)
    layered_chains = image_chains(nerdpy, pulled.layered)
    assert bb_blobs <= blobs(nerdpy)
    r = nerdpy("image", "rm", pulled.busybox)
    assert r.returncode == 0, r.stderr
    assert f"Untagged: {pulled.busybox}" in r.stdout.splitlines()
    assert f"Deleted: {pulled.config_digest(pulled.busybox)}" in r.stdout.splitlines()
    assert names(nerdpy) == [pulled.layered]
    assert not (bb_blobs & blobs(nerdpy))
    assert image_blobs(pulled, pulled.layered) == blobs(nerdpy)
    assert snapshot_chains(nerdpy) == set(layered_chains)
    assert not set(bb_chains) & snapshot_chains(nerdpy)
    assert len(snapshot_dirs(nerdpy)) == len(layered_chains)


def test_rmi_by_id_prefix(pulled, nerdpy):
    nerdpy("tag", pulled.busybox, "local/bb:two", check=True)
    prefix = short_id(pulled, pulled.busybox)[:6]
    # two names on one ID: refused without -f (docker's message, exit 1)
    r = nerdpy("rmi", prefix)
    assert r.returncode == 1
    assert "must be forced" in r.stderr and "Traceback" not in r.stderr
    assert len(names(nerdpy)) == 3
    r = nerdpy("rmi", "-f", prefix)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert f"Untagged: {pulled.busybox}" in out and "Untagged: local/bb:two" in out
    assert f"Deleted: {pulled.config_digest(pulled.busybox)}" in out
    assert names(nerdpy) == [pulled.layered]
    assert not (image_blobs(pulled, pulled.busybox) & blobs(nerdpy))
    # a single name by ID prefix needs no -f
    r = nerdpy("rmi", short_id(pulled, pulled.layered))
    assert r.returncode == 0, r.stderr
    assert names(nerdpy) == []
    assert blobs(nerdpy) == set() and snapshot_dirs(nerdpy) == set()


def test_rmi_by_digest(pulled, nerdpy):
    repo = pulled.busybox.rsplit(":", 1)[0]
    r = nerdpy("rmi", f"{repo}@{pulled.manifest_digest(pulled.busybox)}")
    assert r.returncode == 0, r.stderr
    assert f"Deleted: {pulled.config_digest(pulled.busybox)}" in r.stdout
    assert names(nerdpy) == [pulled.layered]
    # by the full image ID (sha256:...)
    r = nerdpy("rmi", pulled.config_digest(pulled.layered))
    assert r.returncode == 0, r.stderr
    assert names(nerdpy) == []
    assert blobs(nerdpy) == set()


def test_rmi_missing(pulled, nerdpy):
    r = nerdpy("rmi", "nothere:latest")
    assert r.returncode == 1
    assert "no such image" in r.stderr.lower() and "nothere" in r.stderr
    assert "Traceback" not in r.stderr
    # one missing among several: the others are still removed, exit 1
    r = nerdpy("rmi", pulled.busybox, "nothere:latest")
    assert r.returncode == 1
    assert f"Untagged: {pulled.busybox}" in r.stdout
    assert names(nerdpy) == [pulled.layered]
    # rmi -f of a missing image is not an error (docker)
    r = nerdpy("rmi", "-f", "nothere:latest")
    assert r.returncode == 0, r.stderr


def test_rmi_keeps_shared_layers(images, nerdpy):
    images = Skopeo(images)
    # zstd and layered share the bottom layer's content (same diff ID, other compression)
    for ref in (images.zstd, images.layered):
        nerdpy("pull", "-q", ref, check=True)
    zstd_chains = image_chains(nerdpy, images.zstd)
    layered_chains = image_chains(nerdpy, images.layered)
    assert zstd_chains[0] == layered_chains[0]
    assert snapshot_chains(nerdpy) == set(layered_chains)
    nerdpy("rmi", images.layered, check=True)
    assert snapshot_chains(nerdpy) == set(zstd_chains)
    assert blobs(nerdpy) == image_blobs(images, images.zstd)
    nerdpy("pull", "-q", images.layered, check=True)
    nerdpy("rmi", images.zstd, check=True)
    assert snapshot_chains(nerdpy) == set(layered_chains)
    assert blobs(nerdpy) == image_blobs(images, images.layered)


# -- prune ---------------------------------------------------------------------------------------------------
def test_image_prune_dangling(pulled, nerdpy):
    zstd_id = _make_dangling(pulled, nerdpy)
    zstd_blobs = image_blobs(pulled, pulled.zstd)
    assert zstd_blobs <= blobs(nerdpy)
    r = nerdpy("image", "prune", "-f")
    assert r.returncode == 0, r.stderr
    assert f"deleted: {zstd_id}" in r.stdout
    assert "Total reclaimed space:" in r.stdout
    assert "<none>:<none>" not in names(nerdpy)
    assert sorted(names(nerdpy)) == sorted([pulled.busybox, pulled.layered, "local/moving:1"])
    # zstd's own blobs are gone; its bottom snapshot is shared with layered and stays
    assert not (zstd_blobs & blobs(nerdpy))
    assert snapshot_chains(nerdpy) == set(image_chains(nerdpy, pulled.busybox)) | set(
        image_chains(nerdpy, pulled.layered))
    # nothing left to prune
    r = nerdpy("image", "prune", "-f", check=True)
    assert "Total reclaimed space: 0B" in r.stdout


def test_image_prune_all(pulled, nerdpy):
    nerdpy("tag", pulled.busybox, "local/bb:x", check=True)
    nerdpy("pull", "-q", "--all-platforms", pulled.multiarch, check=True)
    assert len(snapshot_dirs(nerdpy)) >= 4
    r = nerdpy("image", "prune", "-a", "-f")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Deleted Images:\n")
    for ref in (pulled.busybox, pulled.layered, pulled.multiarch, "local/bb:x"):
        assert f"untagged: {ref}" in r.stdout
    m = re.search(r"Total reclaimed space: ([\d.]+)MB", r.stdout)
    assert m and float(m.group(1)) > 1
    assert names(nerdpy) == []
    assert nerdpy("images", "-q", check=True).stdout == ""
    assert blobs(nerdpy) == set()
    assert os.listdir(os.path.join(nerdpy.data_root, "content", "blobs", "sha256")) == []
    assert snapshot_dirs(nerdpy) == set() and snapshot_chains(nerdpy) == set()


def test_image_prune_asks_first(pulled, nerdpy):
    # without -f, prune asks; a "no" (or no answer) removes nothing
    r = nerdpy("image", "prune", "-a", input="n\n")
    assert "Traceback" not in r.stderr
    assert len(names(nerdpy)) == 2
    r = nerdpy("image", "prune", "-a", input="")
    assert "Traceback" not in r.stderr
    assert len(names(nerdpy)) == 2
    r = nerdpy("image", "prune", "-a", input="y\n")
    assert r.returncode == 0, r.stderr
    assert names(nerdpy) == []


# -- namespaces and moving tags -----------------------------------------------------------------------------
def test_namespaces_are_separate_but_share_content(pulled, nerdpy):
    assert nerdpy("-n", "other", "images", "-q", check=True).stdout == ""
    r = nerdpy("-n", "other", "pull", "-q", pulled.busybox)
    assert r.returncode == 0, r.stderr
    assert nerdpy("-n", "other", "images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout == \
        pulled.busybox + "\n"
    # removing it in one namespace keeps the content the other one still uses
    nerdpy("rmi", pulled.busybox, check=True)
    assert image_blobs(pulled, pulled.busybox) <= blobs(nerdpy)
    assert set(image_chains(nerdpy, pulled.layered)) <= snapshot_chains(nerdpy)
    r = nerdpy("-n", "other", "rmi", pulled.busybox)
    assert r.returncode == 0, r.stderr
    assert not (image_blobs(pulled, pulled.busybox) & blobs(nerdpy))


def test_tag_moved_in_the_registry_leaves_a_dangling_image(images, registry, nerdpy):
    images = Skopeo(images)
    hand = os.path.join(world.build_images(), "hand")
    ref = f"{registry.host}/test/moving-{os.getpid()}-{id(nerdpy)}:latest"
    world.push_layout(hand, "zstd", ref)
    def registry_digest() -> str:  # not cached: the tag moves
        return "sha256:" + hashlib.sha256(world.Images.raw_manifest(ref)).hexdigest()

    first = registry_digest()
    nerdpy("pull", "-q", ref, check=True)
    world.push_layout(hand, "layered", ref)  # the registry's tag now names another image
    r = nerdpy("pull", ref)
    assert r.returncode == 0, r.stderr
    assert "Status: Downloaded newer image for " + ref in r.stdout
    assert f"Digest: {registry_digest()}" in r.stdout
    assert registry_digest() != first
    assert inspect_id(nerdpy, ref) == images.config_digest(images.layered)
    rows = table(nerdpy("images", "--filter", "dangling=true", "--digests", check=True).stdout)
    assert len(rows) == 2
    assert rows[1][:4] == ["<none>", "<none>", first, images.config_digest(images.zstd)[7:19]]
    # the old image can still be found by its ID
    assert inspect_id(nerdpy, images.config_digest(images.zstd)[7:19]) == images.config_digest(images.zstd)
    r = nerdpy("image", "prune", "-f", check=True)
    assert f"deleted: {images.config_digest(images.zstd)}" in r.stdout
    assert names(nerdpy) == [ref]


def inspect_id(nerdpy, name: str) -> str:
    return nerdpy("image", "inspect", "-f", "{{.Id}}", name, check=True).stdout.strip()
