"""The `nerdpy` executable's entry point: answers `--version`, `--help` (pre-rendered by
`python -m nerdpy.docgen` for the usual widths) and the completion scripts' calls without loading
click (some 25 ms, and 10 more to render help), and hands everything else to `nerdpy.cli`."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args in (["--version"], ["-v"]):
        from nerdpy import __version__

        sys.stdout.write(f"nerdpy version {__version__}\n")
        return
    if args in (["--help"], ["-h"]):
        text = _cached_top_help()
        if text is not None:
            sys.stdout.write(text)
            return
    if args[:1] == ["__complete"]:
        from nerdpy.commands.completion import complete_main

        complete_main(argv)
        return
    import gc

    # a command allocates some 20k objects while it loads click and the engine, and the default
    # threshold (700) runs ~20 collections over them (2-4 ms): collect after 100k allocations
    # instead (none in a usual command; long-running ones still collect)
    gc.set_threshold(100_000, 10, 10)
    from nerdpy.cli import main as cli_main

    cli_main(argv)


def _cached_top_help() -> str | None:
    """The pre-rendered help for this terminal's width (found as click finds it), if kept."""
    import os

    try:
        cols = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        cols = 0
    if cols <= 0:
        try:
            cols = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            cols = 0
        if cols <= 0:
            cols = 80
    from nerdpy._top_help import HELP

    return HELP.get(80 if cols == 80 else 102 if cols >= 102 else 0)
