"""The snapshotter interface: what the engine needs from a storage driver, and which one a store uses.

A snapshotter keeps two kinds of snapshots, recorded in the metadata DB:
- committed snapshots, one per image layer chain, named by the OCI ChainID (`chain_ids`): each
  is unpacked once (`unpack`), read-only, and holds its layer's files in *diff form* (below);
- active snapshots, a container's writable layer, named by a key (`prepare`), whose mounts
  (`mounts`) give the container's rootfs and whose changes `upper_dir` shows in diff form.

Diff form is overlayfs's: a deleted path is a 0:0 character device (`make_whiteout`,
`is_whiteout`), a directory that hides its lower layers carries `OPAQUE_XATTR` = "y", and no
layer may set `INTERNAL_XATTRS` itself. Layer apply writes it, commit reads it; a snapshotter
without overlayfs (a native copy, fuse-overlayfs) keeps this contract for its layer and upper
dirs and is one new module plus one entry in `DRIVERS`.
"""
from __future__ import annotations

import importlib
import os
import stat
from typing import TYPE_CHECKING, Callable, Protocol

from nerdpy.engine.util.lean import lean_dataclass

if TYPE_CHECKING:
    from nerdpy.engine.content.metadata import Metadata
    from nerdpy.engine.snapshots.mount import Mount

INTERNAL_XATTRS = "trusted.overlay."           # the prefix of the driver's own xattrs
OPAQUE_XATTR = INTERNAL_XATTRS + "opaque"
USER_XATTRS = "user.overlay."                  # the same in a user namespace (mount option userxattr)


def overlay_xattrs() -> str:
    """The prefix overlayfs uses for this process: `user.overlay.` for a rootless user (whose
    overlay mounts carry `userxattr`), else `trusted.overlay.`."""
    from nerdpy.engine.config import rootless_uid

    return USER_XATTRS if rootless_uid() is not None else INTERNAL_XATTRS


def opaque_xattr() -> str:
    return overlay_xattrs() + "opaque"


def is_overlay_xattr(name: str) -> bool:
    """An xattr of overlayfs itself (either form), which no layer may set."""
    return name.startswith((INTERNAL_XATTRS, USER_XATTRS))


def make_whiteout(path: str) -> None:
    """Mark `path` deleted (in a layer or upper dir)."""
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The OCI ChainIDs of a layer stack: ChainID(L0) = DiffID(L0);
    ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln))."""
    from nerdpy.engine.content.blobs import sha256_digest  # (here: commands that never hash load nothing)

    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append(sha256_digest(f"{out[-1]} {diff_id}".encode()))
    return out


@lean_dataclass(frozen=True)
class Snapshot:
    """A committed snapshot."""
    chain_id: str
    id: int
    parent: str | None
    diff_id: str
    size: int


class Snapshotter(Protocol):
    """What the engine calls on `store.snapshots`."""

    root: str
    driver: str  # the storage driver's name as `info` and `inspect` show it ("overlayfs")

    # committed snapshots
    def get(self, chain_id: str) -> Snapshot | None: ...
    def exists(self, chain_id: str) -> bool: ...
    def list(self) -> list[Snapshot]: ...
    def chain(self, chain_id: str) -> list[Snapshot]: ...
    def usage(self, chain_id: str) -> int: ...
    def unpack(self, chain_id: str, parent: str | None, diff_id: str,
               apply: Callable[[str], tuple[str, int]]) -> bool: ...
    def lowerdirs(self, chain_id: str) -> list[str]: ...  # each layer's files in diff form, top first
    def layer_dir(self, snap_id: int) -> str: ...         # one committed snapshot's files
    def remove(self, chain_id: str) -> None: ...
    def discard_dir(self, snap_id: int) -> None: ...      # the files of a snapshot whose row is gone

    # active snapshots (a container's writable layer)
    def prepare(self, key: str, parent: str | None) -> list[Mount]: ...
    def mounts(self, key: str) -> list[Mount]: ...
    def upper_dir(self, key: str) -> str: ...             # the changes, in diff form
    def active_keys(self) -> list[str]: ...
    def remove_active(self, key: str) -> None: ...
    def active_intact(self, snap_id: int) -> bool: ...     # its directories are all there
    def recreate_active(self, snap_id: int) -> None: ...   # empty, after they were lost

    # housekeeping
    def remove_orphan_dirs(self) -> int: ...


# driver name -> "module:class"; a second snapshotter is one module and one line here
DRIVERS = {"overlayfs": "nerdpy.engine.snapshots.overlay:OverlaySnapshotter",
           "fuse-overlayfs": "nerdpy.engine.snapshots.fuse_overlay:FuseOverlaySnapshotter"}
DEFAULT = "overlayfs"


def open_snapshotter(root: str, db: Metadata, driver: str = DEFAULT) -> Snapshotter:
    if driver not in DRIVERS:
        from nerdpy.engine.errors import InvalidArgument

        raise InvalidArgument(f"unknown snapshotter {driver!r}: use one of {', '.join(DRIVERS)}")
    module, _, cls = DRIVERS[driver].partition(":")
    return getattr(importlib.import_module(module), cls)(root, db)
