"""The event journal: what `system events` shows, without a daemon to stream it.

Commands (and monitors) append one JSON line per event to `<data-root>/events.jsonl`; how a line
is made and written (atomically, with rotation) is journal.py, which the monitor loads alone.
This module records events for the engine's operations and reads them back: filters, times,
following the file across rotations, docker's output shapes.

Each line is docker's events message (`Type`, `Action`, `Actor{ID, Attributes}`, `scope`,
`time`, `timeNano`, and for containers and images the older `status`, `id`, `from`) plus
`namespace`, so that each namespace sees its own events, as with nerdctl.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

from nerdpy.engine.system.journal import ROTATED_SUFFIX, journal_path

if TYPE_CHECKING:  # pragma: no cover
    from nerdpy.engine.store import Store

FILTER_KEYS = ("container", "event", "image", "label", "type", "volume", "network", "scope", "daemon")
TYPES = ("container", "image", "volume", "network", "daemon", "plugin", "node", "service", "secret", "config")


# -- times ---------------------------------------------------------------------------------------
_DURATION = r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)"  # (compiled on first use: re's cache)
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_time_arg(text: str, now: float | None = None) -> float:
    """docker's --since/--until values: a Unix timestamp (`1700000000[.123]`), an RFC 3339 date or
    date-time (`2024-01-02`, `2024-01-02T03:04:05Z`, with or without zone: local time), or a Go
    duration ago (`10m`, `1h30m`)."""
    from nerdpy.engine.errors import InvalidArgument

    s = (text or "").strip()
    now = time.time() if now is None else now
    if not s:
        raise InvalidArgument("empty time value")
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    pos, total = 0, 0.0
    for m in re.finditer(_DURATION, s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    else:
        if pos == len(s) and pos > 0:
            return now - total
    iso = s[:-1] + "+00:00" if s.endswith("Z") else s
    if "." in iso:  # Go writes nanoseconds; Python takes up to microseconds
        head, _, rest = iso.partition(".")
        digits = re.match(r"\d*", rest).group(0)
        iso = head + "." + (digits[:6] or "0") + rest[len(digits):]
    try:
        d = _dt.datetime.fromisoformat(iso)
    except ValueError:
        raise InvalidArgument(f"invalid time value {text!r}: use a Unix timestamp, an RFC 3339 date "
                              "or a duration such as 10m") from None
    if d.tzinfo is None:
        d = d.astimezone()  # local time, as docker takes it
    return d.timestamp()


# -- reading -------------------------------------------------------------------------------------
@dataclass
class EventFilter:
    """docker's `--filter`: values of one key are ORed, different keys ANDed."""

    values: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, items: list[str] | tuple[str, ...]) -> "EventFilter":
        from nerdpy.engine.errors import InvalidArgument

        f = cls()
        for item in items or ():
            key, sep, value = item.partition("=")
            key = key.strip().lower()
            if not sep:
                raise InvalidArgument(f"bad format of filter (expected name=value): {item}")
            if key not in FILTER_KEYS:
                raise InvalidArgument(f"invalid filter '{key}'")
            f.values.setdefault(key, []).append(value)
        return f

    def match(self, ev: dict) -> bool:
        actor = ev.get("Actor") or {}
        attrs = actor.get("Attributes") or {}
        aid = actor.get("ID", "")
        typ = ev.get("Type", "")
        for key, wanted in self.values.items():
            if key == "type":
                ok = typ in wanted
            elif key == "event":
                action = ev.get("Action", "")
                ok = action in wanted or action.split(":", 1)[0] in wanted
            elif key == "container":
                ok = typ == "container" and any(_id_or_name(aid, attrs, w) for w in wanted)
            elif key == "image":
                ok = any(_image_match(ev, w) for w in wanted)
            elif key in ("volume", "network"):
                ok = typ == key and any(_id_or_name(aid, attrs, w) for w in wanted)
            elif key == "label":
                ok = any(_label_match(attrs, w) for w in wanted)
            elif key == "scope":
                ok = ev.get("scope", "local") in wanted
            else:  # daemon: there is none
                ok = typ == "daemon"
            if not ok:
                return False
        return True


def _id_or_name(aid: str, attrs: dict, wanted: str) -> bool:
    w = wanted.lstrip("/")
    return bool(w) and (aid == w or (len(w) >= 3 and aid.startswith(w)) or attrs.get("name") == w
                        or attrs.get("container") == w)


def _image_match(ev: dict, wanted: str) -> bool:
    actor = ev.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    cands = {attrs.get("image", ""), ev.get("from", "")}
    if ev.get("Type") == "image":
        cands |= {actor.get("ID", ""), attrs.get("name", "")}
    cands.discard("")
    forms = {wanted}
    if ":" not in wanted.rsplit("/", 1)[-1] and "@" not in wanted:
        forms.add(wanted + ":latest")
    for c in cands:
        if c in forms or c.rsplit(":", 1)[0] == wanted:
            return True
        if c.startswith("sha256:") and (wanted == c[7:] or (len(wanted) >= 12 and c[7:].startswith(wanted))):
            return True
        # familiar names: docker.io/library/busybox:latest matches busybox
        if c.startswith("docker.io/library/") and c[len("docker.io/library/"):] in forms:
            return True
        if c.startswith("docker.io/") and c[len("docker.io/"):] in forms:
            return True
    return False


