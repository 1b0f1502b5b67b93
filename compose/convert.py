"""A compose Service -> the engine's ContainerSpec (docker compose's conversion, in its terms).

Names and labels are docker compose's, so that other tools recognise the containers:
`<project>-<service>-<n>`, `com.docker.compose.project`, `.service`, `.container-number`,
`.oneoff`, `.config-hash`, `.depends_on`, `.project.working_dir`, `.project.config_files`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from compose import model as m
from compose.errors import ModelError
from compose.render import config_hash

COMPOSE_VERSION = "2.24.0"           # the docker compose version whose behaviour we follow
LABEL_VERSION = "com.docker.compose.version"
LABEL_IMAGE = "com.docker.compose.image"
LABEL_REPLACE = "com.docker.compose.replace"

_NS = 1_000_000_000


@dataclass
class Overrides:
    """What `compose run` changes in a service's container."""

    command: list[str] | None = None
    entrypoint: list[str] | None = None
    env: list[str] = field(default_factory=list)          # NAME=VALUE (bare NAME: from our environment)
    workdir: str | None = None
    user: str | None = None
    volumes: list[str] = field(default_factory=list)      # -v SRC:DST[:ro]
    publish: bool = True                                  # False: ports not published (run without --service-ports)
    tty: bool | None = None
    stdin_open: bool | None = None
    auto_remove: bool = False
    restart: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    use_aliases: bool = True                              # run: only with --use-aliases


def depends_on_label(s: m.Service) -> str:
    return ",".join(f"{d}:{c.condition}:{str(c.restart).lower()}" for d, c in s.depends_on.items())


def compose_labels(project: m.Project, s: m.Service, number: int, oneoff: bool = False,
                   image_id: str | None = None) -> dict[str, str]:
    labels = dict(s.labels)
    labels.update({
        m.LABEL_PROJECT: project.name,
        m.LABEL_SERVICE: s.name,
        m.LABEL_NUMBER: str(number),
        m.LABEL_ONEOFF: "True" if oneoff else "False",
        m.LABEL_CONFIG_HASH: config_hash(s, project),
        m.LABEL_DEPENDS_ON: depends_on_label(s),
        m.LABEL_WORKING_DIR: project.working_dir,
        m.LABEL_CONFIG_FILES: ",".join(os.path.abspath(f) if f != "-" else f for f in project.files),
        LABEL_VERSION: COMPOSE_VERSION,
    })
    if image_id:
        labels[LABEL_IMAGE] = image_id
    return labels


def _ns(seconds: float | None) -> int | None:
    return int(seconds * _NS) if seconds is not None else None


def healthcheck_spec(h: m.Healthcheck | None) -> tuple[dict | None, bool]:
    """(docker's Healthcheck dict, no_healthcheck)."""
    if h is None:
        return None, False
    if h.disabled:
        return None, True
    out: dict = {}
    if h.test is not None:
        test = list(h.test)
        if test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            test = ["CMD"] + test
        out["Test"] = test
    for key, value in (("Interval", h.interval), ("Timeout", h.timeout), ("StartPeriod", h.start_period),
                       ("StartInterval", h.start_interval)):
        if value is not None:
            out[key] = _ns(value)
    if h.retries is not None:
        out["Retries"] = h.retries
    return out or None, False


def publish_spec(p: m.Port) -> str:
    """A compose port -> docker's -p form."""
    ip = p.host_ip or ""
    if ":" in ip and not ip.startswith("["):
        ip = f"[{ip}]"
    rng = p.published_range
    host = "" if rng is None else (str(rng[0]) if rng[0] == rng[1] else f"{rng[0]}-{rng[1]}")
    target = f"{p.target}/{p.protocol or 'tcp'}"
    if ip:
        return f"{ip}:{host}:{target}"
    if host:
        return f"{host}:{target}"
    return target


def tmpfs_mount(text: str):
    """`tmpfs:` entries: "/run" or "/run:size=64m,mode=1777,..."."""
    from nerdpy.engine.containers.records import MountSpec

    dst, _, opts = text.partition(":")
    if not dst.startswith("/"):
        raise ModelError(f"invalid tmpfs mount {text!r}: the target must be an absolute path")
    mo: dict = {}
    data: list[str] = []
    ro = False
    for kv in (opts.split(",") if opts else []):
        k, _, v = kv.partition("=")
        if k == "size" and v:
            mo["size"] = str(_size(v))
        elif k == "mode" and v:
            mo["mode"] = v
        elif kv == "ro":
            ro = True
        elif kv and kv != "rw":
            data.append(kv)
    if data:
        mo["data"] = data
    return MountSpec("tmpfs", os.path.normpath(dst), "", ro, mo)


