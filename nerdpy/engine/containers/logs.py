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
    """The records of the log and its rotated files, oldest first; with `follow`, then the records
    written from then on, across rotations (the file renamed away is read to its end before the
    new one), until `running` says no more."""
    path = log_path(store, c.id)
    entries: list[bytes] = []
    current = None      # the live file, held open from here on: a rotation renames it away
    pending = b""
    for f in _files(path):
        try:
            fh = open(f, "rb")
        except FileNotFoundError:
            continue
        data = fh.read()
        if f == path:
            current = fh
            cut = data.rfind(b"\n") + 1  # a record being written stays for the follow loop
            data, pending = data[:cut], data[cut:]
        else:
            fh.close()
        entries += data.splitlines()
    if tail is not None:
        entries = entries[-tail:] if tail > 0 else []
    for raw in entries:
        e = _decode(raw)
        if e is not None and _in_window(e, since, until):
            yield e
    if not follow:
        if current is not None:
            current.close()
        return
    try:
        yield from _follow(path, current, pending, since, until, running)
    finally:
        if current is not None:
            current.close()


def _follow(path: str, fh, pending: bytes, since, until, running: Callable[[], bool]) -> Iterator[dict]:
    """The records written from `fh`'s position on (files after a rotation are closed here; the
    last one when the generator goes)."""
    while True:
        alive = running()
        data = fh.read() if fh is not None else b""
        if data:
            pending += data
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                e = _decode(raw)
                if e is not None and _in_window(e, since, until):
                    yield e
            continue
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None and (fh is None or st.st_ino != os.fstat(fh.fileno()).st_ino):
            nxt = path
            if fh is not None:
                # renamed away: the monitor closed it first, so what is left in it is complete
                rest = fh.read()
                nxt = _next_file(path, os.fstat(fh.fileno()).st_ino)
                fh.close()
                for raw in (pending + rest).split(b"\n"):
                    e = _decode(raw)
                    if e is not None and _in_window(e, since, until):
                        yield e
            try:
                fh, pending = open(nxt, "rb"), b""
            except FileNotFoundError:
                fh, pending = None, b""
            continue
        if st is not None and fh is not None and st.st_size < fh.tell():  # truncated in place (max-file 1)
            fh.seek(0)
            pending = b""
            continue
        if not alive:
            return
        time.sleep(0.05)


def _next_file(path: str, ino: int) -> str:
    """The file written after the one with inode `ino` (rotated to `path.N`, or gone): several
    rotations may have happened while we read."""
    rotated = _files(path)[:-1] if os.path.exists(path) else _files(path)
    for i, f in enumerate(rotated):
        try:
            if os.stat(f).st_ino == ino:
                return rotated[i + 1] if i + 1 < len(rotated) else path
        except FileNotFoundError:
            continue
    return rotated[0] if rotated else path  # ours was deleted: the oldest left comes next


def _decode(raw: bytes) -> dict | None:
    if not raw.strip():
        return None
    try:
        e = json.loads(raw)
    except ValueError:
        return None
    dropped = (e.get("attrs") or {}).get("nerdpy.dropped") if isinstance(e, dict) else None
    if dropped:  # the monitor's marker of a gap (a full disk): a warning on stderr, in every reader
        e["log"] = (f"WARNING: {dropped} log lines were dropped between {e['attrs'].get('nerdpy.dropped.since')}"
                    f" and {e.get('time')}: no space left for the log\n")
        e["stream"] = "stderr"
    return e


def _in_window(e: dict, since: float | None, until: float | None) -> bool:
    if since is None and until is None:
        return True
    t = _parse_ts(e.get("time", ""))
    if since is not None and t < since:
        return False
    if until is not None and t > until:
        return False
    return True
