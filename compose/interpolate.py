"""Variable interpolation, exactly as the compose specification (section 12) describes it.

- ``$VAR`` and ``${VAR}``: the value, or an empty string (with a warning) when VAR is unset;
- ``${VAR:-default}``: default when VAR is unset or empty; ``${VAR-default}``: when unset;
- ``${VAR:?err}``: an error when VAR is unset or empty; ``${VAR?err}``: when unset;
- ``${VAR:+repl}``: repl when VAR is set and non-empty, else empty; ``${VAR+repl}``: when set;
- operands nest (``${A:-${B:-x}}``, ``${A?$B}``) and are only evaluated when used;
- ``$$`` is a literal ``$``; a ``$`` not followed by a name, ``{`` or ``$`` stays as it is;
- a ``${`` that is not one of the forms above (``${A/b/c}``, ``${A``) is an error.

Only values are interpolated, never mapping keys; `interpolate_file` applies this to one file
before it is merged with the others.
"""
from __future__ import annotations

import re
from typing import Callable, Mapping

from compose.errors import InterpolationError

_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_OPS = (":-", ":?", ":+", "-", "?", "+")

Lookup = Callable[[str], "str | None"]


class _Invalid(Exception):
    pass


class _Required(Exception):
    def __init__(self, name: str, message: str):
        super().__init__(name)
        self.name = name
        self.message = message


def _lookup_of(env: Mapping[str, str] | Lookup) -> Lookup:
    if callable(env):
        return env
    return env.get


def substitute(text: str, env: Mapping[str, str] | Lookup,
               on_unset: Callable[[str], None] | None = None) -> str:
    """Interpolate one string. Raises ValueError-like internal errors through `interpolate`;
    callers outside this module should use `interpolate` for clear messages."""
    lookup = _lookup_of(env)
    return _subst(text, lookup, on_unset)


def _subst(text: str, lookup: Lookup, on_unset) -> str:
    if "$" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        if j + 1 < n and text[j + 1] == "$":
            out.append("$")
            i = j + 2
            continue
        if j + 1 < n and text[j + 1] == "{":
            end, value = _braced(text, j + 2, lookup, on_unset)
            out.append(value)
            i = end
            continue
        m = _NAME.match(text, j + 1)
        if m:
            value = lookup(m.group(0))
            if value is None:
                if on_unset:
                    on_unset(m.group(0))
                value = ""
            out.append(value)
            i = m.end()
            continue
        out.append("$")  # not a variable: kept as written
        i = j + 1
    return "".join(out)


def _closing(text: str, k: int) -> int:
    """Index of the `}` closing an operand that starts at k, skipping nested ${...} and $$."""
    depth = 0
    n = len(text)
    while k < n:
        c = text[k]
        if c == "$" and k + 1 < n and text[k + 1] == "$":
            k += 2
            continue
        if c == "$" and k + 1 < n and text[k + 1] == "{":
            depth += 1
            k += 2
            continue
        if c == "}":
            if depth == 0:
                return k
            depth -= 1
        k += 1
    raise _Invalid()


def _braced(text: str, start: int, lookup: Lookup, on_unset) -> tuple[int, str]:
    m = _NAME.match(text, start)
    if not m:
        raise _Invalid()
    name = m.group(0)
    k = m.end()
    if k < len(text) and text[k] == "}":
        value = lookup(name)
        if value is None:
            if on_unset:
                on_unset(name)
            value = ""
        return k + 1, value
    op = next((o for o in _OPS if text.startswith(o, k)), None)
    if op is None:
        raise _Invalid()
    k += len(op)
    end = _closing(text, k)
    operand = text[k:end]
    value = lookup(name)
    unset = value is None
    empty = unset or value == ""
    missing = empty if op.startswith(":") else unset
    kind = op[-1]
    if kind == "-":
        result = _subst(operand, lookup, on_unset) if missing else value
    elif kind == "?":
        if missing:
            raise _Required(name, _subst(operand, lookup, on_unset))
        result = value
    else:  # "+"
        result = "" if missing else _subst(operand, lookup, on_unset)
    return end + 1, result


