"""`cp`: copying files between a container and the host, with docker's path semantics.

Safety (the CVE-2018-15664 / CVE-2019-14271 class): every path inside a container is resolved by
the kernel in a forked child confined in the container's root (engine/containers/confined.py: a
running container's own mount tree, or a stopped one's overlay with its volumes and bind mounts
in a private mount namespace; its tmpfs mounts have no content then and are not shown). Data
crosses between the child and this process as a tar stream, which the side that writes files
extracts with `*at()` calls that never follow a symlink in a parent directory, so a hostile archive
cannot write through a link either.

Docker's semantics (`docker cp`): SRC ending in `/.` copies the contents of a directory; a
destination that exists as a directory receives the source under its own name; one that does
not exist is created with the source's content (a DEST ending in `/` must exist when SRC is a
file); a directory never overwrites a file nor a file a directory. `-` stands for a tar stream.
"""
from __future__ import annotations

import ctypes
import errno
import os
import posixpath
import stat as _stat
import sys
import tarfile
from dataclasses import dataclass
from typing import BinaryIO, Callable

from nerdpy.engine.containers.confined import Child, root_plan
from nerdpy.engine.containers.records import Container, container_event
from nerdpy.engine.errors import BadStream, CopyError, NerdpyError, PathNotFound
from nerdpy.engine.store import Store


@dataclass
class PathStat:
    """docker's ContainerPathStat."""

    name: str
    size: int
    mode: int          # st_mode
    mtime: float
    link_target: str

    @property
    def is_dir(self) -> bool:
        return _stat.S_ISDIR(self.mode)

    @property
    def is_link(self) -> bool:
        return _stat.S_ISLNK(self.mode)

    @property
    def is_regular(self) -> bool:
        return _stat.S_ISREG(self.mode)


# -- docker's path helpers (pkg/archive/copy.go) ---------------------------------------------------
def _specifies_current_dir(path: str) -> bool:
    return posixpath.basename(path) == "."


def _has_trailing_sep(path: str) -> bool:
    return len(path) > 0 and path.endswith("/")


def asserts_directory(path: str) -> bool:
    return _has_trailing_sep(path) or _specifies_current_dir(path)


def split_path_dir_entry(path: str) -> tuple[str, str]:
    cleaned = posixpath.normpath(path) if path else "."
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if _specifies_current_dir(path) and cleaned != "/":
        cleaned += "/."
    return posixpath.dirname(cleaned) or ".", posixpath.basename(cleaned) or cleaned


def preserve_trailing(cleaned: str, original: str) -> str:
    """docker's PreserveTrailingDotOrSeparator."""
    if _specifies_current_dir(original) and not _specifies_current_dir(cleaned):
        if not cleaned.endswith("/"):
            cleaned += "/"
        cleaned += "."
    if _has_trailing_sep(original) and not _has_trailing_sep(cleaned):
        cleaned += "/"
    return cleaned


def container_abs_path(path: str) -> str:
    """A path inside the container, absolute, cleaned, keeping a trailing `/` or `/.`."""
    return preserve_trailing(posixpath.normpath(posixpath.join("/", path)), path)


def rebase_name(path: str, resolved: str) -> tuple[str, str]:
    """docker's GetRebaseName: (resolved path with the trailing bits of path, rebase name)."""
    if _specifies_current_dir(path) and not _specifies_current_dir(resolved):
        resolved += "/."
    if _has_trailing_sep(path) and not _has_trailing_sep(resolved):
        resolved += "/"
    name = ""
    if posixpath.basename(path.rstrip("/") or "/") != posixpath.basename(resolved.rstrip("/") or "/"):
        name = posixpath.basename(path.rstrip("/") or "/")
    return resolved, name


# -- the confined child (engine/containers/confined.py) ----------------------------------------------
def _child(store: Store, c: Container, job, data_for_child: str | None) -> Child:
    """A child confined in `c`'s root as its processes see it, running `job`."""
    return Child(root_plan(store, c), job, data_for_child, lambda msg, status: _error_from(msg, status, c),
                 before_chroot=lambda: _fs_type("/"))  # loads libc's statfs before the chroot


