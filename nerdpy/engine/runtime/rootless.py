"""Rootless nerdpy: the user namespace a plain user's commands run in.

A user other than root gets one persistent user namespace (plus a mount namespace) that maps the
user to root and the user's /etc/subuid and /etc/subgid range beyond it (written by the setuid
helpers newuidmap/newgidmap from Debian's `uidmap`). A small pause process holds the namespaces
(as podman's does); its pid is recorded in `<run root>/pause.pid`. Every command that opens the
store joins them first with setns(2) (`ensure_namespace`, called by `open_store`), so layers are
unpacked, snapshots mounted and runc run as "root" inside it: file owners inside images are right,
setuid files keep working, and every mount lives in the namespace's own mount table, never the
host's. Children (the per-container monitor, runc, cleanup commands) inherit the namespaces and
know they are rootless through `config.ROOTLESS_ENV`.

`setup_problems` says what a user lacks (for the one-line error and for `doctor`);
`check_resources` refuses cgroup limits without delegation; `choose_snapshotter` picks the
kernel's overlayfs (probed in a user namespace, `overlay_in_userns`) or fuse-overlayfs for a new
data root; `runc` runs with `--rootless true` inside (runtime/runc.py `global_flags`).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from nerdpy.engine.config import ROOTLESS_ENV, Settings
from nerdpy.engine.errors import NerdpyError

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
PAUSE_NAME = "nerdpy-pause"
FIX = "sudo scripts/install.sh --rootless {user}"

_libc = None


def libc():
    global _libc
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


@dataclass(frozen=True)
class IdRange:
    start: int
    count: int


def user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def sub_range(path: str, uid: int) -> IdRange | None:
    """The first /etc/subuid (or /etc/subgid) range of the user `uid` (by name or number)."""
    names = {str(uid), user_name(uid)}
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] in names and parts[1].isdigit() and parts[2].isdigit():
                    if int(parts[2]) > 0:
                        return IdRange(int(parts[1]), int(parts[2]))
    except OSError:
        return None
    return None


def setup_problems(uid: int) -> list[tuple[str, str]]:
    """What the user `uid` lacks for rootless nerdpy: (what is missing, the command that fixes it)."""
    user = user_name(uid)
    fix = FIX.format(user=user)
    out = []
    for tool in ("newuidmap", "newgidmap"):
        if shutil.which(tool) is None:
            out.append((f"{tool} is not installed", "sudo apt-get install uidmap"))
            break
    if sub_range("/etc/subuid", uid) is None:
        out.append((f"no /etc/subuid range for {user}", fix))
    if sub_range("/etc/subgid", uid) is None:
        out.append((f"no /etc/subgid range for {user}", fix))
    return out


def run_root_ready(settings: Settings) -> str:
    """The run root, created private (0700) and checked to be the user's own (a directory in a
    shared /tmp could have been planted by someone else)."""
    root = settings.run_root
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        st = os.lstat(root)
    except OSError as e:
        raise NerdpyError(f"cannot create the run root {root}: {e.strerror or e}") from None
    import stat

    me = os.geteuid()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != me or st.st_mode & 0o077:
        raise NerdpyError(f"run root {root} is not a private directory of this user "
                          "(remove it, or set XDG_RUNTIME_DIR)")
    return root


def inside() -> bool:
    """True in a process that has joined (or inherited) the rootless user namespace."""
    return os.geteuid() == 0 and os.environ.get(ROOTLESS_ENV, "").isdigit()


def pause_pid(settings: Settings) -> int | None:
    """The pause process holding this user's namespaces, if it is alive."""
    try:
        with open(os.path.join(settings.run_root, "pause.pid")) as f:
            pid = int(f.read().strip() or "0")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if not f.read().startswith(PAUSE_NAME.encode()):
                return None
        if os.stat(f"/proc/{pid}").st_uid not in (settings.rootless_uid, 0 if inside() else -1):
            return None
    except (OSError, ValueError):
        return None
    return pid


