"""Reading a container's json-file log (with its rotated files): tail, since/until, follow."""
from __future__ import annotations

import json
import os
import time
from typing import Callable, Iterator

from nerdpy.engine.containers.records import Container, log_path
from nerdpy.engine.store import Store


def _parse_ts(text: str) -> float:
    import datetime as dt

    s = text.rstrip("Z")
    head, _, frac = s.partition(".")
    try:
        base = dt.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc).timestamp()
    except ValueError:
        return 0.0
    return base + (float("0." + frac) if frac else 0.0)


def _files(path: str) -> list[str]:
    rotated = []
    i = 1
    while os.path.exists(f"{path}.{i}"):
        rotated.append(f"{path}.{i}")
        i += 1
    return list(reversed(rotated)) + ([path] if os.path.exists(path) else [])


def read_logs(store: Store, c: Container, *, tail: int | None = None, since: float | None = None,
              until: float | None = None, follow: bool = False,
              running: Callable[[], bool] = lambda: False) -> Iterator[dict]:
    path = log_path(store, c.id)
    entries: list[bytes] = []
    for f in _files(path):
        with open(f, "rb") as fh:
            entries += fh.read().splitlines()
    offset = os.path.getsize(path) if os.path.exists(path) else 0
    if tail is not None:
        entries = entries[-tail:] if tail > 0 else []
    for raw in entries:
        e = _decode(raw)
        if e is not None and _in_window(e, since, until):
            yield e
    if not follow:
        return
    pending = b""
    while True:
        alive = running()
        try:
            size = os.path.getsize(path)
        except FileNotFoundError:
            size = 0
        if size < offset:  # rotated
            offset = 0
        if size > offset:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
            offset += len(data)
            pending += data
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                e = _decode(raw)
                if e is not None and _in_window(e, since, until):
                    yield e
            continue
        if not alive:
            return
        time.sleep(0.05)


def _decode(raw: bytes) -> dict | None:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _in_window(e: dict, since: float | None, until: float | None) -> bool:
    if since is None and until is None:
        return True
    t = _parse_ts(e.get("time", ""))
    if since is not None and t < since:
        return False
    if until is not None and t > until:
        return False
    return True