def _error_from(msg: dict | None, status: int, c: Container) -> NerdpyError:
    if msg is None:
        return CopyError(f"copy helper failed (status {status})")
    if msg.get("kind") == "os":
        path = msg.get("path") or ""
        if msg.get("errno") == errno.ENOENT:
            return PathNotFound(f"Could not find the file {path} in container {c.name}")
        if msg.get("errno") == errno.ENOTDIR:
            return CopyError(f"{path}: not a directory" if path else "not a directory")
        return CopyError(f"{path}: {msg['error']}" if path else msg["error"])
    if msg.get("notfound"):
        return PathNotFound(msg["error"])
    return CopyError(msg["error"])


# -- jobs run inside the container root -----------------------------------------------------------
def _lstat_job(path: str):
    def job(_fd, send):
        return {"stat": _stat_dict(path)}
    return job


def _stat_dict(path: str) -> dict:
    st = os.lstat(path)
    link = ""
    if _stat.S_ISLNK(st.st_mode):
        link = os.readlink(path)
    if asserts_directory(path) and not _stat.S_ISDIR(st.st_mode):
        raise OSError(errno.ENOTDIR, "not a directory", path)
    name = posixpath.basename(path.rstrip("/")) if path.rstrip("/") else "/"
    if _specifies_current_dir(path):
        name = "."
    return {"name": name, "size": st.st_size, "mode": st.st_mode, "mtime": st.st_mtime, "link_target": link}


def _tar_job(path: str):
    """Send the stat, then a tar of `path` named as docker names it (base of the asked path)."""
    def job(fd, send):
        st = _stat_dict(path)
        send({"stat": st})
        if _stat.S_ISDIR(st["mode"]):
            arc = "." if path == "/" or _specifies_current_dir(path) else posixpath.basename(path.rstrip("/"))
        else:
            arc = posixpath.basename(path)
        with os.fdopen(fd, "wb", closefd=False) as out:
            write_tar(out, path, arc)
        return None
    return job


def _untar_job(dest_dir: str, chown: bool):
    def job(fd, send):
        st = os.stat(dest_dir)
        if not _stat.S_ISDIR(st.st_mode):
            raise CopyError(f"extraction point is not a directory: {dest_dir}")
        with os.fdopen(fd, "rb", closefd=False) as src:
            n = extract_tar(src, dest_dir, chown=chown)
        return {"size": n}
    return job


# -- tar writing and safe extraction ---------------------------------------------------------------
# pseudo filesystems a running container has mounted (/proc, /sys, /dev/pts...): a tree walk
# shows them as empty directories, as docker (which never sees them) does
_PSEUDO_FS = {0x9fa0, 0x62656572, 0x27e0eb, 0x63677270, 0x1cd1, 0x19800202, 0x64626720, 0x73636673,
              0x74726163, 0x6165676c, 0xcafe4a11, 0x62656570, 0x65735543, 0x42494e4d}
_statfs_libc = None


def _fs_type(path: str) -> int:
    global _statfs_libc
    if _statfs_libc is None:
        _statfs_libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(256)
    if _statfs_libc.statfs(os.fsencode(path), buf) != 0:
        return 0
    return int.from_bytes(buf.raw[:8], sys.byteorder, signed=True) & 0xFFFFFFFF


def write_tar(out: BinaryIO, path: str, arcname: str) -> int:
    """A tar of `path` (not following it if it is a symlink) with entries under `arcname`.
    Returns the bytes of file content written."""
    total = 0
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        def add(p: str, name: str, parent_dev: int | None) -> None:
            nonlocal total
            ti = tf.gettarinfo(p, arcname=name)
            if ti is None:          # sockets: skipped, as docker does
                return
            ti.uname = ti.gname = ""
            if ti.isreg():
                fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
                with os.fdopen(fd, "rb") as f:
                    if not _stat.S_ISREG(os.fstat(fd).st_mode):
                        raise CopyError(f"{p}: changed while being copied")
                    tf.addfile(ti, f)
                total += ti.size
            else:
                tf.addfile(ti)
            if ti.isdir():
                dev = os.lstat(p).st_dev
                if parent_dev is not None and dev != parent_dev and _fs_type(p) in _PSEUDO_FS:
                    return
                for child in sorted(os.listdir(p)):
                    add(os.path.join(p, child), f"./{child}" if name == "." else f"{name}/{child}", dev)

        add(path, arcname, None)
    return total


