"""docker's `--format`: a Go text/template subset, and table/json output shared by every command.

Supported: `{{.Field}}`, nested fields, `{{.}}`, variables (`$v`, `$i, $v := ...`), pipelines,
parentheses, string/number/bool literals, `if`/`else if`/`else`/`with`/`range`/`end`, trim
markers `{{-`/`-}}`, comments, and the functions docker adds: json, join, lower, upper, title,
split, index, len, printf, print, println, truncate, pad, eq, ne, lt, le, gt, ge, and, or, not.
Templates are compiled once and cached.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache

from nerdpy.engine.errors import TemplateError


# -- lexing ------------------------------------------------------------------------------
_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
# (patterns only the template interpreter uses are compiled on first use, through re's cache:
# a plain `ps` table never needs them)
_TOKEN = (
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)
      | (?P<num>-?\d+(?:\.\d+)?)
      | (?P<decl>:=)
      | (?P<field>(?:\$[A-Za-z0-9_]*)?(?:\.[A-Za-z0-9_]+)+|\.|\$[A-Za-z0-9_]*)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<pipe>\|)
      | (?P<lp>\()
      | (?P<rp>\))
      | (?P<comma>,)
    )"""
)


def _tokens(src: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    src = src.strip()
    token = re.compile(_TOKEN, re.X)
    while pos < len(src):
        m = token.match(src, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"template parsing error: unexpected {src[pos:pos + 10]!r} in {src!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(src) and src[pos].isspace():
            pos += 1
    return out


# -- parsing ------------------------------------------------------------------------------
def _split_template(tmpl: str) -> list[tuple[str, str]]:
    parts: list[tuple[str, str]] = []
    pos = 0
    for m in _ACTION.finditer(tmpl):
        text = tmpl[pos:m.start()]
        if m.group(1):
            text = text.rstrip()
        if parts and parts[-1][0] == "trim-next":
            parts.pop()
            text = text.lstrip()
        parts.append(("text", text))
        parts.append(("action", m.group(2)))
        if m.group(3):
            parts.append(("trim-next", ""))
        pos = m.end()
    rest = tmpl[pos:]
    if parts and parts[-1][0] == "trim-next":
        parts.pop()
        rest = rest.lstrip()
    if "{{" in rest:
        raise TemplateError(f"template parsing error: unclosed action in {tmpl!r}")
    parts.append(("text", rest))
    return parts


class _Parser:
    def __init__(self, tmpl: str):
        self.parts = _split_template(tmpl)
        self.i = 0

    def parse(self) -> list:
        nodes, end = self.block()
        if end is not None:
            raise TemplateError(f"template parsing error: unexpected {{{{{end}}}}}")
        return nodes

    def block(self) -> tuple[list, str | None]:
        nodes: list = []
        while self.i < len(self.parts):
            kind, val = self.parts[self.i]
            self.i += 1
            if kind == "text":
                if val:
                    nodes.append(("text", val))
                continue
            src = val.strip()
            if src.startswith("/*"):
                continue
            word = src.split(None, 1)[0] if src else ""
            if word in ("end", "else"):
                return nodes, src
            if word in ("if", "with", "range"):
                nodes.append(self.control(word, src[len(word):]))
            else:
                nodes.append(("pipe", _parse_pipeline(_tokens(src))))
        return nodes, None

    def control(self, word: str, rest: str) -> tuple:
        toks = _tokens(rest)
        decl: list[str] = []
        if word == "range" and any(t[0] == "decl" for t in toks):
            idx = next(i for i, t in enumerate(toks) if t[0] == "decl")
            decl = [t[1] for t in toks[:idx] if t[0] == "field"]
            toks = toks[idx + 1:]
        pipe = _parse_pipeline(toks)
        body, end = self.block()
        else_body: list = []
        if end is None:
            raise TemplateError(f"template parsing error: unexpected EOF, missing {{{{end}}}} for {word}")
        if end.startswith("else"):
            rest2 = end[4:].strip()
            if rest2.startswith("if"):
                else_body = [self.control("if", rest2[2:])]
                return (word, pipe, decl, body, else_body)
            else_body, end2 = self.block()
            if end2 != "end":
                raise TemplateError("template parsing error: missing {{end}}")
        return (word, pipe, decl, body, else_body)


def _parse_pipeline(toks: list) -> list:
    cmds, cur, depth, buf = [], [], 0, []
    i = 0
    while i < len(toks):
        kind, val = toks[i]
        if kind == "lp":
            j, d = i + 1, 1
            while j < len(toks) and d:
                d += {"lp": 1, "rp": -1}.get(toks[j][0], 0)
                j += 1
            if d:
                raise TemplateError("template parsing error: unclosed parenthesis")
            cur.append(("sub", _parse_pipeline(toks[i + 1:j - 1])))
            i = j
            continue
        if kind == "rp":
            raise TemplateError("template parsing error: unexpected )")
        if kind == "pipe":
            if not cur:
                raise TemplateError("template parsing error: missing command before |")
            cmds.append(cur)
            cur = []
        elif kind == "str":
            cur.append(("lit", _unquote(val)))
        elif kind == "num":
            cur.append(("lit", float(val) if "." in val else int(val)))
        elif kind == "ident":
            if val in ("true", "false"):
                cur.append(("lit", val == "true"))
            elif val == "nil":
                cur.append(("lit", None))
            else:
                if val not in FUNCS:
                    raise TemplateError(f'template parsing error: function "{val}" not defined')
                cur.append(("func", val))
        elif kind == "field":
            cur.append(("field", val))
        else:
            raise TemplateError(f"template parsing error: unexpected {val!r}")
        i += 1
    if not cur:
        raise TemplateError("template parsing error: missing value for command")
    cmds.append(cur)
    return cmds


def _unquote(s: str) -> str:
    if s.startswith("`"):
        return s[1:-1]
    try:
        return json.loads(s)
    except ValueError:  # an escape Go has and JSON has not (\x41, \a, \'...) or a bad one
        raise TemplateError(f"template parsing error: invalid syntax in string {s}") from None


# -- evaluation ---------------------------------------------------------------------------
_MISSING = object()


def _get(obj, name: str):
    if isinstance(obj, dict):
        if name in obj:
            return obj[name]
        return _MISSING
    if obj is None:
        return _MISSING
    return getattr(obj, name, _MISSING)


def _field(path: str, dot, vars_: dict):
    if path.startswith("$"):
        name, _, rest = path.partition(".")
        if name not in vars_:
            raise TemplateError(f"template: undefined variable {name}")
        value = vars_[name]
        parts = rest.split(".") if rest else []
    else:
        value = dot
        parts = [p for p in path.split(".") if p]
    for p in parts:
        value = _get(value, p)
        if value is _MISSING:
            return None
    return value


def _eval_pipe(cmds: list, dot, vars_: dict):
    value = _MISSING
    for cmd in cmds:
        value = _eval_cmd(cmd, dot, vars_, value)
    return value


def _eval_cmd(cmd: list, dot, vars_: dict, piped):
    head = cmd[0]
    args = [_eval_arg(a, dot, vars_) for a in cmd[1:]]
    if piped is not _MISSING:
        args.append(piped)
    if head[0] == "func":
        return _call(head[1], FUNCS[head[1]], args)
    if args:
        value = _eval_arg(head, dot, vars_) if head[0] == "field" else None
        if callable(value):  # a method with arguments, such as ps's {{.Label "key"}}
            return _call(head[1], value, args)
        raise TemplateError("template: can't give arguments to a non-function")
    return _eval_arg(head, dot, vars_)


def _call(name: str, fn, args: list):
    try:
        return fn(*args)
    except TemplateError:
        raise
    except Exception as e:  # wrong arguments, or a function failing on them: the template's error
        raise TemplateError(f"template: error calling {name}: {e}") from None


def _eval_arg(a, dot, vars_):
    kind, val = a
    if kind == "lit":
        return val
    if kind == "field":
        return _field(val, dot, vars_)
    if kind == "sub":
        return _eval_pipe(val, dot, vars_)
    if kind == "func":
        return _call(val, FUNCS[val], [])
    raise TemplateError("template: bad argument")


def _truth(v) -> bool:
    return bool(v) and v is not _MISSING


def _exec(nodes: list, dot, vars_: dict, out: list) -> None:
    for node in nodes:
        kind = node[0]
        if kind == "text":
            out.append(node[1])
        elif kind == "pipe":
            out.append(to_text(_eval_pipe(node[1], dot, vars_)))
        elif kind == "if":
            branch = node[3] if _truth(_eval_pipe(node[1], dot, vars_)) else node[4]
            _exec(branch, dot, vars_, out)
        elif kind == "with":
            v = _eval_pipe(node[1], dot, vars_)
            if _truth(v):
                _exec(node[3], v, vars_, out)
            else:
                _exec(node[4], dot, vars_, out)
        elif kind == "range":
            v = _eval_pipe(node[1], dot, vars_)
            if not isinstance(v, (dict, list, tuple)) and v is not None and v is not _MISSING:
                raise TemplateError(f"template: range can't iterate over {to_text(v)}")
            items = list(v.items()) if isinstance(v, dict) else list(enumerate(v or []))
            if isinstance(v, dict):
                items = sorted(items, key=lambda kv: str(kv[0]))
            if not items:
                _exec(node[4], dot, vars_, out)
            for k, item in items:
                local = dict(vars_)
                decl = node[2]
                if len(decl) == 1:
                    local[decl[0]] = item
                elif len(decl) == 2:
                    local[decl[0]], local[decl[1]] = k, item
                _exec(node[3], item, local, out)


def to_text(v) -> str:
    """Go's fmt %v for the values we render."""
    if v is None or v is _MISSING:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(_inner(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_inner(v[k])}" for k in sorted(v, key=str)) + "]"
    return str(v)


def _inner(v) -> str:
    return "<nil>" if v is None else to_text(v)


def _json(v) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False, default=str)


def _join(items, sep="") -> str:
    return sep.join(to_text(x) for x in (items or []))


def _index(v, *keys):
    for k in keys:
        if isinstance(v, dict):
            v = v.get(k)
        elif isinstance(v, (list, tuple)):
            v = v[int(k)]
        else:
            return None
    return v


_VERB = r"%([-+ #0]*)([0-9]+)?(?:\.([0-9]+))?([a-zA-Z%])"


def _go_quote(v) -> str:
    return json.dumps(to_text(v), ensure_ascii=False)


def _printf(fmt: str, *args) -> str:
    """Go's fmt.Sprintf for the verbs templates use: %v %s %q %d %t %x %X %o %b %e %f %g %c %%."""
    args = list(args)
    out: list[str] = []
    pos = 0
    for m in re.finditer(_VERB, fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2) or "", m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if not args:
            out.append(f"%!{verb}(MISSING)")
            continue
        a = args.pop(0)
        spec = "%" + flags + width + ("." + prec if prec is not None else "")
        number = isinstance(a, (int, float)) and not isinstance(a, bool)
        try:
            if verb in "vs":
                out.append((spec + "s") % to_text(a))
            elif verb == "q":
                out.append((spec + "s") % _go_quote(a))
            elif verb == "t":
                out.append((spec + "s") % (to_text(a) if isinstance(a, bool) else f"%!t({to_text(a)})"))
            elif verb in "dxXobeEfFgGc" and number:
                if verb == "b":
                    out.append((spec + "s") % format(int(a), "b"))
                elif verb in "dxXoc":
                    out.append((spec + verb) % int(a))
                else:
                    out.append((spec + verb) % a)
            elif verb in "xX" and isinstance(a, str):
                h = a.encode().hex()
                out.append((spec + "s") % (h.upper() if verb == "X" else h))
            else:
                out.append(f"%!{verb}({to_text(a)})")
        except (TypeError, ValueError, OverflowError):
            out.append(f"%!{verb}({to_text(a)})")
    out.append(fmt[pos:])
    return "".join(out)


def _print(*args) -> str:
    """Go's fmt.Sprint: a space between operands when neither is a string."""
    out: list[str] = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(to_text(a))
    return "".join(out)


def _title(s) -> str:
    """Go's strings.Title: upper-case the first letter of each word, leave the rest alone."""
    out: list[str] = []
    prev_sep = True
    for ch in to_text(s):
        out.append(ch.upper() if prev_sep else ch)
        if ord(ch) < 0x80:
            prev_sep = not (ch.isalnum() or ch == "_")
        else:
            prev_sep = ch.isspace() and not (ch.isalpha() or ch.isdigit())
    return "".join(out)


def _cmp(op):
    def f(a, *bs):
        if op == "eq":
            return any(a == b for b in bs)
        b = bs[0]
        return {"ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]
    return f


def _and(*args):
    for a in args:
        if not _truth(a):
            return a
    return args[-1] if args else None


def _or(*args):
    for a in args:
        if _truth(a):
            return a
    return args[-1] if args else None


FUNCS = {
    "json": _json,
    "join": _join,
    "lower": lambda s: to_text(s).lower(),
    "upper": lambda s: to_text(s).upper(),
    "title": _title,
    "split": lambda s, sep: to_text(s).split(sep),
    "index": _index,
    "len": lambda v: len(v or []),
    "printf": _printf,
    "print": _print,
    "println": lambda *a: " ".join(to_text(x) for x in a) + "\n",
    "truncate": lambda s, n: to_text(s)[: int(n)],
    "pad": lambda s, left, right: " " * int(left) + to_text(s) + " " * int(right),
    "eq": _cmp("eq"), "ne": _cmp("ne"), "lt": _cmp("lt"), "le": _cmp("le"), "gt": _cmp("gt"), "ge": _cmp("ge"),
    "and": _and,
    "or": _or,
    "not": lambda v: not _truth(v),
}


@lru_cache(maxsize=64)
def compile_template(template: str) -> list:
    try:
        return _Parser(template).parse()
    except RecursionError:
        raise TemplateError("template parsing error: actions nested too deeply") from None


@lru_cache(maxsize=64)
def _field_plan(template: str) -> tuple | None:
    """A template made of text and plain `{{.A.B}}` fields only (every list's default table):
    its pieces, text as str and fields as tuples of names; None for anything else."""
    plan: list = []
    for node in compile_template(template):
        if node[0] == "text":
            plan.append(node[1])
            continue
        if node[0] != "pipe" or len(node[1]) != 1 or len(node[1][0]) != 1:
            return None
        kind, path = node[1][0][0]
        if kind != "field" or path.startswith("$"):
            return None
        plan.append(tuple(p for p in path.split(".") if p))
    return tuple(plan)


def _render_plan(plan: tuple, data: object) -> str:
    out: list[str] = []
    for piece in plan:
        if isinstance(piece, str):
            out.append(piece)
            continue
        value = data
        for name in piece:
            value = _get(value, name)
            if value is _MISSING:
                value = None
                break
        out.append(to_text(value))
    return "".join(out)


def render(template: str, data: object) -> str:
    """Render a Go-style template against `data` (dicts by key, objects by attribute)."""
    plan = _field_plan(template)
    if plan is not None:  # the common case, without the interpreter's generality
        return _render_plan(plan, data)
    nodes = compile_template(template)
    out: list[str] = []
    try:
        _exec(nodes, data, {"$": data}, out)
    except RecursionError:
        raise TemplateError("template: actions nested too deeply") from None
    return "".join(out)


def _unescape(fmt: str) -> str:
    return fmt.replace("\\t", "\t").replace("\\n", "\n")


def _header_for(template: str, headers: dict[str, str]) -> str:
    def repl(m):
        inner = m.group(1).strip()
        f = re.fullmatch(r"\.([A-Za-z0-9_]+)", inner)
        if f:
            name = f.group(1)
            return headers.get(name, name.upper())
        f = re.fullmatch(r'\.Label\s+"([^"]*)"', inner)
        if f:
            return f.group(1).upper()
        return inner.upper()

    return re.sub(r"\{\{-?\s*(.*?)\s*-?\}\}", repl, template)


def _tabwrite(lines: list[str], minwidth: int = 10, padding: int = 3) -> str:
    rows = [line.split("\t") for line in lines]
    widths: dict[int, int] = {}
    for r in rows:
        for i, cell in enumerate(r[:-1]):
            widths[i] = max(widths.get(i, 0), len(cell))
    out = []
    for r in rows:
        cells = []
        for i, cell in enumerate(r):
            if i < len(r) - 1:
                w = max(widths[i] + padding, minwidth)
                cells.append(cell.ljust(w))
            else:
                cells.append(cell)
        # like Go's tabwriter: tab-terminated cells are padded even when the last cell is empty
        out.append("".join(cells))
    return "".join(line + "\n" for line in out)


def format_output(fmt: str | None, rows: list[dict], *, default_table: str, headers: dict[str, str]) -> str:
    """docker's --format handling for lists: table (default), `table TMPL`, `json`, or TMPL.
    As docker's formatter: the template is trimmed of spaces, `\\t` and `\\n` are unescaped, and
    each row is a map (so `json` and `{{json .}}` list its keys sorted, as Go's encoder does)."""
    rows = [dict(sorted(r.items())) if isinstance(r, dict) else r for r in rows]
    fmt = _unescape(fmt) if fmt else ""
    if fmt.strip() == "json":
        return "".join(_json(r) + "\n" for r in rows)
    if not fmt or fmt.strip() == "table":
        fmt = default_table
    if fmt.startswith("table"):
        body = fmt[5:].strip(" ")
        if not body.strip():
            body = default_table[5:].strip(" ")
        lines = [_header_for(body, headers)] + [render(body, r) for r in rows]
        return _tabwrite(lines)
    fmt = fmt.strip(" ")
    return "".join(render(fmt, r) + "\n" for r in rows)
