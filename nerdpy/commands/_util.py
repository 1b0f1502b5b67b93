"""Small helpers shared by command modules: human-readable sizes and times, store access."""
from __future__ import annotations

import datetime as _dt
import time

import click


def store_of(ctx: click.Context):
    return ctx.find_root().obj.store()


def settings_of(ctx: click.Context):
    return ctx.find_root().obj.settings


def human_size(n: float) -> str:
    """docker's units.HumanSize: decimal units, 3 significant digits ("4.26MB")."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    return f"{n:.4g}{units[i]}"


def bytes_size(n: float) -> str:
    """docker's units.BytesSize: binary units, 4 significant digits ("1.5MiB")."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n /= 1024.0
        i += 1
    return f"{n:.4g}{units[i]}"


def parse_time(value: str | None) -> float | None:
    """RFC 3339 (with nanoseconds, as Go writes them) -> epoch seconds."""
    if not value:
        return None
    s = value.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    if "." in s:
        head, _, rest = s.partition(".")
        frac = ""
        i = 0
        while i < len(rest) and rest[i].isdigit():
            frac += rest[i]
            i += 1
        s = head + "." + (frac[:6] or "0") + rest[i:]
    try:
        return _dt.datetime.fromisoformat(s).timestamp()
    except ValueError:
        return None


def rfc3339(ts: float | None) -> str:
    if ts is None:
        return ""
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def local_time(ts: float | None) -> str:
    """docker's CreatedAt: '2024-01-02 15:04:05 +0000 UTC'."""
    if ts is None:
        return ""
    d = _dt.datetime.fromtimestamp(ts).astimezone()
    return d.strftime("%Y-%m-%d %H:%M:%S %z ") + (d.tzname() or "")


def human_duration(seconds: float) -> str:
    """docker's units.HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = round(s / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 7 * 2:
        return f"{h // 24} days"
    if h < 24 * 30 * 2:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 365 * 2:
        return f"{h // 24 // 30} months"
    return f"{h // 24 // 365} years"


def since(ts: float | None) -> str:
    if ts is None:
        return "N/A"
    return human_duration(time.time() - ts) + " ago"


def print_inspect(results: list, fmt: str | None) -> None:
    """docker's inspect output: a JSON array, or each object through a `-f` template."""
    import json
    import sys

    if fmt:
        from nerdpy.template import render

        tmpl = fmt.replace("\\t", "\t").replace("\\n", "\n")
        if tmpl.strip() == "json":
            tmpl = "{{json .}}"
        for r in results:
            sys.stdout.write(render(tmpl, r) + "\n")
    else:
        sys.stdout.write(json.dumps(results, indent=4) + "\n")
