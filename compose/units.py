"""Parsing of the scalar forms compose files use: Go durations, byte sizes, booleans."""
from __future__ import annotations


def parse_duration(value) -> float:
    """A Go duration ("1m30s", "1.5s", "500ms", also "1d"/"1w" as compose accepts) -> seconds.

    Plain numbers (int/float from YAML) are taken as seconds. A string without a unit is an
    error, as in Go ("missing unit in duration")."""
    from nerdpy.engine.util.units import parse_duration as parse

    return parse(value, days=True)


def format_duration(seconds: float | None) -> str | None:
    """Seconds -> Go's time.Duration.String() ("1m30s", "500ms", "0s")."""
    if seconds is None:
        return None
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    neg = ns < 0
    ns = abs(ns)
    if ns < 1_000_000_000:
        if ns < 1000:
            out = f"{ns}ns"
        elif ns < 1_000_000:
            out = _trim(ns / 1000) + "µs"
        else:
            out = _trim(ns / 1_000_000) + "ms"
    else:
        h, rem = divmod(ns, 3600 * 10**9)
        m, rem = divmod(rem, 60 * 10**9)
        out = ""
        if h:
            out += f"{h}h"
        if h or m:
            out += f"{m}m"
        out += _trim(rem / 1e9) + "s"
    return ("-" if neg else "") + out


def _trim(x: float) -> str:
    s = f"{x:.9f}".rstrip("0").rstrip(".")
    return s or "0"


def parse_size(value) -> int:
    """docker's RAMInBytes: "512m", "1g", "1.5GB", "100k", "1024b", 1048576 -> bytes (binary)."""
    from nerdpy.engine.util.units import parse_size as parse

    return parse(value)


_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0", ""}


def parse_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (int, float)):
        return bool(value)
    s = str(value).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"invalid boolean {value!r}")


def parse_int(value) -> int:
    if isinstance(value, bool):
        raise ValueError(f"invalid integer {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    s = str(value).strip()
    try:
        return int(s, 10)
    except ValueError:
        raise ValueError(f"invalid integer {value!r}") from None


def parse_float(value) -> float:
    if isinstance(value, bool):
        raise ValueError(f"invalid number {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        raise ValueError(f"invalid number {value!r}") from None
