"""The compose implementation: a client of nerdpy.engine's public API only.

Loading (no container runtime needed): `load_project(...)` turns compose files into a validated,
normalised `Project` (see compose.model for the dataclasses and their conventions, and
compose.loader for the steps). Errors are `compose.errors.ComposeError` subclasses carrying the
file and line. `load_project` is imported from compose.loader on first use (it brings the YAML
parser), so that `import compose.model` stays cheap.
"""
from compose.errors import ComposeError, CycleError
from compose.model import (
    Config, DependsOn, Deploy, Device, Healthcheck, Logging, Network, Port, Project, Resources,
    RestartPolicy, Secret, Service, ServiceConfig, ServiceNetwork, ServiceSecret, ServiceVolume,
    Ulimit, Volume, dependency_levels,
)

__all__ = [
    "ComposeError", "CycleError", "Config", "DependsOn", "Deploy", "Device", "Healthcheck", "Logging",
    "Network", "Port", "Project", "Resources", "RestartPolicy", "Secret", "Service", "ServiceConfig",
    "ServiceNetwork", "ServiceSecret", "ServiceVolume", "Ulimit", "Volume", "dependency_levels", "load_project",
]


def __getattr__(name: str):
    if name == "load_project":
        from compose.loader import load_project

        return load_project
    raise AttributeError(f"module 'compose' has no attribute {name!r}")
