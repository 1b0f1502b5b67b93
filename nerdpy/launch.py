"""The `nerdpy` executable's entry point: answers `--version` and the completion scripts' calls
without loading click (some 25 ms), and hands everything else to the click CLI in `nerdpy.cli`."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args in (["--version"], ["-v"]):
        from nerdpy import __version__

        sys.stdout.write(f"nerdpy version {__version__}\n")
        return
    if args[:1] == ["__complete"]:
        from nerdpy.commands.completion import complete_main

        complete_main(argv)
        return
    from nerdpy.cli import main as cli_main

    cli_main(argv)
