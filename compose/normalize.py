"""From the merged compose data (plain dicts) to the normalised model (compose.model).

Every conversion error becomes a ModelError naming the dotted path, with the file and line of
the value where one is known (through a Locator over the source files).
"""
from __future__ import annotations

import os
import re
import shlex
from typing import Callable

from compose import model as m
from compose.envfile import read_env_file
from compose.errors import ComposeError, ModelError
from compose.merge import list_or_dict_to_dict
from compose.schema import IMPLEMENTED_SERVICE_KEYS
from compose.syntax import mount_target, parse_port, parse_volume
from compose.units import parse_bool, parse_duration, parse_float, parse_int, parse_size

_RESTART = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")
_PULL = re.compile(r"^(always|never|build|if_not_present|missing|refresh|daily|weekly|every_([0-9]+[wdhms])+)$")
_EXPOSE = re.compile(r"^\d+(-\d+)?(/(tcp|udp|sctp))?$", re.IGNORECASE)


class Locator:
    """Finds the file and line of a path of the merged data in the SourceFiles it came from."""

    def __init__(self, files):
        self.files = list(files)

    def __call__(self, path) -> tuple[str | None, int | None]:
        path = tuple(path)
        while path:
            owners = [f for f in self.files if path in f.lines]
            if owners:
                ints = [i for i, p in enumerate(path) if isinstance(p, int)]
                if ints:
                    list_path = path[:ints[0]]
                    if sum(1 for f in self.files if list_path in f.lines) > 1:
                        path = list_path  # indexes shift when lists from several files are merged
                        continue
                f = owners[-1]
                return f.name, f.lines[path]
            path = path[:-1]
        return (self.files[0].name if self.files else None), None


