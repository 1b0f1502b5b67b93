"""The compose project model: small dataclasses holding already-normalised values.

Conventions for the code that runs a project (``up``, ``down``, ...):
- durations are float seconds, sizes int bytes, None means "not set" (use the image's or the
  engine's default);
- `command` / `entrypoint` are lists (a string was split like a shell would) or None when not
  set; an empty list means "explicitly empty" (``entrypoint: []`` clears the image's one);
- `environment` is a dict; a value of None means the variable was listed without a value and is
  not set in the environment nerdpy runs in: do not pass it;
- `ports` are expanded: one Port per container port, `published` a string (a single port, a
  host range to choose from, or None for a random host port);
- `depends_on` is always a map name -> DependsOn(condition, required, restart), including the
  implicit dependency of ``network_mode: service:x``;
- relative paths (bind sources, env files, secret and config files) are absolute;
- names that exist outside the project (networks, volumes, secrets, configs) are in `.name`
  (e.g. "myproj_default"); the keys of the dicts are the names used inside the compose file.

`load_project(...)` (compose.loader) builds a Project; `Project.startup_levels()` gives the
dependency order and raises CycleError on cycles; compose.render turns a Project back into a
compose document (`compose config`) and gives a service's config hash. This module imports
nothing of compose but errors and units: everything else builds on it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from compose.errors import CycleError, ModelError
from compose.units import format_duration

CONDITION_STARTED = "service_started"
CONDITION_HEALTHY = "service_healthy"
CONDITION_COMPLETED = "service_completed_successfully"

# docker compose's label keys, for the engineers that create the containers
LABEL_PROJECT = "com.docker.compose.project"
LABEL_SERVICE = "com.docker.compose.service"
LABEL_NUMBER = "com.docker.compose.container-number"
LABEL_ONEOFF = "com.docker.compose.oneoff"
LABEL_CONFIG_HASH = "com.docker.compose.config-hash"
LABEL_DEPENDS_ON = "com.docker.compose.depends_on"
LABEL_WORKING_DIR = "com.docker.compose.project.working_dir"
LABEL_CONFIG_FILES = "com.docker.compose.project.config_files"
LABEL_NETWORK = "com.docker.compose.network"
LABEL_VOLUME = "com.docker.compose.volume"


@dataclass
class Port:
    target: int
    published: str | None = None      # "8080", "8000-8010" (choose from the range), None: random
    host_ip: str | None = None
    protocol: str = "tcp"             # tcp | udp | sctp
    mode: str = "ingress"
    name: str | None = None
    app_protocol: str | None = None

    @property
    def published_range(self) -> tuple[int, int] | None:
        """(first, last) host port, or None for a random one."""
        if not self.published:
            return None
        lo, _, hi = self.published.partition("-")
        lo_i = int(lo)
        if lo_i == 0 and not hi:
            return None
        return lo_i, int(hi) if hi else lo_i


@dataclass
class ServiceVolume:
    type: str                          # bind | volume | tmpfs (also npipe, image, cluster as given)
    target: str
    source: str | None = None          # bind: absolute host path; volume: key of Project.volumes, None = anonymous
    read_only: bool = False
    create_host_path: bool = False     # bind: create the source directory if missing (short syntax: True)
    propagation: str | None = None     # bind
    selinux: str | None = None         # bind: "z" or "Z"
    nocopy: bool = False               # volume: do not copy the image's content into a new volume
    subpath: str | None = None         # volume
    tmpfs_size: int | None = None      # tmpfs: bytes
    tmpfs_mode: int | None = None      # tmpfs: file mode
    consistency: str | None = None


@dataclass
class ServiceNetwork:
    aliases: list[str] = field(default_factory=list)
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    mac_address: str | None = None
    priority: int = 0
    link_local_ips: list[str] = field(default_factory=list)
    driver_opts: dict[str, str] = field(default_factory=dict)
    unmodelled: dict = field(default_factory=dict)   # gw_priority, interface_name, as written


@dataclass
class DependsOn:
    condition: str = CONDITION_STARTED   # service_started | service_healthy | service_completed_successfully
    required: bool = True                # False: a missing/failed dependency only warns
    restart: bool = False                # restart this service when the dependency is restarted


@dataclass
class Healthcheck:
    test: list[str] | None = None        # ["CMD", ...], ["CMD-SHELL", "cmd"], ["NONE"]; None: the image's
    interval: float | None = None
    timeout: float | None = None
    start_period: float | None = None
    start_interval: float | None = None
    retries: int | None = None
    disable: bool = False

    @property
    def disabled(self) -> bool:
        return self.disable or (self.test is not None and self.test[:1] == ["NONE"])


@dataclass
class Ulimit:
    soft: int
    hard: int


@dataclass
class Logging:
    driver: str | None = None            # None: the default (json-file)
    options: dict[str, str] = field(default_factory=dict)


@dataclass
class Device:
    source: str
    target: str
    permissions: str = "rwm"


@dataclass
class Resources:
    cpus: float | None = None
    memory: int | None = None
    pids: int | None = None


@dataclass
class RestartPolicy:
    condition: str = "any"               # none | on-failure | any
    delay: float | None = None
    max_attempts: int | None = None
    window: float | None = None


@dataclass
class Deploy:
    replicas: int | None = None
    limits: Resources = field(default_factory=Resources)
    reservations: Resources = field(default_factory=Resources)
    restart_policy: RestartPolicy | None = None
    labels: dict[str, str] = field(default_factory=dict)
    mode: str | None = None
    unmodelled: dict = field(default_factory=dict)   # placement, update_config, ... and resources.<part>.<key>, as written


@dataclass
class ServiceSecret:
    source: str                          # key of Project.secrets
    target: str                          # absolute path in the container (/run/secrets/<source>)
    uid: str | None = None
    gid: str | None = None
    mode: int | None = None              # None: 0o444 (docker compose's default for file secrets)


@dataclass
class ServiceConfig:
    source: str                          # key of Project.configs
    target: str                          # absolute path in the container (/<source>)
    uid: str | None = None
    gid: str | None = None
    mode: int | None = None


@dataclass
class Hook:
    """A post_start / pre_stop hook: a command exec'd in the container (docker compose 2.30+)."""
    command: list[str]
    user: str | None = None
    privileged: bool = False
    working_dir: str | None = None
    environment: dict[str, str | None] = field(default_factory=dict)


