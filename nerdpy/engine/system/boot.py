"""Restart policies after a reboot. There is no daemon to do it, so a boot-time unit calls
`nerdpy system restart-policies` (see docs/daemonless.md), which lands here.

docker's rules, applied to every namespace's containers that are not running:
- `always`: started;
- `unless-stopped`: started unless a user stopped it (`stop`, `kill`, `rm -f`);
- `on-failure[:N]`: started if it was running when the machine went down (its record says
  running but no monitor is alive), as docker's daemon does at its own start;
- `no`: left alone.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

from nerdpy.engine.containers.records import container_dir, container_state, list_containers
from nerdpy.engine.errors import NerdpyError
from nerdpy.engine.store import Store


@dataclass
class BootResult:
    name: str
    id: str
    error: str = ""        # empty when started


def _recorded_state(store: Store, cid: str) -> dict:
    try:
        with open(os.path.join(container_dir(store, cid), "state.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def should_start_on_boot(policy: str, recorded: dict) -> bool:
    """Whether a container that is not running gets started by the boot-time pass."""
    name = (policy or "no").partition(":")[0]
    interrupted = recorded.get("status") in ("running", "restarting", "paused")
    if name == "always":
        return True
    if name == "unless-stopped":
        return not recorded.get("stopped_by_user", False)
    if name == "on-failure":
        return interrupted
    return False


def restart_on_boot(store: Store) -> list[BootResult]:
    """Start this namespace's containers whose restart policy asks for it; one result each."""
    from nerdpy.engine.containers.lifecycle import start_container

    results = []
    for c in list_containers(store):
        if container_state(store, c).running:
            continue
        if not should_start_on_boot(c.spec.restart or "no", _recorded_state(store, c.id)):
            continue
        try:
            start_container(store, c)
            results.append(BootResult(c.name, c.id))
        except NerdpyError as e:
            results.append(BootResult(c.name, c.id, str(e)))
    return results


def container_namespaces(store: Store) -> list[str]:
    """Every namespace that has containers (the boot pass covers them all)."""
    return [r[0] for r in store.db.query("SELECT DISTINCT namespace FROM containers ORDER BY namespace")]
