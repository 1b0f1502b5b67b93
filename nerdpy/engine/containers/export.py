"""`export` (a container's filesystem as a tar) and `import` (a tar as a one-layer image).

Export reads the container's merged root as the overlay shows it, without its volumes, bind
mounts or the files nerdpy binds over /etc (as docker's export does). The walk runs in a child
confined in the container's own filesystem (engine/containers/confined.py: a private mount
namespace, the overlay mounted there if it is not already, a chroot), so nothing shows in the
host's mount table and no symlink in the container can lead the walk outside it. The tar comes
back over a pipe.

Import takes a tar (plain, gzip, zstd, xz or bzip2) from a file, stdin or an http(s) URL,
recompresses it as a gzip layer while hashing, unpacks it as a snapshot (which checks it: a
corrupt or unsafe archive is refused before anything is named), and records a one-layer image
with `--change`s applied. Errors exit 1 as docker's do.
"""
from __future__ import annotations

import os
import stat
import sys
import tarfile
from typing import BinaryIO, Callable, Iterator

from nerdpy.engine.images.commit import (BaseImage, LayerWriter, NewImage, apply_changes, normalise_target,
                                  now_rfc3339, store_layer_image, tar_entry)
from nerdpy.engine.errors import ExportError, LayerError
from nerdpy.engine.store import Store

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


def _export_error(c) -> Callable[[dict | None, int], ExportError]:
    def error_from(msg: dict | None, _status: int) -> ExportError:
        msg = msg or {}
        text = f"{msg['error']}: {msg['path']}" if msg.get("kind") == "os" and msg.get("path") else msg.get("error")
        return ExportError(f"export {c.name}: {text or 'the export helper failed'}")
    return error_from


def export_container(store: Store, c, out: BinaryIO) -> int:
    """Write the container's filesystem to `out` as a tar; returns the number of entries."""
    from nerdpy.engine.containers.confined import Child, root_plan

    def job(fd: int, _send) -> dict:
        with os.fdopen(fd, "wb", buffering=CHUNK, closefd=False) as f:
            return {"entries": write_tree(f, "/")}

    child = Child(root_plan(store, c, as_seen_inside=False), job, "write", _export_error(c))
    try:
        while True:
            chunk = child.data.read(CHUNK)
            if not chunk:
                break
            out.write(chunk)
        out.flush()
        entries = int(child.finish()["entries"])
        from nerdpy.engine.containers.records import container_event

        container_event(store, c, "export")
        return entries
    finally:
        child.kill()


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


def plain_chunks(stream: BinaryIO) -> Iterator[bytes]:
    """The uncompressed bytes of `stream`, whatever its compression (util.compression)."""
    from nerdpy.engine.util.compression import DecompressError
    from nerdpy.engine.util.compression import plain_chunks as chunks

    try:
        yield from chunks(stream, chunk=CHUNK)
    except DecompressError as e:
        if e.truncated:
            raise ExportError(f"truncated {e.kind} data: unexpected end of input") from None
        raise ExportError(f"corrupt {e.kind} data: {e.detail}") from None
    except OSError as e:
        raise ExportError(f"corrupt data: {e}") from None


def import_image(store: Store, source: str, reference: str | None = None, *, changes: list[str] | tuple = (),
                 message: str = "", platform: str | None = None, stdin: BinaryIO | None = None) -> NewImage:
    """docker import: the tarball at `source` as a one-layer image, named `reference` if given."""
    from nerdpy.engine.system.journal import record_event
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