def interpolate(text: str, env: Mapping[str, str] | Lookup, *, where: str = "",
                file: str | None = None, line: int | None = None,
                on_unset: Callable[[str], None] | None = None) -> str:
    """Interpolate `text`; errors name `where` (a dotted path), the file and the line."""
    try:
        return _subst(text, _lookup_of(env), on_unset)
    except _Required as e:
        msg = f"required variable {e.name} is missing a value"
        if e.message:
            msg += f": {e.message}"
        if where:
            msg = f"{where}: {msg}"
        raise InterpolationError(msg, file, line, variable=e.name) from None
    except RecursionError:  # ${A:-${A:-...}} nested hundreds deep
        target = f" for {where}" if where else ""
        raise InterpolationError(f"invalid interpolation format{target}: ${{...}} nested too deeply", file, line) from None
    except _Invalid:
        target = f" for {where}" if where else ""
        raise InterpolationError(
            f"invalid interpolation format{target}: {text!r} (you may need to escape any $ with another $)",
            file, line) from None


def dotted(path) -> str:
    """("services", "web", "ports", 0) -> "services.web.ports[0]"."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def interpolate_tree(data, env: Mapping[str, str] | Lookup, *, file: str | None = None,
                     line_of: Callable[[tuple], "int | None"] | None = None,
                     on_unset: Callable[[str], None] | None = None, path: tuple = ()):
    """A copy of `data` with every string value interpolated (keys are left alone)."""
    if isinstance(data, dict):
        return {k: interpolate_tree(v, env, file=file, line_of=line_of, on_unset=on_unset, path=path + (k,))
                for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate_tree(v, env, file=file, line_of=line_of, on_unset=on_unset, path=path + (i,))
                for i, v in enumerate(data)]
    if isinstance(data, str) and "$" in data:
        return interpolate(data, env, where=dotted(path), file=file,
                           line=line_of(path) if line_of else None, on_unset=on_unset)
    return data


def interpolate_file(src, env: Mapping[str, str] | Lookup,
                     on_unset: Callable[[str], None] | None = None) -> None:
    """Interpolate a SourceFile's data in place (values only, before merging)."""
    src.data = interpolate_tree(src.data, env, file=src.name, line_of=src.line_of, on_unset=on_unset)


def variables(data) -> dict[str, dict]:
    """The variables a (not interpolated) tree refers to, as docker compose's `config
    --variables` lists them: name -> {Name, DefaultValue, PresenceValue, Required}."""
    out: dict[str, dict] = {}

    def add(name: str, default: str = "", presence: str = "", required: bool = False) -> None:
        v = out.setdefault(name, {"Name": name, "DefaultValue": "", "PresenceValue": "", "Required": False})
        v["DefaultValue"] = v["DefaultValue"] or default
        v["PresenceValue"] = v["PresenceValue"] or presence
        v["Required"] = v["Required"] or required

    def scan(text: str) -> None:
        i, n = 0, len(text)
        while i < n:
            j = text.find("$", i)
            if j < 0 or j + 1 >= n:
                return
            if text[j + 1] == "$":
                i = j + 2
                continue
            if text[j + 1] == "{":
                m = _NAME.match(text, j + 2)
                if not m:
                    i = j + 2
                    continue
                k = m.end()
                op = next((o for o in _OPS if text.startswith(o, k)), None)
                if op is None:
                    add(m.group(0))
                    i = k + 1
                    continue
                try:
                    end = _closing(text, k + len(op))
                except _Invalid:
                    return
                operand = text[k + len(op):end]
                kind = op[-1]
                add(m.group(0), default=operand if kind == "-" else "",
                    presence=operand if kind == "+" else "", required=kind == "?")
                scan(operand)
                i = end + 1
                continue
            m = _NAME.match(text, j + 1)
            if m:
                add(m.group(0))
                i = m.end()
            else:
                i = j + 1

    def walk(node) -> None:
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str) and "$" in node:
            scan(node)

    walk(data)
    return dict(sorted(out.items()))
