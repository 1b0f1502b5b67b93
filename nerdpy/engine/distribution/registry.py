"""The registry client: the distribution API v2 over requests.

Endpoints come from `hosts.resolve_hosts` (mirrors first). Authentication follows the
`WWW-Authenticate` challenge (answered by distribution.auth), with credentials from the
docker config. Redirects are followed by hand so credentials never go to another host. Blob
downloads stream into a content-store writer and resume with Range after 5xx or dropped
connections; foreign-layer `urls` are never fetched.
"""
from __future__ import annotations

import os
import re
import threading
import time
from typing import Callable
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from nerdpy.engine.distribution.auth import CredentialsRefused, answer_challenge
from nerdpy.engine.distribution.auth import short_error as _short
from nerdpy.engine.distribution.credentials import Credentials, get_credentials
from nerdpy.engine.errors import AuthError, DigestMismatch, ManifestError, ManifestNotFound, NotFound, RegistryError  # noqa: F401
from nerdpy.engine.distribution.hosts import RegistryHost, requests_cert, resolve_hosts
from nerdpy.engine.distribution.manifest import ACCEPT, MAX_MANIFEST_BYTES, Descriptor, parse_manifest
from nerdpy.engine.distribution.reference import Reference

# small reads: a dropped connection loses at most one chunk, the rest resumes with Range
CHUNK = 64 << 10


def _read_timeout() -> float:
    """Seconds without a byte from the registry before a request fails (and a blob download is
    retried): 60, or NERDPY_REGISTRY_TIMEOUT (tests use short ones)."""
    try:
        t = float(os.environ.get("NERDPY_REGISTRY_TIMEOUT", ""))
    except ValueError:
        return 60.0
    return t if t > 0 else 60.0


TIMEOUT = (10, _read_timeout())
RETRIES = 5
MANIFEST_RETRIES = 3
USER_AGENT = "nerdpy/0.1"


# skip_verify is asked for explicitly (--insecure-registry, hosts.toml): no warning per request
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)