def _size(text: str) -> int:
    from compose.units import parse_size

    try:
        return int(parse_size(text))
    except Exception:
        raise ModelError(f"invalid size {text!r}") from None


def volume_mounts(project: m.Project, s: m.Service, anon_sources: dict[str, str] | None = None,
                  state_dir: str | None = None, files: bool = True) -> list:
    """The service's volumes (binds, named and anonymous volumes, tmpfs), tmpfs entries,
    secrets and configs as MountSpecs. `anon_sources`: target -> the anonymous volume of the
    container being replaced, reused as docker compose does. `state_dir`: where secrets from the
    environment and configs with inline content are written."""
    from nerdpy.engine.containers.records import MountSpec

    out = []
    for v in s.volumes:
        if v.type == "bind":
            opts = {"create_host_path": bool(v.create_host_path), "propagation": v.propagation or "rprivate"}
            out.append(MountSpec("bind", v.target, v.source or "", v.read_only, opts))
        elif v.type == "volume":
            if v.source:
                vol = project.volumes.get(v.source)
                name = vol.name if vol is not None else v.source
                out.append(MountSpec("volume", v.target, name, v.read_only, {"nocopy": bool(v.nocopy)}))
            else:
                src = (anon_sources or {}).get(v.target, "")
                out.append(MountSpec("volume", v.target, src, v.read_only,
                                     {"anonymous": True, "nocopy": bool(v.nocopy)}))
        elif v.type == "tmpfs":
            opts = {}
            if v.tmpfs_size:
                opts["size"] = str(v.tmpfs_size)
            if v.tmpfs_mode is not None:
                opts["mode"] = format(v.tmpfs_mode, "o")
            out.append(MountSpec("tmpfs", v.target, "", v.read_only, opts))
        else:
            raise ModelError(f"service {s.name!r}: volumes of type {v.type!r} are not supported")
    out += [tmpfs_mount(t) for t in s.tmpfs]
    taken = {os.path.normpath(x.target) for x in out}
    for target, src in (anon_sources or {}).items():  # the old container's image-VOLUME volumes
        if os.path.normpath(target) not in taken:
            out.append(MountSpec("volume", target, src, False, {"anonymous": True}))
    if not files:  # secrets and configs left out (nothing written): for check_service
        return out
    for kind, items, table in (("secret", s.secrets, project.secrets), ("config", s.configs, project.configs)):
        for item in items:
            ref = table.get(item.source)
            if ref is None:
                raise ModelError(f"service {s.name!r} refers to undefined {kind} {item.source}")
            path = ref.file
            if path is None:
                path = _materialise(project, kind, item.source, ref, state_dir)
            out.append(MountSpec("bind", item.target, path, True, {"create_host_path": False}))
    return out


def _materialise(project: m.Project, kind: str, key: str, ref: m.Secret, state_dir: str | None) -> str:
    """A secret from an environment variable or a config with inline content: written to a
    file (mode 0400) under the project's state directory, then bind-mounted like a file."""
    if ref.external:
        raise ModelError(f"external {kind}s are not supported ({key}): use a file")
    if ref.content is not None:
        data = ref.content
    elif ref.environment is not None:
        data = project.environment.get(ref.environment, os.environ.get(ref.environment))
        if data is None:
            raise ModelError(f"{kind} {key}: environment variable {ref.environment} is not set")
    else:
        raise ModelError(f"{kind} {key} has neither file, environment nor content")
    if state_dir is None:
        raise ModelError(f"{kind} {key}: no place to write it")
    base = os.path.join(state_dir, kind + "s")
    os.makedirs(base, mode=0o700, exist_ok=True)
    path = os.path.join(base, key)
    from nerdpy.engine.util.fs import write_atomic

    write_atomic(path, data, 0o400)
    return path


