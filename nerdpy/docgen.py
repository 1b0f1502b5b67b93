"""The command reference (docs/reference.md), generated from the click tree.

    python -m nerdpy.docgen            # rewrite docs/reference.md (after adding a command or flag)
    python -m nerdpy.docgen --check    # exit 1 if it is out of date

It also writes nerdpy/_top_help.py: `nerdpy --help` as click prints it at the two widths most
terminals and pipes give, which the `nerdpy` launcher prints without loading click.

Each command (lazily-loaded ones and every group's sub-commands included, hidden ones left out)
gets its usage line, its whole help text (examples included) and a table of its options, exactly
as `nerdpy COMMAND --help` shows them.
"""
from __future__ import annotations

import os
import sys

import click

PROG = "nerdpy"
HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(os.path.dirname(HERE), "docs", "reference.md")
REGENERATE = "python -m nerdpy.docgen"
TOP_HELP = os.path.join(HERE, "_top_help.py")
# terminal widths (columns) whose top-level help is kept: a pipe (80) and any terminal of 102
# columns or more (click caps the text at 100 plus its margin)
TOP_HELP_WIDTHS = (80, 102)


def _walk(cmd: click.Command, ctx: click.Context, path: list[str], out: list) -> None:
    out.append((path, cmd, ctx))
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            _walk(sub, click.Context(sub, parent=ctx, info_name=name), path + [name], out)


def commands() -> list[tuple[list[str], click.Command, click.Context]]:
    from nerdpy.cli import cli

    out: list = []
    _walk(cli, click.Context(cli, info_name=PROG, **(cli.context_settings or {})), [], out)
    return out


def _anchor(path: list[str]) -> str:
    return "-".join([PROG] + path)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _aliases(entries) -> dict[int, list[str]]:
    """Commands registered under several names (rm/remove, ls/list/ps): id -> names."""
    seen: dict[int, list[str]] = {}
    for path, cmd, _ in entries:
        if path:
            seen.setdefault(id(cmd), []).append(" ".join(path))
    return seen


def _help_text(cmd: click.Command) -> str:
    """The help as --help shows it: paragraphs, with click's \\b blocks kept as code."""
    text = (cmd.help or cmd.short_help or "").strip("\n")
    import inspect

    text = inspect.cleandoc(text)
    out: list[str] = []
    for para in text.split("\n\n"):
        if para.startswith("\b"):
            lines = para.split("\n")[1:]
            title = [ln for ln in lines if ln.rstrip().endswith(":") and not ln.startswith(" ")]
            body = [ln for ln in lines if ln not in title]
            for t in title:
                out.append(t.strip())
            out.append("```\n" + "\n".join(ln[2:] if ln.startswith("  ") else ln for ln in body) + "\n```")
        else:
            out.append(" ".join(para.split()))
    return "\n\n".join(out)


def _record(p: click.Option, ctx: click.Context):
    rec = p.get_help_record(ctx)
    if rec and p.name == "help":  # click makes the help option's names from a set: a stable order
        names = sorted(p.opts, key=lambda n: (n.startswith("--"), n))
        rec = (", ".join(names), rec[1])
    return rec


