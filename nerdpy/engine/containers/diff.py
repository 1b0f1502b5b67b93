"""`diff`: the changes in a container's writable layer against its image, as docker lists them
(A added, C changed, D deleted, sorted by path).

The upper dir holds the changes in the snapshotter's diff form: a whiteout (0:0 character
device) is a deletion, a directory with the opaque xattr replaces its lower namesake (its lower
contents that are not in the upper dir are deleted). Whether a path existed before is looked up
in the image's layers (top first, honouring their own whiteouts and opaque directories)."""
from __future__ import annotations

import os
from dataclasses import dataclass

from nerdpy.engine.containers.records import Container, snapshot_key
from nerdpy.engine.snapshots.snapshotter import OPAQUE_XATTR, is_whiteout
from nerdpy.engine.store import Store


@dataclass(frozen=True)
class Change:
    kind: str   # "A", "C" or "D" (docker's ChangeType 1, 0, 2)
    path: str   # absolute, inside the container

    @property
    def kind_code(self) -> int:
        return {"C": 0, "A": 1, "D": 2}[self.kind]


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def lower_exists(lowers: list[str], rel: str) -> bool:
    """Whether `rel` exists in the merged view of the layers `lowers` (top first)."""
    parts = rel.strip("/").split("/")
    for layer in lowers:
        # a whiteout or opaque directory on the way down hides the layers beneath
        hidden = False
        for i in range(1, len(parts)):
            p = os.path.join(layer, *parts[:i])
            try:
                st = os.lstat(p)
            except OSError:
                break
            if is_whiteout(st):
                return False
            if _opaque(p):
                hidden = True
                break
        try:
            st = os.lstat(os.path.join(layer, *parts))
            return not is_whiteout(st)
        except OSError:
            pass
        if hidden:
            return False
    return False


def _lower_entries(lowers: list[str], rel: str) -> set[str]:
    """The names in directory `rel` of the merged lower view."""
    names: set[str] = set()
    gone: set[str] = set()
    for layer in lowers:
        d = os.path.join(layer, rel.strip("/"))
        try:
            entries = os.listdir(d)
        except OSError:
            entries = []
        for n in entries:
            if n in names or n in gone:
                continue
            try:
                st = os.lstat(os.path.join(d, n))
            except OSError:
                continue
            (gone if is_whiteout(st) else names).add(n)
        if entries and _opaque(d):
            break
    return names


def changes(upper: str, lowers: list[str]) -> list[Change]:
    """The changes `upper` makes over `lowers` (pure over the two trees)."""
    out: list[Change] = []

    def walk(rel: str, under_added: bool) -> None:
        d = os.path.join(upper, rel)
        try:
            names = sorted(os.listdir(d))
        except OSError:
            return
        for name in names:
            child = f"{rel}/{name}" if rel else name
            full = os.path.join(upper, child)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if is_whiteout(st):
                if not under_added and lower_exists(lowers, child):
                    out.append(Change("D", "/" + child))
                continue
            existed = not under_added and lower_exists(lowers, child)
            out.append(Change("C" if existed else "A", "/" + child))
            if os.path.isdir(full) and not os.path.islink(full):
                opaque = existed and _opaque(full)
                if opaque:
                    mine = set(os.listdir(full))
                    for gone in sorted(_lower_entries(lowers, child) - mine):
                        out.append(Change("D", f"/{child}/{gone}"))
                walk(child, under_added or not existed or opaque)

    walk("", False)
    out.sort(key=lambda c: c.path)
    return out


def container_changes(store: Store, c: Container) -> list[Change]:
    """docker diff of a container."""
    key = snapshot_key(store, c.id)
    upper = store.snapshots.upper_dir(key)
    row = store.db.query_one("SELECT parent FROM active_snapshots WHERE key = ?", (key,))
    lowers = store.snapshots.lowerdirs(row["parent"]) if row is not None and row["parent"] else []
    return changes(upper, lowers)
