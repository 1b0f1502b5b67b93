"""A forked child confined in a container's root: the one way `cp` and `export` touch a
container's files (the CVE-2018-15664 / CVE-2019-14271 class of escapes).

The child `chroot`s into the container's root, so every path is resolved by the kernel and no
symlink in the container (absolute, relative, `..`-laden, or swapped in while we work) can lead
outside it. It holds no file descriptor of the host but its pipes, and the caller imports
everything it needs before the chroot (it never loads code or NSS modules from the container);
tarfile never resolves user names in it.

Which root the child enters (`root_plan`):
- `as_seen_inside` and a running (or paused) container: `/proc/<pid>/root` of its init, i.e. the
  container's own mount tree, with its volumes, bind mounts and tmpfs mounts;
- otherwise the child unshares a private mount namespace, mounts the container's overlay there
  (or uses the rootfs if it is mounted already) and, with `as_seen_inside`, binds the container's
  named volumes and bind mounts at their targets; nothing appears in the host's mount table and
  everything vanishes with the child. Without it (export) the root is the container's own
  filesystem only.

The child reports on a control pipe, JSON lines: whatever the job `send`s (e.g. `{"stat": ...}`),
then `{"ok": result}` or `{"error": ..., "kind": "os"|"nerdpy"|"internal", ...}` at the end; an
optional data pipe carries a stream (a tar) one way or the other.
"""
from __future__ import annotations

import ctypes
import json
import os
import sys
import tarfile
from dataclasses import dataclass, field
from typing import Callable

from nerdpy.engine.containers.records import Container, container_dir, container_state, snapshot_key
from nerdpy.engine.errors import NerdpyError, NotFound
from nerdpy.engine.store import Store

# encodings tarfile may need, loaded before any chroot
import encodings.ascii  # noqa: F401,E402
import encodings.latin_1  # noqa: F401,E402
import encodings.utf_8  # noqa: F401,E402

CLONE_NEWNS = 0x00020000

Job = Callable[[int, Callable[[dict], None]], "dict | None"]


@dataclass
class RootPlan:
    """How the child gets to the container's root: `proc` (a running init's /proc/<pid>/root)
    or `mount` (the rootfs, mounted privately if need be, with `binds` (source, target, ro))."""

    kind: str
    pid: int = 0
    rootfs: str = ""
    mounts: list = field(default_factory=list)
    binds: list = field(default_factory=list)


def root_plan(store: Store, c: Container, *, as_seen_inside: bool = True) -> RootPlan:
    """The root the child enters (see the module docstring)."""
    from nerdpy.engine.containers.volumes import volume_path

    if as_seen_inside and container_state(store, c).running:
        pid = _runc_pid(store, c)
        if pid:
            return RootPlan("proc", pid=pid)
    binds = []
    if as_seen_inside:
        # never started: its volumes are not filled from the image yet (that happens at the first
        # start, when they are empty); show the image's content there, as docker (which fills them
        # at create) would; a file copied there now is carried into the volume at the first start
        started = os.path.exists(os.path.join(container_dir(store, c.id), "volumes-populated"))
        for m in c.spec.mounts or []:
            if m.type == "volume" and m.source:
                src = volume_path(store, m.source)
                if not started and not (m.options or {}).get("nocopy") and _empty_dir(src):
                    continue
                binds.append((src, m.target, bool(m.readonly)))
            elif m.type == "bind" and m.source:
                binds.append((m.source, m.target, bool(m.readonly)))
    return RootPlan("mount", rootfs=os.path.join(container_dir(store, c.id), "rootfs"),
                    mounts=store.snapshots.mounts(snapshot_key(store, c.id)), binds=binds)


def _empty_dir(path: str) -> bool:
    try:
        return not os.listdir(path)
    except OSError:
        return True


def _runc_pid(store: Store, c: Container) -> int:
    """The pid of the container's init as runc knows it (0 when runc has no running container)."""
    from nerdpy.engine.containers.records import container_runtime

    try:
        st = container_runtime(store, c.spec).state(c.id)
    except NerdpyError:
        return 0
    if not st or st.get("status") not in ("running", "paused", "created") or not st.get("pid"):
        return 0
    pid = int(st["pid"])
    return pid if os.path.exists(f"/proc/{pid}/root") else 0


