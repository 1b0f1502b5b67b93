"""`.env` and `env_file` files, in the dotenv format docker compose reads.

- ``KEY=value`` and ``export KEY=value``; blank lines and lines starting with ``#`` are skipped;
- unquoted values are trimmed, and `` #`` starts a comment;
- ``'single quoted'`` values are literal; ``"double quoted"`` values know ``\\n``, ``\\t``,
  ``\\"``, ``\\\\`` and ``\\$``; both kinds may span lines;
- unquoted and double-quoted values are interpolated like the compose file (``${VAR:-x}``),
  from the given environment and then the keys defined above in the same file;
- a line with only ``KEY`` takes KEY's value from the environment (left out when unset).
"""
from __future__ import annotations

import re
from typing import Callable, Mapping

from compose.errors import ComposeError, FileNotFound
from compose.interpolate import interpolate

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def parse_env_text(text: str, name: str = "<env>",
                   env: Mapping[str, str] | Callable[[str], "str | None"] | None = None,
                   interpolate_values: bool = True) -> dict[str, str]:
    outer = env.get if isinstance(env, Mapping) else (env or (lambda _k: None))
    result: dict[str, str] = {}

    def lookup(key: str):
        v = outer(key)
        if v is None:
            v = result.get(key)
        return v

    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        lineno = i + 1
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[7:].lstrip()
        m = _KEY.match(line)
        if not m:
            raise ComposeError(f"invalid variable name in line {line!r}", name, lineno)
        key = m.group(0)
        rest = line[m.end():].lstrip()
        if not rest or rest.startswith("#"):
            v = outer(key)
            if v is not None:
                result[key] = v
            continue
        if rest[0] != "=":
            raise ComposeError(f"unexpected character {rest[0]!r} after variable name {key!r}", name, lineno)
        raw = rest[1:].lstrip()
        if raw[:1] in ("'", '"'):
            quote = raw[0]
            body = raw[1:]
            # find the closing quote, possibly on a later line
            chunks = []
            while True:
                end = _closing_quote(body, quote)
                if end >= 0:
                    chunks.append(body[:end])
                    break
                chunks.append(body)
                if i >= len(lines):
                    raise ComposeError(f"unterminated quoted value for {key}", name, lineno)
                body = "\n" + lines[i]
                i += 1
            value = "".join(chunks)
            if quote == '"':
                value = _unescape(value)
                if interpolate_values:
                    value = _interp(value, lookup, name, lineno)
            result[key] = value
            continue
        value = re.split(r"\s+#", raw, maxsplit=1)[0].strip()
        if interpolate_values:
            value = _interp(value, lookup, name, lineno)
        result[key] = value
    return result


def _closing_quote(body: str, quote: str) -> int:
    k = 0
    while k < len(body):
        c = body[k]
        if c == "\\" and quote == '"':
            k += 2
            continue
        if c == quote:
            return k
        k += 1
    return -1


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$$", "'": "'"}


def _unescape(s: str) -> str:
    out, k = [], 0
    while k < len(s):
        c = s[k]
        if c == "\\" and k + 1 < len(s) and s[k + 1] in _ESCAPES:
            out.append(_ESCAPES[s[k + 1]])
            k += 2
            continue
        out.append(c)
        k += 1
    return "".join(out)


def _interp(value: str, lookup, name: str, lineno: int) -> str:
    return interpolate(value, lookup, file=name, line=lineno)


def read_env_file(path: str, display: str | None = None,
                  env: Mapping[str, str] | Callable[[str], "str | None"] | None = None) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise FileNotFound(f"env file {display or path} not found") from None
    except IsADirectoryError:
        raise ComposeError(f"env file {display or path} is a directory") from None
    except UnicodeDecodeError:
        raise ComposeError(f"env file {display or path} is not UTF-8 text") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return parse_env_text(text, display or path, env)
