"""docker's exit codes and message form for every error nerdpy reports: the one table the CLI
(nerdpy.cli.main, each command) and compose use.

An error's code is looked up by its class (the nearest along the MRO) in BY_ERROR; an error
whose code is nerdpy's own (125) takes the code of the command it failed in from BY_COMMAND
(docker exits 1 from `volume`, `network`, `cp`, `save`, `compose` ... whatever failed; 125 from
`run`, `pull`, ...). Usage errors are click's and always 125 (nerdpy.cli.main). Every error is
reported as one line, `nerdpy: <message>` (MESSAGE).

Only nerdpy.engine.errors is imported here (it holds BY_ERROR); compose's errors are known by their dotted class
name, so the CLI need not import compose (and yaml) to map them. Commands raise these errors
(or CommandError, SomeFailed below) and never exit on their own for an error.
"""
from __future__ import annotations

# the error -> code table itself lives with the error classes (nerdpy.engine.errors.BY_ERROR), so
# that an engine error's `exit_code` reads it without importing upwards
from nerdpy.engine.errors import (  # noqa: F401 (CommandError, SomeFailed: re-exported for commands)
    BY_ERROR, EXIT_ERROR, EXIT_FAILED, CommandError, NerdpyError, SomeFailed, error_exit_code)

MESSAGE = "nerdpy: {error}"

# command (as typed: `volume`, `container cp` -> "cp") -> exit code for nerdpy's own (125) errors
BY_COMMAND: dict[str, int] = {
    "volume": EXIT_FAILED, "network": EXIT_FAILED, "cp": EXIT_FAILED,
    "attach": EXIT_FAILED, "top": EXIT_FAILED, "rename": EXIT_FAILED,
    "export": EXIT_FAILED, "import": EXIT_FAILED, "commit": EXIT_FAILED,
    "save": EXIT_FAILED, "load": EXIT_FAILED, "compose": EXIT_FAILED,
    "update": EXIT_FAILED, "stats": EXIT_FAILED, "prune": EXIT_FAILED, "system": EXIT_FAILED, "diff": EXIT_FAILED, "events": EXIT_FAILED,
}


# commands that exit 125 for a missing container or image (docker run and create: 125 for any
# error of their own), where every other command exits 1
NOT_FOUND_125 = ("run", "create")


def exit_code(error: BaseException, command: str | None = None) -> int:
    """docker's exit code for `error`, raised while running `command` (None: none known)."""
    from nerdpy.engine.errors import ContainerNotFound, ImageNotFound

    code = error_exit_code(error)
    if code == EXIT_ERROR and command in BY_COMMAND:
        code = BY_COMMAND[command]
    if command in NOT_FOUND_125 and isinstance(error, (ContainerNotFound, ImageNotFound)):
        code = EXIT_ERROR
    return code


def is_reported(error: BaseException) -> bool:
    """Whether the CLI reports `error` as one line with a table code (nerdpy's or compose's)."""
    return isinstance(error, NerdpyError) or any(f"{c.__module__}.{c.__qualname__}" in BY_ERROR for c in type(error).__mro__)


def message(error: BaseException) -> str:
    """The line printed on stderr for `error` (empty for SomeFailed: already reported)."""
    return "" if isinstance(error, SomeFailed) else MESSAGE.format(error=error)


def report_missing(form: str, names: list[str]) -> None:
    """inspect-style commands, after their output: one line per name not found (`form` with the
    name), then SomeFailed (docker exits 1)."""
    import click

    for name in names:
        click.echo(MESSAGE.format(error=form.format(name)), err=True)
    if names:
        raise SomeFailed()
