"""Named network namespaces: `<run-root>/netns/<namespace>/<container-id>`.

A namespace is made the way `ip netns add` makes one, without running `ip`: a short-lived
thread calls unshare(CLONE_NEWNET) (a network namespace belongs to a task, so only that thread
moves), brings `lo` up with an ioctl, and bind-mounts its `/proc/thread-self/ns/net` onto the
path; the thread then exits and the mount keeps the namespace alive. Deleting unmounts
(MNT_DETACH) and unlinks, which frees the namespace once nothing else holds it (its veth ends
go with it).

As `ip netns` does for /run/netns, `<run-root>/netns` is made a mount point with shared
propagation, so that unmounting a namespace also unmounts the copies that mount namespaces
created in the meantime (containers being set up, services with private /tmp) hold; otherwise
those copies would keep the namespace, and its veth, alive.
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
import threading
from typing import Callable, TypeVar

from nerdpy.engine.snapshots.mount import MNT_DETACH, MS_BIND, MS_REC, MountError, mount, unmount
from nerdpy.engine.network import NetworkError
from nerdpy.engine.util.fs import write_atomic
from nerdpy.engine.util.locks import flock_wait

CLONE_NEWNET = 0x40000000
MS_SHARED = 1 << 20
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

T = TypeVar("T")


def _lib():
    from nerdpy.engine.snapshots.mount import _libc

    return _libc()


def netns_root(run_root: str) -> str:
    return os.path.join(run_root, "netns")


def netns_path(run_root: str, namespace: str, cid: str) -> str:
    """Where the network namespace of container `cid` of `namespace` is mounted."""
    return os.path.join(netns_root(run_root), namespace, cid)


def _ensure_shared_root(root: str) -> None:
    os.makedirs(root, mode=0o755, exist_ok=True)
    lib, ffi = _lib()
    if lib.mount(b"", root.encode(), ffi.NULL, MS_SHARED | MS_REC, ffi.NULL) == 0:
        return
    if ffi.errno != errno.EINVAL:
        raise NetworkError(f"cannot make {root} shared: {os.strerror(ffi.errno)}")
    # not a mount point yet: bind it onto itself (once, under a lock), then make it shared
    lock = os.open(root + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        flock_wait(lock, fcntl.LOCK_EX, f"the lock of {root}")
        if lib.mount(b"", root.encode(), ffi.NULL, MS_SHARED | MS_REC, ffi.NULL) == 0:
            return
        try:
            mount(root, root, None, MS_BIND | MS_REC)
        except MountError as e:
            raise NetworkError(str(e)) from None
        if lib.mount(b"", root.encode(), ffi.NULL, MS_SHARED | MS_REC, ffi.NULL) != 0:
            raise NetworkError(f"cannot make {root} shared: {os.strerror(ffi.errno)}")
    finally:
        os.close(lock)


def is_netns(path: str) -> bool:
    """True when `path` is a mounted network namespace (an nsfs file)."""
    try:
        return os.stat(path).st_dev == os.stat("/proc/self/ns/net").st_dev
    except OSError:
        return False


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _in_thread(fn: Callable[[], T]) -> T:
    """Run fn in a fresh thread (which may change namespaces and then ends); re-raise its error."""
    out: list = []
    err: list[BaseException] = []

    def work() -> None:
        try:
            out.append(fn())
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            err.append(e)

    t = threading.Thread(target=work, name="nerdpy-netns")
    t.start()
    t.join()
    if err:
        raise err[0]
    return out[0]


def create_netns(path: str) -> str:
    """Create a network namespace with `lo` up, mounted at `path`; returns path. A path that
    is already a namespace is an error; an empty leftover file (a crash) is reused."""
    root = os.path.dirname(os.path.dirname(path))
    _ensure_shared_root(root)
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if is_netns(path):
        raise NetworkError(f"network namespace {path} exists already")
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444)
    os.close(fd)

    def make() -> None:
        lib, ffi = _lib()
        if lib.unshare(CLONE_NEWNET) != 0:
            raise NetworkError(f"unshare(CLONE_NEWNET): {os.strerror(ffi.errno)}")
        _loopback_up()
        mount("/proc/thread-self/ns/net", path, None, MS_BIND)

    try:
        _in_thread(make)
    except (OSError, MountError, NetworkError) as e:
        try:
            os.unlink(path)
        except OSError:
            pass
        raise NetworkError(f"cannot create network namespace {path}: {e}") from None
    return path


def owner_path(path: str) -> str:
    return os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.owner")


def set_owner(path: str, data_root: str) -> None:
    """Record which data root a namespace belongs to (run roots may be shared by data roots)."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    write_atomic(owner_path(path), os.path.realpath(data_root) + "\n", 0o644)


def owner_of(path: str) -> str | None:
    try:
        with open(owner_path(path)) as f:
            return f.read().strip() or None
    except OSError:
        return None


def delete_netns(path: str) -> None:
    """Unmount and remove a namespace path; a missing or unmounted path is not an error."""
    try:
        unmount(path, MNT_DETACH)
    except MountError as e:
        raise NetworkError(str(e)) from None
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        os.rmdir(path)
    try:
        os.unlink(owner_path(path))
    except FileNotFoundError:
        pass


def run_in_netns(path: str, fn: Callable[[], T]) -> T:
    """Call fn in a thread that has joined the network namespace at `path` (for checks such
    as reading interfaces or binding sockets inside it); returns what fn returns."""

    def enter() -> T:
        lib, ffi = _lib()
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if lib.setns(fd, CLONE_NEWNET) != 0:
                raise NetworkError(f"setns {path}: {os.strerror(ffi.errno)}")
        finally:
            os.close(fd)
        return fn()

    return _in_thread(enter)


def list_netns(run_root: str) -> list[tuple[str, str, str]]:
    """(namespace, container id, path) for every entry under `<run-root>/netns`."""
    root = netns_root(run_root)
    found = []
    try:
        namespaces = sorted(os.listdir(root))
    except OSError:
        return []
    for ns in namespaces:
        d = os.path.join(root, ns)
        if not os.path.isdir(d):
            continue
        for cid in sorted(os.listdir(d)):
            if not cid.startswith("."):  # .<id>.owner: which data root made it
                found.append((ns, cid, os.path.join(d, cid)))
    return found
