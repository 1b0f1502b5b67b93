"""Applying a layer tar (plain, gzip or zstd) into an empty snapshot directory, safely.

Each layer gets its own directory (a committed snapshot's), written in the snapshotter's diff
form (snapshotter.py): `.wh.NAME` -> a whiteout (a 0:0 character device), `.wh..wh..opq` -> the
opaque xattr (`trusted.overlay.opaque=y`). Every path is resolved inside the root as a chroot would
(absolute symlinks are relative to the root, `..` never climbs above it), hardlinks must point
inside the root, and anything else is refused with UnsafeLayer. Decompression and the diffID
hash run in a second thread so that extraction and decompression use both cores.
"""
from __future__ import annotations

import errno
import hashlib
import os
import queue
import stat
import tarfile
import threading
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

from nerdpy.engine.content.reserve import Room
from nerdpy.engine.errors import InvalidArgument, LayerError, UnsafeLayer
from nerdpy.engine.snapshots.snapshotter import is_overlay_xattr, make_whiteout, opaque_xattr
from nerdpy.engine.util.fs import resolve_in_root

CHUNK = 1 << 20
# tarfile's stream buffer: every header read copies what is left of it, so a small buffer keeps
# layers of many small files linear (a 1 MiB buffer cost ~50 us per entry)
TAR_BUFSIZE = 64 << 10
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
WHITEOUT_META = ".wh..wh."
MAX_LINKS = 40


@dataclass
class ApplyResult:
    diff_id: str     # sha256 of the uncompressed tar stream
    size: int        # bytes of regular-file content written
    entries: int


def _env_limit(name: str, default: int) -> int:
    try:
        n = int(os.environ.get(name, ""))
    except ValueError:
        return default
    return n if n > 0 else default


@dataclass
class Limits:
    """What one layer may hold. The environment can lower (or raise) the defaults:
    NERDPY_LAYER_MAX_ENTRIES, NERDPY_LAYER_MAX_BYTES (all file content, and with the headers the
    decompressed stream), NERDPY_LAYER_MAX_FILE_BYTES (one file); tests use small ones."""
    max_entries: int = field(default_factory=lambda: _env_limit("NERDPY_LAYER_MAX_ENTRIES", 1_000_000))
    max_total_bytes: int = field(default_factory=lambda: _env_limit("NERDPY_LAYER_MAX_BYTES", 64 << 30))
    max_file_bytes: int = field(default_factory=lambda: _env_limit("NERDPY_LAYER_MAX_FILE_BYTES", 32 << 30))


# -- the decompressing reader ---------------------------------------------------------------
class _Aborted(Exception):
    pass


class _Pipeline:
    """Decompresses `stream` in a thread, hashing the plain bytes; `read()` gives them back."""

    def __init__(self, stream: BinaryIO, byte_limit: int):
        self.stream = stream
        self.byte_limit = byte_limit
        self.q: queue.Queue = queue.Queue(maxsize=16)
        self.hasher = hashlib.sha256()
        self.total = 0
        self.stop = threading.Event()
        self.buf = b""
        self.pos = 0
        self.eof = False
        self.thread = threading.Thread(target=self._run, name="layer-decompress", daemon=True)
        self.thread.start()

    def _put(self, item) -> None:
        while True:
            if self.stop.is_set():
                raise _Aborted()
            try:
                self.q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        self.total += len(data)
        if self.total > self.byte_limit:
            raise LayerError(f"layer expands to more than {self.byte_limit} bytes: refused")
        self.hasher.update(data)
        self._put(data)

    def _run(self) -> None:
        from nerdpy.engine.util.compression import LAYER, DecompressError, plain_chunks

        try:
            try:
                for data in plain_chunks(self.stream, accept=LAYER, chunk=CHUNK):
                    self._emit(data)
            except DecompressError as e:
                if e.truncated:
                    raise LayerError(f"truncated {e.kind} layer: unexpected end of data") from None
                raise LayerError(f"corrupt {e.kind} layer: {e.detail}") from None
            self._put(None)
        except _Aborted:
            pass
        except Exception as e:  # handed to the reader
            try:
                self._put(e)
            except _Aborted:
                pass

    def read(self, n: int = -1) -> bytes:
        out = []
        want = n if n >= 0 else 1 << 62
        while want > 0:
            if self.pos >= len(self.buf):
                if self.eof:
                    break
                item = self.q.get()
                if item is None:
                    self.eof = True
                    break
                if isinstance(item, Exception):
                    self.eof = True
                    raise item
                self.buf, self.pos = item, 0
            take = self.buf[self.pos:self.pos + want]
            self.pos += len(take)
            want -= len(take)
            out.append(take)
        return b"".join(out)

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