def _dotted(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + str(p)
    return out


class Normalizer:
    def __init__(self, data: dict, *, project_name: str, working_dir: str, environment: dict[str, str],
                 locate: Callable, warn: Callable[[str], None]):
        self.data = data
        self.project = project_name
        self.wd = working_dir
        self.env = environment
        self.locate = locate
        self.warn = warn

    # -- helpers ------------------------------------------------------------------------------
    def error(self, path, message: str) -> ModelError:
        file, line = self.locate(path)
        return ModelError(f"{_dotted(path)}: {message}" if path else message, file, line)

    def conv(self, path, fn, value):
        try:
            return fn(value)
        except ValueError as e:
            raise self.error(path, str(e)) from None

    def abspath(self, p: str) -> str:
        p = os.path.expanduser(p)
        if not os.path.isabs(p):
            p = os.path.join(self.wd, p)
        return os.path.normpath(p)

    @staticmethod
    def strmap(value) -> dict[str, str]:
        out = {}
        for k, v in list_or_dict_to_dict(value).items():
            out[str(k)] = "" if v is None else _scalar_str(v)
        return out

    # -- project ------------------------------------------------------------------------------
    def networks(self) -> dict[str, m.Network]:
        out = {}
        for key, raw in (self.data.get("networks") or {}).items():
            raw = raw or {}
            path = ("networks", key)
            external, ext_name = self.external(path, raw)
            name = raw.get("name") or ext_name or (key if external else f"{self.project}_{key}")
            ipam = None
            if isinstance(raw.get("ipam"), dict):
                ri = raw["ipam"]
                pools = []
                for i, c in enumerate(ri.get("config") or []):
                    pools.append(m.IpamPool(subnet=c.get("subnet"), ip_range=c.get("ip_range"),
                                            gateway=c.get("gateway"),
                                            aux_addresses={str(k): str(v) for k, v in (c.get("aux_addresses") or {}).items()}))
                ipam = m.Ipam(driver=ri.get("driver"), config=pools,
                              options={str(k): str(v) for k, v in (ri.get("options") or {}).items()})
            out[key] = m.Network(
                name=name, driver=raw.get("driver"), driver_opts=self.opts(raw.get("driver_opts")), ipam=ipam,
                internal=self.conv(path + ("internal",), parse_bool, raw.get("internal", False)),
                external=external,
                attachable=self.conv(path + ("attachable",), parse_bool, raw.get("attachable", False)),
                enable_ipv6=self.conv(path + ("enable_ipv6",), parse_bool, raw.get("enable_ipv6", False)),
                labels=self.strmap(raw.get("labels")), unmodelled=_pick(raw, ("enable_ipv4",)))
        return out

    def external(self, path, raw) -> tuple[bool, str | None]:
        ext = raw.get("external", False)
        if isinstance(ext, dict):
            return True, ext.get("name")
        return self.conv(path + ("external",), parse_bool, ext), None

    @staticmethod
    def opts(value) -> dict[str, str]:
        return {str(k): _scalar_str(v) for k, v in (value or {}).items()}

    def volumes(self) -> dict[str, m.Volume]:
        out = {}
        for key, raw in (self.data.get("volumes") or {}).items():
            raw = raw or {}
            path = ("volumes", key)
            external, ext_name = self.external(path, raw)
            name = raw.get("name") or ext_name or (key if external else f"{self.project}_{key}")
            out[key] = m.Volume(name=name, driver=raw.get("driver"), driver_opts=self.opts(raw.get("driver_opts")),
                                external=external, labels=self.strmap(raw.get("labels")))
        return out

    def secrets(self, kind: str) -> dict:
        cls = m.Secret if kind == "secrets" else m.Config
        out = {}
        for key, raw in (self.data.get(kind) or {}).items():
            raw = raw or {}
            path = (kind, key)
            external, ext_name = self.external(path, raw)
            name = raw.get("name") or ext_name or (key if external else f"{self.project}_{key}")
            file = raw.get("file")
            what = "secret" if kind == "secrets" else "config"
            if file is not None:
                file = self.abspath(file)
                if not os.path.exists(file):
                    raise self.error(path + ("file",), f"{what} file {raw['file']} not found")
            content = raw.get("content") if kind == "configs" else None
            env = raw.get("environment")
            if not external and file is None and env is None and content is None:
                need = '"file" or "environment"' + (' or "content"' if kind == "configs" else "")
                raise self.error(path, f"{what} {key!r} must declare {need}")
            if env is not None and env not in self.env:
                self.warn(f"{what} {key!r}: environment variable {env} is not set")
            out[key] = cls(name=name, file=file, environment=env, content=content, external=external,
                           labels=self.strmap(raw.get("labels")), unmodelled=_pick(raw, ("template_driver",)))
        return out

    # -- services -----------------------------------------------------------------------------
    def service(self, name: str, raw: dict) -> m.Service:
        p = ("services", name)
        raw = raw or {}
        s = m.Service(name=name)
        s.image = raw.get("image")
        if "build" in raw:
            b = raw["build"]
            s.build = {"context": b} if isinstance(b, str) else dict(b or {})
            if isinstance(s.build.get("context"), str) and "://" not in s.build["context"]:
                s.build["context"] = self.abspath(s.build["context"])
            if not s.image:
                raise self.error(p + ("build",), f"service {name!r} has build: but no image: nerdpy does not "
                                 "build images: build it elsewhere, `nerdpy load` it and name it in image:")
        if not s.image:
            raise self.error(p, f"service {name!r} has neither an image nor a build context specified")
        if isinstance(raw.get("develop"), dict):
            s.develop = dict(raw["develop"])
            s.develop["watch"] = [dict(w, path=self.abspath(str(w["path"]))) if isinstance(w, dict) and "path" in w
                                  else w for w in raw["develop"].get("watch") or []]
        s.command = self.command(p + ("command",), raw.get("command"))
        s.entrypoint = self.command(p + ("entrypoint",), raw.get("entrypoint"))
        s.env_files, env = self.env_files(p + ("env_file",), raw.get("env_file"))
        for k, v in list_or_dict_to_dict(raw.get("environment")).items():
            if v is None:
                env[str(k)] = self.env.get(str(k))
            else:
                env[str(k)] = _scalar_str(v)
        s.environment = env
        s.labels = self.label_files(p + ("label_file",), raw.get("label_file"))
        s.labels.update(self.strmap(raw.get("labels")))
        for key in ("container_name", "hostname", "domainname", "user", "working_dir", "stop_signal",
                    "platform", "pid"):
            v = raw.get(key)
            if v is not None:
                setattr(s, key, _scalar_str(v))
        s.ports = self.ports(p + ("ports",), raw.get("ports") or [])
        s.expose = []
        for i, e in enumerate(raw.get("expose") or []):
            e = _scalar_str(e)
            if not _EXPOSE.match(e):
                raise self.error(p + ("expose", i), f"invalid port {e!r}")
            if e not in s.expose:
                s.expose.append(e)
        s.volumes = self.service_volumes(p + ("volumes",), raw.get("volumes") or [])
        s.tmpfs = _str_list(raw.get("tmpfs"))
        s.network_mode = raw.get("network_mode")
        if s.network_mode is not None and raw.get("networks"):
            raise self.error(p + ("network_mode",), f"service {name!r} declares mutually exclusive "
                             "network_mode and networks")
        s.networks = self.service_networks(p + ("networks",), raw.get("networks"))
        if not s.networks and s.network_mode is None:
            s.networks = {"default": m.ServiceNetwork()}
        s.depends_on = self.depends_on(p + ("depends_on",), raw.get("depends_on"))
        if s.network_mode and s.network_mode.startswith("service:"):
            dep = s.network_mode.split(":", 1)[1]
            if dep in (self.data.get("services") or {}):
                s.depends_on.setdefault(dep, m.DependsOn())
        s.healthcheck = self.healthcheck(p + ("healthcheck",), raw.get("healthcheck"))
        s.deploy = self.deploy(p + ("deploy",), raw.get("deploy"))
        s.restart = self.restart(p, raw.get("restart"), s.deploy)
        s.scale = self.scale(p, raw.get("scale"), s.deploy)
        if raw.get("stop_grace_period") is not None:
            s.stop_grace_period = self.conv(p + ("stop_grace_period",), parse_duration, raw["stop_grace_period"])
        if raw.get("init") is not None:
            s.init = self.conv(p + ("init",), parse_bool, raw["init"])
        for key in ("privileged", "read_only", "tty", "stdin_open"):
            if raw.get(key) is not None:
                setattr(s, key, self.conv(p + (key,), parse_bool, raw[key]))
        s.cap_add = _str_list(raw.get("cap_add"))
        s.cap_drop = _str_list(raw.get("cap_drop"))
        s.security_opt = _str_list(raw.get("security_opt"))
        s.ulimits = self.ulimits(p + ("ulimits",), raw.get("ulimits"))
        s.sysctls = self.strmap(raw.get("sysctls"))
        s.extra_hosts = self.extra_hosts(p + ("extra_hosts",), raw.get("extra_hosts"))
        s.dns = _str_list(raw.get("dns"))
        s.dns_search = _str_list(raw.get("dns_search"))
        s.dns_opt = _str_list(raw.get("dns_opt"))
        if raw.get("shm_size") is not None:
            s.shm_size = self.conv(p + ("shm_size",), parse_size, raw["shm_size"])
        s.devices = self.devices(p + ("devices",), raw.get("devices") or [])
        if isinstance(raw.get("logging"), dict):
            lg = raw["logging"]
            s.logging = m.Logging(driver=lg.get("driver"),
                                  options={str(k): _scalar_str(v) for k, v in (lg.get("options") or {}).items()
                                           if v is not None})
        s.secrets = self.mounts(p + ("secrets",), raw.get("secrets") or [], "secrets")
        s.configs = self.mounts(p + ("configs",), raw.get("configs") or [], "configs")
        if raw.get("pull_policy") is not None:
            pp = str(raw["pull_policy"])
            if not _PULL.match(pp):
                raise self.error(p + ("pull_policy",), f"invalid pull policy {pp!r}")
            s.pull_policy = "missing" if pp == "if_not_present" else pp
        s.profiles = _str_list(raw.get("profiles"))
        s.mem_limit, s.cpus, s.pids_limit = self.limits(p, raw, s.deploy)
        self.resources(p, raw, s)
        self.host_options(p, raw, s)
        s.extensions = {k: v for k, v in raw.items() if k.startswith("x-")}
        s.unmodelled = {k: v for k, v in raw.items() if k not in IMPLEMENTED_SERVICE_KEYS and not k.startswith("x-")}
        return s

    def label_files(self, path, value) -> dict[str, str]:
        """`label_file`: docker's label files (as `run --label-file`), relative to the project
        directory; the service's `labels` win over them."""
        from nerdpy.engine.containers.options import read_label_file
        from nerdpy.engine.errors import InvalidArgument

        out: dict[str, str] = {}
        for i, f in enumerate([value] if isinstance(value, str) else value or []):
            try:
                out.update(read_label_file(self.abspath(str(f))))
            except InvalidArgument as e:
                raise self.error(path + (i,), str(e)) from None
        return out

    def resources(self, p, raw, s: m.Service) -> None:
        """group_add, oom_score_adj, mac_address, mem_reservation, memswap_limit, cpu_shares,
        links and the post_start/pre_stop hooks."""
        s.group_add = [_scalar_str(g) for g in raw.get("group_add") or []]
        if raw.get("oom_score_adj") is not None:
            s.oom_score_adj = self.conv(p + ("oom_score_adj",), parse_int, raw["oom_score_adj"])
        if raw.get("mac_address") is not None:
            s.mac_address = _scalar_str(raw["mac_address"])
        if raw.get("cpu_shares") is not None:
            s.cpu_shares = self.conv(p + ("cpu_shares",), parse_int, raw["cpu_shares"])
        if raw.get("memswap_limit") is not None:
            v = raw["memswap_limit"]
            s.memswap_limit = -1 if str(v).strip() == "-1" else self.conv(p + ("memswap_limit",), parse_size, v)
        res = s.deploy.reservations.memory if s.deploy else None
        if raw.get("mem_reservation") is not None:
            s.mem_reservation = self.conv(p + ("mem_reservation",), parse_size, raw["mem_reservation"])
            if res is not None and res != s.mem_reservation:
                raise self.error(p + ("mem_reservation",), "can't set distinct values on 'mem_reservation' and "
                                 "'deploy.resources.reservations.memory'")
        else:
            s.mem_reservation = res
        if raw.get("userns_mode") is not None and str(raw["userns_mode"]) != "host":
            # nerdpy never remaps users (root only, no userns-remap): "host" is what it always does
            raise self.error(p + ("userns_mode",), f"service {s.name!r}: userns_mode {raw['userns_mode']!r} is "
                             "not supported (only host)")
        s.userns_mode = _opt_str(raw.get("userns_mode"))
        services = self.data.get("services") or {}
        s.links = _str_list(raw.get("links"))
        for i, link in enumerate(s.links):
            dep = link.split(":", 1)[0]
            if dep not in services:
                raise self.error(p + ("links", i), f"service {s.name!r} has a link to undefined service {dep!r}")
            s.depends_on.setdefault(dep, m.DependsOn())   # links imply depends_on, as in docker compose
        for key in ("post_start", "pre_stop"):
            hooks = []
            for i, h in enumerate(raw.get(key) or []):
                hp = p + (key, i)
                cmd = self.command(hp + ("command",), h.get("command"))
                if not cmd:
                    raise self.error(hp + ("command",), f"service {s.name!r}: {key} hook has an empty command")
                env = {}
                for k, v in list_or_dict_to_dict(h.get("environment")).items():
                    env[str(k)] = self.env.get(str(k)) if v is None else _scalar_str(v)
                hooks.append(m.Hook(command=cmd, user=_opt_str(h.get("user")),
                                    privileged=self.conv(hp + ("privileged",), parse_bool, h.get("privileged")),
                                    working_dir=_opt_str(h.get("working_dir")), environment=env))
            setattr(s, key, hooks)

    def host_options(self, p, raw, s: m.Service) -> None:
        """ipc, uts, cgroup, cpuset, cpu_quota, cpu_period, volumes_from, runtime, gpus,
        deploy.resources.reservations.devices (memory and userns_mode: resources())."""
        for key in ("ipc", "uts", "cgroup", "cpuset", "runtime"):  # userns_mode: resources()
            if raw.get(key) is not None:
                setattr(s, key, str(raw[key]))
        if s.uts not in (None, "host"):
            raise self.error(p + ("uts",), f"invalid uts mode {s.uts!r} (host)")
        if s.cgroup not in (None, "host", "private"):
            raise self.error(p + ("cgroup",), f"invalid cgroup mode {s.cgroup!r} (host or private)")
        for key in ("cpu_quota", "cpu_period"):
            if raw.get(key) is not None:
                setattr(s, key, self.conv(p + (key,), parse_int, raw[key]))
        s.volumes_from = _str_list(raw.get("volumes_from"))
        for i, v in enumerate(s.volumes_from):
            ref = v[len("container:"):] if v.startswith("container:") else v
            name, _, mode = ref.partition(":")
            if not name or mode not in ("", "ro", "rw"):
                raise self.error(p + ("volumes_from", i), f"invalid volumes_from {v!r} "
                                 "(service[:ro|rw] or container:name[:ro|rw])")
            if not v.startswith("container:") and name in (self.data.get("services") or {}):
                s.depends_on.setdefault(name, m.DependsOn())
        if s.ipc and s.ipc.startswith("service:"):
            dep = s.ipc.partition(":")[2]
            if dep in (self.data.get("services") or {}):
                s.depends_on.setdefault(dep, m.DependsOn())
        requests = []
        if raw.get("gpus") is not None:
            g = raw["gpus"]
            s.gpus_key = g
            requests += [{"capabilities": ["gpu"], "count": "all"}] if g == "all" else list(g)
        res = ((raw.get("deploy") or {}).get("resources") or {}).get("reservations") or {}
        requests += list(res.get("devices") or [])
        if requests:
            s.gpus = self.gpu_request(p, requests)

    def gpu_request(self, p, requests: list) -> str:
        """docker compose's device requests (capabilities [gpu] -> nvidia.com/gpu) as run's --gpus."""
        counts, ids = [], []
        for i, r in enumerate(requests):
            rp = p + ("deploy", "resources", "reservations", "devices", i)
            caps = [c for group in (r.get("capabilities") or []) for c in
                    (group if isinstance(group, list) else [group])]
            if "gpu" not in caps or (r.get("driver") or "nvidia") not in ("nvidia", "cdi"):
                raise self.error(rp, f"device request {r!r} is not supported: only GPUs "
                                 "(capabilities: [gpu], driver nvidia) through CDI")
            if r.get("device_ids"):
                ids += [str(x) for x in r["device_ids"]]
            else:
                counts.append(r.get("count", "all"))
        if ids and counts:
            raise self.error(p, "gpu requests with both count and device_ids are not supported")
        if ids:
            return "device=" + ",".join(ids)
        if any(str(c) in ("all", "-1") for c in counts):
            return "all"
        return str(sum(self.conv(p, parse_int, c) for c in counts))

    def command(self, path, value):
        if value is None:
            return None
        if isinstance(value, list):
            return [_scalar_str(v) for v in value]
        try:
            return shlex.split(str(value))
        except ValueError as e:
            raise self.error(path, f"cannot split {value!r} into words: {e}") from None

    def env_files(self, path, value) -> tuple[list[str], dict]:
        entries = value if isinstance(value, list) else ([] if value is None else [value])
        files, env = [], {}
        for i, e in enumerate(entries):
            if isinstance(e, dict):
                fpath, required = e.get("path"), self.conv(path + (i, "required"), parse_bool, e.get("required", True))
            else:
                fpath, required = e, True
            full = self.abspath(str(fpath))
            if not os.path.exists(full):
                if required:
                    raise self.error(path + (i,) if isinstance(value, list) else path,
                                     f"env file {full} not found")
                continue
            try:
                env.update(read_env_file(full, env=self.env))
            except ComposeError as err:
                if err.file is None:
                    raise self.error(path, err.message) from None
                raise
            files.append(full)
        return files, env

    def ports(self, path, items) -> list[m.Port]:
        out: list[m.Port] = []
        seen = set()
        for i, item in enumerate(items):
            ip = path + (i,)
            if isinstance(item, dict):
                if item.get("target") is None:
                    raise self.error(ip, "a port needs a target")
                target = self.conv(ip + ("target",), parse_int, item["target"])
                if not 0 < target <= 65535:
                    raise self.error(ip + ("target",), f"invalid port {target}")
                published = item.get("published")
                if published is not None:
                    published = _scalar_str(published)
                    if not re.fullmatch(r"\d+(-\d+)?", published) or published == "":
                        raise self.error(ip + ("published",), f"invalid published port {published!r}")
                proto = str(item.get("protocol") or "tcp").lower()
                if proto not in ("tcp", "udp", "sctp"):
                    raise self.error(ip + ("protocol",), f"invalid protocol {proto!r}")
                ports = [m.Port(target=target, published=published or None, host_ip=item.get("host_ip") or None,
                                protocol=proto, mode=item.get("mode") or "ingress", name=item.get("name"),
                                app_protocol=item.get("app_protocol"))]
            else:
                try:
                    longs = parse_port(item)
                except ValueError as e:
                    raise self.error(ip, str(e)) from None
                ports = [m.Port(target=d["target"], published=d.get("published") or None,
                                host_ip=d.get("host_ip"), protocol=d["protocol"], mode=d["mode"]) for d in longs]
            for port in ports:
                key = (port.host_ip or "", port.target, port.published or "", port.protocol)
                if key in seen:
                    continue
                seen.add(key)
                out.append(port)
        return out

    def service_volumes(self, path, items) -> list[m.ServiceVolume]:
        out: list[m.ServiceVolume] = []
        targets: dict[str, int] = {}
        for i, item in enumerate(items):
            ip = path + (i,)
            if isinstance(item, str):
                try:
                    d = parse_volume(item)
                except ValueError as e:
                    raise self.error(ip, str(e)) from None
            else:
                d = item
            vtype = d.get("type")
            target = d.get("target")
            if not target:
                raise self.error(ip, "a volume needs a target")
            if not str(target).startswith("/"):
                raise self.error(ip, f"the mount path in the container must be absolute: {target!r}")
            v = m.ServiceVolume(type=vtype, target=target)
            v.read_only = self.conv(ip + ("read_only",), parse_bool, d.get("read_only", False))
            v.consistency = d.get("consistency")
            source = d.get("source")
            if vtype == "bind":
                if not source:
                    raise self.error(ip, "a bind mount needs a source")
                v.source = self.abspath(source)
                b = d.get("bind") or {}
                v.create_host_path = self.conv(ip + ("bind", "create_host_path"), parse_bool,
                                               b.get("create_host_path", False))
                v.propagation = b.get("propagation")
                v.selinux = b.get("selinux")
            elif vtype == "volume":
                v.source = source or None
                vo = d.get("volume") or {}
                v.nocopy = self.conv(ip + ("volume", "nocopy"), parse_bool, vo.get("nocopy", False))
                v.subpath = vo.get("subpath")
            elif vtype == "tmpfs":
                if source:
                    raise self.error(ip, "a tmpfs mount has no source")
                t = d.get("tmpfs") or {}
                if t.get("size") is not None:
                    v.tmpfs_size = self.conv(ip + ("tmpfs", "size"), parse_size, t["size"])
                if t.get("mode") is not None:
                    v.tmpfs_mode = self.conv(ip + ("tmpfs", "mode"), _parse_mode, t["mode"])
            else:
                v.source = source
            if target in targets:
                raise self.error(ip, f"duplicate mount target {target}")
            targets[target] = i
            out.append(v)
        return out

    def service_networks(self, path, value) -> dict[str, m.ServiceNetwork]:
        if value is None:
            return {}
        if isinstance(value, list):
            return {str(n): m.ServiceNetwork() for n in value}
        out = {}
        for key, cfg in value.items():
            cfg = cfg or {}
            np = path + (key,)
            prio = cfg.get("priority", 0)
            out[key] = m.ServiceNetwork(
                aliases=_str_list(cfg.get("aliases")), ipv4_address=cfg.get("ipv4_address"),
                ipv6_address=cfg.get("ipv6_address"), mac_address=cfg.get("mac_address"),
                priority=self.conv(np + ("priority",), parse_int, prio),
                link_local_ips=_str_list(cfg.get("link_local_ips")),
                driver_opts=self.opts(cfg.get("driver_opts")),
                unmodelled=_pick(cfg, ("gw_priority", "interface_name")))
        return out

    def depends_on(self, path, value) -> dict[str, m.DependsOn]:
        if value is None:
            return {}
        if isinstance(value, list):
            return {str(n): m.DependsOn() for n in value}
        out = {}
        for key, cfg in value.items():
            cfg = cfg or {}
            dp = path + (key,)
            out[key] = m.DependsOn(
                condition=cfg.get("condition") or m.CONDITION_STARTED,
                required=self.conv(dp + ("required",), parse_bool, cfg.get("required", True)),
                restart=self.conv(dp + ("restart",), parse_bool, cfg.get("restart", False)))
        return out

    def healthcheck(self, path, raw) -> m.Healthcheck | None:
        if raw is None:
            return None
        h = m.Healthcheck()
        test = raw.get("test")
        if isinstance(test, str):
            h.test = ["CMD-SHELL", test]
        elif isinstance(test, list) and test:
            h.test = [str(t) for t in test]
            if h.test[0] not in ("CMD", "CMD-SHELL", "NONE"):
                raise self.error(path + ("test",), 'healthcheck.test must start with "CMD", "CMD-SHELL" or '
                                 f'"NONE", not {h.test[0]!r}')
            if h.test[0] == "CMD-SHELL" and len(h.test) != 2:
                h.test = ["CMD-SHELL", " ".join(h.test[1:])]
        h.disable = self.conv(path + ("disable",), parse_bool, raw.get("disable", False))
        if h.disable:
            if h.test is not None and h.test != ["NONE"]:
                raise self.error(path + ("disable",), "healthcheck.disable and healthcheck.test cannot be "
                                 "set together")
            h.test = ["NONE"]
        for key in ("interval", "timeout", "start_period", "start_interval"):
            if raw.get(key) is not None:
                val = self.conv(path + (key,), parse_duration, raw[key])
                if val < 0:
                    raise self.error(path + (key,), f"{key} cannot be negative")
                setattr(h, key, val)
        if raw.get("retries") is not None:
            h.retries = self.conv(path + ("retries",), parse_int, raw["retries"])
            if h.retries < 0:
                raise self.error(path + ("retries",), "retries cannot be negative")
        return h

    def deploy(self, path, raw) -> m.Deploy | None:
        if raw is None:
            return None
        d = m.Deploy()
        if raw.get("replicas") is not None:
            d.replicas = self.conv(path + ("replicas",), parse_int, raw["replicas"])
        res = raw.get("resources") or {}
        for part in ("limits", "reservations"):
            r = res.get(part) or {}
            rp = path + ("resources", part)
            target = getattr(d, part)
            if r.get("cpus") is not None:
                target.cpus = self.conv(rp + ("cpus",), parse_float, r["cpus"])
            if r.get("memory") is not None:
                target.memory = self.conv(rp + ("memory",), parse_size, r["memory"])
            if r.get("pids") is not None:
                target.pids = self.conv(rp + ("pids",), parse_int, r["pids"])
        rpol = raw.get("restart_policy")
        if isinstance(rpol, dict):
            rp = path + ("restart_policy",)
            cond = str(rpol.get("condition") or "any")
            if cond not in ("none", "on-failure", "any"):
                raise self.error(rp + ("condition",), f"invalid restart condition {cond!r} "
                                 "(none, on-failure or any)")
            d.restart_policy = m.RestartPolicy(condition=cond)
            for key in ("delay", "window"):
                if rpol.get(key) is not None:
                    setattr(d.restart_policy, key, self.conv(rp + (key,), parse_duration, rpol[key]))
            if rpol.get("max_attempts") is not None:
                d.restart_policy.max_attempts = self.conv(rp + ("max_attempts",), parse_int, rpol["max_attempts"])
        d.labels = self.strmap(raw.get("labels"))
        d.mode = raw.get("mode")
        d.unmodelled = _pick(raw, ("endpoint_mode", "placement", "update_config", "rollback_config"))
        for part in ("limits", "reservations"):
            more = _pick(res.get(part) or {}, ("devices", "generic_resources"))
            if more:
                d.unmodelled.setdefault("resources", {})[part] = more
        return d

    def restart(self, p, value, deploy) -> str | None:
        if value is not None:
            value = str(value)
            if not _RESTART.match(value):
                raise self.error(p + ("restart",), f"invalid restart policy {value!r} "
                                 "(no, always, on-failure[:max-retries] or unless-stopped)")
            return value
        if deploy and deploy.restart_policy:
            rp = deploy.restart_policy
            if rp.condition == "none":
                return "no"
            if rp.condition == "on-failure":
                return f"on-failure:{rp.max_attempts}" if rp.max_attempts else "on-failure"
            return "always"
        return None

    def scale(self, p, value, deploy) -> int:
        scale = self.conv(p + ("scale",), parse_int, value) if value is not None else None
        replicas = deploy.replicas if deploy else None
        if scale is not None and replicas is not None and scale != replicas:
            raise self.error(p + ("scale",), "can't set distinct values on 'scale' and 'deploy.replicas'")
        n = scale if scale is not None else (replicas if replicas is not None else 1)
        if n < 0:
            raise self.error(p + ("scale",), "scale cannot be negative")
        return n

    def limits(self, p, raw, deploy):
        lim = deploy.limits if deploy else m.Resources()
        out = []
        for key, dkey, fn in (("mem_limit", "memory", parse_size), ("cpus", "cpus", parse_float),
                              ("pids_limit", "pids", parse_int)):
            v = self.conv(p + (key,), fn, raw[key]) if raw.get(key) is not None else None
            dv = getattr(lim, dkey)
            if v is not None and dv is not None and v != dv:
                raise self.error(p + (key,), f"can't set distinct values on '{key}' and "
                                 f"'deploy.resources.limits.{dkey}'")
            out.append(v if v is not None else dv)
        return tuple(out)

    def ulimits(self, path, raw) -> dict[str, m.Ulimit]:
        out = {}
        for name, v in (raw or {}).items():
            up = path + (name,)
            if isinstance(v, dict):
                soft = self.conv(up + ("soft",), parse_int, v.get("soft"))
                hard = self.conv(up + ("hard",), parse_int, v.get("hard"))
            else:
                soft = hard = self.conv(up, parse_int, v)
            if soft > hard and hard != -1:
                raise self.error(up, f"soft limit {soft} is above hard limit {hard}")
            out[str(name)] = m.Ulimit(soft=soft, hard=hard)
        return out

    def extra_hosts(self, path, raw) -> list[str]:
        out: list[str] = []
        if raw is None:
            return out
        if isinstance(raw, dict):
            for host, ips in raw.items():
                for ip in ips if isinstance(ips, list) else [ips]:
                    out.append(f"{host}:{ip}")
        else:
            for i, e in enumerate(raw):
                e = str(e)
                if "=" in e:
                    host, _, ip = e.partition("=")
                else:
                    host, sep, ip = e.partition(":")
                    if not sep:
                        raise self.error(path + (i,), f"invalid extra host {e!r} (host:ip or host=ip)")
                out.append(f"{host}:{ip}")
        return [h for i, h in enumerate(out) if h not in out[:i]]

    def devices(self, path, items) -> list[m.Device]:
        out = []
        for i, d in enumerate(items):
            if isinstance(d, dict):
                out.append(m.Device(source=d["source"], target=d.get("target") or d["source"],
                                    permissions=d.get("permissions") or "rwm"))
                continue
            parts = str(d).split(":")
            if len(parts) > 3 or not parts[0]:
                raise self.error(path + (i,), f"invalid device {d!r}")
            src = parts[0]
            tgt = parts[1] if len(parts) > 1 and parts[1] else src
            perms = parts[2] if len(parts) > 2 else "rwm"
            if len(parts) == 2 and re.fullmatch(r"[rwm]+", parts[1]):
                tgt, perms = src, parts[1]
            out.append(m.Device(source=src, target=tgt, permissions=perms))
        return out

    def mounts(self, path, items, kind: str) -> list:
        cls = m.ServiceSecret if kind == "secrets" else m.ServiceConfig
        out = []
        for i, e in enumerate(items):
            if isinstance(e, dict):
                source = e.get("source")
                if not source:
                    raise self.error(path + (i,), f"a {kind[:-1]} needs a source")
                mode = self.conv(path + (i, "mode"), _parse_mode, e["mode"]) if e.get("mode") is not None else None
                out.append(cls(source=source, target=mount_target(e, kind), uid=_opt_str(e.get("uid")),
                               gid=_opt_str(e.get("gid")), mode=mode))
            else:
                out.append(cls(source=str(e), target=mount_target(str(e), kind)))
        return out


def _scalar_str(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e21:
            return str(int(v))  # as Go prints a float64 that holds an integer: 1000, not 1000.0
        return repr(v)
    return str(v)


def _pick(raw: dict, keys: tuple[str, ...]) -> dict:
    """The keys of `raw` that the model keeps only as written (for `config` to print them)."""
    return {k: raw[k] for k in keys if k in raw}


def _opt_str(v):
    return None if v is None else str(v)


def _str_list(v) -> list[str]:
    if v is None:
        return []
    if isinstance(v, list):
        out = []
        for x in v:
            s = _scalar_str(x)
            if s not in out:
                out.append(s)
        return out
    return [_scalar_str(v)]


def _parse_mode(v) -> int:
    if isinstance(v, bool):
        raise ValueError(f"invalid file mode {v!r}")
    if isinstance(v, int):
        return v
    s = str(v).strip()
    try:
        return int(s, 8)
    except ValueError:
        raise ValueError(f"invalid file mode {v!r} (octal, e.g. 0440)") from None
