"""nerdpy as a Python library: containers without Docker, from a test suite or a script.

    from nerdpy import Client

    with Client(data_root="/tmp/np") as client:
        client.pull("127.0.0.1:5000/library/busybox")
        with client.run("127.0.0.1:5000/library/busybox", ["sleep", "300"], name="box") as box:
            code, out = box.exec(["echo", "hello"])        # (0, "hello\\n")
        # leaving the block removed the container

Everything here is built on the calls the command line makes (nerdpy.engine.distribution.pull.pull_image,
nerdpy.engine.containers.lifecycle.create_container / prepare_start / stop_container / remove_container,
nerdpy.engine.containers.logs.read_logs, nerdpy.engine.containers.exec.exec_argv, ...), so a container started from
Python is the same as one started by `nerdpy run`: `nerdpy ps` lists it, `nerdpy logs` reads it.
Errors are the engine's typed errors (re-exported here: NerdpyError, NotFound, Conflict, ...).
There is no daemon: a Client is only a handle on a data root; it can be closed and re-opened, and
containers go on running without it. See docs/python-api.md.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from nerdpy.engine.errors import (  # noqa: F401  (re-exported: the API's typed errors)
    AuthError,
    Conflict,
    ContainerError,
    ContainerNotFound,
    DigestMismatch,
    ImageNotFound,
    InvalidArgument,
    InvalidReference,
    ManifestError,
    NerdpyError,
    NetworkError,
    NetworkInUse,
    NetworkNotFound,
    NotFound,
    PlatformNotFound,
    RegistryError,
    StoreError,
    VolumeInUse,
    VolumeNotFound,
)

if TYPE_CHECKING:
    from compose.model import Project
    from nerdpy.engine.containers.records import Container as _EngineContainer, ContainerState, StoredSpec
    from nerdpy.engine.images.image import Image
    from nerdpy.engine.network.networks import Network
    from nerdpy.engine.store import Store
    from nerdpy.engine.containers.volumes import Volume

__all__ = [
    "Client", "Container", "ExecResult", "ComposeProject",
    "NerdpyError", "NotFound", "ImageNotFound", "ContainerNotFound", "Conflict", "InvalidArgument",
    "InvalidReference", "RegistryError", "AuthError", "ManifestError", "PlatformNotFound",
    "DigestMismatch", "StoreError", "ContainerError",
]


@dataclass(frozen=True)
class ExecResult:
    """What `Container.exec` returns; unpacks as `exit_code, output = ...`."""

    exit_code: int
    output: str          # stdout and stderr as the process wrote them (stdout only with demux=True)
    stderr: str = ""     # with demux=True

    def __iter__(self) -> Iterator:
        return iter((self.exit_code, self.output))


# the client ------------------------------------------------------------------------------
class Client:
    """A handle on one data root and namespace (the same settings the CLI reads: defaults, then
    /etc/nerdpy/nerdpy.toml or $NERDPY_CONFIG, then NERDPY_* variables, then these arguments)."""

    def __init__(self, data_root: str | None = None, namespace: str | None = None, *,
                 run_root: str | None = None, insecure_registries: Sequence[str] | None = None,
                 hosts_dirs: Sequence[str] | None = None, runc: str | None = None,
                 debug: bool | None = None, env: Mapping[str, str] | None = None):
        from nerdpy.engine.config import load_settings

        overrides = {
            "data_root": os.path.abspath(data_root) if data_root else None,
            "namespace": namespace,
            "run_root": os.path.abspath(run_root) if run_root else None,
            "insecure_registries": list(insecure_registries) if insecure_registries else None,
            "hosts_dirs": list(hosts_dirs) if hosts_dirs else None,
            "runc": runc,
            "debug": debug,
        }
        self.settings = load_settings(overrides, env=None if env is None else dict(env))
        self._store: Store | None = None

    # the store is opened on first use (a SQLite connection and a few directories)
    @property
    def store(self) -> Store:
        if self._store is None:
            from nerdpy.engine.store import open_store

            self._store = open_store(self.settings)
        return self._store

    @property
    def data_root(self) -> str:
        return self.settings.data_root

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(data_root={self.data_root!r}, namespace={self.namespace!r})"

    # -- images ----------------------------------------------------------------------------
    def pull(self, reference: str, *, platform: str | None = None, progress=None) -> Image:
        """`nerdpy pull`: fetch an image (and unpack it) into the store; the image.
        `progress`, if given, is called with each nerdpy.engine.distribution.pull.PullEvent."""
        from nerdpy.engine.images.image import resolve_image
        from nerdpy.engine.distribution.pull import pull_image

        result = pull_image(self.store, reference, platform=platform, progress=progress)
        return resolve_image(self.store, result.reference)

    def images(self) -> list[Image]:
        """Every image name in this namespace (nerdpy.engine.images.image.Image: name, id, target...)."""
        from nerdpy.engine.images.image import list_images

        return [i for i in list_images(self.store) if not i.dangling]

    def image(self, reference: str) -> Image:
        """One image by name, ID or ID prefix; ImageNotFound if there is none."""
        from nerdpy.engine.images.image import resolve_image

        return resolve_image(self.store, reference)

    def tag(self, source: str, target: str) -> Image:
        from nerdpy.engine.images.image import tag_image

        return tag_image(self.store, source, target)

    def remove_image(self, reference: str, *, force: bool = False) -> list[str]:
        """`nerdpy rmi`: the lines docker prints (Untagged: ..., Deleted: ...)."""
        from nerdpy.engine.content.gc import collect_garbage
        from nerdpy.engine.images.image import remove_image

        in_use = {c.image_id for c in self._engine_containers()}
        lines = remove_image(self.store, reference, force=force, in_use=in_use)
        collect_garbage(self.store)  # takes the GC lock itself; skips while content is being added
        return lines

    # -- containers ------------------------------------------------------------------------
    def create(self, image: str, command: str | Sequence[str] | None = None, **options: Any) -> Container:
        """`nerdpy create`: a container, not started. Takes the options of `run` (but `detach`)."""
        options.pop("detach", None)
        spec, pull, platform = _spec(image, command, options)
        self._ensure_image(image, pull, platform)
        from nerdpy.engine.containers.lifecycle import create_container

        return Container(self, create_container(self.store, spec))

    def run(self, image: str, command: str | Sequence[str] | None = None, *, detach: bool = True,
            **options: Any) -> Container:
        """`nerdpy run -d`: create and start a container; the Container.

        command: a list (the argv) or a string (split like a shell would, without expansion).
        Options, in docker's terms (see docs/python-api.md for all):
          name, env (dict or ["K=V"]), ports ({"80/tcp": 8080} or ["8080:80"]),
          volumes ({"data": "/data", "/host": {"bind": "/ctr", "mode": "ro"}} or ["data:/data"]),
          tmpfs ({"/run": "size=64m"}), network ("bridge", "none", "host", a network's name, or a
          list of names), network_aliases, entrypoint, workdir, user, hostname, labels, restart,
          remove (docker's --rm), privileged, cap_add, cap_drop, memory ("64m" or bytes), cpus,
          pids_limit, read_only, init, healthcheck (docker's Healthcheck dict, in nanoseconds),
          stop_signal, stop_timeout, extra_hosts, dns, log_opts, pull ("missing", "always",
          "never"), platform; and any other field of nerdpy.engine.containers.records.ContainerSpec.
        detach=False waits for the container to exit and raises ContainerError (with its logs)
        if it exited non-zero, as docker-py does.
        """
        c = self.create(image, command, **options)
        try:
            c.start()
        except BaseException:
            if not c.spec.auto_remove:
                try:
                    c.remove(force=True)
                except NerdpyError:
                    pass
            raise
        if detach:
            return c
        code = c.wait()
        if code != 0:
            output = ""
            try:
                output = c.logs()
            except NerdpyError:
                pass
            raise ContainerError(f"container {c.name} exited with code {code}", code, output)
        return c

    def containers(self, all: bool = True) -> list[Container]:  # noqa: A002 (docker's name)
        """Containers of this namespace, newest first; `all=False`: running ones only (ps)."""
        out = [Container(self, c) for c in self._engine_containers()]
        return out if all else [c for c in out if c.running]

    def container(self, name_or_id: str) -> Container:
        """By name, ID or unique ID prefix; ContainerNotFound if there is none."""
        from nerdpy.engine.containers.records import find_container

        return Container(self, find_container(self.store, name_or_id))

    def _engine_containers(self) -> list[_EngineContainer]:
        from nerdpy.engine.containers.records import list_containers

        return list_containers(self.store)

    def _ensure_image(self, image: str, pull: str, platform: str | None) -> None:
        from nerdpy.engine.images.image import lookup_images

        if pull not in ("missing", "always", "never"):
            raise InvalidArgument(f"invalid pull policy {pull!r}: missing, always or never")
        have = bool(lookup_images(self.store, image))
        if pull == "always" or (not have and pull == "missing"):
            self.pull(image, platform=platform)
        elif not have:
            raise ImageNotFound(f"No such image: {image}")

    # -- networks --------------------------------------------------------------------------
    def create_network(self, name: str, *, driver: str = "bridge", subnet: str | None = None,
                       gateway: str | None = None, ip_range: str | None = None, internal: bool = False,
                       labels: Mapping[str, str] | None = None, options: Mapping[str, str] | None = None) -> Network:
        """`nerdpy network create`."""
        from nerdpy.engine.network.networks import create_network

        return create_network(self.store, name, driver=driver, subnet=subnet, gateway=gateway,
                              ip_range=ip_range, internal=internal, labels=dict(labels or {}),
                              options=dict(options or {}))

    def networks(self) -> list[Network]:
        """`nerdpy network ls` (the records: bridge and user networks)."""
        from nerdpy.engine.network.networks import list_networks

        return list_networks(self.store)

    def network(self, name_or_id: str) -> Network:
        from nerdpy.engine.network.networks import find_network

        return find_network(self.store, name_or_id)

    def remove_network(self, name_or_id: str) -> None:
        """`nerdpy network rm`: refused (NetworkInUse) while a container uses it."""
        from nerdpy.engine.network.networks import remove_network

        remove_network(self.store, name_or_id)

    # -- volumes ---------------------------------------------------------------------------
    def create_volume(self, name: str | None = None, *, labels: Mapping[str, str] | None = None) -> Volume:
        """`nerdpy volume create` (an existing volume of that name is returned as it is)."""
        from nerdpy.engine.containers.volumes import create_volume

        return create_volume(self.store, name, labels=dict(labels or {}))

    def volumes(self) -> list[Volume]:
        from nerdpy.engine.containers.volumes import list_volumes

        return list_volumes(self.store)

    def volume(self, name: str) -> Volume:
        from nerdpy.engine.containers.volumes import find_volume

        return find_volume(self.store, name)

    def remove_volume(self, name: str, *, force: bool = False) -> None:
        """`nerdpy volume rm`: refused (VolumeInUse) while a container, even a stopped one, uses it."""
        from nerdpy.engine.containers.volumes import remove_volume

        remove_volume(self.store, name, force=force)

    # -- compose ---------------------------------------------------------------------------
    def compose(self, *files: str, project_name: str | None = None, project_directory: str | None = None,
                env_files: Sequence[str] | None = None, profiles: Sequence[str] | None = None,
                environ: Mapping[str, str] | None = None) -> ComposeProject:
        """A compose project (`nerdpy compose -f FILE -p NAME ...`): loaded now, validated, with
        up(), down(), ps() and the services' containers. No files: compose.yaml (or another
        default name) in the current directory or a parent, as the CLI finds it."""
        from compose.loader import load_project

        warnings: list[str] = []
        project = load_project(list(files) or None, project_name=project_name,
                               project_directory=project_directory, env_files=list(env_files or []) or None,
                               profiles=list(profiles) if profiles else None, environ=environ,
                               on_warning=warnings.append)
        return ComposeProject(self, project, warnings)


# options of run/create -> ContainerSpec --------------------------------------------------
_SPEC_FIELDS: set[str] | None = None


def _spec_fields() -> set[str]:
    global _SPEC_FIELDS
    if _SPEC_FIELDS is None:
        from nerdpy.engine.containers.records import ContainerSpec

        _SPEC_FIELDS = {f.name for f in fields(ContainerSpec)}
    return _SPEC_FIELDS


def _size(value: int | str | None, what: str) -> int | None:
    if value is None:
        return None
    from nerdpy.engine.util.units import parse_size

    try:
        return parse_size(value)
    except ValueError:
        raise InvalidArgument(f"invalid {what}: {value!r}") from None


def _env(env) -> list[str]:
    if env is None:
        return []
    if isinstance(env, Mapping):
        return [f"{k}={v}" for k, v in env.items()]
    return [str(e) for e in env]


def _ports(ports) -> list[str]:
    """docker-py's {"80/tcp": 8080, "53/udp": ("127.0.0.1", 5353), "9000": None} or -p strings."""
    if ports is None:
        return []
    if isinstance(ports, Mapping):
        out = []
        for ctr, host in ports.items():
            ctr = str(ctr)
            hosts = host if isinstance(host, list) else [host]
            for h in hosts:
                if h is None:
                    out.append(ctr)
                elif isinstance(h, tuple):
                    out.append(f"{h[0]}:{h[1] if len(h) > 1 and h[1] is not None else ''}:{ctr}")
                else:
                    out.append(f"{h}:{ctr}")
        return out
    return [str(p) for p in ports]


def _volumes(volumes) -> list:
    """{"name": "/ctr", "/host": {"bind": "/ctr", "mode": "ro"}} or ["name:/ctr:ro", "/anon"]:
    docker's -v forms, parsed as the CLI parses them."""
    from nerdpy.engine.containers.options import parse_volume

    if volumes is None:
        return []
    if isinstance(volumes, Mapping):
        texts = []
        for src, dst in volumes.items():
            if isinstance(dst, Mapping):
                texts.append(f"{src}:{dst['bind']}:{dst.get('mode', 'rw')}")
            else:
                texts.append(f"{src}:{dst}")
        return [parse_volume(t) for t in texts]
    return [parse_volume(str(v)) for v in volumes]


def _tmpfs(tmpfs) -> list:
    """{"/run": "size=64m"} or ["/run:size=64m"]: docker's --tmpfs forms."""
    from nerdpy.engine.containers.options import parse_tmpfs

    if tmpfs is None:
        return []
    if isinstance(tmpfs, Mapping):
        return [parse_tmpfs(f"{t}:{o}" if o else str(t)) for t, o in tmpfs.items()]
    return [parse_tmpfs(str(t)) for t in tmpfs]


def _networks(network, aliases) -> tuple[str, list[dict]]:
    """network: a name or a list of names (the first gets the aliases), as the CLI's --network."""
    from nerdpy.engine.containers.options import networks_of

    nets = [network] if isinstance(network, str) else list(network or [])
    return networks_of(nets, list(aliases or []))


def _spec(image: str, command, options: dict):
    from nerdpy.engine.containers.records import ContainerSpec

    o = dict(options)
    pull = o.pop("pull", "missing")
    platform = o.pop("platform", None)
    if isinstance(command, str):
        import shlex

        command = shlex.split(command)
    entrypoint = o.pop("entrypoint", None)
    if isinstance(entrypoint, str):
        entrypoint = [entrypoint] if entrypoint else []
    network, attachments = _networks(o.pop("network", None), o.pop("network_aliases", None))
    mounts = _volumes(o.pop("volumes", None)) + _tmpfs(o.pop("tmpfs", None)) + list(o.pop("mounts", []))
    kw: dict = {
        "image": image,
        "cmd": list(command) if command else None,
        "entrypoint": list(entrypoint) if entrypoint is not None else None,
        "env": _env(o.pop("env", None)),
        "publish": _ports(o.pop("ports", None)),
        "mounts": mounts,
        "network": network,
        "networks": attachments,
        "auto_remove": bool(o.pop("remove", o.pop("auto_remove", False))),
        "labels": dict(o.pop("labels", None) or {}),
        "memory": _size(o.pop("memory", None), "memory"),
        "shm_size": _size(o.pop("shm_size", None), "shm_size"),
        "workdir": o.pop("workdir", o.pop("working_dir", None)),
    }
    if "command" in o:
        raise TypeError("pass the command as the second argument")
    unknown = sorted(k for k in o if k not in _spec_fields())
    if unknown:
        raise TypeError(f"unknown option(s) for run/create: {', '.join(unknown)}")
    kw.update(o)
    from nerdpy.engine.containers.options import check_spec

    spec = ContainerSpec(**kw)
    check_spec(spec)  # before any pull: the CLI's checks, the CLI's messages
    return spec, pull, platform


# containers ------------------------------------------------------------------------------
class Container:
    """A container of a Client's store: a handle, re-read from disk whenever asked (status,
    exit_code, ...); `reload()` refreshes the record (after a rename, say)."""

    def __init__(self, client: Client, record: _EngineContainer):
        self.client = client
        self._c = record

    # identity
    @property
    def id(self) -> str:
        return self._c.id

    @property
    def short_id(self) -> str:
        return self._c.id[:12]

    @property
    def name(self) -> str:
        return self._c.name

    @property
    def image(self) -> str:
        return self._c.image

    @property
    def spec(self) -> StoredSpec:
        """What was asked for: the record's ContainerSpec (attributes: memory, mounts, ...),
        with what create resolved from the image (args, resolved_workdir, image_config)."""
        return self._c.spec

    @property
    def labels(self) -> dict[str, str]:
        return dict(self._c.spec.labels or {})

    def __repr__(self) -> str:
        return f"<Container {self.short_id} {self.name!r}>"

    def __eq__(self, other) -> bool:
        return isinstance(other, Container) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def _store(self) -> Store:
        return self.client.store

    # state
    def reload(self) -> Container:
        """Re-read the record; ContainerNotFound once it has been removed."""
        from nerdpy.engine.containers.records import find_container

        self._c = find_container(self._store, self.id)
        return self

    def state(self) -> ContainerState:
        """The monitor's records, checked against the processes that exist (as `ps` does)."""
        from nerdpy.engine.containers.records import container_state

        return container_state(self._store, self._c)

    @property
    def status(self) -> str:
        """created, running, paused, restarting, exited, dead; "removed" once it is gone."""
        if not self.exists():
            return "removed"
        return self.state().status

    @property
    def running(self) -> bool:
        return self.exists() and self.state().running

    @property
    def exit_code(self) -> int | None:
        st = self.state()
        return None if st.running or st.status == "created" else st.exit_code

    @property
    def health(self) -> str | None:
        """healthy, unhealthy, starting, or None without a healthcheck."""
        h = self.state().health
        return (h or {}).get("Status")

    def exists(self) -> bool:
        row = self._store.db.query_one("SELECT 1 FROM containers WHERE namespace = ? AND id = ?",
                                       (self._store.namespace, self.id))
        return row is not None

    def inspect(self) -> dict:
        """What `nerdpy inspect` prints for it (docker's shape)."""
        from nerdpy.engine.containers.inspect import container_json

        return container_json(self._store, self._c)

    # lifecycle
    def start(self) -> None:
        from nerdpy.engine.containers.lifecycle import prepare_start

        prepare_start(self._store, self._c).start()

    def stop(self, timeout: int | None = None, signal: str | None = None) -> None:
        """The stop signal, then KILL after `timeout` seconds (default: the container's, else 10).
        A restart policy honours it, as with docker."""
        from nerdpy.engine.containers.lifecycle import stop_container

        stop_container(self._store, self._c, timeout=timeout, sig=signal)

    def restart(self, timeout: int | None = None) -> None:
        self.stop(timeout)
        self.start()

    def kill(self, signal: str | int = "KILL") -> None:
        from nerdpy.engine.containers.lifecycle import kill_container

        kill_container(self._store, self._c, str(signal))

    def pause(self) -> None:
        from nerdpy.engine.containers.records import pause_container

        pause_container(self._store, self._c)

    def unpause(self) -> None:
        from nerdpy.engine.containers.records import unpause_container

        unpause_container(self._store, self._c)

    def rename(self, new_name: str) -> None:
        from nerdpy.engine.containers.records import rename_container

        rename_container(self._store, self._c, new_name)
        self.reload()

    def remove(self, force: bool = False, volumes: bool = False) -> None:
        """`nerdpy rm` (`force`: kill it first if it runs; `volumes`: its anonymous volumes too)."""
        from nerdpy.engine.containers.lifecycle import remove_container

        remove_container(self._store, self._c, force=force, volumes=volumes)

    def wait(self, timeout: float | None = None) -> int:
        """Block until it stops; its exit code. TimeoutError after `timeout` seconds."""
        from nerdpy.engine.containers.lifecycle import wait_container

        code = wait_container(self._store, self._c, timeout=timeout)
        if code is None:
            if timeout is not None:
                raise TimeoutError(f"container {self.name} still running after {timeout}s")
            return 0
        return code

    # output
    def logs(self, *, stdout: bool = True, stderr: bool = True, tail: int | None = None,
             since: float | None = None, until: float | None = None, timestamps: bool = False) -> str:
        """Its json-file log so far (`nerdpy logs`): both streams, interleaved as written."""
        return "".join(self._log_lines(stdout, stderr, tail, since, until, timestamps, follow=False))

    def stream_logs(self, *, stdout: bool = True, stderr: bool = True, tail: int | None = None,
                    timestamps: bool = False) -> Iterator[str]:
        """`nerdpy logs -f`: lines as they come, until the container stops."""
        return self._log_lines(stdout, stderr, tail, None, None, timestamps, follow=True)

    def _log_lines(self, stdout, stderr, tail, since, until, timestamps, follow, running=None) -> Iterator[str]:
        from nerdpy.engine.containers.logs import read_logs

        alive = running or (lambda: self.exists() and self.state().running)
        for e in read_logs(self._store, self._c, tail=tail, since=since, until=until, follow=follow,
                           running=alive):
            stream = e.get("stream", "stdout")
            if (stream == "stderr" and not stderr) or (stream != "stderr" and not stdout):
                continue
            yield (e.get("time", "") + " " if timestamps else "") + e.get("log", "")

    def wait_for_log(self, pattern: str | re.Pattern, timeout: float = 60.0) -> re.Match:
        """Block until a log line matches `pattern` (a regex); the match. TimeoutError after
        `timeout` seconds; ContainerError if the container exits first."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        for line in self._log_lines(True, True, None, None, None, False, follow=True,
                                    running=lambda: time.monotonic() < deadline and self.running):
            m = rx.search(line)
            if m:
                return m
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no log line of {self.name} matched {rx.pattern!r} within {timeout}s")
        code = self.exit_code
        raise ContainerError(f"container {self.name} exited ({code}) before a log line matched {rx.pattern!r}",
                             code if code is not None else -1, self.logs(tail=20))

    # ports and addresses
    def ip_address(self, network: str | None = None) -> str:
        """Its IPv4 address (on `network`, default its first), "" without one (none, host)."""
        ns = self.inspect().get("NetworkSettings") or {}
        nets = ns.get("Networks") or {}
        if network is not None:
            return (nets.get(network) or {}).get("IPAddress", "")
        if ns.get("IPAddress"):
            return ns["IPAddress"]
        return next((n.get("IPAddress") for n in nets.values() if n.get("IPAddress")), "")

    def ports(self) -> dict[str, list[tuple[str, int]]]:
        """Published ports: {"80/tcp": [("0.0.0.0", 8080)], ...} (`nerdpy port`)."""
        raw = (self.inspect().get("NetworkSettings") or {}).get("Ports") or {}
        return {k: [(b.get("HostIp", ""), int(b["HostPort"])) for b in v or [] if b.get("HostPort")]
                for k, v in raw.items() if v}

    def host_port(self, port: int | str, protocol: str = "tcp") -> int:
        """The host port that container port `port` is published on (-p); NotFound if none."""
        key = str(port) if "/" in str(port) else f"{port}/{protocol}"
        bindings = self.ports().get(key)
        if not bindings:
            raise NotFound(f"no public port {key} published for {self.name}")
        return bindings[0][1]

    def wait_for_port(self, port: int, timeout: float = 60.0, protocol: str = "tcp") -> tuple[str, int]:
        """Block until a TCP connection to the container's port succeeds: through its published
        host port if any, else its own address (or the host's, with --network host). The
        (host, port) that answered; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                target = ("127.0.0.1", self.host_port(port, protocol))
            except NotFound:
                target = (self.ip_address() or "127.0.0.1", int(port))
            try:
                with socket.create_connection(target, timeout=1):
                    return target
            except OSError:
                pass
            if not self.running:
                code = self.exit_code
                raise ContainerError(f"container {self.name} exited ({code}) before port {port} answered",
                                     code if code is not None else -1, self.logs(tail=20))
            if time.monotonic() >= deadline:
                raise TimeoutError(f"port {port} of {self.name} did not answer within {timeout}s")
            time.sleep(0.1)

    # exec
    def exec(self, cmd: str | Sequence[str], *, env: Mapping[str, str] | Sequence[str] | None = None,
             workdir: str | None = None, user: str | None = None, privileged: bool = False,
             demux: bool = False, stdin: bytes | str | None = None, timeout: float | None = None,
             check: bool = False) -> ExecResult:
        """`nerdpy exec`: run a process in the running container; (exit_code, output). `output`
        holds stdout and stderr as written; demux=True keeps them apart (output, stderr).
        The process's exit code passes through; a command that cannot be found or run raises
        CommandNotFound (127) or CommandNotInvokable (126), as the CLI exits with."""
        from nerdpy.engine.containers.exec import exec_argv, exec_error
        from nerdpy.engine.containers.lifecycle import _start_error

        st = self.state()
        if st.status != "running":
            if st.status == "paused":
                raise Conflict(f"container {self.name} is paused, unpause the container before exec")
            raise Conflict(f"container {self.name} is not running")
        if isinstance(cmd, str):
            import shlex

            cmd = shlex.split(cmd)
        argv, cleanup = exec_argv(self._store, self._c, list(cmd), env=_env(env), workdir=workdir, user=user,
                                  privileged=privileged)
        data = stdin.encode() if isinstance(stdin, str) else stdin
        try:
            r = subprocess.run(argv, input=data, stdin=None if data is not None else subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE if demux else subprocess.STDOUT,
                               timeout=timeout)
            if r.returncode == 255:
                msg = exec_error(argv)
                if msg:
                    raise _start_error(msg)
        finally:
            cleanup()
        out = r.stdout.decode(errors="replace")
        err = r.stderr.decode(errors="replace") if demux and r.stderr is not None else ""
        result = ExecResult(r.returncode, out, err)
        if check and r.returncode != 0:
            raise ContainerError(f"{' '.join(cmd)} exited with code {r.returncode} in {self.name}",
                                 r.returncode, out + err)
        return result

    # context manager: testcontainers-style cleanup
    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc) -> None:
        if self.exists():
            self.remove(force=True, volumes=True)


# compose ---------------------------------------------------------------------------------
@dataclass
class ComposeProject:
    """A loaded compose project (`Client.compose(...)`), run by compose.runtime.Runtime: the
    code behind `nerdpy compose up/down/ps`."""

    client: Client
    project: Project
    warnings: list[str]

    @property
    def name(self) -> str:
        return self.project.name

    @property
    def services(self) -> list[str]:
        return list(self.project.services)

    def _runtime(self, on_event=None):
        from compose.runtime import Runtime

        return Runtime(self.client.store, self.project, on_event=on_event, on_warning=self.warnings.append)

    def up(self, services: Sequence[str] | None = None, *, wait: bool = True, timeout: float | None = None,
           pull: str | None = None, force_recreate: bool = False, remove_orphans: bool = False,
           scale: Mapping[str, int] | None = None, on_event=None) -> list[Container]:
        """`nerdpy compose up -d [--wait]`: create and start the services (their dependencies
        first, depends_on conditions honoured); with `wait`, until each is running, or healthy
        if it has a healthcheck. The containers."""
        rt = self._runtime(on_event)
        names = list(services) if services else None
        rt.up(names, force_recreate=force_recreate, remove_orphans=remove_orphans, scale=dict(scale or {}),
              pull=pull)
        if wait:
            rt.wait_ready(rt.select(names), timeout=timeout)
        return self.containers(services)

    def down(self, *, volumes: bool = False, remove_orphans: bool = False, timeout: int | None = None,
             rmi: str | None = None, on_event=None) -> None:
        """`nerdpy compose down`: stop and remove the containers and the project's networks
        (`volumes`: its named volumes too)."""
        self._runtime(on_event).down(volumes=volumes, remove_orphans=remove_orphans, timeout=timeout, rmi=rmi)

    def stop(self, services: Sequence[str] | None = None, timeout: int | None = None) -> None:
        self._runtime().stop(list(services) if services else None, timeout)

    def containers(self, services: Sequence[str] | None = None) -> list[Container]:
        """The project's containers (`nerdpy compose ps -a`), by service then number."""
        cs = self._runtime().containers(list(services) if services else None)
        return [Container(self.client, c) for c in cs]

    ps = containers

    def service(self, name: str, index: int = 1) -> Container:
        """The container of service `name` (replica `index`)."""
        return Container(self.client, self._runtime().find(name, index))

    def __enter__(self) -> ComposeProject:
        return self

    def __exit__(self, *exc) -> None:
        self.down(volumes=True, remove_orphans=True)
