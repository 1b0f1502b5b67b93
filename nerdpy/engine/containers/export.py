"""`export` (a container's filesystem as a tar) and `import` (a tar as a one-layer image).

Export reads the container's merged root as the overlay shows it, without its volumes, bind
mounts or the files nerdpy binds over /etc (as docker's export does). The walk runs in a forked
child that enters a private mount namespace, mounts the container's overlay there if it is not
mounted already (a stopped container), and `chroot`s into it, so nothing shows in the host's
mount table and no symlink in the container can lead the walk outside it. The tar comes back
over a pipe; the child imports everything it needs before the chroot.

Import takes a tar (plain, gzip, zstd, xz or bzip2) from a file, stdin or an http(s) URL,
recompresses it as a gzip layer while hashing, unpacks it as a snapshot (which checks it: a
corrupt or unsafe archive is refused before anything is named), and records a one-layer image
with `--change`s applied. Errors exit 1 as docker's do.
"""
from __future__ import annotations

import bz2
import ctypes
import json
import lzma
import os
import stat
import sys
import tarfile
import zlib
from typing import BinaryIO, Iterator

import encodings.ascii  # noqa: F401  (loaded before any chroot)
import encodings.latin_1  # noqa: F401
import encodings.utf_8  # noqa: F401

from nerdpy.engine.images.commit import (BaseImage, LayerWriter, NewImage, apply_changes, normalise_target,
                                  now_rfc3339, store_layer_image, tar_entry)
from nerdpy.engine.errors import ExportError, LayerError
from nerdpy.engine.store import Store

CLONE_NEWNS = 0x00020000
CHUNK = 1 << 20


# -- export --------------------------------------------------------------------------------------
def write_tree(out: BinaryIO, root: str = "/") -> int:
    """A tar of the tree at `root`, entry names relative to it (`bin`, `bin/sh`...), symlinks never
    followed, sockets skipped, hard links kept. Returns the number of entries."""
    count = 0
    links: dict = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        def walk(dirpath: str, prefix: str) -> None:
            nonlocal count
            for name in sorted(os.listdir(dirpath)):
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue  # removed meanwhile (a running container)
                if tar_entry(tf, path, prefix + name, st, links):
                    count += 1
                if stat.S_ISDIR(st.st_mode):
                    walk(path, prefix + name + "/")

        walk(root, "")
    return count


def _enter_rootfs(rootfs: str, mounts: list) -> None:
    """In the child: a private mount namespace, the overlay mounted if need be, then chroot."""
    from nerdpy.engine.snapshots.mount import MS_PRIVATE, MS_REC, is_mounted, mount, mount_all

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "unshare(CLONE_NEWNS): " + os.strerror(err))
    mount("none", "/", None, MS_REC | MS_PRIVATE)
    os.makedirs(rootfs, mode=0o711, exist_ok=True)
    if not is_mounted(rootfs):
        mount_all(mounts, rootfs)
    os.chdir(rootfs)
    os.chroot(".")
    os.chdir("/")


def export_container(store: Store, c, out: BinaryIO) -> int:
    """Write the container's filesystem to `out` as a tar; returns the number of entries."""
    from nerdpy.engine.containers.records import container_dir, snapshot_key

    rootfs = os.path.join(container_dir(store, c.id), "rootfs")
    mounts = store.snapshots.mounts(snapshot_key(store, c.id))
    data_r, data_w = os.pipe()
    ctl_r, ctl_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child ---------------------------------------------------------------------
        code = 1
        try:
            os.close(data_r)
            os.close(ctl_r)
            tarfile.pwd = None  # never resolve names through the container's NSS
            tarfile.grp = None
            _enter_rootfs(rootfs, mounts)
            with os.fdopen(data_w, "wb", buffering=CHUNK) as f:
                n = write_tree(f, "/")
            os.write(ctl_w, json.dumps({"ok": n}).encode())
            code = 0
        except BaseException as e:  # reported to the parent; never return into the CLI
            try:
                msg = f"{e.strerror}: {e.filename}" if isinstance(e, OSError) and e.filename else str(e)
                os.write(ctl_w, json.dumps({"error": msg or type(e).__name__}).encode())
            except BaseException:
                pass
        finally:
            os._exit(code)
    os.close(data_w)
    os.close(ctl_w)
    done = False
    try:
        with os.fdopen(data_r, "rb") as src:
            while True:
                chunk = src.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
        out.flush()
        with os.fdopen(ctl_r, "rb") as ctl:
            raw = ctl.read()
        ctl_r = -1
        os.waitpid(pid, 0)
        done = True
    finally:
        if not done:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
            os.waitpid(pid, 0)
            if ctl_r >= 0:
                os.close(ctl_r)
    try:
        msg = json.loads(raw) if raw else {}
    except ValueError:
        msg = {}
    if "ok" not in msg:
        raise ExportError(f"export {c.name}: {msg.get('error') or 'the export helper failed'}")
    return int(msg["ok"])


