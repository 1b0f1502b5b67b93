"""The model back to a compose document, in the long, normalised form `docker compose config`
prints: keys sorted, defaults made explicit where docker shows them, false and empty values
left out, durations as Go durations and sizes in bytes."""
from __future__ import annotations

import hashlib
import json

from compose import model as m
from compose.units import format_duration


def _clean(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None and v is not False and v != [] and v != {}}


def _sorted(d: dict) -> dict:
    return {k: d[k] for k in sorted(d)}


def service_to_dict(s: m.Service) -> dict:
    d: dict = {}
    d["image"] = s.image
    d["build"] = s.build
    d["develop"] = s.develop
    d["command"] = s.command
    d["entrypoint"] = s.entrypoint
    d["environment"] = dict(s.environment) or None
    d["labels"] = dict(s.labels) or None
    for key in ("container_name", "hostname", "domainname", "user", "working_dir", "stop_signal", "platform",
                "pid", "network_mode", "restart", "pull_policy"):
        d[key] = getattr(s, key)
    d["ports"] = [_clean({"name": p.name, "mode": p.mode, "host_ip": p.host_ip, "target": p.target,
                          "published": p.published, "protocol": p.protocol, "app_protocol": p.app_protocol})
                  for p in s.ports]
    d["expose"] = list(s.expose)
    d["volumes"] = [volume_to_dict(v) for v in s.volumes]
    d["tmpfs"] = list(s.tmpfs)
    if s.networks:
        d["networks"] = {k: (_clean({"aliases": n.aliases, "ipv4_address": n.ipv4_address,
                                     "ipv6_address": n.ipv6_address, "mac_address": n.mac_address,
                                     "priority": n.priority or None, "link_local_ips": n.link_local_ips,
                                     "driver_opts": n.driver_opts, **n.unmodelled}) or None)
                         for k, n in sorted(s.networks.items())}
    d["depends_on"] = {k: {"condition": dep.condition, "required": dep.required,
                           **({"restart": True} if dep.restart else {})}
                       for k, dep in s.depends_on.items()} or None
    if s.healthcheck:
        h = s.healthcheck
        d["healthcheck"] = _clean({
            "test": h.test, "interval": format_duration(h.interval), "timeout": format_duration(h.timeout),
            "start_period": format_duration(h.start_period), "start_interval": format_duration(h.start_interval),
            "retries": h.retries, "disable": h.disable}) or None
    if s.deploy:
        dep = s.deploy
        resources = _clean({
            "limits": _clean({"cpus": dep.limits.cpus, "memory": dep.limits.memory, "pids": dep.limits.pids}),
            "reservations": _clean({"cpus": dep.reservations.cpus, "memory": dep.reservations.memory,
                                    "pids": dep.reservations.pids})})
        rp = None
        if dep.restart_policy:
            r = dep.restart_policy
            rp = _clean({"condition": r.condition, "delay": format_duration(r.delay),
                         "max_attempts": r.max_attempts, "window": format_duration(r.window)})
        for part, more in (dep.unmodelled.get("resources") or {}).items():
            resources[part] = {**resources.get(part, {}), **more}
        d["deploy"] = _clean({"mode": dep.mode, "replicas": dep.replicas, "resources": resources,
                              "restart_policy": rp, "labels": dep.labels,
                              **{k: v for k, v in dep.unmodelled.items() if k != "resources"}}) or None
    if s.scale != 1:
        d["scale"] = s.scale
    d["stop_grace_period"] = format_duration(s.stop_grace_period)
    d["init"] = s.init
    for key in ("privileged", "read_only", "tty", "stdin_open"):
        d[key] = getattr(s, key)
    for key in ("cap_add", "cap_drop", "security_opt", "extra_hosts", "dns", "dns_search", "dns_opt", "profiles"):
        d[key] = list(getattr(s, key))
    d["ulimits"] = {k: (u.soft if u.soft == u.hard else {"soft": u.soft, "hard": u.hard})
                    for k, u in sorted(s.ulimits.items())}
    d["sysctls"] = dict(s.sysctls)
    d["shm_size"] = s.shm_size
    d["devices"] = [{"source": x.source, "target": x.target, "permissions": x.permissions} for x in s.devices]
    if s.logging:
        d["logging"] = _clean({"driver": s.logging.driver, "options": s.logging.options}) or None
    d["secrets"] = [_mount(x) for x in s.secrets]
    d["configs"] = [_mount(x) for x in s.configs]
    d["mem_limit"] = s.mem_limit
    d["cpus"] = s.cpus
    d["pids_limit"] = s.pids_limit
    for key in ("oom_score_adj", "mac_address", "mem_reservation", "memswap_limit", "cpu_shares", "userns_mode"):
        d[key] = getattr(s, key)
    d["group_add"] = list(s.group_add)
    d["links"] = list(s.links)
    for key in ("post_start", "pre_stop"):
        d[key] = [_clean({"command": h.command, "user": h.user, "privileged": h.privileged,
                          "working_dir": h.working_dir, "environment": dict(h.environment)})
                  for h in getattr(s, key)]
    for key in ("ipc", "uts", "cgroup", "cpuset", "cpu_quota", "cpu_period", "runtime"):
        d[key] = getattr(s, key)
    d["volumes_from"] = list(s.volumes_from)
    d["gpus"] = s.gpus_key  # as written: a request from deploy's reservations is rendered there
    for k, v in s.unmodelled.items():  # valid keys nerdpy does not implement: as written
        if d.get(k) in (None, [], {}):
            d[k] = v
    out = _sorted(_clean(d))
    if "environment" in out:
        out["environment"] = dict(s.environment)  # keep null values (variables set without a value)
    out.update(s.extensions)
    return out


