"""The store: one open data root (metadata DB, content store, snapshotter) for one namespace.

Everything the engine does goes through a `Store`. Opening one is cheap (a SQLite connection
and a few mkdirs), so each CLI command opens its own.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from dataclasses import field
from typing import Iterator

from nerdpy.engine.config import Settings
from nerdpy.engine.content.blobs import ContentStore
from nerdpy.engine.errors import DamagedStore, StoreError
from nerdpy.engine.content.metadata import Metadata
from nerdpy.engine.content.reserve import keep_room
from nerdpy.engine.snapshots.snapshotter import Snapshotter, open_snapshotter
from nerdpy.engine.util.lean import lean_dataclass


@lean_dataclass
class Store:
    settings: Settings
    db: Metadata
    content: ContentStore
    snapshots: Snapshotter
    _registry: object | None = field(default=None, repr=False)

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    @property
    def data_root(self) -> str:
        return self.settings.data_root

    def registry_client(self):
        """The registry client (imports requests: only paths that talk to registries call this)."""
        if self._registry is None:
            from nerdpy.engine.distribution.registry import RegistryClient

            self._registry = RegistryClient(
                hosts_dirs=list(self.settings.hosts_dirs),
                insecure=list(self.settings.insecure_registries),
            )
        return self._registry

    @contextmanager
    def gc_lock(self, exclusive: bool = False, wait: bool = True) -> Iterator[bool]:
        """Writers that add content hold the shared lock; garbage collection holds it
        exclusively, so it never deletes what a running pull has fetched but not yet named.
        Yields False when `wait` is False and the lock is busy."""
        fd = os.open(os.path.join(self.data_root, "gc.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            flags = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
            try:
                if wait:
                    from nerdpy.engine.util.locks import flock_wait

                    flock_wait(fd, flags, f"the store's gc lock ({os.path.join(self.data_root, 'gc.lock')})")
                else:
                    fcntl.flock(fd, flags | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def close(self) -> None:
        self.db.close()


def open_store(settings: Settings) -> Store:
    root = settings.data_root
    if settings.rootless_uid is not None:  # a plain user: into the user namespace first
        from nerdpy.engine.runtime.rootless import ensure_namespace

        ensure_namespace(settings)
        from nerdpy.engine.network.usernet import ENV, path_of

        os.environ[ENV] = path_of(settings.run_root)  # where user networks' host side lives

    from nerdpy.engine.content.damage import database_damage, repair_hint

    from nerdpy.engine.util import locks

    locks.configure(settings.lock_timeout)
    why = database_damage(root)
    if why:  # never taken for a new store: opening would make an empty DB over the content
        raise DamagedStore(f"{why}: {repair_hint()}")
    try:
        os.makedirs(root, mode=0o711, exist_ok=True)
        keep_room(root)
        db = Metadata(os.path.join(root, "meta.db"))
    except OSError as e:
        raise StoreError(f"cannot open data root {root}: {e.strerror or e}") from None
    except Exception as e:  # sqlite3.DatabaseError and friends
        if "malformed" in str(e) or "not a database" in str(e):
            raise DamagedStore(f"metadata database {os.path.join(root, 'meta.db')} is damaged ({e}): "
                               f"{repair_hint()}") from None
        raise StoreError(f"cannot open metadata in {root}: {e}") from None
    content = ContentStore(os.path.join(root, "content"))
    driver = settings.snapshotter or "overlayfs"
    if settings.rootless_uid is not None:
        from nerdpy.engine.runtime.rootless import choose_snapshotter

        driver = choose_snapshotter(settings)
    snaps = open_snapshotter(os.path.join(root, "snapshots"), db, driver)
    return Store(settings=settings, db=db, content=content, snapshots=snaps)