def network_attachments(project: m.Project, s: m.Service, aliases: bool = True) -> tuple[str, list[dict]]:
    """(ContainerSpec.network, ContainerSpec.networks) for the service: each network with the
    service's name and aliases (not for a one-off container, unless asked)."""
    mode = s.network_mode
    if mode:
        return mode, []
    nets = sorted(s.networks.items(), key=lambda kv: -(kv[1].priority or 0))
    attachments = []
    for key, sn in nets:
        net = project.networks.get(key)
        if net is None:
            raise ModelError(f"service {s.name!r} refers to undefined network {key}")
        names = [s.name] + [a for a in sn.aliases if a != s.name] if aliases else []
        if aliases:
            names += [a for a in link_aliases(project, s, key) if a not in names]
        attachments.append({"name": net.name, "aliases": names, "ip": sn.ipv4_address, "mac": sn.mac_address})
    if not attachments:
        return "none", []
    if s.mac_address and not attachments[0]["mac"]:
        attachments[0]["mac"] = s.mac_address
    return attachments[0]["name"], attachments


def link_aliases(project: m.Project, s: m.Service, network: str) -> list[str]:
    """`links: [s:alias]` of the services on `network`: aliases of `s` there, so that the
    linking service reaches s by that name (docker's links, as names on the network)."""
    out = []
    for other in project.services.values():
        if network not in other.networks:
            continue
        for link in other.links:
            svc, _, alias = link.partition(":")
            if svc == s.name and alias and alias not in out:
                out.append(alias)
    return out


def parse_run_volume(text: str):
    """`compose run -v`: SRC:DST[:ro|rw] (SRC a path or a volume name) or DST (anonymous)."""
    from nerdpy.engine.containers.records import MountSpec

    parts = text.split(":")
    if len(parts) == 1:
        return MountSpec("volume", os.path.normpath(parts[0]), "", False, {"anonymous": True})
    if len(parts) > 3 or not parts[0] or not parts[1] or not parts[1].startswith("/"):
        raise ModelError(f"invalid volume specification: {text!r}")
    ro = len(parts) == 3 and "ro" in parts[2].split(",")
    src, dst = parts[0], os.path.normpath(parts[1])
    if src.startswith(("/", ".", "~")):
        return MountSpec("bind", dst, os.path.abspath(os.path.expanduser(src)), ro, {"create_host_path": True})
    return MountSpec("volume", dst, src, ro, {})


