"""Compression, written once: what a stream is compressed with (sniffed from its first bytes) and
its decompressed bytes, for layers (gzip, zstd or plain), `load` archives and `import` tarballs
(also xz and bzip2).

Decompression is streamed and its output bounded per step (a small compressed chunk never
expands into one huge buffer). Concatenated gzip members, xz and bzip2 streams are read as one,
zero padding between or after them is skipped; other bytes after an xz or bzip2 stream are
ignored (as tar does), after a gzip member they must be another member. Corrupt or truncated
input raises `DecompressError`; callers word it their way.
"""
from __future__ import annotations

from typing import BinaryIO, Collection, Iterator

GZIP, ZSTD, XZ, BZIP2, NONE = "gzip", "zstd", "xz", "bzip2", "none"
ALL = (GZIP, ZSTD, XZ, BZIP2)
LAYER = (GZIP, ZSTD)       # what an image layer may be compressed with
HEAD = 6                   # bytes `sniff` needs
CHUNK = 1 << 20

_MAGIC = ((GZIP, b"\x1f\x8b"), (ZSTD, b"\x28\xb5\x2f\xfd"), (XZ, b"\xfd7zXZ\x00"), (BZIP2, b"BZh"))


class DecompressError(ValueError):
    """Input that does not decompress: `kind` (gzip...), `detail` (the decoder's words), and
    `truncated` when the input ended inside a compressed stream."""

    def __init__(self, kind: str, detail: str, truncated: bool = False):
        super().__init__(detail)
        self.kind, self.detail, self.truncated = kind, detail, truncated


def sniff(head: bytes, accept: Collection[str] = ALL) -> str:
    """The compression `head` (a stream's first bytes, HEAD of them suffice) announces, among
    `accept`; "none" for anything else."""
    for kind, magic in _MAGIC:
        if head.startswith(magic):
            return kind if kind in accept else NONE
    return NONE


def read_head(stream: BinaryIO, n: int = HEAD) -> bytes:
    """Up to `n` first bytes of `stream` (fewer only at its end)."""
    head = b""
    while len(head) < n:
        more = stream.read(n - len(head))
        if not more:
            break
        head += more
    return head


class Prefixed:
    """`head` (bytes already read) followed by the rest of `stream`."""

    def __init__(self, head: bytes, stream: BinaryIO):
        self.head, self.stream = head, stream

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n is None or n < 0:
                data, self.head = self.head + self.stream.read(), b""
                return data
            data, self.head = self.head[:n], self.head[n:]
            if len(data) < n:
                data += self.stream.read(n - len(data))
            return data
        return self.stream.read(n)

    def readable(self) -> bool:
        return True


def plain_chunks(stream: BinaryIO, head: bytes = b"", *, accept: Collection[str] = ALL,
                 chunk: int = CHUNK) -> Iterator[bytes]:
    """The decompressed bytes of `head` + the rest of `stream` (compressed with one of `accept`,
    sniffed; anything else passes as it is), in pieces of at most about `chunk` bytes."""
    if len(head) < HEAD:
        head += read_head(stream, HEAD - len(head))
    kind = sniff(head, accept)
    if kind == NONE:
        data = head
        while data:
            yield data
            data = stream.read(chunk)
        return
    if kind == ZSTD:
        yield from _unzstd(Prefixed(head, stream), chunk)
        return
    yield from _unstream(kind, head, stream, chunk)


def _unzstd(src, chunk: int) -> Iterator[bytes]:
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(src, read_across_frames=True)
    try:
        while True:
            out = reader.read(chunk)
            if not out:
                return
            yield out
    except zstandard.ZstdError as e:
        raise DecompressError(ZSTD, str(e)) from None


def _decompressor(kind: str):
    if kind == GZIP:
        import zlib

        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == XZ:
        import lzma

        return lzma.LZMADecompressor()
    import bz2

    return bz2.BZ2Decompressor()


def _feed(kind: str, d, data: bytes, chunk: int) -> Iterator[bytes]:
    """All the output of `data` through `d`, at most `chunk` bytes at a time."""
    while True:
        out = d.decompress(data, chunk)
        if kind == GZIP:
            data = d.unconsumed_tail
            more = bool(data) or len(out) >= chunk
        else:  # lzma and bz2 keep the rest of the input themselves
            data = b""
            more = not d.needs_input
        if out:
            yield out
        if d.eof or not more:
            return


def _unstream(kind: str, data: bytes, stream: BinaryIO, chunk: int) -> Iterator[bytes]:
    import zlib

    errors = (zlib.error, OSError, EOFError)
    if kind == XZ:
        import lzma

        errors += (lzma.LZMAError,)
    magic = dict(_MAGIC)[kind]
    d = _decompressor(kind)
    try:
        while True:
            if data:
                yield from _feed(kind, d, data, chunk)
            if not d.eof:
                data = stream.read(chunk)
                if not data:
                    raise DecompressError(kind, "unexpected end of input", truncated=True)
                continue
            # the end of a member or stream: zero padding, another one, or (xz, bzip2) the end
            data = d.unused_data.lstrip(b"\x00")
            while not data:
                more = stream.read(chunk)
                if not more:
                    return
                data = more.lstrip(b"\x00")
            if kind != GZIP and not data.startswith(magic[:len(data)]):
                return
            d = _decompressor(kind)
    except errors as e:
        raise DecompressError(kind, str(e)) from None


class Reader:
    """A read()-able stream of `plain_chunks` (for tarfile)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._it = chunks
        self._buf = b""
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            out = [self._buf[self._pos:], *self._it]
            self._buf, self._pos = b"", 0
            return b"".join(out)
        while self._pos >= len(self._buf):
            nxt = next(self._it, None)
            if nxt is None:
                return b""
            self._buf, self._pos = nxt, 0
        out = self._buf[self._pos:self._pos + n]
        self._pos += len(out)
        return out

    def readable(self) -> bool:
        return True


def open_plain(stream: BinaryIO, head: bytes = b"", *, accept: Collection[str] = ALL,
               chunk: int = CHUNK) -> Reader:
    """`plain_chunks` as a stream to read."""
    return Reader(plain_chunks(stream, head, accept=accept, chunk=chunk))