class _Dirs:
    """Open directories below a root without ever following a symlink."""

    FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

    def __init__(self, root: str):
        self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.cache: dict[tuple[str, ...], int] = {(): self.root_fd}

    def open(self, parts: tuple[str, ...], create: bool = True) -> int:
        if parts in self.cache:
            return self.cache[parts]
        parent = self.open(parts[:-1], create)
        name = parts[-1]
        try:
            fd = os.open(name, self.FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(name, 0o755, dir_fd=parent)
            fd = os.open(name, self.FLAGS, dir_fd=parent)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise CopyError(f"refusing to extract through {'/'.join(parts)!r}: not a directory "
                                "(a symbolic link or a file)") from None
            raise
        if len(self.cache) > 256:
            self._trim()
        self.cache[parts] = fd
        return fd

    def _trim(self) -> None:
        for k in list(self.cache):
            if k:
                os.close(self.cache.pop(k))

    def forget(self, parts: tuple[str, ...]) -> None:
        for k in list(self.cache):
            if k[:len(parts)] == parts and k:
                os.close(self.cache.pop(k))

    def close(self) -> None:
        for fd in self.cache.values():
            os.close(fd)
        self.cache = {}


def _clean_member_name(name: str) -> tuple[str, ...]:
    # as docker's Untar: the name is cleaned (an absolute one is taken from the destination), and
    # a relative name that climbs above the destination is refused, never silently clamped to it
    norm = posixpath.normpath(name).lstrip("/")
    parts = tuple(p for p in norm.split("/") if p and p != ".")
    if parts and parts[0] == "..":
        raise CopyError(f"invalid archive entry {name!r}: outside of the destination")
    return parts


def _remove_at(dir_fd: int, name: str) -> None:
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    if _stat.S_ISDIR(st.st_mode):
        fd = os.open(name, _Dirs.FLAGS, dir_fd=dir_fd)
        try:
            for child in os.listdir(fd):
                _remove_at(fd, child)
        finally:
            os.close(fd)
        os.rmdir(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def extract_tar(src: BinaryIO, dest: str, *, chown: bool = False, no_overwrite_dir_non_dir: bool = True,
                rename: Callable[[str], str] | None = None) -> int:
    """Extract a tar stream into the directory `dest`, docker's Untar with NoOverwriteDirNonDir:
    entries never escape `dest`, symlinks in parent paths are never followed, an existing
    directory is not replaced by a file nor a file by a directory. Returns content bytes."""
    dirs = _Dirs(dest)
    total = 0
    dir_times: list[tuple[tuple[str, ...], float]] = []
    try:
        with tarfile.open(fileobj=src, mode="r|") as tf:
            for m in tf:
                name = rename(m.name) if rename else m.name
                parts = _clean_member_name(name)
                if not parts:
                    # the destination itself ("."): it exists as a directory; keep it as it is
                    continue
                parent = dirs.open(parts[:-1])
                base = parts[-1]
                try:
                    cur = os.lstat(base, dir_fd=parent)
                except FileNotFoundError:
                    cur = None
                if cur is not None:
                    is_dir = _stat.S_ISDIR(cur.st_mode)
                    if no_overwrite_dir_non_dir and is_dir and not m.isdir():
                        raise CopyError(f"cannot overwrite directory {'/'.join(parts)!r} with non-directory")
                    if no_overwrite_dir_non_dir and not is_dir and m.isdir():
                        raise CopyError(f"cannot overwrite non-directory {'/'.join(parts)!r} with directory")
                    if not (is_dir and m.isdir()):
                        dirs.forget(parts)
                        _remove_at(parent, base)
                mode = m.mode & 0o7777
                if m.isdir():
                    if cur is None or not _stat.S_ISDIR(cur.st_mode):
                        os.mkdir(base, 0o700, dir_fd=parent)
                    fd = dirs.open(parts)
                    os.chmod(fd, mode)
                    if chown:
                        os.chown(fd, m.uid, m.gid)
                    dir_times.append((parts, m.mtime))
                    continue
                if m.isreg():
                    fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o600, dir_fd=parent)
                    with os.fdopen(fd, "wb") as out:
                        data = tf.extractfile(m)
                        while True:
                            chunk = data.read(1 << 20)
                            if not chunk:
                                break
                            out.write(chunk)
                        total += m.size
                        if chown:
                            os.chown(out.fileno(), m.uid, m.gid)
                        os.chmod(out.fileno(), mode)
                elif m.issym():
                    os.symlink(m.linkname, base, dir_fd=parent)
                    if chown:
                        os.chown(base, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)
                elif m.islnk():
                    target = rename(m.linkname) if rename else m.linkname
                    tparts = _clean_member_name(target)
                    if not tparts:
                        raise CopyError(f"invalid hardlink {m.linkname!r}")
                    tdir = dirs.open(tparts[:-1], create=False)
                    os.link(tparts[-1], base, src_dir_fd=tdir, dst_dir_fd=parent, follow_symlinks=False)
                    continue
                elif m.ischr() or m.isblk() or m.isfifo():
                    kind = _stat.S_IFCHR if m.ischr() else _stat.S_IFBLK if m.isblk() else _stat.S_IFIFO
                    os.mknod(base, kind | mode, os.makedev(m.devmajor, m.devminor), dir_fd=parent)
                    if chown:
                        os.chown(base, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)
                    os.chmod(base, mode, dir_fd=parent) if not m.isfifo() else None
                else:
                    continue
                try:
                    os.utime(base, (m.mtime, m.mtime), dir_fd=parent, follow_symlinks=False)
                except OSError:
                    pass
        for parts, mtime in sorted(dir_times, key=lambda x: len(x[0]), reverse=True):
            try:
                parent = dirs.open(parts[:-1], create=False)
                os.utime(parts[-1], (mtime, mtime), dir_fd=parent, follow_symlinks=False)
            except OSError:
                pass
    except tarfile.TarError as e:
        raise BadStream(f"invalid tar stream: {e}") from None
    finally:
        dirs.close()
    return total


# -- the engine API ----------------------------------------------------------------------------------
def stat_path(store: Store, c: Container, path: str) -> PathStat:
    """lstat a path inside the container (its parent directories resolved inside the container)."""
    child = _child(store, c, _lstat_job(container_abs_path(path)), None)
    try:
        res = child.finish()
    finally:
        child.kill()
    return PathStat(**res["stat"])


def _stat_or_none(store: Store, c: Container, path: str) -> PathStat | None:
    try:
        return stat_path(store, c, path)
    except PathNotFound:
        return None


def archive_to(store: Store, c: Container, path: str, out: BinaryIO) -> PathStat:
    """Write a tar of `path` in the container to `out` (docker's `cp CONTAINER:PATH -`)."""
    child = _child(store, c, _tar_job(container_abs_path(path)), "write")
    try:
        first = child.read_message()
        if first is None or "stat" not in first:
            child.finish(first)
            raise CopyError("copy helper failed")
        while True:
            chunk = child.data.read(1 << 16)
            if not chunk:
                break
            out.write(chunk)
        out.flush()
        child.finish()
        container_event(store, c, "archive-path")
        return PathStat(**first["stat"])
    finally:
        child.kill()


def copy_from_container(store: Store, c: Container, src: str, dst: str, follow_link: bool = False) -> int:
    """`cp CONTAINER:SRC DST` with docker's semantics; returns the bytes copied."""
    src_path = container_abs_path(src)
    rebase = ""
    if follow_link:
        st = stat_path(store, c, src_path)
        if st.is_link:
            target = st.link_target
            if not target.startswith("/"):
                target = posixpath.join(split_path_dir_entry(src_path)[0], target)
            src_path, rebase = rebase_name(src_path, container_abs_path(target))
    dst_info = _host_dest_info(dst)
    child = _child(store, c, _tar_job(src_path), "write")
    try:
        first = child.read_message()
        if first is None or "stat" not in first:
            child.finish(first)
            raise CopyError("copy helper failed")
        sst = PathStat(**first["stat"])
        # the archive's top entry is named after the asked path (docker's rebase on the daemon)
        top = "." if sst.is_dir and (src_path == "/" or _specifies_current_dir(src_path)) else \
            posixpath.basename(src_path.rstrip("/"))
        dst_dir, new_base = _prepare_copy(src_path, sst.is_dir, rebase, dst_info, where=dst)
        final = new_base if new_base is not None else (rebase or None)
        renamer = _renamer(top, final) if final is not None and final != top else None
        try:
            n = extract_tar(child.data, dst_dir, chown=False, rename=renamer)
        except BadStream:
            child.finish()      # the helper's own error explains a cut stream best
            raise
        except CopyError:
            child.kill()
            raise
        except OSError as e:
            child.kill()
            raise CopyError(f"{e.filename or dst}: {e.strerror}") from None
        child.finish()
        container_event(store, c, "archive-path")
        return n
    finally:
        child.kill()


def copy_to_container(store: Store, c: Container, src: str, dst: str, follow_link: bool = False,
                      copy_uid_gid: bool = False) -> int:
    """`cp SRC CONTAINER:DST` with docker's semantics; returns the bytes copied."""
    dst_path = container_abs_path(dst)
    info = _container_dest_info(store, c, dst_path)
    src_abs = preserve_trailing(os.path.abspath(src), src)
    src_path, rebase = _host_source(src_abs, follow_link)
    try:
        sst = os.lstat(src_path)
    except FileNotFoundError:
        raise PathNotFound(f"could not find the file {src} on the host") from None
    except OSError as e:
        raise CopyError(f"{src}: {e.strerror}") from None
    if asserts_directory(src_abs) and not _stat.S_ISDIR(sst.st_mode):
        raise CopyError(f"{src}: not a directory")
    is_dir = _stat.S_ISDIR(sst.st_mode)
    dst_dir, new_base = _prepare_copy(src_path, is_dir, rebase, info, where=f"{c.name}:{dst}")
    src_dir, src_base = split_path_dir_entry(src_path)
    arc = new_base if new_base is not None else (rebase or src_base)
    child = _child(store, c, _untar_job(dst_dir, copy_uid_gid), "read")
    n = 0
    try:
        try:
            if src_base == ".":
                n = write_tar(child.data, src_dir if src_dir else ".", arc)
            else:
                n = write_tar(child.data, src_path, arc)
            child.data.close()
            child.data = None
        except BrokenPipeError:
            pass
        except OSError as e:
            if e.errno != errno.EPIPE:
                child.kill()
                raise CopyError(f"{e.filename or src}: {e.strerror}") from None
        res = child.finish()
        container_event(store, c, "extract-to-dir")
        return res.get("size", n)
    finally:
        child.kill()


def extract_to_container(store: Store, c: Container, dst: str, stream: BinaryIO, copy_uid_gid: bool = False) -> int:
    """`cp - CONTAINER:DST`: extract a tar stream into DST, which must be a directory."""
    dst_path = container_abs_path(dst)
    info = _container_dest_info(store, c, dst_path)
    if not (info["exists"] and info["is_dir"]):
        raise CopyError(f'destination "{c.name}:{dst}" must be a directory')
    child = _child(store, c, _untar_job(info["path"], copy_uid_gid), "read")
    try:
        try:
            while True:
                chunk = stream.read(1 << 16)
                if not chunk:
                    break
                child.data.write(chunk)
            child.data.close()
            child.data = None
        except BrokenPipeError:
            pass
        size = child.finish().get("size", 0)
        container_event(store, c, "extract-to-dir")
        return size
    finally:
        child.kill()


# -- docker's CopyInfo logic -------------------------------------------------------------------------
def _container_dest_info(store: Store, c: Container, dst_path: str) -> dict:
    info = {"path": dst_path, "exists": False, "is_dir": False}
    st = _stat_or_none(store, c, dst_path)
    if st is not None and st.is_link:
        target = st.link_target
        if not target.startswith("/"):
            target = posixpath.join(split_path_dir_entry(dst_path)[0], target)
        info["path"] = container_abs_path(target)
        st = _stat_or_none(store, c, info["path"])
    if st is not None:
        if not (st.is_dir or st.is_regular):
            raise CopyError(f'destination "{c.name}:{dst_path}" must be a directory or a regular file')
        info["exists"], info["is_dir"] = True, st.is_dir
    return info


def _host_dest_info(path: str) -> dict:
    """docker's CopyInfoDestinationPath on the host: follow a symlink at the destination."""
    original = path
    for _ in range(11):
        try:
            st = os.lstat(path)
        except NotADirectoryError:
            raise CopyError(f"{path}: not a directory") from None
        except FileNotFoundError:
            parent = split_path_dir_entry(path)[0]
            try:
                pst = os.stat(parent)
            except FileNotFoundError:
                raise CopyError(f"destination directory {parent} does not exist") from None
            if not _stat.S_ISDIR(pst.st_mode):
                raise CopyError(f"{parent}: not a directory")
            return {"path": path, "exists": False, "is_dir": False}
        if not _stat.S_ISLNK(st.st_mode):
            return {"path": path, "exists": True, "is_dir": _stat.S_ISDIR(st.st_mode)}
        target = os.readlink(path)
        if not target.startswith("/"):
            target = os.path.join(split_path_dir_entry(path)[0], target)
        path = target
    raise CopyError(f"too many symlinks in {original}")


def _host_source(path: str, follow_link: bool) -> tuple[str, str]:
    """docker's ResolveHostSourcePath: symlinks of the parent are followed, the last one only with -L."""
    if follow_link:
        resolved = os.path.realpath(path)
        return rebase_name(path, resolved)
    d, b = posixpath.split(path)
    resolved = os.path.realpath(d or ".").rstrip("/") + "/" + b
    rebase = ""
    if _has_trailing_sep(path) and posixpath.basename(path.rstrip("/")) != posixpath.basename(resolved.rstrip("/")):
        rebase = posixpath.basename(path.rstrip("/"))
    return resolved, rebase


def _prepare_copy(src_path: str, src_is_dir: bool, rebase: str, dst: dict, where: str) -> tuple[str, str | None]:
    """docker's PrepareArchiveCopy: the directory to extract into, and the name the source's top
    entry must take there (None: keep the names)."""
    dst_dir, dst_base = split_path_dir_entry(dst["path"])
    if dst["exists"] and dst["is_dir"]:
        return dst["path"], None
    if dst["exists"] and src_is_dir:
        raise CopyError(f"cannot copy a directory to a file: {where}")
    if not dst["exists"] and not src_is_dir and asserts_directory(dst["path"]):
        raise CopyError(f"no such directory: {where}")
    return dst_dir, dst_base


def _renamer(old: str, new: str) -> Callable[[str], str]:
    def rename(name: str) -> str:
        n = name
        while n.startswith("./") and old != ".":
            n = n[2:]
        if old == ".":
            stripped = n.lstrip("/")
            if stripped in (".", "./", ""):
                return new
            if stripped.startswith("./"):
                return new + "/" + stripped[2:]
            return new + "/" + stripped
        if n == old or n == old + "/":
            return new
        if n.startswith(old + "/"):
            return new + n[len(old):]
        return n
    return rename
