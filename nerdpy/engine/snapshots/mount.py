"""mount(2) and umount2(2) through cffi (the out-of-line module in _libc_ffi.py), plus reading /proc/self/mountinfo.

No `mount` binary is spawned: a container start should cost a syscall, not a process.
"""
from __future__ import annotations

import os

from nerdpy.engine.errors import MountError, NerdpyError  # noqa: F401
from nerdpy.engine.util.lean import lean_dataclass

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
MNT_FORCE = 1

_lib = None
_ffi = None


def _libc():
    global _lib, _ffi
    if _lib is None:
        try:  # the pre-generated out-of-line module: no pycparser at run time
            from nerdpy.engine.util._libc_ffi import ffi
        except ImportError:  # pragma: no cover - only if the generated file is missing
            from nerdpy.engine.util._libc_build import CDEF
            from cffi import FFI

            ffi = FFI()
            ffi.cdef(CDEF)
        _lib = ffi.dlopen(None)
        _ffi = ffi
    return _lib, _ffi


@lean_dataclass(frozen=True)
class Mount:
    """One mount to perform: what `mount -t TYPE -o OPTIONS SOURCE TARGET` would do."""

    type: str
    source: str
    options: tuple[str, ...] = ()


def mount(source: str, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    lib, ffi = _libc()
    rc = lib.mount(
        source.encode(),
        target.encode(),
        fstype.encode() if fstype else ffi.NULL,
        flags,
        data.encode() if data else ffi.NULL,
    )
    if rc != 0:
        err = ffi.errno
        raise MountError(f"mount {fstype or ''} {source} on {target}: {os.strerror(err)}")


def unmount(target: str, flags: int = 0) -> None:
    """Unmount `target`; a target that is not mounted is not an error."""
    lib, ffi = _libc()
    rc = lib.umount2(target.encode(), flags)
    if rc != 0:
        err = ffi.errno
        if err in (22, 2):  # EINVAL: not a mount point; ENOENT: gone
            return
        raise MountError(f"unmount {target}: {os.strerror(err)}")


def mount_all(mounts: list[Mount], target: str) -> None:
    """Mount `mounts` on `target` (overlay or bind), handling long overlay option strings."""
    for m in mounts:
        flags = 0
        data = []
        for opt in m.options:
            if opt == "ro":
                flags |= MS_RDONLY
            elif opt == "bind":
                flags |= MS_BIND
            elif opt == "rbind":
                flags |= MS_BIND | MS_REC
            elif opt == "rw":
                pass
            else:
                data.append(opt)
        if m.type == "overlay":
            _mount_overlay(m.source, target, flags, ",".join(data))
        elif m.type == "fuse-overlayfs":
            _mount_fuse_overlay(target, flags, data)
        elif flags & MS_BIND:
            mount(m.source, target, None, flags & ~MS_RDONLY)
            if flags & MS_RDONLY:
                mount("", target, None, flags | MS_REMOUNT)
        else:
            mount(m.source, target, m.type, flags, ",".join(data) or None)


def _mount_fuse_overlay(target: str, flags: int, data: list[str]) -> None:
    """Run fuse-overlayfs, which mounts `target` and then serves it (in the background) until
    it is unmounted."""
    import shutil
    import subprocess

    binary = shutil.which("fuse-overlayfs")
    if binary is None:
        raise MountError("fuse-overlayfs is not installed: sudo apt-get install fuse-overlayfs")
    opts = list(data) + (["ro"] if flags & MS_RDONLY else [])
    r = subprocess.run([binary, "-o", ",".join(opts), target], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        msg = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
        raise MountError(f"fuse-overlayfs on {target}: {msg}")


def _mount_overlay(source: str, target: str, flags: int, data: str) -> None:
    # The kernel takes at most one page of options. With many layers, switch to paths relative
    # to the common snapshot folder and mount from there (as containerd does).
    if len(data) < 4000:
        mount(source, target, "overlay", flags, data)
        return
    parts = data.split(",")
    paths = []
    for p in parts:
        k, _, v = p.partition("=")
        if k in ("lowerdir", "upperdir", "workdir"):
            paths.extend(v.split(":"))
    common = os.path.commonpath(paths)
    rel = []
    for p in parts:
        k, _, v = p.partition("=")
        if k in ("lowerdir", "upperdir", "workdir"):
            v = ":".join(os.path.relpath(x, common) for x in v.split(":"))
            rel.append(f"{k}={v}")
        else:
            rel.append(p)
    target = os.path.abspath(target)
    cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.chdir(common)
        mount(source, target, "overlay", flags, ",".join(rel))
    finally:
        os.fchdir(cwd)
        os.close(cwd)


def mounted_under(prefix: str) -> list[str]:
    """Mount points at or below `prefix`, deepest first (from /proc/self/mountinfo)."""
    prefix = os.path.abspath(prefix)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split(" ", 5)[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def is_mounted(path: str) -> bool:
    return os.path.abspath(path) in mounted_under(path)


def mount_container_rootfs(rootfs: str, mounts: list[Mount]) -> str:
    """A container's root at `rootfs` (created 0711 if missing): its snapshot's `mounts` mounted
    there unless something is mounted already (a running container's, or one a crash left).
    The one way start, cp and export (in a private mount namespace) mount it; returns `rootfs`."""
    os.makedirs(rootfs, mode=0o711, exist_ok=True)
    if not is_mounted(rootfs):
        mount_all(mounts, rootfs)
    return rootfs