def container_spec(project: m.Project, s: m.Service, name: str, number: int, *, oneoff: bool = False,
                   image_id: str | None = None, network_mode: str | None = None,
                   anon_sources: dict[str, str] | None = None, overrides: Overrides | None = None,
                   state_dir: str | None = None, check_only: bool = False):
    """The ContainerSpec of one container of `s` (checked: a ModelError naming the service).
    `check_only`: no secret or config is written (see check_service). `network_mode`: the resolved mode for
    `service:x` (container:<name>), given by the caller who knows x's containers."""
    from nerdpy.engine.containers.cdi import is_cdi_name
    from nerdpy.engine.containers.records import ContainerSpec

    o = overrides or Overrides()
    if not s.image:
        raise ModelError(f"service {s.name!r} has no image (nerdpy does not build images)")
    env = [f"{k}={v}" for k, v in s.environment.items() if v is not None]
    for e in o.env:
        k, eq, v = e.partition("=")
        if not eq:
            if k not in os.environ:
                continue
            v = os.environ[k]
        env = [x for x in env if x.partition("=")[0] != k] + [f"{k}={v}"]
    labels = compose_labels(project, s, number, oneoff=oneoff, image_id=image_id)
    labels.update(o.labels)
    net, nets = network_attachments(project, s, aliases=o.use_aliases)
    if network_mode is not None:
        net, nets = network_mode, []
    if net.startswith("service:"):
        raise ModelError(f"service {s.name!r}: network_mode {net} could not be resolved")
    if s.mac_address and not nets:
        raise ModelError(f"service {s.name!r}: mac_address needs a network (network_mode is {net})")
    hc, no_hc = healthcheck_spec(s.healthcheck)
    mounts = volume_mounts(project, s, anon_sources, state_dir, files=not check_only)
    for v in o.volumes:
        mv = parse_run_volume(v)
        mounts = [x for x in mounts if x.target != mv.target] + [mv]
    restart = o.restart if o.restart is not None else (s.restart or "no")
    if o.auto_remove:
        restart = "no"
    log_opts = {}
    if s.logging is not None:
        if s.logging.driver not in (None, "json-file", "local"):
            raise ModelError(f"service {s.name!r}: logging driver {s.logging.driver!r} is not supported (json-file)")
        log_opts = dict(s.logging.options)
    hostname = s.hostname
    domainname = s.domainname or ""
    tty = s.tty if o.tty is None else o.tty
    stdin_open = s.stdin_open if o.stdin_open is None else o.stdin_open
    spec = ContainerSpec(
        image=s.image,
        name=name,
        cmd=list(o.command) if o.command is not None else (list(s.command) if s.command is not None else None),
        entrypoint=list(o.entrypoint) if o.entrypoint is not None else
        (list(s.entrypoint) if s.entrypoint is not None else None),
        env=env,
        workdir=o.workdir or s.working_dir,
        user=o.user or s.user,
        hostname=hostname,
        domainname=domainname,
        tty=tty,
        stdin_open=stdin_open,
        stdin_once=False,
        labels=labels,
        auto_remove=o.auto_remove,
        restart=restart,
        mounts=mounts,
        read_only=s.read_only,
        network=net,
        networks=nets,
        publish=[publish_spec(p) for p in s.ports] if o.publish else [],
        dns=list(s.dns),
        dns_search=list(s.dns_search),
        dns_options=list(s.dns_opt),
        extra_hosts=list(s.extra_hosts),
        memory=s.mem_limit,
        memory_swap=s.memswap_limit,
        memory_reservation=s.mem_reservation,
        cpu_shares=s.cpu_shares,
        group_add=list(s.group_add),
        oom_score_adj=s.oom_score_adj,
        cpus=s.cpus,
        pids_limit=s.pids_limit,
        ulimits=[(k, u.soft, u.hard) for k, u in s.ulimits.items()],
        shm_size=s.shm_size,
        sysctls=dict(s.sysctls),
        devices=[d.source if is_cdi_name(d.source) else f"{d.source}:{d.target}:{d.permissions}"
                 for d in s.devices],
        privileged=s.privileged,
        cap_add=list(s.cap_add),
        cap_drop=list(s.cap_drop),
        security_opt=list(s.security_opt),
        init=bool(s.init),
        stop_signal=s.stop_signal,
        stop_timeout=int(s.stop_grace_period) if s.stop_grace_period is not None else None,
        healthcheck=hc,
        no_healthcheck=no_hc,
        log_opts=log_opts,
        pid=_pid_mode(project, s),
        expose=[str(e) for e in s.expose],
        ipc=_pid_mode(project, s, s.ipc or ""),
        uts=s.uts or "",
        cgroupns=s.cgroup or "",
        cpuset_cpus=s.cpuset or "",
        cpu_quota=s.cpu_quota,
        cpu_period=s.cpu_period,
        volumes_from=[_volumes_from(project, v) for v in s.volumes_from],
        runtime=s.runtime or "",
        gpus=s.gpus or "",
    )
    from nerdpy.engine.containers.options import check_spec
    from nerdpy.engine.errors import InvalidArgument

    try:
        check_spec(spec)  # the CLI's checks and messages, before anything is created
    except InvalidArgument as e:
        raise ModelError(f"service {s.name!r}: {e}") from None
    return spec


def check_service(project: m.Project, s: m.Service, overrides: Overrides | None = None) -> None:
    """The engine's checks of the service's containers (memory, hostname, user, mounts, restart,
    ports...), before anything is created: a ModelError naming the service."""
    if not s.image:
        return  # the caller's error (nerdpy does not build images)
    mode = "none" if (s.network_mode or "").startswith("service:") else None
    container_spec(project, s, f"{project.name}-{s.name}-check", 1, network_mode=mode, overrides=overrides,
                   check_only=True)


def _volumes_from(project: m.Project, text: str) -> str:
    """`volumes_from:` service[:mode] (that service's first container) or container:name[:mode]
    -> run's --volumes-from NAME[:mode]."""
    if text.startswith("container:"):
        return text.partition(":")[2]
    name, colon, mode = text.partition(":")
    other = project.service(name)
    return other.container_names(project.name)[0] + colon + mode


def _pid_mode(project: m.Project, s: m.Service, mode: str | None = None) -> str:
    """`pid:` (or `ipc:`) as the engine's --pid: host, container:<name>, or service:<x> (x's first
    container)."""
    mode = (s.pid if mode is None else mode) or ""
    if mode.startswith("service:"):
        other = project.service(mode.partition(":")[2])
        return "container:" + other.container_names(project.name)[0]
    return mode
