"""Container networking with the standard CNI plugins, without a daemon.

- `networks`: network records (DB table `networks`, global to all namespaces) and the CNI
  conflists generated from them (`<cni_netconfpath>/nerdpy-<name>.conflist`).
- `netns`: named network namespaces under `<run-root>/netns/<namespace>/<container-id>`,
  created with unshare(2) and a bind mount (no `ip` process).
- `cni`: runs plugins as the CNI 1.0.0 spec says (ADD, DEL, CHECK with prevResult chaining).
- `ports`: docker's `-p`/`-P` forms, parsed and allocated into portmap's portMappings.
- `hosts`: /etc/hosts and /etc/resolv.conf for a container.
- `attach`: what the container lifecycle calls: `attach_container`, `detach_container`,
  `reclaim_leaks`.

This module holds only the typed errors, so importing it costs nothing.
"""
from __future__ import annotations

from nerdpy.engine.errors import Conflict, InvalidArgument, NerdpyError, NotFound


class NetworkError(NerdpyError):
    """Setting up or tearing down a container's network failed."""


class CniError(NetworkError):
    """A CNI plugin failed: its error code, message and details as the spec's error result."""

    def __init__(self, plugin: str, command: str, code: int, msg: str, details: str = ""):
        self.plugin = plugin
        self.command = command
        self.code = code
        self.msg = msg
        self.details = details
        text = f"CNI plugin {plugin} ({command}) failed: {msg}"
        if details and details not in msg:
            text += f": {details}"
        super().__init__(text)


class NetworkNotFound(NotFound):
    """No such network."""

    exit_code = 1


class NetworkInUse(Conflict):
    """The network has containers attached (or configured to attach)."""

    exit_code = 1


class NetworkExists(Conflict):
    """A network with that name exists already."""

    exit_code = 1


class PortInUse(Conflict):
    """A host port asked for with -p is taken (by a host process or another container)."""


class InvalidPort(InvalidArgument):
    """A -p/--publish value that does not parse."""
