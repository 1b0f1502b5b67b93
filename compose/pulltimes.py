"""`pull_policy: daily | weekly | every_<duration>` (docker compose's): an image is pulled again
once that long has passed since compose last pulled it. The last pull time of each image is
kept per namespace in `<data-root>/compose/<namespace>/pull-times.json` (written atomically); an
image with no recorded pull is pulled."""
from __future__ import annotations

import json
import os
import re
import threading
import time

_LOCK = threading.Lock()
_EVERY = re.compile(r"^every_(([0-9]+[wdhms])+)$")


def pull_interval(policy: str) -> float | None:
    """Seconds between pulls for a timed policy; None for the others (always, missing...)."""
    if policy == "daily":
        return 86400.0
    if policy == "weekly":
        return 7 * 86400.0
    mt = _EVERY.match(policy or "")
    if not mt:
        return None
    from compose.units import parse_duration

    return parse_duration(mt.group(1))


def _path(store) -> str:
    return os.path.join(store.data_root, "compose", store.namespace, "pull-times.json")


def _read(store) -> dict:
    try:
        with open(_path(store)) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def last_pull(store, image: str) -> float | None:
    v = _read(store).get(image)
    return float(v) if isinstance(v, (int, float)) else None


def record_pull(store, image: str, when: float | None = None) -> None:
    from nerdpy.engine.util.fs import write_json_atomic

    with _LOCK:
        data = _read(store)
        data[image] = time.time() if when is None else when
        os.makedirs(os.path.dirname(_path(store)), exist_ok=True)
        write_json_atomic(_path(store), data)


def due(store, image: str, policy: str, have: bool) -> bool:
    """Whether a timed policy asks for a pull now."""
    interval = pull_interval(policy)
    if interval is None:
        return not have
    last = last_pull(store, image)
    return not have or last is None or time.time() - last >= interval
