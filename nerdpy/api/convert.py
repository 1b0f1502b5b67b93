"""API JSON <-> engine objects: a container create body (Config + HostConfig + NetworkingConfig)
to the flags `run`/`create` take, which engine/containers/options turns into a checked
ContainerSpec, so that the API refuses the same bad input as the CLI, with its messages; and
the engine's containers, images, networks and volumes to docker's list shapes.

Fields nerdpy does not support are refused (400) when they ask for something, and passed over
when they hold their zero value (clients send many fields with empty defaults).
"""
from __future__ import annotations

import os
from typing import Any

from nerdpy.api.common import bad_request

# HostConfig fields taken below; the others must hold a zero value
_HOST_KNOWN = {
    "Binds", "Mounts", "Tmpfs", "PortBindings", "PublishAllPorts", "RestartPolicy", "AutoRemove",
    "NetworkMode", "LogConfig", "CapAdd", "CapDrop", "Dns", "DnsSearch", "DnsOptions", "ExtraHosts",
    "GroupAdd", "OomScoreAdj", "Privileged", "ReadonlyRootfs", "SecurityOpt", "ShmSize", "Sysctls",
    "CpuShares", "Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuQuota", "CpuPeriod",
    "Devices", "Init", "PidsLimit", "Ulimits", "PidMode", "ConsoleSize", "IpcMode", "CgroupnsMode",
    "Isolation", "Runtime", "VolumeDriver", "MemorySwappiness", "Links", "VolumesFrom", "OomKillDisable",
    "ContainerIDFile", "MaskedPaths", "ReadonlyPaths",
}
# accepted with these values only (the defaults docker fills in)
_HOST_DEFAULTS = {
    "IpcMode": ("", "private", "shareable"),
    "CgroupnsMode": ("", "private", "host"),
    "Isolation": ("", "default"),
    "Runtime": ("", "runc"),
    "VolumeDriver": ("", "local"),
}
_CONFIG_KNOWN = {
    "Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts", "Tty",
    "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Image", "Volumes", "WorkingDir",
    "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild", "Labels", "StopSignal", "StopTimeout", "Shell",
    "HostConfig", "NetworkingConfig",
}


def _empty(v: Any) -> bool:
    return v is None or v is False or v == 0 or v == "" or v == [] or v == {}


def _strs(v: Any, what: str) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if not isinstance(v, list) or not all(isinstance(x, (str, int, float)) for x in v):
        raise bad_request(f"invalid {what}: expected a list of strings")
    return [str(x) for x in v]


def _dict(v: Any, what: str) -> dict:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise bad_request(f"invalid {what}: expected an object")
    return v


def _int(v: Any, what: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v):
        raise bad_request(f"invalid {what}: expected an integer")
    return int(v)


def cli_defaults() -> dict:
    """The options of `create` with their defaults (what build_spec reads)."""
    from nerdpy.commands.run import create

    out = {}
    for p in create.params:
        if getattr(p, "multiple", False):
            out[p.name] = ()
        elif getattr(p, "is_flag", False):
            out[p.name] = bool(p.default)
        else:
            d = p.default
            out[p.name] = d if d is None or isinstance(d, (str, int, float, tuple)) else None  # click's UNSET
    return out


