"""Parsing of the scalar forms compose files use: Go durations, byte sizes, booleans."""
from __future__ import annotations

import re

_DUR_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3,
    "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0,
}
_DUR_PART = re.compile(r"([0-9]*\.?[0-9]+|[0-9]+\.)(ns|us|µs|μs|ms|s|m|h|d|w)")


def parse_duration(value) -> float:
    """A Go duration ("1m30s", "1.5s", "500ms", also "1d"/"1w" as compose accepts) -> seconds.

    Plain numbers (int/float from YAML) are taken as seconds. A string without a unit is an
    error, as in Go ("missing unit in duration")."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    s = str(value).strip()
    if not s:
        raise ValueError("invalid duration ''")
    sign = 1.0
    if s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DUR_PART.match(s, pos)
        if not m:
            if re.fullmatch(r"[0-9.]+", s[pos:]):
                raise ValueError(f"invalid duration {value!r}: missing unit")
            raise ValueError(f"invalid duration {value!r}")
        total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


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


_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp])?(i)?(b)?$", re.IGNORECASE)
_SIZE_MULT = {None: 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def parse_size(value) -> int:
    """docker's RAMInBytes: "512m", "1g", "1.5GB", "100k", "1024b", 1048576 -> bytes (binary)."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    s = str(value).strip()
    m = _SIZE.match(s)
    if not m:
        raise ValueError(f"invalid size {value!r}")
    unit = m.group(2).lower() if m.group(2) else None
    if m.group(3) and not unit:
        raise ValueError(f"invalid size {value!r}")
    return int(float(m.group(1)) * _SIZE_MULT[unit])


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
