"""The layer applier (engine/snapshots/apply.py) against malicious layers, and what it must keep.

The breakout table follows the ideas of containerd's TestBreakouts (pkg/archive/tar_test.go):
each layer is built in memory with tarfile, applied to a fresh `root` inside tmp_path, and then
a sentinel directory next to it (`outside`, with files, a subdirectory and a symlink) must be
byte-for-byte and metadata-for-metadata unchanged (ctime included, so even a chmod, chown, utime
or xattr on it would show), and nothing may appear next to `root`.

A layer is either refused (UnsafeLayer / LayerError) or contained. nerdpy resolves every path as
a chroot into `root` would, like containerd's fs.RootPath: an absolute symlink is stored as-is
(it is correct inside the container) but anything written through it lands inside `root`. Where
docker/containerd contain, containing is accepted; each case says which one nerdpy does.

Device nodes: docker and containerd create the device nodes a layer holds (images ship
/dev/console, /dev/null...); the container's device cgroup decides what can be opened. nerdpy
does the same, so a device entry is allowed as long as it lands inside the target.

These tests need root (chown, mknod, trusted.* xattrs), as applying a layer does.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import time
import uuid
import zlib

import pytest
import zstandard

from nerdpy.engine.snapshots.apply import Limits, apply_layer
from nerdpy.engine.errors import LayerError, UnsafeLayer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="applying layers needs root")

MTIME = 1_600_000_000
SMALL = Limits(max_entries=1000, max_total_bytes=1 << 20, max_file_bytes=1 << 20)


# -- building layers ----------------------------------------------------------------------
def E(name, kind="file", data=b"", link="", mode=None, uid=0, gid=0, mtime=MTIME, pax=None, dev=(0, 0)):
    """One tar entry: (TarInfo, data)."""
    ti = tarfile.TarInfo(name)
    ti.type = {
        "file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "link": tarfile.LNKTYPE,
        "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE,
    }[kind]
    ti.linkname = link
    ti.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
    ti.uid, ti.gid = uid, gid
    ti.mtime = mtime
    ti.devmajor, ti.devminor = dev
    if pax:
        ti.pax_headers = dict(pax)
    if kind == "file":
        ti.size = len(data)
    return ti, data


def make_tar(entries, eof=True) -> bytes:
    buf = io.BytesIO()
    tf = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)
    for item in entries:
        if isinstance(item, bytes):  # a raw, hand-made header + data
            tf.fileobj.write(item)
            tf.offset += len(item)
            continue
        ti, data = item
        tf.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    if eof:
        tf.close()
    return buf.getvalue()


def _octal(n: int, width: int = 12) -> bytes:
    return b"%0*o" % (width, n)  # all digits, no NUL: GNU tar's form for large numbers


def gnu_sparse(name: str, realsize: int, regions: list[tuple[int, bytes]]) -> bytes:
    """An old-GNU sparse member ('S'): up to 4 (offset, data) regions, the rest holes."""
    data = b"".join(d for _, d in regions)
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.GNUTYPE_SPARSE
    ti.size = len(data)
    ti.mode = 0o644
    ti.mtime = MTIME
    hdr = bytearray(ti.tobuf(format=tarfile.GNU_FORMAT))
    assert len(hdr) == 512
    for i, (off, d) in enumerate(regions):
        pos = 386 + 24 * i
        hdr[pos:pos + 12] = _octal(off)
        hdr[pos + 12:pos + 24] = _octal(len(d))
    hdr[482] = 0
    hdr[483:495] = _octal(realsize)
    hdr[148:156] = b" " * 8
    hdr[148:156] = b"%06o\0 " % sum(hdr)
    pad = (-len(data)) % 512
    return bytes(hdr) + data + b"\0" * pad


def gz(data: bytes, level: int = 6) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


# -- the sentinel world -----------------------------------------------------------------------
def _state(base: str, skip: str) -> dict:
    """Everything observable about `base` except the subtree `skip`: type, mode, owner, size,
    mtime, ctime, link target, content hash, xattrs."""
    out = {}

    def record(path):
        st = os.lstat(path)
        info = [st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_nlink, st.st_rdev]
        if stat.S_ISLNK(st.st_mode):
            info.append(os.readlink(path))
        elif stat.S_ISREG(st.st_mode):
            with open(path, "rb") as f:
                info.append(hashlib.sha256(f.read()).hexdigest())
        try:
            names = sorted(os.listxattr(path, follow_symlinks=False))
            info.append([(n, os.getxattr(path, n, follow_symlinks=False)) for n in names])
        except OSError:
            pass
        out[os.path.relpath(path, base)] = info

    record(base)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) != skip]
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            if p != skip:
                record(p)
    return out


class World:
    def __init__(self, tmp_path):
        self.base = str(tmp_path)
        self.out = os.path.join(self.base, "outside")
        os.mkdir(self.out)
        with open(os.path.join(self.out, "secret.txt"), "w") as f:
            f.write("sentinel")
        os.mkdir(os.path.join(self.out, "sub"))
        with open(os.path.join(self.out, "sub", "f"), "w") as f:
            f.write("x")
        os.symlink("secret.txt", os.path.join(self.out, "link"))
        os.utime(os.path.join(self.out, "sub"), (1000, 1000))
        os.utime(self.out, (2000, 2000))
        self.root = os.path.join(self.base, "root")
        os.mkdir(self.root)
        self.before = _state(self.base, self.root)
        # a unique host path that the classic "/etc" symlink trick would write to
        self.host_probe = f"/etc/nerdpy-breakout-{uuid.uuid4().hex[:12]}"

    def inside(self, host_path: str) -> str:
        """Where an absolute path ends up when resolved inside the root."""
        return os.path.join(self.root, host_path.lstrip("/"))

    def assert_untouched(self):
        assert sorted(os.listdir(self.base)) == ["outside", "root"]
        assert _state(self.base, self.root) == self.before
        assert not os.path.lexists(self.host_probe)


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    if os.path.lexists(w.host_probe):  # never expected: clean the host anyway
        os.unlink(w.host_probe)


def apply(world, data: bytes, limits: Limits | None = None):
    return apply_layer(world.root, io.BytesIO(data), limits=limits)


# -- checks for contained cases ---------------------------------------------------------------
def read(path):
    with open(path, "rb") as f:
        return f.read()


def is_link(path, target):
    return os.path.islink(path) and os.readlink(path) == target


# Each case: (id, entries(world) -> list, expectation). The expectation is an error class
# (refused) or a function(world) that checks where things landed (contained).
BREAKOUTS = [
    # -- symlinks ---------------------------------------------------------------------------
    (
        # contained (as containerd): the link is kept verbatim, the file lands under root/<abs path>
        "symlink-absolute-then-write-through",
        lambda w: [E("evil", "sym", link=w.out), E("evil/secret.txt", data=b"pwned")],
        lambda w: is_link(os.path.join(w.root, "evil"), w.out)
        and read(os.path.join(w.inside(w.out), "secret.txt")) == b"pwned",
    ),
    (
        # contained: the classic link to the host's /etc; the write goes to root/etc
        "symlink-absolute-etc",
        lambda w: [E("x", "sym", link="/etc"), E("x/" + os.path.basename(w.host_probe), data=b"pwned")],
        lambda w: read(w.inside(w.host_probe)) == b"pwned",
    ),
    (
        # refused: inside a chroot "etc -> /etc" points at itself (ELOOP for docker too)
        "symlink-absolute-to-itself",
        lambda w: [E("etc", "sym", link="/etc"), E("etc/" + os.path.basename(w.host_probe), data=b"pwned")],
        UnsafeLayer,
    ),
    (
        # contained: ".." never climbs above the root while resolving a link
        "symlink-relative-up-and-out",
        lambda w: [E("up", "sym", link="../../../../../.."), E("up/outside/secret.txt", data=b"pwned")],
        lambda w: read(os.path.join(w.root, "outside", "secret.txt")) == b"pwned",
    ),
    (
        # contained: a link in a subdirectory that points one level above the root
        "symlink-in-subdir-to-parent-of-root",
        lambda w: [E("dir", "dir"), E("dir/loop", "sym", link="../../outside"),
                   E("dir/loop/secret.txt", data=b"pwned")],
        lambda w: read(os.path.join(w.root, "outside", "secret.txt")) == b"pwned",
    ),
    (
        # contained: a chain of links, the last one absolute
        "symlink-chain-absolute",
        lambda w: [E("a", "sym", link="b"), E("b", "sym", link="c"), E("c", "sym", link=w.out),
                   E("a/new", data=b"pwned")],
        lambda w: read(os.path.join(w.inside(w.out), "new")) == b"pwned",
    ),
    (
        # contained: a chain of relative links that together climb out
        "symlink-chain-relative",
        lambda w: [E("d1", "dir"), E("d1/l1", "sym", link="../l2"), E("l2", "sym", link="../outside"),
                   E("d1/l1/sub/f", data=b"pwned")],
        lambda w: read(os.path.join(w.root, "outside", "sub", "f")) == b"pwned",
    ),
    (
        # refused: a loop of links (ELOOP for docker too)
        "symlink-loop",
        lambda w: [E("a", "sym", link="b"), E("b", "sym", link="a"), E("a/f", data=b"x")],
        UnsafeLayer,
    ),
    (
        # contained: a directory entry replaces a link of the same name (docker does the same)
        "dir-entry-replaces-symlink",
        lambda w: [E("d", "sym", link=w.out), E("d", "dir"), E("d/secret.txt", data=b"pwned")],
        lambda w: os.path.isdir(os.path.join(w.root, "d")) and not os.path.islink(os.path.join(w.root, "d"))
        and read(os.path.join(w.root, "d", "secret.txt")) == b"pwned",
    ),
    (
        # contained: a file entry replaces the link instead of writing through it
        "file-replaces-symlink-to-outside-file",
        lambda w: [E("f", "sym", link=os.path.join(w.out, "secret.txt")), E("f", data=b"pwned", mode=0o777)],
        lambda w: stat.S_ISREG(os.lstat(os.path.join(w.root, "f")).st_mode)
        and read(os.path.join(w.root, "f")) == b"pwned",
    ),
    (
        # contained: a relative link to an outside file, replaced by a file
        "file-replaces-relative-symlink",
        lambda w: [E("f", "sym", link="../outside/secret.txt"), E("f", data=b"pwned")],
        lambda w: read(os.path.join(w.root, "f")) == b"pwned",
    ),
    (
        # contained: the deferred directory mtimes must not follow a parent that later became a
        # link (nerdpy used to set the mtime of outside/sub here)
        "dir-mtime-through-later-symlink-absolute",
        lambda w: [E("a", "dir"), E("a/sub", "dir", mtime=12345), E("a", "sym", link=w.out)],
        lambda w: is_link(os.path.join(w.root, "a"), w.out),
    ),
    (
        "dir-mtime-through-later-symlink-relative",
        lambda w: [E("a", "dir"), E("a/sub", "dir", mtime=12345), E("a", "sym", link="../outside")],
        lambda w: is_link(os.path.join(w.root, "a"), "../outside"),
    ),
    (
        # contained: a directory entry under an outward link is created (and chmod/chowned)
        # inside the root, not on the host's outside/sub
        "dir-chmod-through-symlink",
        lambda w: [E("s", "sym", link="../outside"), E("s/sub", "dir", mode=0o777, uid=666, gid=666)],
        lambda w: stat.S_IMODE(os.lstat(os.path.join(w.root, "outside", "sub")).st_mode) == 0o777
        and os.lstat(os.path.join(w.root, "outside", "sub")).st_uid == 666,
    ),
    (
        # contained: a symlink created under an outward link lands inside the root
        "symlink-name-through-symlink",
        lambda w: [E("s", "sym", link=w.out), E("s/evil", "sym", link="/"), E("s/evil/secret.txt", data=b"pwned")],
        lambda w: is_link(os.path.join(w.inside(w.out), "evil"), "/")
        and read(os.path.join(w.root, "secret.txt")) == b"pwned",
    ),
    (
        # refused quickly: links that expand exponentially hit the 40-hop limit
        "symlink-expansion-bomb",
        lambda w: [E("l0", "sym", link=".")]
        + [E(f"l{i}", "sym", link="/".join([f"l{i - 1}"] * 8)) for i in range(1, 8)]
        + [E("l7/f", data=b"x")],
        UnsafeLayer,
    ),
    (
        # contained or refused: a path through a regular file is not a directory
        "parent-is-a-file",
        lambda w: [E("f", data=b"x"), E("f/g", data=b"y")],
        LayerError,
    ),
    # -- hardlinks ------------------------------------------------------------------------------
    (
        # refused: the absolute link name resolves inside the root, where nothing exists
        "hardlink-absolute-outside",
        lambda w: [E("h", "link", link=os.path.join(w.out, "secret.txt"))],
        UnsafeLayer,
    ),
    (
        # refused: ".." above the root
        "hardlink-up-and-out",
        lambda w: [E("h", "link", link="../outside/secret.txt")],
        UnsafeLayer,
    ),
    (
        "hardlink-deep-up-and-out",
        lambda w: [E("a/b", "dir"), E("h", "link", link="a/b/../../../outside/secret.txt")],
        UnsafeLayer,
    ),
    (
        # refused: resolved through the link inside the root, the target does not exist
        "hardlink-through-absolute-symlink",
        lambda w: [E("s", "sym", link=w.out), E("h", "link", link="s/secret.txt")],
        UnsafeLayer,
    ),
    (
        # contained: through a relative link that climbs out, it finds the layer's own file
        "hardlink-through-relative-symlink",
        lambda w: [E("outside", "dir"), E("outside/secret.txt", data=b"inner"),
                   E("s", "sym", link="../outside"), E("h", "link", link="s/secret.txt")],
        lambda w: read(os.path.join(w.root, "h")) == b"inner"
        and os.stat(os.path.join(w.root, "h")).st_ino == os.stat(os.path.join(w.root, "outside", "secret.txt")).st_ino,
    ),
    (
        # contained: a hardlink to a symlink links the symlink itself (never its target); a
        # later entry of that name replaces it (containerd's HardlinkSymlinkChmod)
        "hardlink-to-symlink-then-overwrite",
        lambda w: [E("s", "sym", link=os.path.join(w.out, "secret.txt")), E("h", "link", link="s"),
                   E("h", data=b"pwned", mode=0o777)],
        lambda w: is_link(os.path.join(w.root, "s"), os.path.join(w.out, "secret.txt"))
        and read(os.path.join(w.root, "h")) == b"pwned",
    ),
    (
        "hardlink-to-symlink-kept",
        lambda w: [E("s", "sym", link="../outside/secret.txt"), E("h", "link", link="s")],
        lambda w: is_link(os.path.join(w.root, "h"), "../outside/secret.txt"),
    ),
    (
        # contained: the new link's own name goes through an outward link: it lands inside
        "hardlink-name-through-symlink",
        lambda w: [E("f", data=b"inner"), E("s", "sym", link=w.out), E("s/secret.txt", "link", link="f")],
        lambda w: read(os.path.join(w.inside(w.out), "secret.txt")) == b"inner",
    ),
    (
        # contained: writing to a hardlink's name replaces that name, the other link keeps its data
        "hardlink-then-overwrite-name",
        lambda w: [E("f", data=b"orig"), E("h", "link", link="f"), E("h", data=b"new")],
        lambda w: read(os.path.join(w.root, "f")) == b"orig" and read(os.path.join(w.root, "h")) == b"new",
    ),
    (
        "hardlink-to-directory",
        lambda w: [E("d", "dir"), E("h", "link", link="d")],
        UnsafeLayer,
    ),
    (
        "hardlink-to-root",
        lambda w: [E("h", "link", link="./")],
        UnsafeLayer,
    ),
    # -- names ------------------------------------------------------------------------------------
    (
        # refused (docker refuses too: "breakout")
        "dotdot-name",
        lambda w: [E("../outside/secret.txt", data=b"pwned")],
        UnsafeLayer,
    ),
    (
        "dotdot-deep-name",
        lambda w: [E("a/../../outside/secret.txt", data=b"pwned")],
        UnsafeLayer,
    ),
    (
        # contained: ".." that stays inside is only a path
        "dotdot-staying-inside",
        lambda w: [E("a/b/../../c", data=b"ok")],
        lambda w: read(os.path.join(w.root, "c")) == b"ok",
    ),
    (
        # contained: a leading "/" is dropped, as docker does
        "absolute-name",
        lambda w: [E(os.path.join(w.out, "secret.txt"), data=b"pwned")],
        lambda w: read(os.path.join(w.inside(w.out), "secret.txt")) == b"pwned",
    ),
    (
        # refused: a non-directory entry for the root itself
        "file-named-dot",
        lambda w: [E("./", data=b"x")],
        UnsafeLayer,
    ),
    # -- whiteouts --------------------------------------------------------------------------------
    (
        # refused: ".wh.." would whiteout the root itself
        "whiteout-root",
        lambda w: [E(".wh..")],
        UnsafeLayer,
    ),
    (
        # refused: ".wh..." would whiteout the parent
        "whiteout-parent",
        lambda w: [E("a", "dir"), E("a/.wh...")],
        UnsafeLayer,
    ),
    (
        "whiteout-empty-name",
        lambda w: [E("a/.wh.")],
        UnsafeLayer,
    ),
    (
        "whiteout-dotdot-path",
        lambda w: [E("../.wh.outside")],
        UnsafeLayer,
    ),
    (
        # contained: resolved through the absolute link, the whiteout lands inside the root
        "whiteout-through-absolute-symlink",
        lambda w: [E("s", "sym", link=w.out), E("s/.wh.secret.txt")],
        lambda w: stat.S_ISCHR(os.lstat(os.path.join(w.inside(w.out), "secret.txt")).st_mode),
    ),
    (
        # contained: the opaque xattr goes on root/outside, not on the host's outside
        "opaque-through-relative-symlink",
        lambda w: [E("s", "sym", link="../outside"), E("s/.wh..wh..opq")],
        lambda w: os.getxattr(os.path.join(w.root, "outside"), "trusted.overlay.opaque") == b"y",
    ),
    (
        # contained: a whiteout of a link removes the link, not what it points to
        "whiteout-of-symlink",
        lambda w: [E("s", "sym", link=os.path.join(w.out, "secret.txt")), E(".wh.s")],
        lambda w: stat.S_ISCHR(os.lstat(os.path.join(w.root, "s")).st_mode),
    ),
    (
        # contained: a whiteout of a directory removes the layer's directory only
        "whiteout-of-dir-holding-outward-link",
        lambda w: [E("d", "dir"), E("d/l", "sym", link=w.out), E("d/r", "sym", link="../../outside"), E(".wh.d")],
        lambda w: stat.S_ISCHR(os.lstat(os.path.join(w.root, "d")).st_mode),
    ),
    (
        # refused: a whiteout below a regular file
        "whiteout-under-a-file",
        lambda w: [E("f", data=b"x"), E("f/.wh.g")],
        LayerError,
    ),
    (
        # contained: docker's own metadata (.wh..wh.plnk) is not content
        "whiteout-meta-ignored",
        lambda w: [E(".wh..wh.plnk", "dir"), E(".wh..wh.plnk/123", data=b"x")],
        lambda w: True,
    ),
    # -- smuggled overlay attributes ----------------------------------------------------------
    (
        # refused: an overlay xattr in a layer could fake whiteouts or redirects
        "overlay-opaque-xattr-in-pax",
        lambda w: [E("d", "dir", pax={"SCHILY.xattr.trusted.overlay.opaque": "y"})],
        UnsafeLayer,
    ),
    (
        "overlay-redirect-xattr-in-pax",
        lambda w: [E("f", data=b"x", pax={"SCHILY.xattr.trusted.overlay.redirect": "/outside"})],
        UnsafeLayer,
    ),
    # -- device nodes ---------------------------------------------------------------------------
    (
        # contained: allowed as docker allows them, created inside the root
        "device-nodes",
        lambda w: [E("dev", "dir"), E("dev/null", "chr", mode=0o666, dev=(1, 3)),
                   E("dev/loop9", "blk", mode=0o660, dev=(7, 9)),
                   E("dev/fifo", "fifo", mode=0o600)],
        lambda w: stat.S_ISCHR(os.lstat(os.path.join(w.root, "dev/null")).st_mode)
        and os.lstat(os.path.join(w.root, "dev/null")).st_rdev == os.makedev(1, 3)
        and stat.S_ISBLK(os.lstat(os.path.join(w.root, "dev/loop9")).st_mode)
        and stat.S_ISFIFO(os.lstat(os.path.join(w.root, "dev/fifo")).st_mode),
    ),
    (
        # contained: a device written through an outward link lands inside the root
        "device-through-symlink",
        lambda w: [E("dev", "sym", link=w.out), E("dev/null", "chr", mode=0o666, dev=(1, 3))],
        lambda w: stat.S_ISCHR(os.lstat(os.path.join(w.inside(w.out), "null")).st_mode),
    ),
    (
        # contained: a device node replaces an outward link of the same name
        "device-replaces-symlink",
        lambda w: [E("n", "sym", link=os.path.join(w.out, "secret.txt")), E("n", "chr", dev=(1, 3))],
        lambda w: stat.S_ISCHR(os.lstat(os.path.join(w.root, "n")).st_mode),
    ),
]


@pytest.mark.parametrize("case_id,entries,expect", BREAKOUTS, ids=[b[0] for b in BREAKOUTS])
def test_breakouts(world, case_id, entries, expect):
    data = make_tar(entries(world))
    if isinstance(expect, type) and issubclass(expect, Exception):
        with pytest.raises(expect):
            apply(world, data)
    else:
        apply(world, data)
        assert expect(world), f"{case_id}: not applied as expected"
    world.assert_untouched()


# -- bombs: refused by the Limits without doing the work --------------------------------------
def test_sparse_bomb_refused_by_limits(world):
    layer = make_tar([gnu_sparse("bomb", 10 << 30, [(0, b"head"), ((10 << 30) - 4, b"tail")])])
    t = time.monotonic()
    with pytest.raises(LayerError, match="exceeds the limit"):
        apply(world, layer, SMALL)
    assert time.monotonic() - t < 5
    assert not os.path.exists(os.path.join(world.root, "bomb"))
    world.assert_untouched()


def test_sparse_file_is_written_with_holes(world):
    """Within the limits a sparse file keeps its holes (as Go's tar reader does when writing to a
    file): 10 GB apparent, next to nothing on disk, and quickly."""
    size = 10 << 30
    layer = make_tar([gnu_sparse("sparse", size, [(0, b"head"), (1 << 20, b"mid" * 100), (size - 4, b"tail")])])
    t = time.monotonic()
    res = apply(world, layer)
    assert time.monotonic() - t < 5
    path = os.path.join(world.root, "sparse")
    st = os.stat(path)
    assert st.st_size == size
    assert st.st_blocks * 512 < (4 << 20)
    with open(path, "rb") as f:
        assert f.read(4) == b"head"
        f.seek(1 << 20)
        assert f.read(300) == b"mid" * 100
        f.seek(size - 8)
        assert f.read() == b"\0\0\0\0tail"
    assert res.size == size
    world.assert_untouched()


def test_sparse_map_outside_the_file_refused(world):
    layer = make_tar([gnu_sparse("bad", 100, [(200, b"x" * 10)])])
    with pytest.raises(LayerError):
        apply(world, layer)
    world.assert_untouched()


def test_declared_huge_file_refused_before_reading(world):
    ti, _ = E("huge")
    ti.size = 10 << 30  # no data follows: only the header claims 10 GB
    hdr = ti.tobuf(format=tarfile.PAX_FORMAT)
    with pytest.raises(LayerError, match="exceeds the limit"):
        apply(world, hdr, SMALL)
    assert not os.path.exists(os.path.join(world.root, "huge"))
    world.assert_untouched()


def test_total_size_limit(world):
    layer = make_tar([E(f"f{i}", data=b"x" * (300 << 10)) for i in range(5)])
    with pytest.raises(LayerError, match="exceeds"):
        apply(world, layer, SMALL)
    world.assert_untouched()


def _small_tar_without_eof() -> bytes:
    return make_tar([E("f", data=b"hello")], eof=False)


def test_gzip_bomb_refused(world):
    """~1 GiB of zeros after a valid entry from ~1 MB of gzip members: refused once the
    decompressed stream passes the limit, without decompressing the rest."""
    member = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = member.compress(b"\0" * (1 << 20)) + member.flush()
    bomb = gz(_small_tar_without_eof()) + zeros * 1024
    assert len(bomb) < 2 << 20
    t = time.monotonic()
    with pytest.raises(LayerError, match="more than"):
        apply(world, bomb, SMALL)
    assert time.monotonic() - t < 5
    world.assert_untouched()


def test_zstd_bomb_refused(world):
    frame = zst(b"\0" * (1 << 20))
    bomb = zst(_small_tar_without_eof()) + frame * 10240  # 10 GiB from well under 1 MB
    assert len(bomb) < 1 << 20
    t = time.monotonic()
    with pytest.raises(LayerError, match="more than"):
        apply(world, bomb, SMALL)
    assert time.monotonic() - t < 5
    world.assert_untouched()


def test_big_file_in_gzip_refused(world):
    layer = gz(make_tar([E("big", data=b"\0" * (4 << 20))]), level=1)
    with pytest.raises(LayerError, match="exceeds"):
        apply(world, layer, SMALL)
    assert not os.path.exists(os.path.join(world.root, "big"))
    world.assert_untouched()


def test_entry_count_bomb_refused(world):
    layer = make_tar([E("d", "dir") for _ in range(5000)])
    with pytest.raises(LayerError, match="more than 1000 entries"):
        apply(world, layer, SMALL)
    world.assert_untouched()


@pytest.mark.parametrize("data", [
    b"this is not a tar archive at all" * 40,
    b"\x1f\x8b\x08\x00garbage that is not deflate",
    b"\x28\xb5\x2f\xfd garbage that is not zstd",
], ids=["not-tar", "bad-gzip", "bad-zstd"])
def test_corrupt_layers_refused(world, data):
    with pytest.raises(LayerError):
        apply(world, data)
    world.assert_untouched()


@pytest.mark.parametrize("field,value", [("uid", 1 << 33), ("gid", -5), ("devmajor", 1 << 40)])
def test_out_of_range_numbers_refused_cleanly(world, field, value):
    ti, _ = E("x", "chr" if field == "devmajor" else "file")
    setattr(ti, field, value)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:  # base-256 numbers
        tf.addfile(ti, io.BytesIO(b""))
    with pytest.raises(LayerError):
        apply(world, buf.getvalue())
    world.assert_untouched()


def test_truncated_layers_refused(world):
    plain = make_tar([E("f", data=os.urandom(100_000))])
    for data in (plain[:50_000], gz(plain)[:-20], zst(plain)[:-20]):
        root = os.path.join(world.base, "root")
        for n in os.listdir(root):
            os.unlink(os.path.join(root, n))
        with pytest.raises(LayerError):
            apply(world, data)
    world.assert_untouched()


# -- what a layer must keep -------------------------------------------------------------------
def test_whiteout_becomes_overlay_char_device(world):
    apply(world, make_tar([E("etc", "dir"), E("etc/.wh.passwd"), E(".wh.gone")]))
    for p in ("etc/passwd", "gone"):
        st = os.lstat(os.path.join(world.root, p))
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert not os.path.lexists(os.path.join(world.root, "etc/.wh.passwd"))


def test_whiteout_replaces_earlier_entry(world):
    apply(world, make_tar([E("d", "dir"), E("d/f", data=b"x"), E(".wh.d")]))
    assert stat.S_ISCHR(os.lstat(os.path.join(world.root, "d")).st_mode)


def test_opaque_dir_gets_overlay_xattr(world):
    apply(world, make_tar([E("d", "dir"), E("d/.wh..wh..opq"), E("d/keep", data=b"k")]))
    d = os.path.join(world.root, "d")
    assert os.getxattr(d, "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(d)) == ["keep"]


def test_modes_owners_mtimes_links_and_xattrs_kept(world):
    entries = [
        E("bin", "dir", mode=0o755, uid=0, gid=0, mtime=1_500_000_000),
        E("bin/su", data=b"#!", mode=0o4755, mtime=1_400_000_000),
        E("bin/wall", data=b"#!", mode=0o2755, uid=0, gid=5),
        E("tmp", "dir", mode=0o1777, mtime=1_300_000_000),
        E("home/user", "dir", mode=0o700, uid=1000, gid=1000),
        E("home/user/file", data=b"data", mode=0o640, uid=1000, gid=1001, mtime=1_234_567_890),
        E("home/user/hard", "link", link="home/user/file"),
        E("abs", "sym", link="/etc/passwd", uid=1000, gid=1000, mtime=1_111_111_111),
        E("rel", "sym", link="../x/y"),
        E("cap", data=b"c", pax={"SCHILY.xattr.user.note": "hello"}),
    ]
    res = apply(world, make_tar(entries))
    r = world.root
    m = lambda p: os.lstat(os.path.join(r, p))  # noqa: E731
    assert stat.S_IMODE(m("bin/su").st_mode) == 0o4755
    assert stat.S_IMODE(m("bin/wall").st_mode) == 0o2755
    assert (m("bin/wall").st_uid, m("bin/wall").st_gid) == (0, 5)
    assert stat.S_IMODE(m("tmp").st_mode) == 0o1777
    assert stat.S_IMODE(m("home/user").st_mode) == 0o700
    assert (m("home/user").st_uid, m("home/user").st_gid) == (1000, 1000)
    assert (m("home/user/file").st_uid, m("home/user/file").st_gid) == (1000, 1001)
    assert stat.S_IMODE(m("home/user/file").st_mode) == 0o640
    # mtimes, directories included (set after their content was written)
    assert m("bin/su").st_mtime == 1_400_000_000
    assert m("home/user/file").st_mtime == 1_234_567_890
    assert m("bin").st_mtime == 1_500_000_000
    assert m("tmp").st_mtime == 1_300_000_000
    assert m("abs").st_mtime == 1_111_111_111
    # hardlink inside the layer
    assert m("home/user/hard").st_ino == m("home/user/file").st_ino
    assert m("home/user/file").st_nlink == 2
    # symlinks stored as-is, owners kept on the link itself
    assert os.readlink(os.path.join(r, "abs")) == "/etc/passwd"
    assert os.readlink(os.path.join(r, "rel")) == "../x/y"
    assert (m("abs").st_uid, m("abs").st_gid) == (1000, 1000)
    assert os.getxattr(os.path.join(r, "cap"), "user.note") == b"hello"
    assert read(os.path.join(r, "home/user/file")) == b"data"
    assert res.entries == len(entries)
    assert res.size == 2 + 2 + 4 + 1
    world.assert_untouched()


def test_root_entry_sets_root_attributes(world):
    apply(world, make_tar([E("./", "dir", mode=0o750, uid=7, gid=8), E("f", data=b"x")]))
    st = os.lstat(world.root)
    assert stat.S_IMODE(st.st_mode) == 0o750 and (st.st_uid, st.st_gid) == (7, 8)


def _plain_layer() -> bytes:
    return make_tar([
        E("etc", "dir"),
        E("etc/hostname", data=b"box\n"),
        E("usr/bin/tool", data=os.urandom(3 << 20), mode=0o755),  # several decompression chunks
        E("usr/bin/alias", "sym", link="tool"),
    ])


@pytest.mark.parametrize("compress", [
    lambda d: d,
    gz,
    zst,
    lambda d: gz(d[:4096]) + gz(d[4096:]),  # concatenated gzip members
    lambda d: gz(d) + b"\0" * 1024,  # zero padding after the gzip stream
    lambda d: zst(d[:10000]) + zst(d[10000:]),  # several zstd frames
], ids=["plain", "gzip", "zstd", "gzip-multi-member", "gzip-zero-padded", "zstd-multi-frame"])
def test_compressions_and_diff_id(world, compress):
    plain = _plain_layer()
    res = apply(world, compress(plain))
    assert res.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert read(os.path.join(world.root, "etc/hostname")) == b"box\n"
    assert os.path.getsize(os.path.join(world.root, "usr/bin/tool")) == 3 << 20
    assert os.readlink(os.path.join(world.root, "usr/bin/alias")) == "tool"
    world.assert_untouched()


def test_diff_id_covers_bytes_after_the_tar_end(world):
    """The diffID is the digest of the whole uncompressed stream, padding after EOF included."""
    plain = make_tar([E("f", data=b"x")]) + b"\0" * 10240
    assert apply(world, gz(plain)).diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()


# -- the snapshotter leaves no partial snapshot -------------------------------------------------
def test_refused_layer_leaves_no_snapshot(tmp_path):
    from nerdpy.engine.content.metadata import Metadata
    from nerdpy.engine.snapshots.overlay import OverlaySnapshotter as Snapshotter

    db = Metadata(str(tmp_path / "meta.db"))
    snaps = tmp_path / "snaps"
    sn = Snapshotter(str(snaps), db)
    bad = make_tar([E("ok", data=b"fine"), E("d", "dir"), E("d/x", data=b"y"), E("../escape", data=b"z")])
    diff = "sha256:" + hashlib.sha256(bad).hexdigest()

    def fill(target):
        res = apply_layer(target, io.BytesIO(gz(bad)))
        return res.diff_id, res.size

    with pytest.raises(UnsafeLayer):
        sn.unpack(diff, None, diff, fill)
    assert sn.list() == []
    assert sorted(os.listdir(snaps)) == [".locks"]
    assert not (tmp_path / "escape").exists()

    good = make_tar([E("ok", data=b"fine")])
    gdiff = "sha256:" + hashlib.sha256(good).hexdigest()
    assert sn.unpack(gdiff, None, gdiff, lambda t: (lambda r: (r.diff_id, r.size))(apply_layer(t, io.BytesIO(good))))
    assert [s.chain_id for s in sn.list()] == [gdiff]
