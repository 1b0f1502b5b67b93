"""The fuse-overlayfs snapshotter: the overlay snapshotter's layout and diff form, mounted by
the `fuse-overlayfs` program instead of the kernel, for a rootless user whose kernel cannot
mount overlayfs inside a user namespace (before 5.11). fuse-overlayfs reads the same whiteouts
(0:0 character devices) and opaque xattrs (`user.overlay.opaque`) as the kernel's overlay with
`userxattr`, so only the mounts differ; `mount_all` runs the program (it serves the mount
until it is unmounted). Chosen for a new rootless data root when the kernel's overlayfs fails
in a user namespace (runtime/rootless.py `choose_snapshotter`), or with `snapshotter =
"fuse-overlayfs"` (NERDPY_SNAPSHOTTER); needs /dev/fuse usable by the user.
"""
from __future__ import annotations

from nerdpy.engine.snapshots.mount import Mount
from nerdpy.engine.snapshots.overlay import OverlaySnapshotter

FUSE_TYPE = "fuse-overlayfs"
_KERNEL_ONLY = ("index=off", "userxattr")


def _fuse(mounts: list[Mount]) -> list[Mount]:
    return [Mount(FUSE_TYPE, FUSE_TYPE, tuple(o for o in m.options if o not in _KERNEL_ONLY))
            if m.type == "overlay" else m for m in mounts]


class FuseOverlaySnapshotter(OverlaySnapshotter):
    driver = "fuse-overlayfs"

    def mounts(self, key: str) -> list[Mount]:
        return _fuse(super().mounts(key))

    def view_mounts(self, chain_id: str) -> list[Mount]:
        return _fuse(super().view_mounts(chain_id))