def create_options(body: dict, name: str | None) -> tuple[str, list[str], dict, dict]:
    """(image, command, options as the CLI's flags give them, overrides to set on the spec
    afterwards: values the flags cannot say, as a multi-word entrypoint or a CMD healthcheck)."""
    if not isinstance(body, dict):
        raise bad_request("invalid JSON: expected an object")
    unknown = sorted(k for k in body if k not in _CONFIG_KNOWN and not _empty(body[k]))
    if unknown:
        raise bad_request(f"unsupported field(s) in the container config: {', '.join(unknown)}")
    image = body.get("Image")
    if not image or not isinstance(image, str):
        raise bad_request("Config.Image is required")
    host = _dict(body.get("HostConfig"), "HostConfig")
    unknown = sorted(k for k in host if k not in _HOST_KNOWN and not _empty(host[k]))
    unknown += sorted(k for k, ok in _HOST_DEFAULTS.items() if host.get(k) not in (None, *ok))
    if not _empty(host.get("VolumesFrom")):
        unknown.append("VolumesFrom")
    if host.get("OomKillDisable"):
        unknown.append("OomKillDisable")
    # docker's own lists (what its inspect shows; tools that copy a container send them back) or
    # none; other masked or read-only paths would be ignored, so they are refused
    from nerdpy.engine.containers.oci import MASKED_PATHS, READONLY_PATHS

    for key, default in (("MaskedPaths", MASKED_PATHS), ("ReadonlyPaths", READONLY_PATHS)):
        if host.get(key) is not None and sorted(_strs(host[key], key)) not in ([], sorted(default)):
            unknown.append(key)
    if unknown:
        raise bad_request(f"unsupported HostConfig field(s): {', '.join(sorted(set(unknown)))}")
    o = cli_defaults()
    extra: dict = {}
    o["name"] = name or None
    o["detach"] = True
    o["quiet"] = True
    # Config
    o["hostname"] = body.get("Hostname") or None
    o["domainname"] = body.get("Domainname") or None
    o["user"] = body.get("User") or None
    o["tty"] = bool(body.get("Tty"))
    o["interactive"] = bool(body.get("OpenStdin"))
    if body.get("OpenStdin") and body.get("StdinOnce"):
        extra["stdin_once"] = True   # stdin closes when the attached client goes (docker run -i)
    o["env"] = tuple(_strs(body.get("Env"), "Env"))
    o["workdir"] = body.get("WorkingDir") or None
    o["label"] = tuple(f"{k}={v}" for k, v in _dict(body.get("Labels"), "Labels").items())
    o["stop_signal"] = body.get("StopSignal") or None
    st = _int(body.get("StopTimeout"), "StopTimeout")
    o["stop_timeout"] = str(st) if st is not None else None
    o["expose"] = tuple(_dict(body.get("ExposedPorts"), "ExposedPorts"))
    o["mac_address"] = body.get("MacAddress") or None
    cmd = _strs(body.get("Cmd"), "Cmd")
    ep = body.get("Entrypoint")
    if ep is not None:
        ep = _strs(ep, "Entrypoint")
        if len(ep) <= 1:
            o["entrypoint"] = ep[0] if ep else ""
        else:
            o["entrypoint"] = ep[0]
            extra["entrypoint"] = ep
    hc = body.get("Healthcheck")
    if hc:
        extra["healthcheck"] = _healthcheck(_dict(hc, "Healthcheck"), o)
    # HostConfig
    binds = _strs(host.get("Binds"), "HostConfig.Binds")
    o["volume"] = tuple(binds)
    o["mount"] = tuple(_mount_flag(m) for m in host.get("Mounts") or [])
    o["tmpfs"] = tuple(f"{k}:{v}" if v else k for k, v in _dict(host.get("Tmpfs"), "HostConfig.Tmpfs").items())
    targets = {b.split(":")[1] if ":" in b else b for b in binds}
    targets |= {(m or {}).get("Target") for m in host.get("Mounts") or []}
    targets |= set(_dict(host.get("Tmpfs"), "HostConfig.Tmpfs"))
    anon = [t for t in _dict(body.get("Volumes"), "Volumes") if t not in targets and os.path.normpath(t) not in targets]
    o["volume"] += tuple(anon)
    o["publish"] = tuple(_publish(host.get("PortBindings")))
    o["publish_all"] = bool(host.get("PublishAllPorts"))
    rp = _dict(host.get("RestartPolicy"), "HostConfig.RestartPolicy")
    rname = rp.get("Name") or ""
    if rname and rname != "no":
        n = _int(rp.get("MaximumRetryCount"), "RestartPolicy.MaximumRetryCount") or 0
        o["restart"] = f"{rname}:{n}" if rname == "on-failure" and n else rname
    o["rm"] = bool(host.get("AutoRemove"))
    log = _dict(host.get("LogConfig"), "HostConfig.LogConfig")
    o["log_driver"] = log.get("Type") or None
    o["log_opt"] = tuple(f"{k}={v}" for k, v in _dict(log.get("Config"), "LogConfig.Config").items())
    o["cap_add"] = tuple(_strs(host.get("CapAdd"), "CapAdd"))
    o["cap_drop"] = tuple(_strs(host.get("CapDrop"), "CapDrop"))
    o["dns"] = tuple(_strs(host.get("Dns"), "Dns"))
    o["dns_search"] = tuple(_strs(host.get("DnsSearch"), "DnsSearch"))
    o["dns_option"] = tuple(_strs(host.get("DnsOptions"), "DnsOptions"))
    o["add_host"] = tuple(_strs(host.get("ExtraHosts"), "ExtraHosts"))
    o["group_add"] = tuple(_strs(host.get("GroupAdd"), "GroupAdd"))
    oom = _int(host.get("OomScoreAdj"), "OomScoreAdj")
    o["oom_score_adj"] = str(oom) if oom else None
    o["privileged"] = bool(host.get("Privileged"))
    o["read_only"] = bool(host.get("ReadonlyRootfs"))
    o["security_opt"] = tuple(_strs(host.get("SecurityOpt"), "SecurityOpt"))
    for key, flag in (("ShmSize", "shm_size"), ("Memory", "memory"), ("MemoryReservation", "memory_reservation")):
        v = _int(host.get(key), key)
        o[flag] = str(v) if v else None
    swap = _int(host.get("MemorySwap"), "MemorySwap")
    o["memory_swap"] = str(swap) if swap else None
    swappiness = _int(host.get("MemorySwappiness"), "MemorySwappiness")
    o["memory_swappiness"] = str(swappiness) if swappiness is not None and swappiness != -1 else None  # -1: unset
    o["sysctl"] = tuple(f"{k}={v}" for k, v in _dict(host.get("Sysctls"), "Sysctls").items())
    shares = _int(host.get("CpuShares"), "CpuShares")
    o["cpu_shares"] = str(shares) if shares else None
    nano = _int(host.get("NanoCpus"), "NanoCpus")
    quota, period = _int(host.get("CpuQuota"), "CpuQuota"), _int(host.get("CpuPeriod"), "CpuPeriod")
    if nano and (quota or period):
        raise bad_request("conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano:
        o["cpus"] = repr(nano / 1e9)
    elif quota and quota > 0:
        o["cpus"] = repr(quota / (period or 100000))
    o["device"] = tuple(_device_flag(d) for d in host.get("Devices") or [])
    o["init"] = bool(host.get("Init"))
    pids = _int(host.get("PidsLimit"), "PidsLimit")
    o["pids_limit"] = str(pids) if pids and pids > 0 else None
    o["ulimit"] = tuple(_ulimit_flag(u) for u in host.get("Ulimits") or [])
    o["pid"] = host.get("PidMode") or None
    # networks
    mode = host.get("NetworkMode") or "default"
    if body.get("NetworkDisabled"):
        mode = "none"
    endpoints = _dict(_dict(body.get("NetworkingConfig"), "NetworkingConfig").get("EndpointsConfig"), "EndpointsConfig")
    nets = [] if mode == "default" else [mode]
    for net in endpoints:
        if net not in nets and not (mode == "default" and net in ("bridge", "default")):
            nets.append(net)
    o["network"] = tuple(nets)
    first = endpoints.get(nets[0] if nets else "bridge") or endpoints.get(mode) or {}
    first = _dict(first, "EndpointsConfig entry")
    o["network_alias"] = tuple(_strs(first.get("Aliases"), "Aliases"))
    ipam = _dict(first.get("IPAMConfig"), "IPAMConfig")
    o["ip"] = ipam.get("IPv4Address") or None
    if first.get("MacAddress"):
        o["mac_address"] = first["MacAddress"]
    links = _strs(host.get("Links"), "HostConfig.Links")
    if links:
        extra["_links"] = links
    if len(nets) > 1:
        extra["_more_aliases"] = {n: _strs(_dict(endpoints.get(n), "EndpointsConfig entry").get("Aliases"), "Aliases")
                                  for n in nets[1:]}
    return image, cmd, o, extra


def _healthcheck(hc: dict, o: dict) -> dict | None:
    test = hc.get("Test")
    out: dict = {}
    if test is not None:
        test = _strs(test, "Healthcheck.Test")
        if test and test[0] == "NONE":
            o["no_healthcheck"] = True
            return None
        if test and test[0] not in ("CMD", "CMD-SHELL"):
            raise bad_request(f"invalid Healthcheck.Test: {test[0]!r} (CMD, CMD-SHELL or NONE)")
        if test:
            out["Test"] = test
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        v = _int(hc.get(key), f"Healthcheck.{key}")
        if v is not None and v < 0:
            raise bad_request(f"Healthcheck.{key} can't be negative")
        if v:
            if v < 1_000_000:
                raise bad_request(f"Healthcheck.{key} must be at least 1ms")
            out[key] = v
    r = _int(hc.get("Retries"), "Healthcheck.Retries")
    if r is not None and r < 0:
        raise bad_request("Healthcheck.Retries can't be negative")
    if r:
        out["Retries"] = r
    return out or None


def _mount_flag(m: Any) -> str:
    """A HostConfig.Mounts entry as the --mount flag that says the same."""
    m = _dict(m, "HostConfig.Mounts entry")
    parts = [f"type={m.get('Type') or 'volume'}"]
    for key, flag in (("Source", "source"), ("Target", "target")):
        v = m.get(key)
        if v:
            if not isinstance(v, str) or "," in v or "=" in v and key == "Source" and m.get("Type") != "bind":
                raise bad_request(f"invalid mount {key.lower()}: {v!r}")
            if "," in v:
                raise bad_request(f"invalid mount {key.lower()}: {v!r}")
            parts.append(f"{flag}={v}")
    if m.get("ReadOnly"):
        parts.append("readonly=true")
    bind = _dict(m.get("BindOptions"), "BindOptions")
    if bind.get("Propagation"):
        parts.append(f"bind-propagation={bind['Propagation']}")
    if bind.get("NonRecursive"):
        raise bad_request("unsupported mount option: BindOptions.NonRecursive")
    vol = _dict(m.get("VolumeOptions"), "VolumeOptions")
    if vol.get("NoCopy"):
        parts.append("volume-nocopy=true")
    if (vol.get("DriverConfig") or {}).get("Name") not in (None, "", "local") or (vol.get("DriverConfig") or {}).get("Options"):
        raise bad_request("unsupported mount option: VolumeOptions.DriverConfig (only the local driver)")
    tmp = _dict(m.get("TmpfsOptions"), "TmpfsOptions")
    if tmp.get("SizeBytes"):
        parts.append(f"tmpfs-size={_int(tmp['SizeBytes'], 'TmpfsOptions.SizeBytes')}")
    if tmp.get("Mode"):
        parts.append(f"tmpfs-mode={format(_int(tmp['Mode'], 'TmpfsOptions.Mode'), 'o')}")
    return ",".join(parts)


def _publish(bindings: Any) -> list[str]:
    """{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]} -> ["8080:80/tcp"]."""
    out = []
    for port, hosts in _dict(bindings, "HostConfig.PortBindings").items():
        for h in hosts or [{}]:
            h = _dict(h, "PortBindings entry")
            ip = h.get("HostIp") or ""
            hp = str(h.get("HostPort") or "")
            if ":" in ip:
                ip = f"[{ip}]"
            if ip:
                out.append(f"{ip}:{hp}:{port}")
            elif hp:
                out.append(f"{hp}:{port}")
            else:
                out.append(str(port))
    return out


def _device_flag(d: Any) -> str:
    d = _dict(d, "HostConfig.Devices entry")
    host = d.get("PathOnHost") or ""
    if not host:
        raise bad_request("invalid device: PathOnHost is required")
    out = host
    if d.get("PathInContainer"):
        out += ":" + d["PathInContainer"]
    if d.get("CgroupPermissions"):
        out += ":" + d["CgroupPermissions"]
    return out


def _ulimit_flag(u: Any) -> str:
    u = _dict(u, "HostConfig.Ulimits entry")
    soft, hard = _int(u.get("Soft"), "Ulimit.Soft"), _int(u.get("Hard"), "Ulimit.Hard")
    return f"{u.get('Name')}={soft if soft is not None else -1}:{hard if hard is not None else -1}"


# -- engine -> API lists ---------------------------------------------------------------------------
def container_summary(store, c, st=None) -> dict:
    """An entry of GET /containers/json."""
    from nerdpy.engine.containers.records import container_state
    from nerdpy.engine.containers.volumes import volume_path

    st = st or container_state(store, c)
    spec = c.spec
    args = spec.args or []
    labels = {**((spec.image_config or {}).get("Labels") or {}), **(spec.labels or {})}
    ports = []
    if st.running and (spec.publish or spec.publish_all):
        from nerdpy.engine.network.container import published_ports

        for p in published_ports(store, c.id):
            ports.append({"IP": p.host_ip or "0.0.0.0", "PrivatePort": p.container_port,
                          "PublicPort": p.host_port, "Type": p.protocol})
    mounts = []
    for m in spec.mounts or []:
        entry = {"Type": m.type, "Source": m.source, "Destination": m.target, "Mode": "",
                 "RW": not m.readonly, "Propagation": ""}
        if m.type == "volume" and m.source:
            entry["Name"] = m.source
            entry["Source"] = volume_path(store, m.source)
            entry["Driver"] = "local"
        mounts.append(entry)
    from nerdpy.commands.ps import status_text

    net_mode = spec.network or "none"
    networks = {}
    if st.running:
        try:
            from nerdpy.engine.containers.inspect import _network_settings

            networks = _network_settings(store, c, st).get("Networks") or {}
        except Exception:  # noqa: BLE001 (a list must not fail on one container's network view)
            networks = {}
    return {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.image,
        "ImageID": c.image_id,
        "Command": " ".join(args),
        "Created": int(c.created_at),
        "Ports": ports,
        "Labels": labels,
        "State": st.status,
        "Status": status_text(st),
        "HostConfig": {"NetworkMode": "default" if net_mode == "bridge" else net_mode},
        "NetworkSettings": {"Networks": networks},
        "Mounts": mounts,
    }


def image_summaries(store, all_images: bool = False) -> list[dict]:
    """GET /images/json: one entry per image ID, with its names and digests."""
    from nerdpy.commands.images import _split_name
    from nerdpy.engine.images.image import image_config, image_size, list_images
    from nerdpy.engine.containers.records import list_containers

    used: dict[str, int] = {}
    for c in list_containers(store):
        used[c.image_id] = used.get(c.image_id, 0) + 1
    by_id: dict[str, dict] = {}
    for img in list_images(store):
        e = by_id.get(img.config)
        if e is None:
            cfg = image_config(store, img)
            created = cfg.get("created") or ""
            from nerdpy.commands._util import parse_time

            size = image_size(store, img)
            e = by_id[img.config] = {
                "Id": img.config, "ParentId": "", "RepoTags": [], "RepoDigests": [],
                "Created": int(parse_time(created) or 0), "Size": size, "VirtualSize": size,
                "SharedSize": -1, "Labels": (cfg.get("config") or {}).get("Labels") or {},
                "Containers": used.get(img.config, 0),
            }
        if img.dangling:
            continue
        repo, tag, digest = _split_name(img.name)
        if tag != "<none>":
            e["RepoTags"].append(f"{repo}:{tag}")
        d = f"{repo}@{digest or img.target}"
        if d not in e["RepoDigests"]:
            e["RepoDigests"].append(d)
    return sorted(by_id.values(), key=lambda e: -e["Created"])


def link_hosts(store, links: list[str]) -> list[str]:
    """docker's legacy links ("name:alias", docker-compose's one-off `run` sends them) as what
    they give the linking container: /etc/hosts entries for the linked container's address
    (taken now; docker rewrites them when the linked container restarts, nerdpy does not)."""
    from nerdpy.engine.containers.inspect import container_json
    from nerdpy.engine.containers.records import container_state, find_container

    out = []
    for link in links:
        name, _, alias = link.partition(":")
        name = name.lstrip("/")
        alias = (alias or name).rsplit("/", 1)[-1]
        c = find_container(store, name)
        if not container_state(store, c).running:
            raise bad_request(f"cannot link to a non running container: /{c.name} AS {alias}")
        nets = (container_json(store, c).get("NetworkSettings") or {}).get("Networks") or {}
        ip = next((n.get("IPAddress") for n in nets.values() if n.get("IPAddress")), "")
        if not ip:
            raise bad_request(f"cannot link to /{c.name}: it has no address (network mode {c.spec.network})")
        for host in dict.fromkeys([alias, c.name]):
            out.append(f"{host}:{ip}")
    return out
