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

The typed errors live in nerdpy.engine.errors (importable from here too), so importing this
module costs nothing.
"""
from __future__ import annotations

from nerdpy.engine.errors import (  # noqa: F401 (the network errors, importable from here too)
    CniError, InvalidPort, NetworkError, NetworkExists, NetworkInUse, NetworkNotFound, PortInUse,
)