def render() -> str:
    entries = commands()
    aliases = _aliases(entries)
    lines = [
        "# Command reference",
        "",
        f"Generated from the command line itself by `{REGENERATE}`: do not edit by hand (a unit",
        "test fails when it is out of date). `nerdpy COMMAND --help` shows the same text.",
        "",
        "Every command accepts `-h`/`--help`. Global options go before the command:",
        "`nerdpy --data-root /tmp/np -n test ps`. Exit codes follow docker: 125 for an error of",
        "nerdpy itself, 126 when the container command cannot be invoked, 127 when it is not",
        "found, else the container's own exit code.",
        "",
        "## Commands",
        "",
    ]
    for path, cmd, _ in entries:
        if not path:
            continue
        indent = "  " * (len(path) - 1)
        desc = _cell(cmd.get_short_help_str(200))
        lines.append(f"{indent}- [`{' '.join(path)}`](#{_anchor(path)}): {desc}")
    lines.append("")
    for path, cmd, ctx in entries:
        title = " ".join([PROG] + path)
        lines.append(f'<a id="{_anchor(path)}"></a>')
        lines.append("")
        lines.append(f"## {title}")
        lines.append("")
        # click 8.5 writes an optional sub-command as `[COMMAND]`, 8.4 as `COMMAND`: the
        # reference reads the same whichever click built it
        pieces = " ".join(cmd.collect_usage_pieces(ctx)).replace("[COMMAND] [ARGS]...", "COMMAND [ARGS]...")
        lines.append("```")
        lines.append(f"Usage: {ctx.command_path} {pieces}".rstrip())
        lines.append("```")
        lines.append("")
        help_text = _help_text(cmd)
        if help_text:
            lines.append(help_text)
            lines.append("")
        others = [a for a in aliases.get(id(cmd), []) if a != " ".join(path)]
        if others:
            lines.append("Also available as: " + ", ".join(f"`{PROG} {a}`" for a in others) + ".")
            lines.append("")
        records = [_record(p, ctx) for p in cmd.get_params(ctx) if isinstance(p, click.Option)]
        records = [r for r in records if r]
        if records:
            lines.append("| Option | Description |")
            lines.append("| --- | --- |")
            for names, help_ in records:
                lines.append(f"| `{_cell(names)}` | {_cell(help_)} |")
            lines.append("")
        if isinstance(cmd, click.Group):
            subs = [(n, cmd.get_command(ctx, n)) for n in cmd.list_commands(ctx)]
            subs = [(n, s) for n, s in subs if s is not None and not s.hidden]
            if subs:
                lines.append("| Command | Description |")
                lines.append("| --- | --- |")
                for n, s in subs:
                    lines.append(f"| [`{n}`](#{_anchor(path + [n])}) | {_cell(s.get_short_help_str(200))} |")
                lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def top_help(columns: int) -> str:
    """`nerdpy --help` exactly as click prints it on a terminal that many columns wide."""
    import subprocess

    # a process of its own: click's test runner forces a width of 80
    r = subprocess.run([sys.executable, "-c", "from nerdpy.cli import main; main()", "--help"],
                       capture_output=True, text=True, cwd=os.path.dirname(HERE),
                       env=dict(os.environ, COLUMNS=str(columns)))
    if r.returncode != 0:
        raise RuntimeError(f"nerdpy --help exited {r.returncode}: {r.stderr}")
    return r.stdout


def render_top_help() -> str:
    helps = {w: top_help(w) for w in TOP_HELP_WIDTHS}
    body = "".join(f"    {w}: {helps[w]!r},\n" for w in TOP_HELP_WIDTHS)
    return (f'"""`nerdpy --help` by terminal width, generated by `{REGENERATE}` (do not edit): the\n'
            'launcher prints it without loading click."""\n'
            f"HELP = {{\n{body}}}\n")


def _current(path: str, text: str) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read() == text
    except FileNotFoundError:
        return False


def is_current(path: str = REFERENCE) -> bool:
    return _current(path, render())


def top_help_is_current(path: str = TOP_HELP) -> bool:
    return _current(path, render_top_help())


def _write(path: str, text: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    from nerdpy.engine.util.fs import write_atomic

    write_atomic(path, text, None)
    return path


def write(path: str = REFERENCE) -> str:
    _write(TOP_HELP, render_top_help())
    return _write(path, render())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--check"]:
        stale = [p for p, ok in ((REFERENCE, is_current()), (TOP_HELP, top_help_is_current())) if not ok]
        for p in stale:
            print(f"out of date: {p} (run `{REGENERATE}`)", file=sys.stderr)
        return 1 if stale else 0
    print(write())
    return 0


if __name__ == "__main__":
    sys.exit(main())