# -- the applier ------------------------------------------------------------------------------
class _Applier:
    def __init__(self, root: str, limits: Limits):
        # realpath: the deferred directory mtimes check their paths hold no symlink
        self.root = os.path.realpath(root)
        self.limits = limits
        self.dir_cache: dict[tuple, str] = {(): self.root}
        self.dir_times: dict[str, float] = {}  # host path -> mtime, set last (deepest first)
        self.dirs_removed = False
        self.size = 0
        self.entries = 0
        self.room = Room(self.root)

    # path resolution inside the root
    def _clean(self, name: str) -> list[str]:
        parts: list[str] = []
        for p in name.split("/"):
            if p in ("", "."):
                continue
            if p == "..":
                if not parts:
                    raise UnsafeLayer(f"layer entry {name!r}: path escapes the layer root")
                parts.pop()
                continue
            parts.append(p)
        return parts

    def _resolve(self, parts: list[str], create: bool, name: str) -> str:
        """Host path of the directory `parts` (logical, inside root), following symlinks inside root."""
        key = tuple(parts)
        hit = self.dir_cache.get(key)
        if hit is not None:
            return hit
        try:
            path = resolve_in_root(self.root, "/".join(parts), MAX_LINKS, create_dirs=create)
        except InvalidArgument:
            raise UnsafeLayer(f"layer entry {name!r}: too many levels of symbolic links") from None
        except FileNotFoundError as e:
            if create:
                raise
            raise UnsafeLayer(f"layer entry {name!r}: {e.filename} does not exist") from None
        except NotADirectoryError as e:
            raise LayerError(f"layer entry {name!r}: {e.filename} is not a directory") from None
        self.dir_cache[key] = path
        return path

    def _remove(self, path: str) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            import shutil

            shutil.rmtree(path)
            self.dir_cache = {(): self.root}
            self.dirs_removed = True
        else:
            os.unlink(path)
            if stat.S_ISLNK(st.st_mode):
                self.dir_cache = {(): self.root}

    def apply(self, tf: tarfile.TarFile) -> None:
        while True:
            m = tf.next()
            if m is None:
                break
            tf.members.clear()  # stream mode needs no index; keeping one costs ~600 bytes an entry
            self.entries += 1
            if self.entries > self.limits.max_entries:
                raise LayerError(f"layer has more than {self.limits.max_entries} entries: refused")
            try:
                self._entry(tf, m)
            except OSError as e:
                if e.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise  # a full disk, reported as such wherever it hits
                raise LayerError(f"layer entry {m.name!r}: {e.strerror or e}") from None
            except (OverflowError, ValueError) as e:  # out-of-range uid, gid, device numbers...
                raise LayerError(f"layer entry {m.name!r}: {e}") from None
        for path, mtime in sorted(self.dir_times.items(), key=lambda x: -x[0].count("/")):
            # once a directory was removed, one recorded earlier may have been replaced, or a
            # parent of it turned into a symlink (even one pointing out of the root): then touch
            # only what is still a real directory at a symlink-free path inside the root
            try:
                if self.dirs_removed and (os.path.realpath(path) != path or not stat.S_ISDIR(os.lstat(path).st_mode)):
                    continue
                os.utime(path, (mtime, mtime), follow_symlinks=False)
            except OSError:
                pass

    def _entry(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        parts = self._clean(m.name)
        if not parts:
            if m.isdir():
                self._attrs(self.root, m, is_dir=True)
                return
            raise UnsafeLayer(f"layer entry {m.name!r}: refers to the layer root")
        base = parts[-1]
        if base.startswith(WHITEOUT):
            self._whiteout(parts, m.name)
            return
        for key in m.pax_headers:
            if key.startswith("SCHILY.xattr.") and is_overlay_xattr(key[13:]):
                raise UnsafeLayer(f"layer entry {m.name!r}: sets the overlay xattr {key[13:]!r}")
        parent = self._resolve(parts[:-1], True, m.name)
        path = os.path.join(parent, base)
        try:
            existing = os.lstat(path)
        except FileNotFoundError:
            existing = None
        if m.isdir():
            if existing is not None and not stat.S_ISDIR(existing.st_mode):
                self._remove(path)
                existing = None
            if existing is None:
                os.mkdir(path, 0o700)
            self._attrs(path, m, is_dir=True)
            return
        if existing is not None:
            self._remove(path)
        if m.isreg():
            self._file(tf, m, path)
        elif m.issym():
            os.symlink(m.linkname, path)
            self._attrs(path, m, symlink=True)
        elif m.islnk():
            lparts = self._clean(m.linkname)
            if not lparts:
                raise UnsafeLayer(f"layer entry {m.name!r}: hardlink to the layer root")
            lparent = self._resolve(lparts[:-1], False, m.name)
            target = os.path.join(lparent, lparts[-1])
            try:
                tst = os.lstat(target)
            except FileNotFoundError:
                raise UnsafeLayer(f"layer entry {m.name!r}: hardlink target {m.linkname!r} does not exist") from None
            if stat.S_ISDIR(tst.st_mode):
                raise UnsafeLayer(f"layer entry {m.name!r}: hardlink to a directory")
            os.link(target, path, follow_symlinks=False)
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            try:
                os.mknod(path, kind | (m.mode & 0o7777), os.makedev(m.devmajor, m.devminor))
            except PermissionError:
                if not _in_user_namespace():
                    raise
                return  # a rootless user cannot make device nodes: skipped, as containerd does
            self._attrs(path, m)
        elif m.isfifo():
            os.mkfifo(path, m.mode & 0o7777)
            self._attrs(path, m)
        else:
            raise LayerError(f"layer entry {m.name!r}: unsupported tar entry type {m.type!r}")

    def _file(self, tf: tarfile.TarFile, m: tarfile.TarInfo, path: str) -> None:
        if m.size > self.limits.max_file_bytes:
            raise LayerError(f"layer entry {m.name!r}: file of {m.size} bytes exceeds the limit")
        self.size += m.size
        if self.size > self.limits.max_total_bytes:
            raise LayerError(f"layer content exceeds {self.limits.max_total_bytes} bytes: refused")
        sparse = m.sparse
        if sparse is not None:
            # (old GNU headers give unused map slots as (0, 0): skip empty regions)
            sparse = [(o, n) for o, n in sparse if n != 0]
            end = 0
            for offset, numbytes in sparse:
                if offset < end or numbytes < 0 or offset + numbytes > m.size:
                    raise LayerError(f"layer entry {m.name!r}: invalid sparse file map")
                end = offset + numbytes
        self.room.take(sum(n for _, n in sparse) if sparse is not None else m.size)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            src = tf.extractfile(m)
            if src is not None and sparse is not None:
                # write the data regions only and leave holes, as Go's tar reader does for a
                # seekable writer: a 10 GB sparse file must not turn into 10 GB of zeros
                raw = src.raw
                for offset, numbytes in sparse:
                    raw.seek(offset)
                    os.lseek(fd, offset, os.SEEK_SET)
                    while numbytes > 0:
                        buf = raw.read(min(CHUNK, numbytes))
                        if not buf:
                            raise LayerError(f"layer entry {m.name!r}: unexpected end of data")
                        numbytes -= len(buf)
                        _write_all(fd, buf)
                os.ftruncate(fd, m.size)
            elif src is not None:
                while True:
                    buf = src.read(CHUNK)
                    if not buf:
                        break
                    _write_all(fd, buf)
            _owner(m, lambda: os.fchown(fd, m.uid, m.gid))
            os.fchmod(fd, m.mode & 0o7777)
            self._xattrs(path, m)
            os.utime(fd, (m.mtime, m.mtime))
        finally:
            os.close(fd)

    def _attrs(self, path: str, m: tarfile.TarInfo, is_dir: bool = False, symlink: bool = False) -> None:
        _owner(m, lambda: os.chown(path, m.uid, m.gid, follow_symlinks=False))
        if not symlink:
            os.chmod(path, m.mode & 0o7777)
        self._xattrs(path, m)
        if is_dir:
            self.dir_times[path] = m.mtime
        else:
            try:
                os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)
            except OSError:
                pass

    def _xattrs(self, path: str, m: tarfile.TarInfo) -> None:
        for key, value in m.pax_headers.items():
            if not key.startswith("SCHILY.xattr."):
                continue
            name = key[len("SCHILY.xattr."):]
            if is_overlay_xattr(name):
                raise UnsafeLayer(f"layer entry {m.name!r}: sets the overlay xattr {name!r}")
            raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
            try:
                os.setxattr(path, name, raw, follow_symlinks=False)
            except OSError as e:
                if e.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise LayerError(f"layer entry {m.name!r}: cannot set xattr {name}: {e.strerror}") from None

    def _whiteout(self, parts: list[str], name: str) -> None:
        base = parts[-1]
        parent = self._resolve(parts[:-1], True, name)
        if base == OPAQUE:
            os.setxattr(parent, opaque_xattr(), b"y", follow_symlinks=False)
            return
        if base.startswith(WHITEOUT_META):
            return  # docker's own metadata (.wh..wh.plnk...): not content
        target = base[len(WHITEOUT):]
        if target in ("", ".", "..") or "/" in target:
            raise UnsafeLayer(f"layer entry {name!r}: invalid whiteout")
        path = os.path.join(parent, target)
        self._remove(path)
        make_whiteout(path)