class RegistryClient:
    def __init__(self, hosts_dirs: list[str] = (), insecure: list[str] = (), docker_config: str | None = None):
        self.hosts_dirs = list(hosts_dirs)
        self.insecure = list(insecure)
        self.docker_config = docker_config
        self._local = threading.local()
        self._bearer: dict[tuple[str, str], str] = {}   # (auth host, scope) -> Authorization
        self._basic: dict[str, str] = {}                  # auth host -> Authorization
        self._scheme: dict[str, str] = {}      # host url -> working scheme url (after fallback)
        self._creds: dict[str, Credentials | None] = {}
        self._lock = threading.Lock()

    # plumbing --------------------------------------------------------------------------
    @property
    def session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.headers["User-Agent"] = USER_AGENT
            s.trust_env = False
            self._local.session = s
        return s

    def _credentials(self, registry: str) -> Credentials | None:
        if registry not in self._creds:
            self._creds[registry] = get_credentials(registry, self.docker_config)
        return self._creds[registry]

    def _hosts(self, ref: Reference, capability: str) -> list[RegistryHost]:
        hosts = [h for h in resolve_hosts(ref.domain, self.hosts_dirs, self.insecure) if capability in h.capabilities]
        if not hosts:
            raise RegistryError(f"no endpoint of {ref.domain} offers {capability}")
        return hosts

    def _url(self, host: RegistryHost, ref: Reference, tail: str) -> str:
        base = self._scheme.get(host.url, host.url)
        prefix = "" if host.override_path else "/v2"
        return f"{base}{prefix}/{ref.path}/{tail}"

    def _verify(self, host: RegistryHost):
        if host.skip_verify:
            return False
        if host.ca:
            return host.ca[0]
        return True

    def _request(self, method: str, host: RegistryHost, ref: Reference, tail: str, scope_action: str = "pull",
                 headers: dict | None = None, stream: bool = False, *, url: str | None = None, data=None,
                 scope: str | None = None) -> requests.Response:
        """One request with auth, scheme fallback and hand-followed redirects. `url` (an upload
        location) replaces the one built from `tail`; `scope` (space-separated scopes) the
        one built from `scope_action`; `data` must be re-iterable (it is sent again after a 401)."""
        url = url or self._url(host, ref, tail)
        hdrs = dict(host.headers)
        hdrs.update(headers or {})
        scope = scope or f"repository:{ref.path}:{scope_action}"
        verb = "push" if "push" in scope_action else "pull"
        auth_host = urlsplit(url).netloc
        tried_auth = False
        for _ in range(3):
            h = dict(hdrs)
            authorization = self._bearer.get((auth_host, scope)) or self._basic.get(auth_host)
            if authorization:
                h["Authorization"] = authorization
            resp = self._send(method, url, h, host, stream, data)
            if resp.status_code == 401 and not tried_auth:
                tried_auth = True
                challenge = resp.headers.get("WWW-Authenticate", "")
                resp.close()
                self._authenticate(ref, auth_host, scope, challenge, host)
                continue
            if resp.status_code == 401:
                resp.close()
                creds = self._credentials(ref.domain)
                if creds is None:
                    raise AuthError(f"{verb} access denied for {ref.name}: authentication required "
                                    f"(run nerdpy login {ref.domain})")
                raise AuthError(f"unauthorized: incorrect username or password for {ref.domain}")
            return resp
        raise AuthError(f"authentication with {ref.domain} failed")

    def _send(self, method: str, url: str, headers: dict, host: RegistryHost, stream: bool,
              data=None) -> requests.Response:
        origin = urlsplit(url).netloc
        for _hop in range(10):
            try:
                resp = self.session.request(method, url, headers=headers, stream=stream, timeout=TIMEOUT, data=data,
                                            allow_redirects=False, verify=self._verify(host),
                                            cert=requests_cert(host.client))
            except requests.exceptions.SSLError as e:
                # like containerd's HTTPFallback: plain HTTP only when the server does not speak
                # TLS at all, never because its certificate failed verification
                if host.plain_http_fallback and url.startswith("https://") and _not_tls(e):
                    http = "http://" + url[len("https://"):]
                    self._scheme[host.url] = "http://" + host.url.split("://", 1)[1]
                    url = http
                    continue
                raise RegistryError(_tls_message(origin, e)) from None
            except requests.exceptions.ConnectionError as e:
                if host.plain_http_fallback and url.startswith("https://"):
                    self._scheme[host.url] = "http://" + host.url.split("://", 1)[1]
                    url = "http://" + url[len("https://"):]
                    continue
                raise RegistryError(f"cannot reach registry {origin}: {_short(e)}") from None
            except requests.exceptions.Timeout:
                raise RegistryError(f"registry {origin} timed out") from None
            except requests.exceptions.RequestException as e:
                raise RegistryError(f"request to {origin} failed: {_short(e)}") from None
            if resp.status_code in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                target = urljoin(url, resp.headers["Location"])
                resp.close()
                if urlsplit(target).netloc != urlsplit(url).netloc:
                    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                if target == url:
                    raise RegistryError(f"redirect loop at {url}")
                url = target
                if resp.status_code == 303:
                    method = "GET"
                continue
            return resp
        raise RegistryError(f"too many redirects from {origin}")

    def _authenticate(self, ref: Reference, auth_host: str, scope: str, challenge: str, host: RegistryHost) -> None:
        creds = self._credentials(ref.domain)
        try:
            answer = answer_challenge(self.session, challenge, creds, registry=ref.domain, scopes=scope.split(" "),
                                      verify=self._verify(host), timeout=TIMEOUT)
        except CredentialsRefused:
            if creds is None:
                verb = "push" if f"{ref.path}:pull,push" in scope else "pull"
                raise AuthError(f"{verb} access denied for {ref.name}: authentication required "
                                f"(run nerdpy login {ref.domain})") from None
            raise AuthError(f"unauthorized: incorrect username or password for {ref.domain}") from None
        if answer.scheme == "basic":
            self._basic[auth_host] = answer.authorization
        else:
            self._bearer[(auth_host, scope)] = answer.authorization

    # manifests -------------------------------------------------------------------------
    def resolve(self, ref: Reference) -> tuple[Descriptor, bytes]:
        """Fetch the manifest or index `ref` names; verify and return (descriptor, bytes)."""
        target = ref.digest or ref.tag or "latest"
        last: Exception | None = None
        for host in self._hosts(ref, "resolve"):
            try:
                data, ct, header_digest = self._get_manifest(host, ref, target)
            except (RegistryError, NotFound) as e:
                last = e
                continue
            return self._descriptor(ref, data, ct, header_digest), data
        assert last is not None
        raise last

    def fetch_manifest(self, ref: Reference, desc: Descriptor) -> bytes:
        last: Exception | None = None
        for host in self._hosts(ref, "pull"):
            try:
                data, ct, _ = self._get_manifest(host, ref, desc.digest)
            except (RegistryError, NotFound) as e:
                last = e
                continue
            digest = _sha256(data)
            if digest != desc.digest:
                raise DigestMismatch(f"manifest {desc.digest}: registry sent content with digest {digest}")
            parse_manifest(data, ct or desc.media_type)
            return data
        assert last is not None
        raise last

    def _get_manifest(self, host: RegistryHost, ref: Reference, target: str) -> tuple[bytes, str, str | None]:
        """GET a manifest; a 5xx/429 answer or a dropped connection is retried a few times."""
        attempt = 0
        while True:
            try:
                return self._get_manifest_once(host, ref, target)
            except _Retryable as e:
                attempt += 1
                if attempt > MANIFEST_RETRIES:
                    raise RegistryError(str(e)) from None
                time.sleep(min(0.2 * 2 ** (attempt - 1), 2.0))

    def _get_manifest_once(self, host: RegistryHost, ref: Reference, target: str) -> tuple[bytes, str, str | None]:
        resp = self._request("GET", host, ref, f"manifests/{target}", headers={"Accept": ACCEPT}, stream=True)
        try:
            if resp.status_code == 404:
                raise ManifestNotFound(f"manifest unknown: {ref} not found in {ref.domain}")
            if resp.status_code == 429 or resp.status_code >= 500:
                raise _Retryable(f"registry {ref.domain} answered {resp.status_code} for {ref}: {_error_text(resp)}")
            if resp.status_code != 200:
                raise RegistryError(f"registry {ref.domain} answered {resp.status_code} for {ref}: {_error_text(resp)}")
            data = b""
            for chunk in resp.iter_content(65536):
                data += chunk
                if len(data) > MAX_MANIFEST_BYTES:
                    raise ManifestError(f"manifest for {ref} is larger than {MAX_MANIFEST_BYTES} bytes")
            return data, resp.headers.get("Content-Type", ""), resp.headers.get("Docker-Content-Digest")
        except requests.exceptions.RequestException as e:
            raise _Retryable(f"reading the manifest of {ref} failed: {_short(e)}") from None
        finally:
            resp.close()

    def _descriptor(self, ref: Reference, data: bytes, ct: str, header_digest: str | None) -> Descriptor:
        doc = parse_manifest(data, ct)
        digest = _sha256(data)
        if ref.digest and digest != ref.digest:
            raise DigestMismatch(f"manifest digest mismatch for {ref}: got {digest}")
        if ref.digest and header_digest and header_digest != ref.digest:
            raise DigestMismatch(f"registry reported digest {header_digest} for {ref}")
        return Descriptor(doc.media_type, digest, len(data))

    # blobs -----------------------------------------------------------------------------
    def fetch_blob(self, ref: Reference, desc: Descriptor, writer, on_progress: Callable[[int], None] | None = None) -> None:
        """Stream a blob into `writer` (write, offset, reset); resume with Range on failures."""
        hosts = self._hosts(ref, "pull")
        attempt = 0
        host_i = 0
        while True:
            host = hosts[host_i]
            try:
                self._fetch_once(host, ref, desc, writer, on_progress)
                return
            except NotFound:
                if host_i + 1 < len(hosts):
                    host_i += 1
                    continue
                raise
            except _Retryable as e:
                attempt += 1
                if attempt > RETRIES:
                    raise RegistryError(f"downloading {desc.digest[:19]} failed: {e}") from None
                time.sleep(min(0.2 * 2 ** (attempt - 1), 3.0))

    def _fetch_once(self, host, ref, desc, writer, on_progress) -> None:
        # the bytes as stored (no transfer compression): they are hashed and resumed by offset
        headers = {"Accept-Encoding": "identity"}
        if writer.offset:
            headers["Range"] = f"bytes={writer.offset}-"
        try:
            resp = self._request("GET", host, ref, f"blobs/{desc.digest}", headers=headers, stream=True)
        except RegistryError as e:
            raise _Retryable(str(e)) from None
        try:
            if resp.status_code == 404:
                raise NotFound(f"blob {desc.digest} not found in {ref.name}")
            if resp.status_code in (429,) or resp.status_code >= 500:
                raise _Retryable(f"registry answered {resp.status_code}")
            if resp.status_code == 200 and writer.offset:
                writer.reset()
            elif resp.status_code == 416 and writer.offset >= desc.size:
                return
            elif resp.status_code not in (200, 206):
                raise RegistryError(f"registry answered {resp.status_code} for blob {desc.digest}: {_error_text(resp)}")
            chunks = resp.iter_content(CHUNK)
            while True:
                try:
                    chunk = next(chunks, None)
                except (requests.exceptions.RequestException, ConnectionError, OSError) as e:
                    raise _Retryable(f"connection dropped: {_short(e)}") from None
                if chunk is None:
                    break
                if writer.offset + len(chunk) > desc.size:
                    raise DigestMismatch(f"blob {desc.digest} is larger than its descriptor ({desc.size} bytes)")
                writer.write(chunk)   # its errors are the disk's (a full one: ENOSPC), never retried
                if on_progress:
                    on_progress(writer.offset)
            if writer.offset < desc.size:
                raise _Retryable(f"connection closed after {writer.offset} of {desc.size} bytes")
        finally:
            resp.close()

    def exists_blob(self, ref: Reference, digest: str) -> bool:
        host = self._hosts(ref, "pull")[-1]
        resp = self._request("HEAD", host, ref, f"blobs/{digest}")
        resp.close()
        return resp.status_code == 200


    # login ---------------------------------------------------------------------------------
    def check_login(self, registry: str, username: str, password: str) -> str | None:
        """Verify credentials against the registry itself (not a mirror): its `/v2/` with Basic
        auth, or its Bearer token realm. Returns an identity (refresh) token when the token
        server hands one out, else None. Raises AuthError for refused credentials."""
        host = resolve_hosts(registry, self.hosts_dirs, self.insecure)[-1]
        base = self._scheme.get(host.url, host.url)
        url = base + ("/" if host.override_path else "/v2/")
        resp = self._send("GET", url, dict(host.headers), host, False)
        resp.close()
        base = self._scheme.get(host.url, host.url)  # after a plain-HTTP fallback
        url = base + ("/" if host.override_path else "/v2/")
        if resp.status_code == 200:
            return None  # the registry needs no credentials; docker logs in all the same
        if resp.status_code != 401:
            raise RegistryError(f"login to {registry} failed: {url} answered {resp.status_code}")
        refused = AuthError(f"login to {registry} failed: unauthorized: incorrect username or password")
        try:
            answer = answer_challenge(self.session, resp.headers.get("WWW-Authenticate", ""),
                                      Credentials(username, password), registry=registry,
                                      extra={"account": username, "client_id": "nerdpy", "offline_token": "true"},
                                      verify=self._verify(host), timeout=TIMEOUT)
        except CredentialsRefused:
            raise refused from None
        if answer.scheme == "basic":
            h = dict(host.headers)
            h["Authorization"] = answer.authorization
            resp = self._send("GET", url, h, host, False)
            resp.close()
            if resp.status_code in (401, 403):
                raise refused
            if resp.status_code != 200:
                raise RegistryError(f"login to {registry} failed: {url} answered {resp.status_code}")
        return answer.refresh_token


class _Retryable(Exception):
    pass


def _sha256(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


_NOT_TLS = ("wrong version number", "record layer failure", "unknown protocol", "packet length too long",
            "http request", "unexpected eof", "eof occurred")


def _not_tls(e: Exception) -> bool:
    """The TLS handshake failed because the other side speaks plain HTTP (or hung up)."""
    text = str(e).lower()
    if "certificate" in text:
        return False
    return any(k in text for k in _NOT_TLS)


def _tls_message(origin: str, e: Exception) -> str:
    text = str(e)
    m = re.search(r"\[SSL: [A-Z_]+\] ([^(')]+)", text)
    reason = m.group(1).strip() if m else _short(e)
    msg = f"TLS error talking to {origin}: {reason}"
    if "certificate" in text.lower():
        msg += f" (give its CA in a hosts.toml under --hosts-dir, or use --insecure-registry {origin})"
    return msg


def _error_text(resp) -> str:
    try:
        doc = resp.json()
        errs = doc.get("errors") or []
        if errs:
            return "; ".join(f"{e.get('code', '')}: {e.get('message', '')}" for e in errs)
    except ValueError:
        pass
    return resp.reason or ""
