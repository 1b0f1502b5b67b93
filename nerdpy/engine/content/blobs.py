"""The content store: immutable blobs addressed by digest.

Layout: `<root>/blobs/sha256/<hex>`. A blob is written to a temp file in the same folder,
hashed as it is written, checked against the expected digest and size, fsynced and renamed
into place, so a blob that exists is always complete and correct. A file lock per digest lets
two processes ingest the same blob at once: the second waits and then finds it present.
"""
from __future__ import annotations

import fcntl
import os
import re
import time
from contextlib import contextmanager
from typing import BinaryIO, Iterator

from nerdpy.engine.content.reserve import Room
from nerdpy.engine.errors import DigestMismatch, InvalidArgument, NotFound
from nerdpy.engine.util.locks import flock_wait

_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


def _sha256(data: bytes = b""):
    """hashlib.sha256, imported on first use (loading OpenSSL costs 2 ms: `ps` and `exec` never hash)."""
    import hashlib

    return hashlib.sha256(data)


def check_digest(digest: str) -> str:
    """Return `digest` if it is a well-formed sha256 digest, else raise InvalidArgument."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise InvalidArgument(f"invalid digest {digest!r}")
    return digest


SMALL = 64 << 10   # up to this, CPython's own sha256 (configs, manifests, chain IDs)


def sha256_digest(data: bytes) -> str:
    """`sha256:<hex>` of `data`. Small data is hashed by CPython's builtin sha256 module (0.3 ms to
    import; hashlib loads OpenSSL, ~6 ms, which only pays off per byte on large data): `images`
    and `inspect` read and verify configs without loading OpenSSL."""
    if len(data) <= SMALL:
        small = _builtin_sha256()
        if small is not None:
            return "sha256:" + small(data).hexdigest()
    return "sha256:" + _sha256(data).hexdigest()


def _builtin_sha256():
    try:
        from _sha256 import sha256  # CPython 3.11
    except ImportError:
        try:
            from _sha2 import sha256  # CPython 3.12+
        except ImportError:
            return None
    return sha256


class BlobWriter:
    """Receives a blob's bytes; hashes them on the way to a temp file."""

    def __init__(self, path: str, expected: str, size: int | None):
        self._path = path
        self.expected = expected
        self.expected_size = size
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        self._hash = _sha256()
        self.offset = 0
        self._room = Room(path)

    def write(self, data: bytes) -> None:
        if self.expected_size is not None and self.offset + len(data) > self.expected_size:
            raise DigestMismatch(
                f"blob {self.expected} is larger than its descriptor ({self.expected_size} bytes)"
            )
        self._room.take(len(data))
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._hash.update(data)
        self.offset += len(data)

    def reset(self) -> None:
        """Start again from byte 0 (the server ignored a Range request)."""
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        self._hash = _sha256()
        self.offset = 0

    def _finish(self) -> None:
        if self.expected_size is not None and self.offset != self.expected_size:
            raise DigestMismatch(
                f"blob {self.expected}: got {self.offset} bytes, descriptor says {self.expected_size}"
            )
        actual = "sha256:" + self._hash.hexdigest()
        if actual != self.expected:
            raise DigestMismatch(f"blob digest mismatch: expected {self.expected}, got {actual}")
        os.fsync(self._fd)

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def corrupt_blob(digest: str, actual: str = "") -> DigestMismatch:
    got = f" (they hash to {actual})" if actual else ""
    return DigestMismatch(f"blob {digest} is corrupt: its bytes no longer match its digest{got}; "
                          "run `nerdpy system check --repair`, then pull the image again")