@dataclass
class Service:
    name: str
    image: str | None = None
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str | None] = field(default_factory=dict)   # env_file values merged in
    env_files: list[str] = field(default_factory=list)                 # absolute paths, for reference
    labels: dict[str, str] = field(default_factory=dict)
    container_name: str | None = None
    hostname: str | None = None
    domainname: str | None = None
    user: str | None = None
    working_dir: str | None = None
    ports: list[Port] = field(default_factory=list)
    expose: list[str] = field(default_factory=list)                    # "80", "53/udp", "3000-3005"
    volumes: list[ServiceVolume] = field(default_factory=list)
    tmpfs: list[str] = field(default_factory=list)                     # "/run" or "/run:size=64m,mode=1777"
    networks: dict[str, ServiceNetwork] = field(default_factory=dict)  # keys of Project.networks
    network_mode: str | None = None                                    # host, none, bridge, service:x, container:x
    depends_on: dict[str, DependsOn] = field(default_factory=dict)
    healthcheck: Healthcheck | None = None
    restart: str | None = None            # no | always | on-failure[:N] | unless-stopped (deploy.restart_policy folded in)
    deploy: Deploy | None = None
    scale: int = 1                        # scale / deploy.replicas
    stop_signal: str | None = None
    stop_grace_period: float | None = None
    init: bool | None = None
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    ulimits: dict[str, Ulimit] = field(default_factory=dict)
    sysctls: dict[str, str] = field(default_factory=dict)
    extra_hosts: list[str] = field(default_factory=list)               # "host:ip" (as docker run --add-host)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_opt: list[str] = field(default_factory=list)
    read_only: bool = False
    shm_size: int | None = None
    pid: str | None = None
    devices: list[Device] = field(default_factory=list)
    tty: bool = False
    stdin_open: bool = False
    logging: Logging | None = None
    secrets: list[ServiceSecret] = field(default_factory=list)
    configs: list[ServiceConfig] = field(default_factory=list)
    pull_policy: str | None = None        # always | never | missing | build | daily | weekly | every_<d>; None: missing
    platform: str | None = None
    profiles: list[str] = field(default_factory=list)
    mem_limit: int | None = None          # effective: mem_limit or deploy.resources.limits.memory
    cpus: float | None = None             # effective: cpus or deploy.resources.limits.cpus
    pids_limit: int | None = None         # effective: pids_limit or deploy.resources.limits.pids
    build: dict | None = None             # not implemented (kept as written, context absolute)
    group_add: list[str] = field(default_factory=list)
    oom_score_adj: int | None = None
    mac_address: str | None = None        # the first network's MAC (unless the network sets one)
    mem_reservation: int | None = None    # effective: mem_reservation or deploy.resources.reservations.memory
    memswap_limit: int | None = None      # -1: unlimited
    cpu_shares: int | None = None
    links: list[str] = field(default_factory=list)                     # "svc" or "svc:alias"
    post_start: list[Hook] = field(default_factory=list)
    pre_stop: list[Hook] = field(default_factory=list)
    userns_mode: str | None = None        # only "host" (nerdpy never remaps users)
    # namespaces, cgroup resources, volumes_from, runtime and GPUs (run's flags of the same names)
    ipc: str | None = None                # private | shareable | none | host | service:<x> | container:<x>
    uts: str | None = None                # host
    cgroup: str | None = None             # host | private
    cpuset: str | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    volumes_from: list[str] = field(default_factory=list)   # service[:ro|rw] or container:name[:ro|rw]
    runtime: str | None = None
    gpus: str | None = None               # docker's --gpus form, from gpus: or deploy's device reservations
    gpus_key: Any = None                  # the `gpus:` key as written (for `config`; deploy's stay in deploy)
    develop: dict | None = None           # `compose watch`: {"watch": [{action, path (absolute), target, ignore...}]}
    unmodelled: dict[str, Any] = field(default_factory=dict)   # valid keys nerdpy ignores, as written (for `config`)
    extensions: dict[str, Any] = field(default_factory=dict)          # x-... keys

    def dependencies(self) -> list[str]:
        return list(self.depends_on)

    def container_names(self, project: str) -> list[str]:
        """The names of the service's containers: container_name, or <project>-<service>-<n>."""
        if self.container_name:
            return [self.container_name]
        return [f"{project}-{self.name}-{i}" for i in range(1, self.scale + 1)]