def _mount(x) -> dict:
    return _clean({"source": x.source, "target": x.target, "uid": x.uid, "gid": x.gid,
                   "mode": x.mode})


def volume_to_dict(v: m.ServiceVolume) -> dict:
    d = {"type": v.type, "source": v.source, "target": v.target, "read_only": v.read_only,
         "consistency": v.consistency}
    if v.type == "bind":
        d["bind"] = _clean({"create_host_path": v.create_host_path, "propagation": v.propagation,
                            "selinux": v.selinux})
    elif v.type == "volume":
        d["volume"] = _clean({"nocopy": v.nocopy, "subpath": v.subpath})
    elif v.type == "tmpfs":
        d["tmpfs"] = _clean({"size": v.tmpfs_size, "mode": v.tmpfs_mode})
    return _clean(d)


def _resource(obj, extra: dict) -> dict:
    d = {"name": obj.name, **extra, "external": obj.external, "labels": obj.labels,
         **getattr(obj, "unmodelled", {})}
    return _clean(d)


def network_to_dict(n: m.Network) -> dict:
    ipam = None
    if n.ipam:
        ipam = _clean({"driver": n.ipam.driver,
                       "config": [_clean({"subnet": c.subnet, "ip_range": c.ip_range, "gateway": c.gateway,
                                          "aux_addresses": c.aux_addresses}) for c in n.ipam.config],
                       "options": n.ipam.options})
    return _resource(n, {"driver": n.driver, "driver_opts": n.driver_opts, "ipam": ipam,
                         "internal": n.internal, "attachable": n.attachable, "enable_ipv6": n.enable_ipv6})


def volume_def_to_dict(v: m.Volume) -> dict:
    return _resource(v, {"driver": v.driver, "driver_opts": v.driver_opts})


def definition_hash(d: dict) -> str:
    """sha256 of a rendered network or volume definition (their config-hash label)."""
    return hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def escape_dollars(value):
    """`$` -> `$$` in every string value, so that the output can be loaded again unchanged
    (docker compose config does the same)."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [escape_dollars(v) for v in value]
    if isinstance(value, dict):
        return {k: escape_dollars(v) for k, v in value.items()}
    return value


def config_hash(s: m.Service, project: m.Project | None = None) -> str:
    """sha256 of the normalised service (for the com.docker.compose.config-hash label):
    a changed service gets a new hash; scale and deploy.replicas are left out, since
    scaling does not recreate containers. With `project`, the definitions of the networks and
    named volumes the service uses are part of it: changing one recreates its containers."""
    d = service_to_dict(s)
    if project is not None:  # definitions left at their defaults leave the hash as it was before
        default = {"name": ""}
        nets = {k: nd for k in sorted(s.networks) if k in project.networks
                for nd in [network_to_dict(project.networks[k])]
                if nd != dict(default, name=f"{project.name}_{k}")}
        vols = {v.source: vd for v in s.volumes if v.type == "volume" and v.source in project.volumes
                for vd in [volume_def_to_dict(project.volumes[v.source])]
                if vd != dict(default, name=f"{project.name}_{v.source}")}
        if nets:
            d["\0networks"] = nets
        if vols:
            d["\0volumes"] = vols
    d.pop("scale", None)
    d.pop("develop", None)  # a watch rule is not the container's configuration
    if isinstance(d.get("deploy"), dict):
        d["deploy"] = {k: v for k, v in d["deploy"].items() if k != "replicas"}
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def project_to_dict(p: m.Project, escape: bool = False) -> dict:
    """The normalised model as a compose file (what `compose config` prints, with `escape`:
    literal `$` written `$$` so that the output loads back unchanged)."""
    if escape:
        return escape_dollars(project_to_dict(p))
    out: dict = {"name": p.name, "services": {k: service_to_dict(s) for k, s in sorted(p.services.items())}}
    if p.networks:
        out["networks"] = {k: network_to_dict(n) for k, n in sorted(p.networks.items())}
    if p.volumes:
        out["volumes"] = {k: volume_def_to_dict(v) for k, v in sorted(p.volumes.items())}
    if p.secrets:
        out["secrets"] = {k: _resource(s, {"file": s.file, "environment": s.environment})
                          for k, s in sorted(p.secrets.items())}
    if p.configs:
        out["configs"] = {k: _resource(c, {"file": c.file, "environment": c.environment, "content": c.content})
                          for k, c in sorted(p.configs.items())}
    out.update(p.extensions)
    return out