def _label_match(attrs: dict, wanted: str) -> bool:
    k, eq, v = wanted.partition("=")
    return k in attrs and (not eq or attrs[k] == v)


def _parse_lines(data: bytes) -> Iterator[dict]:
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            ev = json.loads(raw)
        except ValueError:
            continue  # a torn line (crash mid-write): skipped
        if isinstance(ev, dict) and "timeNano" in ev:
            yield ev


def _wanted(ev: dict, namespace: str | None, since_ns: int | None, until_ns: int | None,
            flt: EventFilter | None) -> bool:
    if namespace is not None and ev.get("namespace", "default") != namespace:
        return False
    t = ev.get("timeNano", 0)
    if since_ns is not None and t < since_ns:
        return False
    if until_ns is not None and t > until_ns:
        return False
    return flt is None or flt.match(ev)


def read_events(store: "Store", since: float | None = None, until: float | None = None,
                filters: EventFilter | list[str] | None = None, all_namespaces: bool = False) -> list[dict]:
    """Events of the journal (the rotated file first) between `since` and `until` (epoch seconds)."""
    return read_journal(store.data_root, None if all_namespaces else store.namespace, since, until, filters)


def read_journal(data_root: str, namespace: str | None, since: float | None = None, until: float | None = None,
                 filters: EventFilter | list[str] | None = None) -> list[dict]:
    flt = filters if isinstance(filters, EventFilter) or filters is None else EventFilter.parse(filters)
    since_ns = None if since is None else int(since * 1e9)
    until_ns = None if until is None else int(until * 1e9)
    path = journal_path(data_root)
    out: list[dict] = []
    for p in (path + ROTATED_SUFFIX, path):
        try:
            with open(p, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        out += [ev for ev in _parse_lines(data) if _wanted(ev, namespace, since_ns, until_ns, flt)]
    out.sort(key=lambda ev: ev.get("timeNano", 0))
    return out


def follow_events(store: "Store", since: float | None = None, until: float | None = None,
                  filters: EventFilter | list[str] | None = None, poll: float = 0.1,
                  stop: Callable[[], bool] | None = None, all_namespaces: bool = False) -> Iterator[dict]:
    """`system events` without a past `--until`: the events since `since` (none when None), then
    new ones as they are appended (the file is tailed; rotation is followed), until `until`
    passes or `stop()` says so."""
    flt = filters if isinstance(filters, EventFilter) or filters is None else EventFilter.parse(filters)
    namespace = None if all_namespaces else store.namespace
    path = journal_path(store.data_root)
    until_ns = None if until is None else int(until * 1e9)
    # open the live file first and note where it ends: what is before is history, what
    # follows is new
    f = None
    ino = None
    try:
        f = open(path, "rb")
        ino = os.fstat(f.fileno()).st_ino
        f.seek(0, os.SEEK_END)
    except FileNotFoundError:
        f = None
    if since is not None:
        end = f.tell() if f is not None else 0
        history = []
        for p, limit in ((path + ROTATED_SUFFIX, None), (path, end)):
            try:
                with open(p, "rb") as h:
                    if p == path and ino is not None and os.fstat(h.fileno()).st_ino != ino:
                        continue
                    data = h.read() if limit is None else h.read(limit)
            except FileNotFoundError:
                continue
            history += [ev for ev in _parse_lines(data)
                        if _wanted(ev, namespace, int(since * 1e9), until_ns, flt)]
        history.sort(key=lambda ev: ev.get("timeNano", 0))
        yield from history
    buf = b""
    try:
        while True:
            if stop is not None and stop():
                return
            if until_ns is not None and time.time_ns() > until_ns:
                return
            if f is None:
                try:
                    f = open(path, "rb")
                    ino = os.fstat(f.fileno()).st_ino
                except FileNotFoundError:
                    time.sleep(poll)
                    continue
            chunk = f.read()
            if chunk:
                buf += chunk
                lines = buf.split(b"\n")
                buf = lines.pop()
                for ev in _parse_lines(b"\n".join(lines)):
                    if _wanted(ev, namespace, None, until_ns, flt):
                        yield ev
                continue
            # nothing new: rotated away? then read the rest of the old file and switch
            try:
                st = os.stat(path)
                rotated = st.st_ino != ino
            except FileNotFoundError:
                rotated = False
            if rotated:
                rest = f.read()
                f.close()
                f = None
                buf += rest
                continue
            time.sleep(poll)
    finally:
        if f is not None:
            f.close()


# -- rendering helpers (no printing here) --------------------------------------------------------
def event_line(ev: dict) -> str:
    """docker's default line: `2024-01-02T03:04:05.123456789+01:00 container create ID (k=v, ...)`."""
    ns = ev.get("timeNano", 0)
    d = _dt.datetime.fromtimestamp(ns // 1_000_000_000).astimezone()
    stamp = d.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000:09d}"
    off = d.strftime("%z")
    stamp += "Z" if off in ("+0000", "") else f"{off[:3]}:{off[3:]}"
    actor = ev.get("Actor") or {}
    line = f"{stamp} {ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}"
    attrs = actor.get("Attributes") or {}
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line


def public_event(ev: dict) -> dict:
    """The message as docker shows it (`{{json .}}`): without our `namespace` key."""
    return {k: v for k, v in ev.items() if k != "namespace"}
