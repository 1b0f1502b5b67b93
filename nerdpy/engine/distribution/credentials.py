"""Registry credentials from the docker config (`~/.docker/config.json` or `$DOCKER_CONFIG`):
`auths` entries, `credHelpers` and `credsStore` (`docker-credential-<x> get`, the server on
stdin, never in argv)."""
from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass

from nerdpy.engine.errors import AuthError

DOCKER_HUB_KEY = "https://index.docker.io/v1/"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    identity_token: str | None = None


def config_path(explicit: str | None = None) -> str:
    if explicit:
        return explicit
    d = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(d, "config.json")


def load_config(path: str | None = None) -> dict:
    try:
        with open(config_path(path)) as f:
            doc = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise AuthError(f"cannot read {config_path(path)}: {e}") from None
    return doc if isinstance(doc, dict) else {}


def server_key(registry: str) -> str:
    return DOCKER_HUB_KEY if registry in ("docker.io", "index.docker.io", "registry-1.docker.io") else registry


def _normalise_key(key: str) -> str:
    k = key
    for prefix in ("https://", "http://"):
        if k.startswith(prefix):
            k = k[len(prefix):]
    k = k.split("/", 1)[0]
    if k in ("index.docker.io", "registry-1.docker.io"):
        k = "docker.io"
    return k


def _helper_get(helper: str, server: str) -> Credentials | None:
    try:
        r = subprocess.run([f"docker-credential-{helper}", "get"], input=server.encode(),
                           capture_output=True, timeout=30)
    except FileNotFoundError:
        raise AuthError(f"credential helper docker-credential-{helper} not found") from None
    except subprocess.TimeoutExpired:
        raise AuthError(f"credential helper docker-credential-{helper} timed out") from None
    if r.returncode != 0:
        return None  # "credentials not found in native keychain"
    try:
        doc = json.loads(r.stdout)
    except ValueError:
        raise AuthError(f"credential helper docker-credential-{helper} returned invalid JSON") from None
    user, secret = doc.get("Username", ""), doc.get("Secret", "")
    if user == "<token>":
        return Credentials("", "", identity_token=secret)
    return Credentials(user, secret)


def get_credentials(registry: str, config_file: str | None = None) -> Credentials | None:
    doc = load_config(config_file)
    want = _normalise_key(server_key(registry))
    helpers = doc.get("credHelpers") or {}
    for key, helper in helpers.items():
        if _normalise_key(key) == want:
            return _helper_get(helper, server_key(registry))
    auths = doc.get("auths") or {}
    entry = None
    for key, value in auths.items():
        if _normalise_key(key) == want and isinstance(value, dict):
            entry = value
            break
    if entry:
        if entry.get("identitytoken"):
            return Credentials(entry.get("username", ""), "", identity_token=entry["identitytoken"])
        if entry.get("auth"):
            try:
                user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise AuthError(f"invalid auth entry for {registry} in the docker config") from None
            return Credentials(user, pw)
        if entry.get("username"):
            return Credentials(entry["username"], entry.get("password", ""))
    if doc.get("credsStore"):
        return _helper_get(doc["credsStore"], server_key(registry))
    return None


# writing: login and logout ---------------------------------------------------------------------
def save_config(doc: dict, path: str | None = None) -> str:
    """Write the docker config atomically with mode 0600 (a temp file in the same directory,
    fsynced, renamed over the old one; a symlinked config.json is written where it points)."""
    target = os.path.realpath(config_path(path))
    d = os.path.dirname(target)
    from nerdpy.engine.util.fs import write_atomic

    try:
        os.makedirs(d, mode=0o700, exist_ok=True)
        write_atomic(target, json.dumps(doc, indent="\t") + "\n", 0o600, fsync=True)
    except OSError as e:
        raise AuthError(f"cannot write {target}: {e.strerror or e}") from None
    return target


def helper_for(doc: dict, key: str) -> str | None:
    """The credential helper that holds `key`'s credentials: credHelpers first, then credsStore."""
    want = _normalise_key(key)
    for k, helper in (doc.get("credHelpers") or {}).items():
        if _normalise_key(k) == want and helper:
            return helper
    return doc.get("credsStore") or None


def _helper_run(helper: str, action: str, payload: bytes, secret: str = "") -> subprocess.CompletedProcess:
    """Run `docker-credential-<helper> <action>` with `payload` on stdin (secrets never in argv);
    errors are reported without the secret."""
    try:
        r = subprocess.run([f"docker-credential-{helper}", action], input=payload, capture_output=True, timeout=60)
    except FileNotFoundError:
        raise AuthError(f"credential helper docker-credential-{helper} not found") from None
    except subprocess.TimeoutExpired:
        raise AuthError(f"credential helper docker-credential-{helper} timed out") from None
    if r.returncode != 0:
        text = (r.stdout or r.stderr or b"").decode(errors="replace").strip().splitlines()
        msg = text[0][:200] if text else f"exit status {r.returncode}"
        if secret:
            msg = msg.replace(secret, "********")
        raise AuthError(f"docker-credential-{helper} {action} failed: {msg}")
    return r


def store_credentials(key: str, username: str, password: str, identity_token: str | None = None,
                      config_file: str | None = None) -> str | None:
    """Store credentials for server `key` (a host[:port], or docker Hub's URL): in the credential
    helper the config names for it (JSON on its stdin), else base64 in `auths`. Returns the
    helper's name, or None when stored in the file."""
    doc = load_config(config_file)
    helper = helper_for(doc, key)
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        auths = {}
    # drop other spellings of the same server (https://host/, host/v2/...)
    for k in [k for k in auths if k != key and _normalise_key(k) == _normalise_key(key)]:
        del auths[k]
    if helper:
        user, secret = ("<token>", identity_token) if identity_token else (username, password)
        payload = json.dumps({"ServerURL": key, "Username": user, "Secret": secret}).encode()
        _helper_run(helper, "store", payload, secret)
        auths[key] = {}
    else:
        entry = {"auth": base64.b64encode(f"{username}:{'' if identity_token else password}".encode()).decode()}
        if identity_token:
            entry["identitytoken"] = identity_token
        auths[key] = entry
    doc["auths"] = auths
    save_config(doc, config_file)
    return helper


def erase_credentials(key: str, config_file: str | None = None) -> tuple[bool, str | None]:
    """Forget the credentials of server `key`. Returns (whether any were stored, a warning when
    the helper could not erase them)."""
    doc = load_config(config_file)
    want = _normalise_key(key)
    auths = doc.get("auths") if isinstance(doc.get("auths"), dict) else {}
    keys = [k for k in auths if _normalise_key(k) == want]
    helper = helper_for(doc, key)
    found = bool(keys)
    warning = None
    if helper:
        try:
            if _helper_get(helper, key) is not None:
                found = True
            _helper_run(helper, "erase", key.encode())
        except AuthError as e:
            warning = f"could not erase credentials: {e}"
    if not found:
        return False, warning
    for k in keys:
        del auths[k]
    if keys:
        doc["auths"] = auths
        save_config(doc, config_file)
    return True, warning
