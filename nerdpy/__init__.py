"""nerdpy: a Docker-compatible container command line with an embedded, daemonless engine.

As a library: ``from nerdpy import Client`` (see nerdpy.client and docs/python-api.md). Names are
resolved on first use, so ``import nerdpy`` stays cheap (the CLI imports it on every start).
"""

__version__ = "0.1.0"

_LAZY = {
    "Client": "nerdpy.client",
    "Container": "nerdpy.client",
    "ComposeProject": "nerdpy.client",
    "ExecResult": "nerdpy.client",
    "ContainerError": "nerdpy.engine.errors",
    "ContainerNotFound": "nerdpy.engine.errors",
    "CommandNotFound": "nerdpy.engine.errors",
    "CommandNotInvokable": "nerdpy.engine.errors",
    "VolumeNotFound": "nerdpy.engine.errors",
    "VolumeInUse": "nerdpy.engine.errors",
    "NetworkNotFound": "nerdpy.engine.errors",
    "NetworkInUse": "nerdpy.engine.errors",
    "NerdpyError": "nerdpy.engine.errors",
    "NotFound": "nerdpy.engine.errors",
    "ImageNotFound": "nerdpy.engine.errors",
    "Conflict": "nerdpy.engine.errors",
    "InvalidArgument": "nerdpy.engine.errors",
    "InvalidReference": "nerdpy.engine.errors",
    "RegistryError": "nerdpy.engine.errors",
    "AuthError": "nerdpy.engine.errors",
    "PlatformNotFound": "nerdpy.engine.errors",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nerdpy' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