class VerifiedReader:
    """A stored blob read once, front to back, for bytes that leave the store (save, push):
    the read that reaches its end raises DigestMismatch instead of returning bytes that do
    not match the digest (a writer never gets the last chunk of a corrupt blob)."""

    def __init__(self, f: BinaryIO, digest: str):
        self._f = f
        self.digest = digest
        self.size = os.fstat(f.fileno()).st_size
        self._hash = _sha256()
        self._seen = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._hash.update(data)
        self._seen += len(data)
        if not data or self._seen >= self.size:
            actual = "sha256:" + self._hash.hexdigest()
            if self._seen >= self.size and actual != self.digest:
                raise corrupt_blob(self.digest, actual)
        return data

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> VerifiedReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ContentStore:
    """Blobs by digest under `root`."""

    def __init__(self, root: str):
        self.root = root
        self.blob_dir = os.path.join(root, "blobs", "sha256")
        self.lock_dir = os.path.join(root, "locks")
        os.makedirs(self.blob_dir, mode=0o700, exist_ok=True)
        os.makedirs(self.lock_dir, mode=0o700, exist_ok=True)

    def path(self, digest: str) -> str:
        check_digest(digest)
        return os.path.join(self.blob_dir, digest[7:])

    def exists(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def size(self, digest: str) -> int:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise NotFound(f"content {digest} not found") from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"content {digest} not found") from None

    def open_verified(self, digest: str) -> VerifiedReader:
        """The one way a blob's bytes leave the store: read with its digest checked (see VerifiedReader)."""
        return VerifiedReader(self.open(digest), digest)

    def verify(self, digest: str) -> None:
        """Hash the stored blob whole; DigestMismatch (naming the repair) when it is corrupt."""
        with self.open_verified(digest) as f:
            while f.read(1 << 20):
                pass

    def read(self, digest: str, limit: int = 32 << 20) -> bytes:
        """Read a small blob (manifest, config) whole, checking its digest again."""
        with self.open(digest) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise InvalidArgument(f"content {digest} is larger than {limit} bytes")
        if sha256_digest(data) != digest:
            raise corrupt_blob(digest)
        return data

    def list(self) -> list[str]:
        return [
            "sha256:" + n
            for n in os.listdir(self.blob_dir)
            if len(n) == 64 and not n.startswith(".")
        ]

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            pass

    @contextmanager
    def lock(self, digest: str) -> Iterator[None]:
        """An exclusive, process-wide lock on one digest (flock: released if the holder dies)."""
        check_digest(digest)
        path = os.path.join(self.lock_dir, digest[7:])
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            flock_wait(fd, fcntl.LOCK_EX, f"the lock of blob {digest[:19]} ({path})")
            yield
        finally:
            os.close(fd)

    @contextmanager
    def ingest(self, digest: str, size: int | None = None) -> Iterator[BlobWriter | None]:
        """Write a blob. Yields None when the blob is already present (nothing to do).

        The blob becomes visible only when the block ends without an error and the bytes
        match `digest` (and `size`, when given).
        """
        check_digest(digest)
        final = self.path(digest)
        with self.lock(digest):
            if os.path.exists(final):
                yield None
                return
            tmp = os.path.join(self.blob_dir, f".ingest-{digest[7:]}-{os.getpid()}-{time.monotonic_ns()}")
            self._remove_stale(digest)
            writer = BlobWriter(tmp, digest, size)
            try:
                yield writer
                writer._finish()
                writer._close()
                os.rename(tmp, final)
            except BaseException:
                writer._close()
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
                raise

    def write_blob(self, data: bytes, digest: str | None = None) -> str:
        """Store small bytes (a manifest or config) and return their digest."""
        digest = digest or sha256_digest(data)
        with self.ingest(digest, len(data)) as w:
            if w is not None:
                w.write(data)
        return digest

    def _remove_stale(self, digest: str) -> None:
        # we hold the digest's lock: any temp file for it is left over from a dead writer
        prefix = f".ingest-{digest[7:]}-"
        for name in os.listdir(self.blob_dir):
            if name.startswith(prefix):
                try:
                    os.unlink(os.path.join(self.blob_dir, name))
                except FileNotFoundError:
                    pass

    def remove_stale_ingests(self) -> int:
        """Remove temp files of ingests whose writer is gone (used by garbage collection)."""
        removed = 0
        for name in os.listdir(self.blob_dir):
            if not name.startswith(".ingest-"):
                continue
            hexd = name.split("-")[1]
            fd = os.open(os.path.join(self.lock_dir, hexd), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                try:
                    os.unlink(os.path.join(self.blob_dir, name))
                    removed += 1
                except FileNotFoundError:
                    pass
            finally:
                os.close(fd)
        return removed
