"""Whether the kernel's overlayfs works where a data root lives: one probe, used by `doctor` (as
root) and by the rootless snapshotter choice (in a fresh user namespace, option userxattr).

A forked child mounts a tiny overlay whose upper and work dirs are under `base`, in a mount
namespace of its own, deletes a lower file through it and writes a new one; the parent then looks
for the whiteout in the upper dir. Nothing is left mounted (the namespace ends with the child) and
the temp dir is removed."""
from __future__ import annotations

import os
import shutil
import stat
import tempfile

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000


def overlay_whiteout_works(base: str, *, user_namespace: bool = False) -> str | None:
    """None when an overlay with its upper dir under `base` makes whiteouts, else what failed.
    With `user_namespace`, the overlay is mounted in a new user namespace mapping this user to
    root (as a rootless user's snapshots are), with the `userxattr` option."""
    tmp = tempfile.mkdtemp(prefix=".doctor-", dir=base)
    try:
        for d in ("lower", "upper", "work", "merged"):
            os.mkdir(os.path.join(tmp, d))
        with open(os.path.join(tmp, "lower", "f"), "w") as f:
            f.write("x")
        uid, gid = os.geteuid(), os.getegid()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            msg = b""
            try:
                os.close(r)
                _mount_and_delete(tmp, user_namespace, uid, gid)
            except BaseException as e:
                msg = str(e).encode() or type(e).__name__.encode()
            finally:
                os.write(w, msg)
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            msg = f.read().decode(errors="replace")
        os.waitpid(pid, 0)
        if msg:
            return msg
        st = os.lstat(os.path.join(tmp, "upper", "f"))
        if not (stat.S_ISCHR(st.st_mode) and st.st_rdev == 0):
            return "deleting a file did not leave an overlay whiteout in the upper dir"
        return None
    except OSError as e:
        return f"{e.strerror or e}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _mount_and_delete(tmp: str, user_namespace: bool, uid: int, gid: int) -> None:
    """The child's part (it exits after)."""
    import ctypes

    from nerdpy.engine.snapshots.mount import MS_PRIVATE, MS_REC, mount

    libc = ctypes.CDLL(None, use_errno=True)
    flags = CLONE_NEWUSER | CLONE_NEWNS if user_namespace else CLONE_NEWNS
    if libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), "unshare: " + os.strerror(ctypes.get_errno()))
    if user_namespace:
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    else:
        mount("none", "/", None, MS_REC | MS_PRIVATE)
    opts = f"lowerdir={tmp}/lower,upperdir={tmp}/upper,workdir={tmp}/work,index=off"
    mount("overlay", os.path.join(tmp, "merged"), "overlay", 0, opts + (",userxattr" if user_namespace else ""))
    os.unlink(os.path.join(tmp, "merged", "f"))
    with open(os.path.join(tmp, "merged", "g"), "w") as f:
        f.write("y")