def _write_all(fd: int, buf: bytes) -> None:
    view = memoryview(buf)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def apply_layer(root: str, stream: BinaryIO, *, limits: Limits | None = None) -> ApplyResult:
    """Apply the layer in `stream` to the empty directory `root`.
    On error the directory is left as it is: the caller removes it."""
    limits = limits or Limits()
    byte_limit = limits.max_total_bytes + 1536 * min(limits.max_entries, 1 << 20) + (1 << 20)
    pipe = _Pipeline(stream, byte_limit)
    applier = _Applier(root, limits)
    try:
        try:
            tf = tarfile.open(fileobj=pipe, mode="r|", errorlevel=2, bufsize=TAR_BUFSIZE)
        except tarfile.ReadError as e:
            raise LayerError(f"layer is not a valid tar archive: {e}") from None
        try:
            applier.apply(tf)
        except (tarfile.TarError, EOFError) as e:
            raise LayerError(f"corrupt layer archive: {e}") from None
        pipe.drain()
    except tarfile.ReadError as e:
        raise LayerError(f"corrupt layer archive: {e}") from None
    finally:
        pipe.close()
    return ApplyResult("sha256:" + pipe.hasher.hexdigest(), applier.size, applier.entries)


def _in_user_namespace() -> bool:
    from nerdpy.engine.config import rootless_uid

    return rootless_uid() is not None


def _owner(m: tarfile.TarInfo, chown: Callable[[], None]) -> None:
    """chown, with one clear line when a rootless user's namespace has no such id."""
    try:
        chown()
    except OSError as e:
        if e.errno == errno.EINVAL and _in_user_namespace():
            raise LayerError(f"layer entry {m.name!r}: owner {m.uid}:{m.gid} is outside this user's "
                             "subordinate id range (/etc/subuid, /etc/subgid: give it 65,536 ids)") from None
        raise
