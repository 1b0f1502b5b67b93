"""`login` and `logout`: check credentials against a registry, then store or erase them in the
docker config (or its credential helper), as docker does. Docker Hub's key is
`https://index.docker.io/v1/`; every other server is stored under its host[:port]."""
from __future__ import annotations

import re
from dataclasses import dataclass

from nerdpy.engine.distribution.credentials import DOCKER_HUB_KEY, Credentials, config_path, erase_credentials, get_credentials, store_credentials
from nerdpy.engine.errors import InvalidArgument

_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                   r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


@dataclass(frozen=True)
class LoginResult:
    server: str            # the key the credentials are stored under
    helper: str | None     # credential helper used, None when stored in the file
    config: str            # the config file


def normalise_server(server: str | None) -> tuple[str, str]:
    """`[SERVER]` as given to login/logout -> (registry host for the API, key in the config)."""
    if not server:
        return "docker.io", DOCKER_HUB_KEY
    s = server.strip()
    for prefix in ("https://", "http://"):
        if s.lower().startswith(prefix):
            s = s[len(prefix):]
    host = s.split("/", 1)[0]
    if not host or not _HOST.match(host):
        raise InvalidArgument(f"invalid registry address {server!r}")
    if host.lower() in _HUB_HOSTS:
        return "docker.io", DOCKER_HUB_KEY
    return host, host


def stored_credentials(server: str | None, config_file: str | None = None) -> Credentials | None:
    registry, _ = normalise_server(server)
    return get_credentials(registry, config_file)


def login(client, server: str | None, username: str, password: str, config_file: str | None = None) -> LoginResult:
    """Verify the credentials with the registry (Basic, or its token realm), then store them.
    Nothing is stored when the registry refuses them."""
    if not username:
        raise InvalidArgument("username is empty")
    if not password:
        raise InvalidArgument("password is empty")
    registry, key = normalise_server(server)
    identity_token = client.check_login(registry, username, password)
    helper = store_credentials(key, username, password, identity_token, config_file)
    return LoginResult(server=key, helper=helper, config=config_path(config_file))


def check_stored(client, server: str | None, config_file: str | None = None) -> bool:
    """Whether the stored credentials for `server` still log in (docker's "Authenticating with
    existing credentials")."""
    creds = stored_credentials(server, config_file)
    if creds is None or not creds.username or not creds.password:
        return False
    registry, _ = normalise_server(server)
    try:
        client.check_login(registry, creds.username, creds.password)
    except Exception:
        return False
    return True


def logout(server: str | None, config_file: str | None = None) -> tuple[str, bool, str | None]:
    """Erase the stored credentials: (key, whether there were any, a warning or None)."""
    _, key = normalise_server(server)
    found, warning = erase_credentials(key, config_file)
    return key, found, warning
