"""`nerdpy doctor` for a plain user: what rootless nerdpy needs (engine/runtime/rootless.py).

Checks: the user's /etc/subuid and /etc/subgid ranges; newuidmap and newgidmap (setuid, from
`uidmap`); user namespaces enabled; kernel overlayfs inside a user namespace (tried for real on
the data root's filesystem: mount with `userxattr`, delete a lower file, expect a whiteout) -
which is the snapshotter rootless nerdpy uses; /dev/net/tun and slirp4netns for the default
network; cgroup delegation (without it resource flags are refused, everything else works).
Each failure names the command that fixes it.
"""
from __future__ import annotations

import os
import shutil
import stat

from nerdpy.engine.config import Settings
from nerdpy.engine.system.doctor import Check



def check_subids(uid: int) -> list[Check]:
    from nerdpy.engine.runtime.rootless import FIX, sub_range, user_name

    user = user_name(uid)
    out = []
    for path in ("/etc/subuid", "/etc/subgid"):
        r = sub_range(path, uid)
        if r is None:
            out.append(Check(path, "fail", f"no range for {user}: images with other owners than root "
                             "cannot be unpacked", FIX.format(user=user)))
        elif r.count < 65536:
            out.append(Check(path, "warn", f"{user}: {r.count} ids from {r.start} (images using ids "
                             "above that fail to unpack)", FIX.format(user=user)))
        else:
            out.append(Check(path, "ok", f"{user}: {r.count} ids from {r.start}"))
    return out


def check_uidmap() -> Check:
    missing = []
    for tool in ("newuidmap", "newgidmap"):
        path = shutil.which(tool)
        if path is None:
            missing.append(f"{tool} not installed")
            continue
        st = os.stat(path)
        if not (st.st_mode & stat.S_ISUID and st.st_uid == 0) and not _has_file_caps(path):
            missing.append(f"{path} is neither setuid root nor has file capabilities")
    if missing:
        return Check("newuidmap", "fail", "; ".join(missing), "sudo apt-get install --reinstall uidmap")
    return Check("newuidmap", "ok", "newuidmap and newgidmap (uidmap) are installed")


def _has_file_caps(path: str) -> bool:
    try:
        return os.getxattr(path, "security.capability") is not None
    except OSError:
        return False


def check_userns() -> Check:
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            n = int(f.read().strip())
    except (OSError, ValueError):
        n = -1
    if n == 0:
        return Check("user namespaces", "fail", "user.max_user_namespaces is 0",
                     "sudo sysctl -w user.max_user_namespaces=28633")
    return Check("user namespaces", "ok", "enabled" + (f" (max {n})" if n > 0 else ""))


def check_snapshotter(settings: Settings) -> Check:
    """Which snapshotter this user has: the kernel's overlayfs inside the user namespace (tried),
    or fuse-overlayfs when configured (its program and /dev/fuse checked)."""
    from nerdpy.engine.runtime.rootless import overlay_in_userns
    from nerdpy.engine.system.doctor import _existing

    base = _existing(settings.data_root)
    fuse = shutil.which("fuse-overlayfs")
    if settings.snapshotter == "fuse-overlayfs" or _recorded(settings) == "fuse-overlayfs":
        if fuse is None:
            return Check("snapshotter", "fail", "fuse-overlayfs is configured but not installed",
                         "sudo apt-get install fuse-overlayfs")
        try:
            os.close(os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC))
        except OSError as e:
            return Check("snapshotter", "fail", f"fuse-overlayfs is configured but /dev/fuse is not usable "
                         f"by this user: {e.strerror}", "sudo chmod 0666 /dev/fuse")
        return Check("snapshotter", "ok", f"fuse-overlayfs ({fuse}) with /dev/fuse")
    err = overlay_in_userns(base)
    if err is None:
        return Check("snapshotter", "ok", f"kernel overlayfs inside the user namespace works on {base}")
    if fuse is not None and not settings.snapshotter:
        return Check("snapshotter", "warn", f"kernel overlayfs inside a user namespace fails on {base}: {err}; "
                     "a new data root uses fuse-overlayfs instead (needs /dev/fuse usable by the user)")
    return Check("snapshotter", "fail", f"kernel overlayfs inside a user namespace fails on {base}: {err}",
                 'use fuse-overlayfs: snapshotter = "fuse-overlayfs" in ~/.config/nerdpy/nerdpy.toml '
                 "(sudo apt-get install fuse-overlayfs; /dev/fuse usable by the user)")


def _recorded(settings: Settings) -> str:
    try:
        with open(os.path.join(settings.data_root, "snapshotter")) as f:
            return f.read().strip()
    except OSError:
        return ""


def check_network() -> list[Check]:
    from nerdpy.engine.network.slirp import tun_usable

    out = []
    if shutil.which("slirp4netns") is None:
        out.append(Check("slirp4netns", "fail", "not installed: the default network is unavailable "
                         "(--network none and host still work)", "sudo apt-get install slirp4netns"))
    else:
        out.append(Check("slirp4netns", "ok", shutil.which("slirp4netns") + " (the default network, -p)"))
    why = tun_usable()
    if why is None:
        out.append(Check("/dev/net/tun", "ok", "usable by this user (slirp4netns opens it)"))
    else:
        mode = ""
        try:
            mode = f" (mode {stat.S_IMODE(os.stat('/dev/net/tun').st_mode):04o})"
        except OSError:
            pass
        out.append(Check("/dev/net/tun", "fail", f"not usable by this user{mode}: {why}; slirp4netns needs it "
                         "for the default network (--network none and host still work; most distributions "
                         "ship it 0666)", "sudo chmod 0666 /dev/net/tun"))
    return out


def check_cgroup_delegation() -> Check:
    from nerdpy.engine.runtime.rootless import cgroups_delegated

    if cgroups_delegated():
        return Check("cgroup delegation", "ok", "delegated cgroup v2: resource limits work")
    return Check("cgroup delegation", "warn", "no delegated cgroup v2 for this user (this host's cgroups are "
                 "v1 or hybrid, or nerdpy cannot use a delegation yet): --memory, --cpus, --pids-limit and "
                 "the other resource flags are refused; everything else works",
                 "a cgroup v2 host with systemd user delegation (Delegate=yes in user@.service)")


def run_checks(settings: Settings) -> list[Check]:
    """Every check for a rootless user, in the order `nerdpy doctor` prints them."""
    from nerdpy.engine.system.doctor import (check_cni, check_data_root, check_free_space, check_iproute2,
                                             check_iptables, check_overlay, check_registries, check_runc,
                                             check_tini)

    checks = rootless_checks(settings)
    checks += check_runc(settings)
    checks += [check_overlay(), check_cni(settings), check_iptables(), check_iproute2(), check_tini()]
    checks += check_data_root(settings)
    checks.append(check_free_space(settings))
    checks += check_registries(settings)
    return checks


def rootless_checks(settings: Settings) -> list[Check]:
    uid = settings.rootless_uid
    checks = [Check("user", "ok", f"uid {uid}: rootless mode (data root {settings.data_root}, "
                    f"run root {settings.run_root})")]
    checks += check_subids(uid)
    checks += [check_uidmap(), check_userns(), check_snapshotter(settings)]
    checks += check_network()
    checks.append(check_cgroup_delegation())
    return checks
