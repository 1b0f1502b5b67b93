"""Typed errors of the compose loader.

Every error carries the file and, where one is known, the line it is about, so that the command
line can print one line such as ``nerdpy: compose.yaml:12: services.web.ports: ...`` and exit 1
(the exit code comes from nerdpy.exitcodes' table, as for the engine's errors).
"""
from __future__ import annotations


class ComposeError(Exception):
    """An error in the user's compose files or options (docker compose exits 1 for these)."""

    @property
    def exit_code(self) -> int:
        from nerdpy.exitcodes import exit_code

        return exit_code(self)

    def __init__(self, message: str, file: str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def where(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        return self.file or ""

    def __str__(self) -> str:
        where = self.where()
        return f"{where}: {self.message}" if where else self.message


class FileNotFound(ComposeError):
    """No compose file, a missing -f file, env file, secret file or extends file."""


class YAMLSyntaxError(ComposeError):
    """The file is not YAML, or not a mapping at the top, or has a duplicate key."""


class InterpolationError(ComposeError):
    """A required variable is missing (``${VAR:?err}``) or a ``${...}`` is malformed."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None,
                 variable: str | None = None):
        super().__init__(message, file, line)
        self.variable = variable


class SchemaError(ComposeError):
    """The file does not follow the compose specification's schema."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None,
                 path: str | None = None):
        super().__init__(message, file, line)
        self.path = path


class ExtendsError(ComposeError):
    """``extends`` names a missing service or file, or extends itself in a loop."""


class ModelError(ComposeError):
    """The files are well-formed but the model is not: an undefined service, network, volume,
    secret or config; a value that does not parse (a port, a duration, a size); conflicting keys;
    or a service that nerdpy cannot run (``build:`` without ``image:``)."""


class CycleError(ModelError):
    """``depends_on`` (or network_mode: service:x) forms a cycle."""

    def __init__(self, cycle: list[str], file: str | None = None, line: int | None = None):
        super().__init__("dependency cycle detected: " + " -> ".join(cycle), file, line)
        self.cycle = cycle


class ProjectNameError(ComposeError):
    """``-p``, ``COMPOSE_PROJECT_NAME`` or ``name:`` is not a valid project name."""


class ComposeRuntimeError(ComposeError):
    """Running the project failed (a dependency, a container, an image): exit 1."""


class DependencyError(ComposeRuntimeError):
    """A service could not start because a dependency failed (the dependency's error is the
    one reported)."""


class Aborted(ComposeRuntimeError):
    """`up --abort-on-container-exit`: a container exited, so the others were stopped."""
