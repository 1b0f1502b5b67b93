"""Typed errors raised by the engine. The CLI maps them to messages and exit codes.

Every error carries `exit_code` (docker's conventions: 125 for an error of nerdpy itself,
1 for inspect-style lookups that find nothing).
"""
from __future__ import annotations


class NerdpyError(Exception):
    """Base of every error the engine raises on purpose."""

    exit_code = 125


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
