"""Content store, metadata, snapshotter and settings, on a real filesystem (no registry)."""
import hashlib
import multiprocessing
import os

import pytest

from nerdpy.engine.config import load_settings
from nerdpy.engine.content.blobs import ContentStore
from nerdpy.engine.errors import DigestMismatch, InvalidArgument
from nerdpy.engine.content.metadata import Metadata
from nerdpy.engine.snapshots.overlay import OverlaySnapshotter as Snapshotter, chain_ids


def dig(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_ingest_verifies_and_renames(tmp_path):
    cs = ContentStore(str(tmp_path))
    data = b"hello" * 1000
    with cs.ingest(dig(data), len(data)) as w:
        w.write(data[:10])
        w.reset()
        w.write(data)
    assert cs.read(dig(data)) == data
    assert [n for n in os.listdir(cs.blob_dir) if n.startswith(".")] == []


def test_ingest_wrong_digest_leaves_nothing(tmp_path):
    cs = ContentStore(str(tmp_path))
    with pytest.raises(DigestMismatch):
        with cs.ingest(dig(b"a"), 1) as w:
            w.write(b"b")
    assert not cs.exists(dig(b"a"))
    assert os.listdir(cs.blob_dir) == []


def test_ingest_oversize_refused(tmp_path):
    cs = ContentStore(str(tmp_path))
    with pytest.raises(DigestMismatch):
        with cs.ingest(dig(b"abc"), 3) as w:
            w.write(b"abcd")
    assert os.listdir(cs.blob_dir) == []


def test_ingest_present_yields_none(tmp_path):
    cs = ContentStore(str(tmp_path))
    d = cs.write_blob(b"x")
    with cs.ingest(d, 1) as w:
        assert w is None


def test_corrupt_blob_is_detected_on_read(tmp_path):
    cs = ContentStore(str(tmp_path))
    d = cs.write_blob(b"{}")
    with open(cs.path(d), "wb") as f:
        f.write(b"[]")
    with pytest.raises(DigestMismatch):
        cs.read(d)


def test_bad_digest_is_invalid(tmp_path):
    cs = ContentStore(str(tmp_path))
    with pytest.raises(InvalidArgument):
        cs.path("sha256:../../etc/passwd")


def _writer(root, data):
    cs = ContentStore(root)
    cs.write_blob(data)


def test_parallel_ingest_of_same_blob(tmp_path):
    data = os.urandom(1 << 20)
    procs = [multiprocessing.Process(target=_writer, args=(str(tmp_path), data)) for _ in range(5)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert all(p.exitcode == 0 for p in procs)
    cs = ContentStore(str(tmp_path))
    assert cs.list() == [dig(data)]
    assert cs.read(dig(data), limit=2 << 20) == data


def test_stale_ingest_removed(tmp_path):
    cs = ContentStore(str(tmp_path))
    d = dig(b"zz")
    stale = os.path.join(cs.blob_dir, f".ingest-{d[7:]}-999999-1")
    open(stale, "w").close()
    assert cs.remove_stale_ingests() == 1
    assert not os.path.exists(stale)


def test_chain_ids_follow_the_spec():
    a, b, c = (dig(x) for x in (b"a", b"b", b"c"))
    ids = chain_ids([a, b, c])
    assert ids[0] == a
    assert ids[1] == "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert ids[2] == "sha256:" + hashlib.sha256(f"{ids[1]} {c}".encode()).hexdigest()
    assert chain_ids([]) == []


def _fill(name, diff):
    def apply(d):
        with open(os.path.join(d, name), "w") as f:
            f.write(name)
        return diff, 1
    return apply


def test_snapshot_unpack_once_and_mount(tmp_path):
    from nerdpy.engine.snapshots.mount import mount_all, mounted_under, unmount

    db = Metadata(str(tmp_path / "meta.db"))
    sn = Snapshotter(str(tmp_path / "snaps"), db)
    d1, d2 = dig(b"1"), dig(b"2")
    c1, c2 = chain_ids([d1, d2])
    assert sn.unpack(c1, None, d1, _fill("one", d1)) is True
    assert sn.unpack(c1, None, d1, _fill("one", d1)) is False
    assert sn.unpack(c2, c1, d2, _fill("two", d2)) is True
    assert len(sn.lowerdirs(c2)) == 2
    mounts = sn.prepare("ns/c1", c2)
    target = tmp_path / "rootfs"
    target.mkdir()
    mount_all(mounts, str(target))
    try:
        assert sorted(os.listdir(target)) == ["one", "two"]
        (target / "three").write_text("3")
        assert os.path.exists(os.path.join(sn.upper_dir("ns/c1"), "three"))
    finally:
        unmount(str(target))
    assert mounted_under(str(tmp_path)) == []
    sn.remove_active("ns/c1")
    sn.remove(c2)
    sn.remove(c1)
    assert sn.list() == []
    assert sorted(os.listdir(tmp_path / "snaps")) == [".locks"]


def test_snapshot_diff_id_mismatch_leaves_nothing(tmp_path):
    db = Metadata(str(tmp_path / "meta.db"))
    sn = Snapshotter(str(tmp_path / "snaps"), db)
    with pytest.raises(DigestMismatch):
        sn.unpack(dig(b"x"), None, dig(b"x"), _fill("f", dig(b"other")))
    assert sn.list() == []
    assert sorted(os.listdir(tmp_path / "snaps")) == [".locks"]


def test_many_layers_mount(tmp_path):
    """120 layers: the overlay option string exceeds a page and must still mount."""
    from nerdpy.engine.snapshots.mount import mount_all, unmount

    db = Metadata(str(tmp_path / "meta.db"))
    root = tmp_path / ("s" * 60)
    sn = Snapshotter(str(root), db)
    diffs = [dig(str(i).encode()) for i in range(120)]
    chains = chain_ids(diffs)
    for i, (c, d) in enumerate(zip(chains, diffs)):
        sn.unpack(c, chains[i - 1] if i else None, d, _fill(f"f{i}", d))
    mounts = sn.prepare("big", chains[-1])
    target = tmp_path / "t"
    target.mkdir()
    mount_all(mounts, str(target))
    try:
        assert len(os.listdir(target)) == 120
    finally:
        unmount(str(target))


def test_orphan_dirs_removed(tmp_path):
    db = Metadata(str(tmp_path / "meta.db"))
    sn = Snapshotter(str(tmp_path / "snaps"), db)
    os.makedirs(tmp_path / "snaps" / "77" / "fs")
    os.makedirs(tmp_path / "snaps" / ".tmp-999999-abc" / "fs")
    assert sn.remove_orphan_dirs() == 2


def test_settings_precedence(tmp_path):
    conf = tmp_path / "nerdpy.toml"
    conf.write_text('data_root = "/from/file"\nnamespace = "filens"\ninsecure_registry = ["a:5000"]\n')
    env = {"NERDPY_CONFIG": str(conf), "NERDPY_NAMESPACE": "envns"}
    s = load_settings({}, env=env)
    assert s.data_root == "/from/file"
    assert s.namespace == "envns"
    assert s.insecure_registries == ["a:5000"]
    s = load_settings({"data_root": "/flag"}, env=env)
    assert s.data_root == "/flag"
    with pytest.raises(InvalidArgument):
        load_settings({"namespace": "bad/ns"}, env={"NERDPY_CONFIG": "/nonexistent"})


def test_generated_libc_module_is_current(tmp_path):
    """nerdpy/engine/util/_libc_ffi.py is generated from _libc_build.CDEF: regenerate it on change."""
    from nerdpy.engine.util import _libc_build

    _libc_build.generate(str(tmp_path))
    here = os.path.join(os.path.dirname(_libc_build.__file__), "_libc_ffi.py")
    assert open(tmp_path / "_libc_ffi.py").read() == open(here).read()
