"""Upload primitives of the distribution API v2 (what `push` needs), on top of the registry
client's authenticated requests: blob HEAD, cross-repository mount, monolithic and chunked
uploads, and manifest PUT. One `Uploader` talks to one repository on its first endpoint that
can push, with the token scope `repository:NAME:pull,push`.
"""
from __future__ import annotations

import time
from typing import Callable
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

from nerdpy.engine.errors import AuthError, DigestMismatch, NotFound, RegistryError, UploadRetryable  # noqa: F401
from nerdpy.engine.distribution.reference import Reference

READ = 1 << 20
RETRIES = 3


class BlobBody:
    """A byte range of a file as a request body: re-iterable (a 401 sends it again), with a
    length (so requests sends Content-Length rather than chunked encoding) and progress."""

    def __init__(self, path: str, offset: int, length: int, on_progress: Callable[[int], None] | None = None):
        self.path = path
        self.offset = offset
        self.length = length
        self.on_progress = on_progress

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            left = self.length
            while left > 0:
                chunk = f.read(min(READ, left))
                if not chunk:
                    raise RegistryError(f"{self.path} ended early")
                left -= len(chunk)
                yield chunk
                if self.on_progress:
                    self.on_progress(self.offset + self.length - left)


def _with_query(url: str, extra: dict) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(extra.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _error_text(resp) -> str:
    try:
        doc = resp.json()
        errs = doc.get("errors") or []
        if errs:
            return "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errs)
    except ValueError:
        pass
    return resp.reason or ""


class Uploader:
    def __init__(self, client, ref: Reference):
        self.client = client
        self.ref = ref
        self.host = client._hosts(ref, "push")[0]
        self.scope = f"repository:{ref.path}:pull,push"

    # plumbing --------------------------------------------------------------------------
    def _req(self, method: str, tail: str = "", *, url: str | None = None, headers: dict | None = None,
             data=None, scope: str | None = None) -> requests.Response:
        try:
            resp = self.client._request(method, self.host, self.ref, tail, "pull,push", headers=headers,
                                        url=url, data=data, scope=scope or self.scope)
        except RegistryError as e:
            if isinstance(e, AuthError):
                raise
            msg = str(e)
            if "timed out" in msg or "cannot reach" in msg or "failed" in msg:
                raise UploadRetryable(msg) from None
            raise
        if resp.status_code == 429 or resp.status_code >= 500:
            text = _error_text(resp)
            resp.close()
            raise UploadRetryable(f"registry {self.ref.domain} answered {resp.status_code}: {text}")
        return resp

    def _push_error(self, resp, what: str) -> RegistryError:
        """The typed error for a push request the registry refused (raised by the caller)."""
        text = _error_text(resp)
        resp.close()
        if resp.status_code in (401, 403):
            return AuthError(f"denied: requested access to the resource is denied ({what} in "
                             f"{self.ref.name}: {resp.status_code} {text})")
        if resp.status_code == 404:
            return NotFound(f"{what}: repository {self.ref.name} not found: {text}")
        return RegistryError(f"{what} in {self.ref.name} failed: registry answered {resp.status_code}: {text}")

    def _location(self, resp) -> str:
        loc = resp.headers.get("Location")
        if not loc:
            resp.close()
            raise RegistryError(f"registry {self.ref.domain} started an upload without a Location")
        return urljoin(resp.url, loc)

    # blobs -----------------------------------------------------------------------------
    def blob_size(self, digest: str) -> int | None:
        """HEAD the blob: its size when the repository has it, else None."""
        resp = self._req("HEAD", f"blobs/{digest}")
        resp.close()
        if resp.status_code == 200:
            try:
                return int(resp.headers.get("Content-Length", "-1"))
            except ValueError:
                return -1
        if resp.status_code == 404:
            return None
        raise self._push_error(resp, f"checking blob {digest[:19]}")

    def mount(self, digest: str, source: str) -> tuple[bool, str | None]:
        """Ask the registry to mount `digest` from repository `source` (same registry).
        Returns (True, None) when mounted, else (False, location of the upload the registry
        started instead, if any)."""
        scope = f"{self.scope} repository:{source}:pull"
        resp = self._req("POST", "blobs/uploads/?" + urlencode({"mount": digest, "from": source}), scope=scope)
        if resp.status_code == 201:
            resp.close()
            return True, None
        if resp.status_code == 202:
            loc = self._location(resp)
            resp.close()
            return False, loc
        resp.close()
        return False, None

    def start(self) -> str:
        resp = self._req("POST", "blobs/uploads/")
        if resp.status_code != 202:
            raise self._push_error(resp, "starting an upload")
        loc = self._location(resp)
        resp.close()
        return loc

    def put_whole(self, location: str, digest: str, body) -> None:
        """Monolithic upload: the whole blob in the closing PUT."""
        resp = self._req("PUT", url=_with_query(location, {"digest": digest}), data=body,
                         headers={"Content-Type": "application/octet-stream"})
        self._check_created(resp, digest)

    def patch(self, location: str, body: BlobBody) -> str:
        """Send one chunk (PATCH with Content-Range); returns the location for the next request."""
        end = body.offset + body.length - 1
        resp = self._req("PATCH", url=location, data=body,
                         headers={"Content-Type": "application/octet-stream",
                                  "Content-Range": f"{body.offset}-{end}"})
        if resp.status_code == 416:
            resp.close()
            raise UploadRetryable(f"registry refused chunk {body.offset}-{end} of the upload")
        if resp.status_code != 202:
            raise self._push_error(resp, "uploading a chunk")
        loc = self._location(resp)
        resp.close()
        return loc

    def status(self, location: str) -> tuple[int, str]:
        """How much of an upload the registry holds (GET on the upload: Range 0-N), and the
        location to go on with (it carries the upload's state)."""
        resp = self._req("GET", url=location)
        if resp.status_code != 204:
            resp.close()
            raise UploadRetryable(f"upload status answered {resp.status_code}")
        rng = resp.headers.get("Range", "")
        loc = urljoin(resp.url, resp.headers["Location"]) if resp.headers.get("Location") else location
        resp.close()
        try:
            return int(rng.rsplit("-", 1)[1]) + 1, loc
        except (IndexError, ValueError):
            return 0, loc

    def finish(self, location: str, digest: str) -> None:
        resp = self._req("PUT", url=_with_query(location, {"digest": digest}), data=b"",
                         headers={"Content-Type": "application/octet-stream"})
        self._check_created(resp, digest)

    def _check_created(self, resp, digest: str) -> None:
        if resp.status_code not in (201, 204):
            if resp.status_code == 400 and "DIGEST_INVALID" in _error_text(resp):
                resp.close()
                raise DigestMismatch(f"registry says blob {digest} arrived corrupt")
            raise self._push_error(resp, f"uploading blob {digest[:19]}")
        got = resp.headers.get("Docker-Content-Digest")
        resp.close()
        if got and got != digest:
            raise DigestMismatch(f"registry stored blob {digest} as {got}")

    def upload(self, path: str, digest: str, size: int, *, location: str | None = None, chunk: int,
               threshold: int, on_progress: Callable[[int], None] | None = None) -> None:
        """Upload a blob from `path`: monolithic up to `threshold` bytes, else in chunks of
        `chunk` bytes; dropped connections and 5xx answers are retried, a chunked upload
        resumes from what the registry holds."""
        attempt = 0
        offset = 0
        while True:
            try:
                if location is None:
                    location, offset = self.start(), 0
                if size <= threshold:
                    self.put_whole(location, digest, BlobBody(path, 0, size, on_progress))
                    return
                while offset < size:
                    n = min(chunk, size - offset)
                    location = self.patch(location, BlobBody(path, offset, n, on_progress))
                    offset += n
                self.finish(location, digest)
                return
            except UploadRetryable as e:
                attempt += 1
                if attempt > RETRIES:
                    raise RegistryError(f"uploading {digest[:19]} failed: {e}") from None
                time.sleep(min(0.3 * 2 ** (attempt - 1), 3.0))
                if location is not None and size > threshold:
                    try:
                        offset, location = self.status(location)
                        continue
                    except RegistryError:
                        pass
                location = None

    # manifests -------------------------------------------------------------------------
    def put_manifest(self, reference: str, data: bytes, media_type: str) -> str | None:
        """PUT a manifest or index under a tag or digest; returns the digest the registry reports."""
        attempt = 0
        while True:
            try:
                resp = self._req("PUT", f"manifests/{reference}", data=data, headers={"Content-Type": media_type})
                break
            except UploadRetryable as e:
                attempt += 1
                if attempt > RETRIES:
                    raise RegistryError(f"pushing the manifest {reference} failed: {e}") from None
                time.sleep(min(0.3 * 2 ** (attempt - 1), 3.0))
        if resp.status_code not in (200, 201, 202):
            text = _error_text(resp)
            if resp.status_code == 400:
                resp.close()
                raise RegistryError(f"registry {self.ref.domain} refused the manifest for {self.ref.name}: {text}")
            raise self._push_error(resp, f"pushing the manifest {reference}")
        got = resp.headers.get("Docker-Content-Digest")
        resp.close()
        return got
