"""Writing the event journal, `<data-root>/events.jsonl` (events.py reads, filters and formats it).

One JSON line per event, appended with a single `write(2)` on an `O_APPEND` descriptor; lines are
kept below PIPE_BUF (4096 bytes), so concurrent writers never interleave. When the file passes
`MAX_BYTES` it is renamed to `events.jsonl.1` (replacing the previous one) under `events.lock`;
a writer still holding the old file appends to the rotated copy, which readers read first.

Only the modules a container's monitor has loaded already (fcntl, json, os, time): the monitor
loads this file by path to record its events, and stays small while its container runs.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
TYPE_CHECKING = False  # (not typing's: importing typing would cost the monitor ~0.5 MB)
if TYPE_CHECKING:  # pragma: no cover
    from nerdpy.engine.store import Store

EVENTS_FILE = "events.jsonl"
ROTATED_SUFFIX = ".1"
LOCK_FILE = "events.lock"
MAX_BYTES = 16 << 20
MAX_LINE = 4000            # below PIPE_BUF (4096): one write, never interleaved


def journal_path(data_root: str) -> str:
    return os.path.join(data_root, EVENTS_FILE)


# -- writing -------------------------------------------------------------------------------------
def record_event(store: "Store", type_: str, action: str, actor_id: str, attributes: dict | None = None) -> dict:
    """Record an event of `store`'s namespace, e.g.
    `record_event(store, "container", "create", c.id, {"image": c.image, "name": c.name})`."""
    event = make_event(store.namespace, type_, action, actor_id, attributes)
    append_event(store.data_root, event)
    return event


def record_events(store: "Store", type_: str, actions: list[str], actor_id: str,
                  attributes: dict | None = None) -> None:
    """Record several events of one actor at once (one write), as `record_event` records one."""
    now = time.time_ns()
    append_events(store.data_root, [make_event(store.namespace, type_, action, actor_id, attributes, now + i)
                                    for i, action in enumerate(actions)])


def record_actor_events(store: "Store", type_: str, action: str, actors: list) -> None:
    """Record one action of several actors at once (one write): `actors` is [(actor_id,
    attributes)], e.g. the networks a container joined at its start."""
    now = time.time_ns()
    if actors:
        append_events(store.data_root, [make_event(store.namespace, type_, action, actor_id, attrs, now + i)
                                        for i, (actor_id, attrs) in enumerate(actors)])


def make_event(namespace: str, type_: str, action: str, actor_id: str, attributes: dict | None = None,
               now_ns: int | None = None) -> dict:
    """docker's events.Message as a dict (plus `namespace`)."""
    ns = time.time_ns() if now_ns is None else now_ns
    attrs = {str(k): str(v) for k, v in (attributes or {}).items() if v is not None}
    msg: dict = {}
    if type_ in ("container", "image"):
        msg["status"] = action
        msg["id"] = actor_id
        if type_ == "container" and attrs.get("image"):
            msg["from"] = attrs["image"]
    msg.update({"Type": type_, "Action": action, "Actor": {"ID": actor_id, "Attributes": attrs},
                "scope": "local", "time": ns // 1_000_000_000, "timeNano": ns, "namespace": namespace})
    return msg


def _encode(event: dict) -> bytes:
    line = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    if len(line) <= MAX_LINE:
        return line
    # too long for one atomic write: shorten the attribute values, longest first
    ev = json.loads(line)
    attrs = ev["Actor"]["Attributes"]
    while len(line) > MAX_LINE and attrs:
        key = max(attrs, key=lambda k: len(attrs[k]))
        if len(attrs[key]) <= 16:
            del attrs[key]
        else:
            attrs[key] = attrs[key][: max(16, len(attrs[key]) - (len(line) - MAX_LINE) - 3)] + "..."
        line = json.dumps(ev, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    return line


def append_event(data_root: str, event: dict, max_bytes: int = MAX_BYTES) -> None:
    """Append one event line (one write on an O_APPEND descriptor), rotating when too large.
    Never raises: a journal that cannot be written must not fail the command that acted."""
    append_events(data_root, [event], max_bytes)


def append_events(data_root: str, events: list[dict], max_bytes: int = MAX_BYTES) -> None:
    """Append event lines with one write while they fit in MAX_LINE together (else one write
    each), as `append_event` does one."""
    path = journal_path(data_root)
    try:
        line = b"".join(_encode(event) for event in events)
        if len(line) > MAX_LINE and len(events) > 1:
            for event in events:
                append_events(data_root, [event], max_bytes)
            return
        try:
            if os.stat(path).st_size + len(line) > max_bytes:
                _rotate(data_root, max_bytes - len(line))
        except FileNotFoundError:
            pass
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except (OSError, ValueError, TypeError):
        pass


def _rotate(data_root: str, limit: int) -> None:
    """Rename the journal aside if it is still larger than `limit` once we hold the lock."""
    path = journal_path(data_root)
    fd = os.open(os.path.join(data_root, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:  # (the monitor loads this module alone: stdlib only there)
            from nerdpy.engine.util.locks import flock_wait
        except ImportError:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            flock_wait(fd, fcntl.LOCK_EX, "the events journal's lock")
        try:
            if os.stat(path).st_size <= limit:
                return  # another writer rotated it meanwhile
        except FileNotFoundError:
            return
        os.rename(path, path + ROTATED_SUFFIX)
    finally:
        os.close(fd)
