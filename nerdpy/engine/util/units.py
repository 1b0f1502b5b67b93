"""Sizes and durations, parsed once for the CLI, the Python API, compose and the engine.

Sizes follow docker's units.RAMInBytes (binary multiples: 64m, 1.5g, 512k, 2GiB, 100 = bytes);
durations follow Go's time.ParseDuration (1m30s, 500ms, 1.5h). Both raise ValueError with a
short message; callers turn it into their own error (InvalidArgument, a compose file error).
"""
from __future__ import annotations

import re

_SIZE = re.compile(r"(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?([iI])?([bB])?")
_SIZE_MULT = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(value: str | int | float) -> int:
    """docker's RAMInBytes: "64m", "1.5g", "512k", "2GiB", "1024b", "100" (bytes) -> bytes.

    An int is bytes already. Negative sizes, unknown units and sizes of 2**63 or more are
    errors ("invalid size: ..." / "size too large")."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid size: {value!r}")
        return value
    if isinstance(value, float):
        if value < 0 or value != value:
            raise ValueError(f"invalid size: {value!r}")
        return int(value)
    text = str(value or "").strip()
    m = _SIZE.fullmatch(text)
    if not m or (m.group(3) and not m.group(2)):
        raise ValueError(f"invalid size: {value!r}")
    size = float(m.group(1)) * _SIZE_MULT[m.group(2).lower() if m.group(2) else None]
    if size >= 1 << 63:  # int64 in docker (and inf for a number too long for a float)
        raise ValueError("size too large")
    return int(size)


_DUR_NS = {"ns": 1, "us": 1e3, "µs": 1e3, "μs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9,
           "d": 86400e9, "w": 604800e9}
_DUR_PART = re.compile(r"([0-9]*\.?[0-9]+|[0-9]+\.)(ns|us|µs|μs|ms|s|m|h|d|w)")


def parse_duration_ns(value: str | int | float, *, days: bool = False, bare_seconds: bool = False) -> int:
    """A Go duration ("1m30s", "1.5s", "500ms", "-1s", "0") -> nanoseconds.

    `days`: also "d" and "w" (compose accepts them). `bare_seconds`: a plain number of
    seconds ("30") is accepted (docker's --health-* flags); otherwise it is Go's "missing unit"
    error. A number (not a string) is seconds."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, (int, float)):
        return int(value * 1e9)
    s = str(value).strip()
    if not s:
        raise ValueError("invalid duration ''")
    if bare_seconds and s.isdigit():
        return int(s) * 10**9
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"invalid duration {value!r}")
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DUR_PART.match(s, pos)
        if not m or (not days and m.group(2) in ("d", "w")):
            if re.fullmatch(r"[0-9.]+", s[pos:]):
                raise ValueError(f"invalid duration {value!r}: missing unit")
            raise ValueError(f"invalid duration {value!r}")
        total += float(m.group(1)) * _DUR_NS[m.group(2)]
        pos = m.end()
    return sign * int(round(total))


def parse_duration(value: str | int | float, *, days: bool = False) -> float:
    """A Go duration -> seconds (see parse_duration_ns)."""
    return parse_duration_ns(value, days=days) / 1e9
