"""Every typed error the engine raises, in one module (the modules that raise them import them
from here). The CLI maps them to docker's exit codes and its one-line message with the one table
at the end of this module (BY_ERROR; nerdpy.exitcodes adds the command context); `exit_code` on an error reads it (125 for an error of nerdpy itself,
1 where docker uses 1, 126/127 for a command that cannot be invoked / is not found).
"""
from __future__ import annotations


class NerdpyError(Exception):
    """Base of every error the engine raises on purpose."""

    @property
    def exit_code(self) -> int:
        """docker's exit code for this error when a command fails with it (BY_ERROR below)."""
        return error_exit_code(self)


class InvalidArgument(NerdpyError):
    """Input from the user that cannot be used (bad flag value, malformed name...)."""


class InvalidReference(InvalidArgument):
    """An image reference that does not parse."""


class InvalidPlatform(InvalidArgument):
    """A platform string (os/arch[/variant]) that does not parse."""


class NotFound(NerdpyError):
    """A named object does not exist."""


class ImageNotFound(NotFound):
    """No such image in the local store."""


class Conflict(NerdpyError):
    """The operation conflicts with existing state (name in use, image in use...)."""


class RegistryError(NerdpyError):
    """The registry answered with an error, or could not be reached."""


class AuthError(RegistryError):
    """The registry refused our credentials (or asked for some we do not have)."""


class ManifestError(RegistryError):
    """A manifest or index that is malformed, unsupported, too large or inconsistent."""


class PlatformNotFound(RegistryError):
    """The image has no manifest for the requested platform."""


class DigestMismatch(NerdpyError):
    """Content whose digest or size differs from what its descriptor promised."""


class LayerError(NerdpyError):
    """A layer that cannot be applied (corrupt archive, unsupported compression...)."""


class UnsafeLayer(LayerError):
    """A layer that tries to write outside its target or otherwise breaks containment."""


class StoreError(NerdpyError):
    """The local store is inconsistent or cannot be used."""


class DamagedStore(StoreError):
    """The metadata DB is missing or damaged while the data root holds content (`system check
    --repair` rebuilds it)."""


class LockTimeout(StoreError):
    """A lock another process holds was not released in time."""


class TemplateError(InvalidArgument):
    """A --format template that does not parse or cannot be rendered (nerdpy.template)."""


class MountError(NerdpyError):
    """A mount or unmount failed."""


class RuncError(NerdpyError):
    """runc failed (its last error message)."""


# -- containers -------------------------------------------------------------------------------
class ContainerNotFound(NotFound):
    """No such container."""


class ContainerError(NerdpyError):
    """The Client's `run(..., detach=False)` or `exec(..., check=True)`: the process exited non-zero."""

    def __init__(self, message: str, exit_code: int, output: str = ""):
        super().__init__(message)
        self.exit_status = exit_code
        self.output = output


class CommandNotFound(NerdpyError):
    """The container's command does not exist (docker exits 127)."""


class CommandNotInvokable(NerdpyError):
    """The container's command exists but cannot be run (docker exits 126)."""


class CopyError(NerdpyError):
    """A copy that cannot be done (missing path, directory onto a file, ...). docker exits 1."""


class PathNotFound(CopyError, NotFound):
    """`cp`: the source path does not exist."""


class BadStream(CopyError):
    """The tar stream ended early or is not a tar (the sender may have failed)."""


class ExportError(NerdpyError):
    """A container export or a filesystem import that cannot be done (unreadable source, corrupt
    archive...); exit 1."""


class ImageArchiveError(InvalidArgument):
    """An image archive (`load`) that cannot be loaded (empty, corrupt, unsafe, inconsistent)."""


# -- volumes ----------------------------------------------------------------------------------
class VolumeNotFound(NotFound):
    """No such volume."""


class VolumeInUse(Conflict):
    """The volume is used by a container (even a stopped one)."""


# -- networks ---------------------------------------------------------------------------------
class NetworkError(NerdpyError):
    """Setting up or tearing down a container's network failed."""


class CniError(NetworkError):
    """A CNI plugin failed: its error code, message and details as the spec's error result."""

    def __init__(self, plugin: str, command: str, code: int, msg: str, details: str = ""):
        self.plugin = plugin
        self.command = command
        self.code = code
        self.msg = msg
        self.details = details
        text = f"CNI plugin {plugin} ({command}) failed: {msg}"
        if details and details not in msg:
            text += f": {details}"
        super().__init__(text)


class NetworkNotFound(NotFound):
    """No such network."""


class NetworkInUse(Conflict):
    """The network has containers attached (or configured to attach)."""


class NetworkExists(Conflict):
    """A network with that name exists already."""


class PortInUse(Conflict):
    """A host port asked for with -p is taken (by a host process or another container)."""


class InvalidPort(InvalidArgument):
    """A -p/--publish value that does not parse."""


# -- registries -------------------------------------------------------------------------------
class ManifestNotFound(NotFound):
    """The registry has no such tag or digest."""


class UploadRetryable(RegistryError):
    """A failure worth trying again: 5xx/429 answers, dropped connections."""


# docker's exit codes ----------------------------------------------------------------------------
# The one table (with nerdpy.exitcodes.BY_COMMAND, the command's context for nerdpy's own errors)
EXIT_ERROR = 125    # an error of nerdpy itself (docker's daemon/CLI error code)
EXIT_FAILED = 1     # the operation failed, where docker says 1


class CommandError(NerdpyError):
    """A command's own refusal (`cowardly refusing to save to a terminal`...): one line, the
    command's exit code."""


class SomeFailed(NerdpyError):
    """A command on several objects where some failed, each already reported on its own line
    (docker exits 1); nothing more is printed."""

    def __init__(self) -> None:
        super().__init__("")


# error class (or, for compose's, its dotted name) -> exit code; the nearest along the MRO wins
BY_ERROR: dict[type | str, int] = {
    CommandNotFound: 127,
    CommandNotInvokable: 126,
    SomeFailed: EXIT_FAILED,
    CopyError: EXIT_FAILED,
    ExportError: EXIT_FAILED,
    ImageArchiveError: EXIT_FAILED,
    VolumeNotFound: EXIT_FAILED,
    ContainerNotFound: EXIT_FAILED,   # docker: "No such container: X", exit 1 (run/create: 125)
    ImageNotFound: EXIT_FAILED,       # docker: "No such image: X", exit 1 (run/create: 125)
    VolumeInUse: EXIT_FAILED,
    NetworkNotFound: EXIT_FAILED,
    NetworkInUse: EXIT_FAILED,
    NetworkExists: EXIT_FAILED,
    "compose.errors.ComposeError": EXIT_FAILED,   # docker compose exits 1
    NerdpyError: EXIT_ERROR,
}


def error_exit_code(error: BaseException) -> int:
    """docker's exit code for `error` by its class (the nearest along the MRO in BY_ERROR)."""
    for cls in type(error).__mro__:
        found = BY_ERROR.get(cls, BY_ERROR.get(f"{cls.__module__}.{cls.__qualname__}"))
        if found is not None:
            return found
    return EXIT_ERROR