def ensure_namespace(settings: Settings) -> None:
    """Join this user's namespaces (starting their pause process first if none runs).
    A no-op for root and for a process already inside."""
    if settings.rootless_uid is None or inside():
        return
    uid = os.geteuid()
    import fcntl

    root = run_root_ready(settings)
    pid = pause_pid(settings)
    if pid is None:
        fd = os.open(os.path.join(root, "pause.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            pid = pause_pid(settings)
            if pid is None:
                pid = _start_pause(uid)
                tmp = os.path.join(root, "pause.pid.tmp")
                with open(tmp, "w") as f:
                    f.write(f"{pid}\n")
                os.rename(tmp, os.path.join(root, "pause.pid"))
        finally:
            os.close(fd)
    _join(pid, uid)


_PAUSE_CODE = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(%d) != 0:
    sys.stdout.write("error %%s\n" %% os.strerror(ctypes.get_errno())); sys.stdout.flush(); os._exit(1)
sys.stdout.write("ready\n"); sys.stdout.flush()
if sys.stdin.readline().strip() != "go":
    os._exit(1)
null = os.open("/dev/null", os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
os.chdir("/")
os.execv(%r, [%r, "infinity"])
"""


def _start_pause(uid: int) -> int:
    problems = setup_problems(uid)
    if problems:
        what, fix = problems[0]
        raise NerdpyError(f"rootless setup incomplete: {what}; fix: {fix}")
    sleep = shutil.which("sleep") or "/bin/sleep"
    code = _PAUSE_CODE % (CLONE_NEWUSER | CLONE_NEWNS, sleep, PAUSE_NAME)
    p = subprocess.Popen([sys.executable, "-S", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True, cwd="/")
    line = p.stdout.readline().decode().strip()
    if line != "ready":
        p.kill()
        p.wait()
        why = line.partition(" ")[2] or "it exited"
        raise NerdpyError(f"cannot create a user namespace: {why} (see `nerdpy doctor`)")
    try:
        _map_ids(p.pid, uid)
        p.stdin.write(b"go\n")
        p.stdin.flush()
    except BaseException:
        p.kill()
        p.wait()
        raise
    p.stdin.close()
    p.stdout.close()
    # the pause process outlives this command: reparented to init when we exit
    p.returncode = 0  # no ResourceWarning for a child we deliberately leave running
    return p.pid


def _map_ids(pid: int, uid: int) -> None:
    gid = os.getegid()
    subuid = sub_range("/etc/subuid", uid)
    subgid = sub_range("/etc/subgid", uid)
    for tool, mine, sub in (("newuidmap", uid, subuid), ("newgidmap", gid, subgid)):
        argv = [tool, str(pid), "0", str(mine), "1", "1", str(sub.start), str(sub.count)]
        r = subprocess.run(argv, capture_output=True)
        if r.returncode != 0:
            msg = r.stderr.decode(errors="replace").strip().splitlines()
            raise NerdpyError(f"{tool} failed: {msg[-1] if msg else 'exit ' + str(r.returncode)} "
                              f"(see `nerdpy doctor`)")


def _setns(fd: int, kind: int, what: str) -> None:
    import ctypes

    if libc().setns(fd, kind) != 0:
        err = ctypes.get_errno()
        import errno
        import threading

        if err == errno.EINVAL and threading.active_count() > 1:
            raise NerdpyError("cannot join the rootless user namespace from a process with threads: "
                              "open nerdpy's store (Client) before starting threads")
        raise NerdpyError(f"cannot join the rootless {what} namespace: {os.strerror(err)}")


def _join(pid: int, uid: int) -> None:
    try:
        ufd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        mfd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise NerdpyError(f"cannot join the rootless namespaces of pid {pid}: {e.strerror}") from None
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = "/"
    try:
        _setns(ufd, CLONE_NEWUSER, "user")
        _setns(mfd, CLONE_NEWNS, "mount")
    finally:
        os.close(ufd)
        os.close(mfd)
    try:
        os.chdir(cwd)
    except OSError:
        os.chdir("/")
    try:
        os.setgroups([])  # the user's other groups are unmapped here (they would show as nogroup)
    except OSError:
        pass
    os.environ[ROOTLESS_ENV] = str(uid)
    os.environ["PATH"] = tools_path()


_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def tools_path() -> str:
    """The PATH a rootless user's commands run root's tools (iptables, ip, nsenter, CNI plugins)
    from inside the namespace: the user's, with the sbin directories a user's PATH (Debian's:
    /usr/local/bin:/usr/bin:/bin:/usr/games) lacks."""
    path = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join([p for p in path if p] + [d for d in _SBIN if d not in path])


def stop_namespace(settings: Settings) -> bool:
    """End the pause process (the namespaces go when nothing else is in them)."""
    pid = pause_pid(settings)
    if pid is None:
        return False
    import signal

    os.kill(pid, signal.SIGTERM)
    try:
        os.unlink(os.path.join(settings.run_root, "pause.pid"))
    except OSError:
        pass
    return True


_RESOURCE_FLAGS = (("memory", "--memory"), ("memory_swap", "--memory-swap"),
                   ("memory_reservation", "--memory-reservation"), ("cpus", "--cpus"),
                   ("cpu_shares", "--cpu-shares"), ("pids_limit", "--pids-limit"))


def cgroups_delegated() -> bool:
    """Whether this user may manage cgroups: a delegated cgroup v2 subtree (a systemd user slice
    with the controllers enabled). nerdpy does not drive delegated cgroups yet, so: never."""
    return False


def check_resources(spec, devices: list[dict] = (), runc_release=lambda: ()) -> None:
    """What a rootless container cannot have: one clear error, before anything is made. Cgroup
    limits (without delegation), device access modes (`devices`: parsed --device entries; the
    device cgroup enforces them, a user's container only gets the host's node bound, with its file
    mode), and --domainname with a runc before 1.2 (`runc_release()`; older ones write
    /proc/sys/kernel/domainname, a file of the host's root)."""
    for d in devices:
        if not {"r", "w"} <= set(d["access"]):
            raise NerdpyError(f"--device {d['path']}:{d['container_path']}:{d['access']}: access modes need the "
                              "device cgroup, which rootless containers do not have (the device's file mode decides)")
    if spec.domainname and spec.uts != "host":
        release = runc_release()
        if release < (1, 2):
            raise NerdpyError(f"--domainname needs runc 1.2 or later in rootless mode (runc "
                              f"{'.'.join(map(str, release)) or '?'} sets it through /proc/sys, which belongs "
                              "to the host's root)")
    if cgroups_delegated():
        return
    for attr, flag in _RESOURCE_FLAGS:
        value = getattr(spec, attr, None)
        if value not in (None, 0, 0.0) and not (attr == "pids_limit" and value < 0):
            raise NerdpyError(f"{flag} needs cgroup delegation, which rootless nerdpy does not have "
                              "on this host (see `nerdpy doctor`)")


def overlay_in_userns(base: str) -> str | None:
    """Mount a tiny overlay (option userxattr) in a fresh user namespace with its upper dir under
    `base`, delete a lower file through it: None when a whiteout appears, else what failed."""
    from nerdpy.engine.snapshots.probe import overlay_whiteout_works

    return overlay_whiteout_works(base, user_namespace=True)


def choose_snapshotter(settings: Settings) -> str:
    """The storage driver of a rootless user's data root: the configured one, else the one the
    data root was made with (its `snapshotter` file), else the kernel's overlayfs when it works
    in a user namespace and fuse-overlayfs when it does not (recorded for the next commands)."""
    if settings.snapshotter:
        return settings.snapshotter
    path = os.path.join(settings.data_root, "snapshotter")
    try:
        with open(path) as f:
            recorded = f.read().strip()
        if recorded:
            return recorded
    except OSError:
        pass
    os.makedirs(settings.data_root, mode=0o711, exist_ok=True)
    choice = "overlayfs"
    if overlay_in_userns(settings.data_root) is not None and shutil.which("fuse-overlayfs"):
        choice = "fuse-overlayfs"
    from nerdpy.engine.util.fs import write_atomic

    write_atomic(path, choice + "\n")
    return choice