@dataclass
class IpamPool:
    subnet: str | None = None
    ip_range: str | None = None
    gateway: str | None = None
    aux_addresses: dict[str, str] = field(default_factory=dict)


@dataclass
class Ipam:
    driver: str | None = None
    config: list[IpamPool] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)


@dataclass
class Network:
    name: str                                  # the real name: <project>_<key>, name:, or the external name
    driver: str | None = None                  # None: bridge
    driver_opts: dict[str, str] = field(default_factory=dict)
    ipam: Ipam | None = None
    internal: bool = False
    external: bool = False
    attachable: bool = False
    enable_ipv6: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    unmodelled: dict = field(default_factory=dict)   # enable_ipv4, as written


@dataclass
class Volume:
    name: str                                  # the real name: <project>_<key>, name:, or the external name
    driver: str | None = None                  # None: local
    driver_opts: dict[str, str] = field(default_factory=dict)
    external: bool = False
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Secret:
    name: str
    file: str | None = None                    # absolute path
    environment: str | None = None             # the value comes from this variable
    content: str | None = None                 # configs only: inline content
    external: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    unmodelled: dict = field(default_factory=dict)   # template_driver, as written


@dataclass
class Config(Secret):
    pass


@dataclass
class Project:
    name: str
    working_dir: str                           # the project directory
    files: list[str]                           # the compose files, as given ("-" for stdin)
    services: dict[str, Service]               # enabled services (profiles applied), in file order
    networks: dict[str, Network] = field(default_factory=dict)
    volumes: dict[str, Volume] = field(default_factory=dict)
    secrets: dict[str, Secret] = field(default_factory=dict)
    configs: dict[str, Config] = field(default_factory=dict)
    disabled_services: dict[str, Service] = field(default_factory=dict)  # not in an active profile
    profiles: list[str] = field(default_factory=list)                    # active profiles
    environment: dict[str, str] = field(default_factory=dict)            # used for interpolation
    extensions: dict[str, Any] = field(default_factory=dict)             # top-level x-... keys
    warnings: list[str] = field(default_factory=list)

    # -- names --------------------------------------------------------------------------------
    def service(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            if name in self.disabled_services:
                raise ModelError(f"service {name!r} is disabled (profiles: "
                                 f"{', '.join(self.disabled_services[name].profiles)})") from None
            raise ModelError(f"no such service: {name}") from None

    def all_profiles(self) -> list[str]:
        seen = set()
        for s in list(self.services.values()) + list(self.disabled_services.values()):
            seen.update(s.profiles)
        return sorted(seen)

    # -- dependency order ---------------------------------------------------------------------
    def with_dependencies(self, names: list[str] | None = None) -> list[str]:
        """`names` and everything they depend on, transitively (all services when None)."""
        if names is None:
            return list(self.services)
        out: list[str] = []
        stack = list(names)
        while stack:
            n = stack.pop()
            if n in out:
                continue
            svc = self.service(n)
            out.append(n)
            stack.extend(d for d in svc.depends_on if d in self.services)
        return [n for n in self.services if n in out]

    def startup_levels(self, names: list[str] | None = None) -> list[list[str]]:
        """Services grouped in levels that can start in parallel: every service's dependencies
        are in earlier levels. Raises CycleError for a cycle."""
        return dependency_levels(self.services, self.with_dependencies(names))

    def startup_order(self, names: list[str] | None = None) -> list[str]:
        return [n for level in self.startup_levels(names) for n in level]

    def shutdown_order(self, names: list[str] | None = None) -> list[str]:
        """Dependents before their dependencies (the reverse of startup_order)."""
        return list(reversed(self.startup_order(names)))

    def dependents(self, name: str) -> list[str]:
        """Services that depend on `name` directly."""
        return [s.name for s in self.services.values() if name in s.depends_on]


def dependency_levels(services: dict[str, Service], names: list[str] | None = None) -> list[list[str]]:
    """Kahn's algorithm over depends_on (dependencies outside `names` are ignored); levels keep
    the services' file order. Raises CycleError naming the cycle."""
    names = list(services) if names is None else list(names)
    chosen = set(names)
    deps = {n: [d for d in services[n].depends_on if d in chosen and d in services] for n in names}
    done: set[str] = set()
    levels: list[list[str]] = []
    remaining = list(names)
    while remaining:
        level = [n for n in remaining if all(d in done for d in deps[n])]
        if not level:
            raise CycleError(_find_cycle({n: deps[n] for n in remaining}))
        levels.append(level)
        done.update(level)
        remaining = [n for n in remaining if n not in done]
    return levels


def _find_cycle(graph: dict[str, list[str]]) -> list[str]:
    """One cycle in `graph` (every node of which has an unresolved dependency), as a path
    a -> b -> ... -> a."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = {n: WHITE for n in graph}
    stack: list[str] = []

    def visit(n):
        color[n] = GREY
        stack.append(n)
        for d in graph.get(n, []):
            if d not in graph:
                continue
            if color[d] == GREY:
                return stack[stack.index(d):] + [d]
            if color[d] == WHITE:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        color[n] = BLACK
        return None

    for n in graph:
        if color[n] == WHITE:
            found = visit(n)
            if found:
                return found
    return list(graph)  # not reached: a graph without a ready node has a cycle


__all__ = [
    "Project", "Service", "Network", "Volume", "Secret", "Config", "Port", "ServiceVolume",
    "ServiceNetwork", "DependsOn", "Healthcheck", "Ulimit", "Logging", "Device", "Resources",
    "RestartPolicy", "Deploy", "ServiceSecret", "ServiceConfig", "Ipam", "IpamPool",
    "dependency_levels", "format_duration",
    "CONDITION_STARTED", "CONDITION_HEALTHY", "CONDITION_COMPLETED",
]
