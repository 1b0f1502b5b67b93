"""docker's exit codes and message form for every error nerdpy reports: the one table the CLI
(nerdpy.cli.main, each command) and compose use.

An error's code is looked up by its class (the nearest along the MRO) in BY_ERROR; an error
whose code is nerdpy's own (125) takes the code of the command it failed in from BY_COMMAND
(docker exits 1 from `volume`, `network`, `cp`, `save`, `compose` ... whatever failed; 125 from
`run`, `pull`, ...). Usage errors are click's and always 125 (nerdpy.cli.main). Every error is
reported as one line, `nerdpy: <message>` (MESSAGE).

Only nerdpy.engine.errors is imported here; compose's errors are known by their dotted class
name, so the CLI need not import compose (and yaml) to map them. Commands raise these errors
(or CommandError, SomeFailed below) and never exit on their own for an error.
"""
from __future__ import annotations

from nerdpy.engine import errors as E

EXIT_ERROR = 125    # an error of nerdpy itself (docker's daemon/CLI error code)
EXIT_FAILED = 1     # the operation failed, where docker says 1
MESSAGE = "nerdpy: {error}"


class CommandError(E.NerdpyError):
    """A command's own refusal (`cowardly refusing to save to a terminal`...): one line, the
    command's exit code."""


class SomeFailed(E.NerdpyError):
    """A command on several objects where some failed, each already reported on its own line
    (docker exits 1); nothing more is printed."""

    def __init__(self) -> None:
        super().__init__("")


# error class (or, for compose's, its dotted name) -> exit code; the nearest along the MRO wins
BY_ERROR: dict[type | str, int] = {
    E.CommandNotFound: 127,
    E.CommandNotInvokable: 126,
    SomeFailed: EXIT_FAILED,
    E.CopyError: EXIT_FAILED,
    E.ExportError: EXIT_FAILED,
    E.ImageArchiveError: EXIT_FAILED,
    E.VolumeNotFound: EXIT_FAILED,
    E.VolumeInUse: EXIT_FAILED,
    E.NetworkNotFound: EXIT_FAILED,
    E.NetworkInUse: EXIT_FAILED,
    E.NetworkExists: EXIT_FAILED,
    "compose.errors.ComposeError": EXIT_FAILED,   # docker compose exits 1
    E.NerdpyError: EXIT_ERROR,
}

# command (as typed: `volume`, `container cp` -> "cp") -> exit code for nerdpy's own (125) errors
BY_COMMAND: dict[str, int] = {
    "volume": EXIT_FAILED, "network": EXIT_FAILED, "cp": EXIT_FAILED,
    "attach": EXIT_FAILED, "top": EXIT_FAILED, "rename": EXIT_FAILED,
    "export": EXIT_FAILED, "import": EXIT_FAILED, "commit": EXIT_FAILED,
    "save": EXIT_FAILED, "load": EXIT_FAILED, "compose": EXIT_FAILED,
}


def exit_code(error: BaseException, command: str | None = None) -> int:
    """docker's exit code for `error`, raised while running `command` (None: none known)."""
    code = EXIT_ERROR
    for cls in type(error).__mro__:
        found = BY_ERROR.get(cls, BY_ERROR.get(_dotted(cls)))
        if found is not None:
            code = found
            break
    if code == EXIT_ERROR and command in BY_COMMAND:
        code = BY_COMMAND[command]
    return code


def is_reported(error: BaseException) -> bool:
    """Whether the CLI reports `error` as one line with a table code (nerdpy's or compose's)."""
    return isinstance(error, E.NerdpyError) or any(_dotted(c) in BY_ERROR for c in type(error).__mro__)


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


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
