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
