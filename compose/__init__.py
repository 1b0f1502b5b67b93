"""The compose implementation: a client of nerdpy.engine's public API only.

Loading (no container runtime needed): `load_project(...)` turns compose files into a validated,
normalised `Project` (see compose.model for the dataclasses and their conventions, and
compose.loader for the steps). Errors are `compose.errors.ComposeError` subclasses carrying the
file and line.
"""
from compose.errors import ComposeError, CycleError
from compose.model import (
    Config, DependsOn, Deploy, Device, Healthcheck, Logging, Network, Port, Project, Resources,
    RestartPolicy, Secret, Service, ServiceConfig, ServiceNetwork, ServiceSecret, ServiceVolume,
    Ulimit, Volume, dependency_levels, load_project,
)

__all__ = [
    "ComposeError", "CycleError", "Config", "DependsOn", "Deploy", "Device", "Healthcheck", "Logging",
    "Network", "Port", "Project", "Resources", "RestartPolicy", "Secret", "Service", "ServiceConfig",
    "ServiceNetwork", "ServiceSecret", "ServiceVolume", "Ulimit", "Volume", "dependency_levels", "load_project",
]