def enter_root(plan: RootPlan) -> None:
    """In the child: chroot into the container's root (see the module docstring)."""
    if plan.kind == "proc":
        os.chdir(f"/proc/{plan.pid}/root")
    else:
        from nerdpy.engine.snapshots.mount import (MS_BIND, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT, mount,
                                                   mount_container_rootfs)
        from nerdpy.engine.util.fs import resolve_in_root

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNS) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "unshare(CLONE_NEWNS): " + os.strerror(err))
        mount("none", "/", None, MS_REC | MS_PRIVATE)
        rootfs = mount_container_rootfs(plan.rootfs, plan.mounts)
        for source, target, ro in plan.binds:
            dest = resolve_in_root(rootfs, target)
            if not os.path.exists(source) or not os.path.lexists(dest) or os.path.islink(dest):
                continue
            if os.path.isdir(source) != os.path.isdir(dest):
                continue
            mount(source, dest, None, MS_BIND | MS_REC)
            if ro:
                mount("", dest, None, MS_BIND | MS_REC | MS_REMOUNT | MS_RDONLY)
        os.chdir(rootfs)
    os.chroot(".")
    os.chdir("/")


def _close_fds_except(keep: set[int]) -> None:
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1):
        if fd not in keep:
            os.dup2(devnull, fd)
    keep = set(keep) | {0, 1, 2}
    prev = 3
    for fd in sorted(k for k in keep if k >= 3):
        if fd > prev:
            os.closerange(prev, fd)
        prev = fd + 1
    os.closerange(prev, 1 << 20)
    # stderr stays for tracebacks nobody sees; it is a pipe or tty, never a directory
    del devnull


def error_obj(e: BaseException) -> dict:
    """An exception in the child as the JSON the parent's `error_from` reads."""
    if isinstance(e, OSError):
        return {"error": e.strerror or str(e), "errno": e.errno, "path": e.filename or "", "kind": "os"}
    if isinstance(e, NerdpyError):
        return {"error": str(e), "kind": "nerdpy", "notfound": isinstance(e, NotFound)}
    return {"error": f"{type(e).__name__}: {e}", "kind": "internal"}


class Child:
    """A forked child confined in the container root (`plan`), running `job(data_fd, send)`.

    `data_for_child`: None (no data pipe), "read" (the child reads what `self.data` is given) or
    "write" (the child writes, `self.data` reads). `error_from(msg, status)` turns the child's
    error report (None: it died without one) into the exception `finish` raises. `before_chroot`
    runs in the child first (to load what the job needs while the host's files are visible)."""

    def __init__(self, plan: RootPlan, job: Job, data_for_child: str | None,
                 error_from: Callable[[dict | None, int], Exception],
                 before_chroot: Callable[[], object] | None = None):
        self.error_from = error_from
        ctl_r, ctl_w = os.pipe()
        data_r = data_w = None
        if data_for_child is not None:
            data_r, data_w = os.pipe()
        # flush our buffers so that the child does not write them again
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child --------------------------------------------------------------
            code = 1
            try:
                child_data = None
                if data_for_child == "read":
                    child_data = data_r
                elif data_for_child == "write":
                    child_data = data_w
                _close_fds_except({ctl_w} | ({child_data} if child_data is not None else set()))
                tarfile.pwd = None   # never resolve names through the container's NSS
                tarfile.grp = None

                def send(obj: dict) -> None:
                    os.write(ctl_w, json.dumps(obj).encode() + b"\n")

                if before_chroot is not None:
                    before_chroot()
                enter_root(plan)
                result = job(child_data, send)
                if child_data is not None:
                    os.close(child_data)
                send({"ok": result or {}})
                code = 0
            except BaseException as e:  # report everything; never return into the CLI's code
                try:
                    os.write(ctl_w, json.dumps(error_obj(e)).encode() + b"\n")
                except BaseException:
                    pass
            finally:
                os._exit(code)
        # the parent -----------------------------------------------------------------------------
        os.close(ctl_w)
        self.pid = pid
        self.ctl = os.fdopen(ctl_r, "rb")
        self.data = None
        if data_for_child == "read":
            os.close(data_r)
            self.data = os.fdopen(data_w, "wb")
        elif data_for_child == "write":
            os.close(data_w)
            self.data = os.fdopen(data_r, "rb")
        self.done = False

    def read_message(self) -> dict | None:
        line = self.ctl.readline()
        if not line:
            return None
        try:
            return json.loads(line)
        except ValueError:
            return None

    def finish(self, first: dict | None = None) -> dict:
        """Wait for the child; its result, or raise the error it reported."""
        if self.data is not None:
            try:
                self.data.close()
            except OSError:
                pass
            self.data = None
        msg = first
        while True:
            if msg is not None and ("ok" in msg or "error" in msg):
                break
            msg = self.read_message()
            if msg is None:
                break
        self.ctl.close()
        _pid, status = os.waitpid(self.pid, 0)
        self.done = True
        if msg is None or "error" in msg:
            raise self.error_from(msg, status)
        return msg["ok"]

    def kill(self) -> None:
        if not self.done:
            try:
                os.kill(self.pid, 9)
            except OSError:
                pass
            for f in (self.data, self.ctl):
                try:
                    if f is not None:
                        f.close()
                except OSError:
                    pass
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.done = True