# -- import --------------------------------------------------------------------------------------
class _IterStream:
    """A read()-able view of an iterator of byte chunks (an HTTP body)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._it = chunks
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            try:
                chunk = next(self._it)
            except StopIteration:
                break
            if chunk:
                self._buf += chunk
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def close(self) -> None:
        pass


def open_source(source: str, stdin: BinaryIO | None = None) -> tuple[BinaryIO, str]:
    """The bytes to import: `-` (stdin), an http(s) URL, or a file. Returns (stream, label)."""
    if source == "-":
        return (stdin or sys.stdin.buffer), "-"
    if source.startswith(("http://", "https://")):
        import requests

        try:
            resp = requests.get(source, stream=True, timeout=(15, 120))
        except requests.RequestException as e:
            raise ExportError(f"import {source}: {e}") from None
        if resp.status_code != 200:
            resp.close()
            raise ExportError(f"import {source}: the server answered {resp.status_code} {resp.reason}")
        return _IterStream(resp.iter_content(CHUNK)), source  # type: ignore[return-value]
    try:
        return open(source, "rb"), source
    except OSError as e:
        raise ExportError(f"open {source}: {(e.strerror or str(e)).lower()}") from None


def _sniff(head: bytes) -> str:
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:3] == b"BZh":
        return "bzip2"
    return "none"


def plain_chunks(stream: BinaryIO) -> Iterator[bytes]:
    """The uncompressed bytes of `stream`, whatever its compression."""
    head = b""
    while len(head) < 6:
        more = stream.read(6 - len(head))
        if not more:
            break
        head += more
    kind = _sniff(head)
    try:
        if kind == "zstd":
            import zstandard

            reader = zstandard.ZstdDecompressor().stream_reader(_Prefixed(head, stream), read_across_frames=True)
            while True:
                out = reader.read(CHUNK)
                if not out:
                    return
                yield out
        dec = None
        if kind == "gzip":
            dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif kind == "xz":
            dec = lzma.LZMADecompressor()
        elif kind == "bzip2":
            dec = bz2.BZ2Decompressor()
        data = head
        while True:
            if dec is None:
                if data:
                    yield data
            else:
                while data:
                    out = dec.decompress(data)
                    if out:
                        yield out
                    if dec.eof:
                        rest = dec.unused_data
                        if kind == "gzip" and rest.strip(b"\x00"):
                            dec = zlib.decompressobj(16 + zlib.MAX_WBITS)  # another member
                            data = rest
                            continue
                        data = b""
                        break
                    data = b""
            data = stream.read(CHUNK)
            if not data:
                if dec is not None and not dec.eof:
                    raise ExportError(f"truncated {kind} data: unexpected end of input")
                return
            if dec is not None and dec.eof:
                if data.strip(b"\x00"):
                    if kind != "gzip":
                        return  # trailing bytes after the stream: ignored, as tar does
                    dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
                else:
                    data = b""
    except (zlib.error, lzma.LZMAError, OSError, EOFError) as e:
        raise ExportError(f"corrupt {kind} data: {e}") from None
    except Exception as e:
        if type(e).__name__ == "ZstdError":
            raise ExportError(f"corrupt zstd data: {e}") from None
        raise


class _Prefixed:
    """`head` followed by the rest of `stream` (for zstandard's reader)."""

    def __init__(self, head: bytes, stream: BinaryIO):
        self.head, self.stream = head, stream

    def read(self, n: int = -1) -> bytes:
        if self.head:
            out = self.head if n < 0 else self.head[:n]
            self.head = self.head[len(out):]
            return out
        return self.stream.read(n)


def import_image(store: Store, source: str, reference: str | None = None, *, changes: list[str] | tuple = (),
                 message: str = "", platform: str | None = None, stdin: BinaryIO | None = None) -> NewImage:
    """docker import: the tarball at `source` as a one-layer image, named `reference` if given."""
    from nerdpy.engine.system.events import record_event
    from nerdpy.engine.distribution.manifest import OCI_MANIFEST
    from nerdpy.engine.distribution.platforms import host_platform, parse_platform

    name = normalise_target(reference)
    plat = parse_platform(platform) if platform else host_platform()
    cfg = apply_changes({}, changes)
    stream, label = open_source(source, stdin)
    try:
        with store.gc_lock(exclusive=False):
            layer = LayerWriter(store)
            try:
                for chunk in plain_chunks(stream):
                    layer.write(chunk)
                if layer.plain_size == 0:
                    raise ExportError(f"import {label}: the input is empty")
                layer.finish()
                now = now_rfc3339()
                config: dict = {"created": now, "architecture": plat.architecture, "os": plat.os}
                if plat.variant:
                    config["variant"] = plat.variant
                config["config"] = cfg
                comment = message or f"Imported from {label}"
                config["comment"] = comment
                config["history"] = [{"created": now, "comment": comment}]
                try:
                    result = store_layer_image(store, BaseImage(OCI_MANIFEST, [], []), layer, config, name)
                except LayerError as e:
                    raise ExportError(f"import {label}: {e}") from None
            finally:
                layer.discard()
    finally:
        if stream is not stdin and stream is not sys.stdin.buffer:
            try:
                stream.close()
            except Exception:
                pass
    record_event(store, "image", "import", result.image_id, {"name": name or result.image_id})
    return result
