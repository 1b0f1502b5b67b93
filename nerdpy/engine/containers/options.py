"""Options of `run`/`create` -> a checked ContainerSpec: every conversion and check of what a
user asks a container to be, for the CLI (commands/run.py), the Python API (nerdpy.client) and
compose alike.

`build_spec` takes the CLI's flags (a mapping keyed by the flag's name, as click gives them)
and converts them (sizes, durations, mounts, ulimits, sysctls...); `check_spec` checks a built
ContainerSpec, whoever built it, with docker's messages: the same bad value is refused the same
way by every front end. Errors are InvalidArgument (exit 125 in the CLI).
"""
from __future__ import annotations

import os
import re
import signal
from collections.abc import Mapping
from typing import TYPE_CHECKING

from nerdpy.engine.errors import InvalidArgument

if TYPE_CHECKING:
    from nerdpy.engine.containers.records import ContainerSpec


def _duration_ns(text: str | None) -> int | None:
    """A --health-* duration (Go's form, or a plain number of seconds) -> nanoseconds."""
    if not text:
        return None
    from nerdpy.engine.util.units import parse_duration_ns

    try:
        ns = parse_duration_ns(text, bare_seconds=True)
    except ValueError:
        ns = -1
    if ns < 0:
        raise InvalidArgument(f"invalid duration {text!r}")
    return ns


def _bad(message: str) -> InvalidArgument:
    """A flag value that cannot be used: one line on stderr, exit 125, nothing created."""
    return InvalidArgument(message)


def _parse_kv_list(items, what: str) -> dict[str, str]:
    out = {}
    for item in items:
        k, _, v = item.partition("=")
        if not k:
            raise _bad(f"invalid {what}: {item!r}")
        out[k] = v
    return out


_WHITESPACE = " \t"


def read_label_file(path: str) -> dict[str, str]:
    """A docker label file (`--label-file`, compose's `label_file`) -> labels."""
    return _parse_kv_list(_read_kv_file(path, None, "label"), "label")


def _read_kv_file(path: str, lookup, what: str) -> list[str]:
    """docker's env and label files: blank lines and lines starting with # skipped, leading
    whitespace trimmed, values passed through untouched; a bare NAME takes `lookup(NAME)` or is
    dropped when that gives None."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise _bad(f"open {path}: {e.strerror.lower() if e.strerror else e}") from None
    text = data.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.lstrip(_WHITESPACE)
        if not line or line.startswith("#"):
            continue
        name, eq, value = line.partition("=")
        if not name:
            raise _bad(f"invalid {what} file {path}: no variable name on line {n}: {raw!r}")
        if any(ch in name for ch in _WHITESPACE):
            raise _bad(f"invalid {what} file {path}: variable {name!r} contains whitespaces")
        if eq:
            out.append(f"{name}={value}")
        else:
            val = lookup(name.strip()) if lookup else None
            if val is not None:
                out.append(f"{name.strip()}={val}")
    return out


def _read_env_file(path: str) -> list[str]:
    return _read_kv_file(path, os.environ.get, "env")


def _env_from_flags(items) -> list[str]:
    """-e NAME=VALUE as given; -e NAME takes the value from this environment, or is dropped."""
    out = []
    for item in items:
        name, eq, value = item.partition("=")
        if not name:
            raise _bad(f"invalid environment variable: {item}")
        if eq:
            out.append(item)
        elif name in os.environ:
            out.append(f"{name}={os.environ[name]}")
    return out


def exec_env(env_files, env) -> list[str]:
    """exec's --env-file files then -e flags, read as run reads them (NAME=VALUE list)."""
    out: list[str] = []
    for f in env_files or ():
        out += _read_env_file(f)
    return out + _env_from_flags(env or ())


_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")


def _check_target(target: str, text: str) -> None:
    if not target.startswith("/"):
        raise _bad(f"invalid mount config {text!r}: the mount destination {target!r} must be an absolute path")
    if os.path.normpath(target) == "/":
        raise _bad(f"invalid mount config {text!r}: the destination can't be '/'")


def _check_volume_name(name: str) -> None:
    if not _VOLUME_NAME.match(name):
        raise _bad(f"create {name}: {name!r} includes invalid characters for a local volume name, "
                   "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed. If you intended to pass a host "
                   "directory, use absolute path")


def _anonymous_name() -> str:
    """An anonymous volume is named when the container is created (64 hex, as docker), so that
    `rm -v` and `--rm` find it again."""
    import secrets

    return secrets.token_hex(32)


def parse_volume(text: str):
    """-v forms: /ctr (anonymous), name:/ctr[:opts], /host:/ctr[:opts] (opts: ro, rw, z, Z,
    nocopy and propagation modes)."""
    from nerdpy.engine.containers.records import MountSpec

    parts = text.split(":")
    if len(parts) == 1:
        _check_target(parts[0], text)
        return MountSpec("volume", os.path.normpath(parts[0]), _anonymous_name(), False, {"anonymous": True})
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise _bad(f"invalid volume specification: {text!r}")
    src, dst = parts[0], parts[1]
    opts = parts[2].split(",") if len(parts) == 3 else []
    _check_target(dst, text)
    ro = False
    propagation = "rprivate"
    for o in opts:
        if o == "ro":
            ro = True
        elif o in _PROPAGATIONS:
            propagation = o
        elif o in ("rw", "z", "Z", "nocopy", ""):
            continue
        else:
            raise _bad(f"invalid volume specification: {text!r}: unknown option {o!r}")
    if "ro" in opts and "rw" in opts:
        raise _bad(f"invalid volume specification: {text!r}: both ro and rw")
    dst = os.path.normpath(dst)
    if src.startswith("/") or src.startswith("."):
        return MountSpec("bind", dst, os.path.abspath(src), ro,
                         {"create_host_path": True, "propagation": propagation})
    _check_volume_name(src)
    return MountSpec("volume", dst, src, ro, {"nocopy": "nocopy" in opts})


_MOUNT_KEYS = {"type", "source", "src", "target", "destination", "dst", "readonly", "ro",
               "bind-propagation", "bind-nonrecursive", "bind-recursive", "volume-nocopy",
               "volume-driver", "volume-label", "volume-opt", "tmpfs-size", "tmpfs-mode",
               "consistency"}


def _bool_field(text: str, key: str, value: str) -> bool:
    v = value.lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise _bad(f"invalid --mount {text!r}: invalid value for {key}: {value!r}")


def parse_mount(text: str):
    """--mount type=bind|volume|tmpfs,source=...,target=...[,readonly][,...] as docker parses it."""
    from nerdpy.engine.containers.records import MountSpec

    fields: dict[str, str] = {}
    for part in text.split(","):
        if not part:
            continue
        k, eq, v = part.partition("=")
        k = k.strip().lower()
        if k not in _MOUNT_KEYS:
            raise _bad(f"invalid --mount {text!r}: unexpected key {k!r}")
        if not eq and k not in ("readonly", "ro", "volume-nocopy", "bind-nonrecursive"):
            raise _bad(f"invalid --mount {text!r}: invalid field {part!r} must be a key=value pair")
        fields[k] = v if eq else "true"
    kind = fields.get("type", "volume")
    target = fields.get("target") or fields.get("destination") or fields.get("dst")
    if not target:
        raise _bad(f"invalid --mount {text!r}: target is required")
    _check_target(target, text)
    target = os.path.normpath(target)
    ro = False
    for key in ("readonly", "ro"):
        if key in fields:
            ro = _bool_field(text, key, fields[key])
    src = fields.get("source") or fields.get("src") or ""
    if kind == "bind":
        if not src:
            raise _bad(f"invalid --mount {text!r}: source is required for a bind mount")
        if not src.startswith("/"):
            raise _bad(f"invalid --mount {text!r}: the bind source {src!r} must be an absolute path")
        if not os.path.exists(src):
            raise _bad(f"invalid mount config for type \"bind\": bind source path does not exist: {src}")
        prop = fields.get("bind-propagation", "rprivate")
        if prop not in _PROPAGATIONS:
            raise _bad(f"invalid --mount {text!r}: invalid bind-propagation {prop!r}")
        return MountSpec("bind", target, os.path.abspath(src), ro, {"create_host_path": False,
                         "propagation": prop})
    if kind == "volume":
        if not src:
            return MountSpec("volume", target, _anonymous_name(), ro, {"anonymous": True})
        _check_volume_name(src)
        nocopy = _bool_field(text, "volume-nocopy", fields["volume-nocopy"]) if "volume-nocopy" in fields else False
        return MountSpec("volume", target, src, ro, {"nocopy": nocopy})
    if kind == "tmpfs":
        if src:
            raise _bad(f"invalid --mount {text!r}: source is not supported for tmpfs mounts")
        opts = {}
        if "tmpfs-size" in fields:
            opts["size"] = str(_ram_in_bytes(fields["tmpfs-size"], "tmpfs-size"))
        if "tmpfs-mode" in fields:
            try:
                opts["mode"] = format(int(fields["tmpfs-mode"], 8), "o")
            except ValueError:
                raise _bad(f"invalid --mount {text!r}: invalid tmpfs-mode {fields['tmpfs-mode']!r}") from None
        return MountSpec("tmpfs", target, "", ro, opts)
    raise _bad(f"invalid --mount {text!r}: unknown type {kind!r} (bind, volume or tmpfs)")


def parse_tmpfs(text: str):
    """--tmpfs /path[:options] with any tmpfs options (size=64m,mode=1777,uid=...,exec...)."""
    from nerdpy.engine.containers.records import MountSpec

    dst, _, opts = text.partition(":")
    _check_target(dst, text)
    mo: dict = {}
    data = []
    ro = False
    for kv in opts.split(",") if opts else []:
        if not kv:
            continue
        k, _, v = kv.partition("=")
        if k in ("size", "mode") and v:
            mo[k] = v
        elif kv == "ro":
            ro = True
        elif kv == "rw":
            ro = False
        else:
            data.append(kv)
    if data:
        mo["data"] = data
    return MountSpec("tmpfs", os.path.normpath(dst), "", ro, mo)


def _ram_in_bytes(text: str, flag: str) -> int:
    """docker's units.RAMInBytes: 64m, 1.5g, 512k, 100 (bytes), 2GiB... binary multiples."""
    from nerdpy.engine.util.units import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        detail = str(e) if "too large" in str(e) else f"invalid size: {text!r}"
        raise _bad(f"invalid argument {text!r} for {flag}: {detail}") from None


def _int_flag(text, flag: str, minimum: int | None = None) -> int | None:
    if text is None or text == "":
        return None
    try:
        n = int(str(text).strip())
    except ValueError:
        raise _bad(f"invalid argument {text!r} for {flag}: not an integer") from None
    if minimum is not None and n < minimum:
        raise _bad(f"invalid argument {text!r} for {flag}: must be at least {minimum}")
    return n


def _cpus(text) -> float | None:
    if text is None or text == "":
        return None
    try:
        n = float(text)
    except ValueError:
        raise _bad(f"invalid argument {text!r} for --cpus: not a number") from None
    if n != n or n < 0:
        raise _bad(f"invalid argument {text!r} for --cpus: must be a positive number")
    if n == 0:
        return None
    ncpu = os.cpu_count() or 1
    if n < 0.01 or n > ncpu:
        raise _bad(f"range of CPUs is from 0.01 to {ncpu:.2f}, as there are only {ncpu} CPUs available")
    return n


_RLIM_INFINITY = 2**64 - 1


def parse_ulimit(text: str) -> tuple[str, int, int]:
    """--ulimit name=soft[:hard] (docker's names; -1 or unlimited for no limit)."""
    from nerdpy.engine.containers.oci import ULIMIT_NAMES

    name, eq, val = text.partition("=")
    if not eq or not val:
        raise _bad(f"invalid ulimit argument: {text}")
    if name not in ULIMIT_NAMES:
        raise _bad(f"invalid ulimit type: {name}")
    soft_s, colon, hard_s = val.partition(":")
    if colon and not hard_s:
        raise _bad(f"invalid ulimit argument: {text}")

    def num(v: str, which: str) -> int:
        if v in ("-1", "unlimited"):
            return _RLIM_INFINITY
        if not v.isdigit():
            raise _bad(f"invalid ulimit {which} value: {v!r} in {text}")
        return int(v)

    soft = num(soft_s, "soft")
    hard = num(hard_s, "hard") if colon else soft
    if soft > hard:
        raise _bad(f"ulimit soft limit must be less than or equal to hard limit: {soft_s} > {hard_s}")
    return name, soft, hard


_SYSCTL_IPC = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
               "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}


def parse_sysctls(items, network: str) -> dict[str, str]:
    """docker's list of namespaced sysctls: the IPC ones, fs.mqueue.* and net.* (not with the
    host's network namespace)."""
    out = {}
    for item in items:
        k, eq, v = item.partition("=")
        if not eq or not k:
            raise _bad(f"invalid argument {item!r} for --sysctl: expected name=value")
        k = k.replace("/", ".")
        if not (k in _SYSCTL_IPC or k.startswith("fs.mqueue.") or k.startswith("net.")):
            raise _bad(f"sysctl {k!r} is not allowed: only namespaced sysctls "
                       "(kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*) can be set")
        if k.startswith("net.") and network == "host":
            raise _bad(f"sysctl {k!r} is not allowed in the host network namespace")
        out[k] = v
    return out


def _security_opts(items) -> list[str]:
    """Checked now; a seccomp profile file is read now and kept in the container's record (as
    docker does), so the container does not depend on the file later."""
    import json

    check = security_opts
    from nerdpy.engine.containers.oci import DEFAULT_CAPS, load_profile

    out = []
    for opt in items:
        seccomp, _ = check([opt])
        if opt.startswith(("seccomp=", "seccomp:")) and seccomp not in ("unconfined", "default") \
                and not seccomp.startswith("{"):
            load_profile(seccomp, DEFAULT_CAPS)  # fails now for a missing or malformed file
            with open(seccomp) as f:
                opt = "seccomp=" + json.dumps(json.load(f), separators=(",", ":"))
        out.append(opt)
    return out


def build_spec(image: str, command, o: Mapping) -> ContainerSpec:
    """The CLI's flags of run/create (click's names: env, env_file, volume, memory...) -> a
    checked ContainerSpec."""
    from nerdpy.engine.containers.records import ContainerSpec

    env = []
    for f in o["env_file"]:
        env += _read_env_file(f)
    env += _env_from_flags(o["env"])
    labels = {}
    for f in o["label_file"]:
        labels.update(_parse_kv_list(_read_kv_file(f, None, "label"), "label"))
    labels.update(_parse_kv_list(o["label"], "label"))
    mounts = [parse_volume(v) for v in o["volume"]] + [parse_mount(m) for m in o["mount"]]
    mounts += [parse_tmpfs(t) for t in o["tmpfs"]]
    ulimits: dict[str, tuple[str, int, int]] = {}
    for u in o["ulimit"]:
        lim = parse_ulimit(u)
        ulimits[lim[0]] = lim
    hc = None
    if o["health_cmd"] or o["health_interval"] or o["health_timeout"] or o["health_retries"] or o["health_start_period"]:
        hc = {}
        if o["health_cmd"]:
            hc["Test"] = ["CMD-SHELL", o["health_cmd"]]
        if o["health_interval"]:
            hc["Interval"] = _duration_ns(o["health_interval"])
        if o["health_timeout"]:
            hc["Timeout"] = _duration_ns(o["health_timeout"])
        if o["health_start_period"]:
            hc["StartPeriod"] = _duration_ns(o["health_start_period"])
        if o["health_retries"]:
            hc["Retries"] = o["health_retries"]
    network, attachments = _networks(o)
    entrypoint = None
    if o["entrypoint"] is not None:
        entrypoint = [o["entrypoint"]] if o["entrypoint"] else []
    memory = _ram_in_bytes(o["memory"], "--memory") if o["memory"] else None
    if memory is not None and memory == 0:
        memory = None
    swap = None
    if o["memory_swap"]:
        swap = -1 if o["memory_swap"].strip() == "-1" else _ram_in_bytes(o["memory_swap"], "--memory-swap")
        if swap == 0:
            swap = None
    reservation = _ram_in_bytes(o["memory_reservation"], "--memory-reservation") if o["memory_reservation"] else None
    shm = _ram_in_bytes(o["shm_size"], "--shm-size") if o["shm_size"] else None
    oom = _int_flag(o["oom_score_adj"], "--oom-score-adj")
    hostname = o["hostname"] or None
    if not hostname and network == "host":
        hostname = os.uname().nodename  # docker: the host's name with the host's network
    user = o["user"] or None
    spec = ContainerSpec(
        image=image,
        name=o["name"],
        cmd=list(command) or None,
        entrypoint=entrypoint,
        env=env,
        workdir=o["workdir"],
        user=user,
        group_add=list(o["group_add"]),
        hostname=hostname,
        domainname=o["domainname"] or "",
        tty=o["tty"],
        stdin_open=o["interactive"],
        stdin_once=o["interactive"] and not o["detach"],
        labels=labels,
        auto_remove=o["rm"],
        restart=o["restart"] or "no",
        mounts=mounts,
        read_only=o["read_only"],
        network=network,
        networks=attachments,
        publish=list(o["publish"]),
        publish_all=o["publish_all"],
        dns=list(o["dns"]),
        dns_search=list(o["dns_search"]),
        dns_options=list(o["dns_option"]),
        extra_hosts=list(o["add_host"]),
        memory=memory,
        memory_swap=swap,
        memory_reservation=reservation,
        cpus=_cpus(o["cpus"]),
        cpu_shares=_int_flag(o["cpu_shares"], "--cpu-shares", 0) or None,
        pids_limit=_int_flag(o["pids_limit"], "--pids-limit"),
        ulimits=list(ulimits.values()),
        shm_size=shm or None,
        sysctls=parse_sysctls(o["sysctl"], network),
        devices=list(o["device"]),
        privileged=o["privileged"],
        cap_add=list(o["cap_add"]),
        cap_drop=list(o["cap_drop"]),
        security_opt=_security_opts(o["security_opt"]),
        init=o["init"],
        stop_signal=o["stop_signal"],
        stop_timeout=_int_flag(o["stop_timeout"], "--stop-timeout", -1),
        healthcheck=hc,
        no_healthcheck=o["no_healthcheck"],
        log_opts=_parse_kv_list(o["log_opt"], "log option"),
        oom_score_adj=oom,
        pid=o["pid"] or "",
        expose=list(o["expose"]),
        ipc=o.get("ipc") or "",
        uts=o.get("uts") or "",
        cgroupns=o.get("cgroupns") or "",
        cpuset_cpus=o.get("cpuset_cpus") or "",
        cpuset_mems=o.get("cpuset_mems") or "",
        cpu_period=_int_flag(o.get("cpu_period"), "--cpu-period") or None,
        cpu_quota=_int_flag(o.get("cpu_quota"), "--cpu-quota") or None,
        memory_swappiness=_int_flag(o.get("memory_swappiness"), "--memory-swappiness"),
        oom_kill_disable=bool(o.get("oom_kill_disable")),
        blkio_weight=_int_flag(o.get("blkio_weight"), "--blkio-weight") or None,
        device_read_bps=list(o.get("device_read_bps") or ()),
        device_write_bps=list(o.get("device_write_bps") or ()),
        device_read_iops=list(o.get("device_read_iops") or ()),
        device_write_iops=list(o.get("device_write_iops") or ()),
        volumes_from=list(o.get("volumes_from") or ()),
        runtime=o.get("runtime") or "",
        gpus=o.get("gpus") or "",
    )
    check_spec(spec)
    return spec


def check_spec(spec: ContainerSpec) -> None:
    """Every check of a ContainerSpec that needs no store (docker's messages): memory limits,
    hostname, user, working directory, mounts, restart policy, ports, signals, capabilities,
    devices, ulimits, sysctls, security options. Raises InvalidArgument."""
    _device, check_security = parse_device, security_opts
    from nerdpy.engine.containers.oci import ULIMIT_NAMES, normalise_cap

    memory, swap, reservation = spec.memory or None, spec.memory_swap or None, spec.memory_reservation or None
    if memory is not None and memory < 6 << 20:
        raise _bad("minimum memory limit allowed is 6MB")
    if swap is not None:
        if memory is None:
            raise _bad("you should always set the memory limit when using the memoryswap limit, see usage")
        if swap != -1 and swap < memory:
            raise _bad("minimum memoryswap limit should be larger than memory limit, see usage")
    if reservation and memory and reservation > memory:
        raise _bad("minimum memory limit can not be less than memory reservation limit, see usage")
    for what, size in (("memory", spec.memory), ("memory reservation", spec.memory_reservation),
                       ("shm size", spec.shm_size)):
        if size is not None and (not isinstance(size, int) or size < 0):
            raise _bad(f"invalid {what}: {size!r}")
    if spec.oom_score_adj is not None and not -1000 <= spec.oom_score_adj <= 1000:
        raise _bad(f"invalid value {spec.oom_score_adj}, range for oom score adj is [-1000, 1000]")
    if spec.cpus is not None:
        _cpus(spec.cpus)
    if spec.cpu_shares is not None and spec.cpu_shares < 0:
        raise _bad(f"invalid argument {spec.cpu_shares!r} for --cpu-shares: must be at least 0")
    if spec.stop_timeout is not None and spec.stop_timeout < -1:
        raise _bad(f"invalid argument {spec.stop_timeout!r} for --stop-timeout: must be at least -1")
    for cap in list(spec.cap_add) + list(spec.cap_drop):
        normalise_cap(cap)
    from nerdpy.engine.containers.resources import check_spec_resources

    if spec.devices:
        from nerdpy.engine.containers.cdi import check_name, is_cdi_name

        for d in spec.devices:
            check_name(d) if is_cdi_name(d) else _device(d)
    check_spec_resources(spec)
    check_healthcheck(spec.healthcheck)
    _check_dns_and_hosts(spec)
    if spec.stop_signal:
        parse_signal(spec.stop_signal)
    hostname = spec.hostname
    if hostname and (len(hostname) > 64 or any(ch.isspace() or ch == "/" for ch in hostname)):
        raise _bad(f"invalid hostname format: {hostname!r}")
    user = spec.user
    if user and (user.startswith(":") or user.endswith(":") or user.count(":") > 1):
        raise _bad(f"invalid user: {user!r}: expected <name|uid>[:<group|gid>]")
    if spec.workdir is not None and not spec.workdir.startswith("/"):
        raise _bad(f"the working directory {spec.workdir!r} is invalid, it needs to be an absolute path")
    restart = spec.restart or "no"
    parse_restart(restart)
    if spec.auto_remove and restart != "no":
        raise _bad("conflicting options: cannot specify both --restart and --rm")
    _check_mounts(spec.mounts)
    for name, soft, hard in spec.ulimits:
        if name not in ULIMIT_NAMES:
            raise _bad(f"invalid ulimit type: {name}")
        if soft is not None and hard is not None and soft > hard:
            raise _bad(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    parse_sysctls([f"{k}={v}" for k, v in spec.sysctls.items()], spec.network)
    if spec.security_opt:
        check_security(list(spec.security_opt))
    if spec.publish:
        from nerdpy.engine.network.ports import parse_publish_all

        parse_publish_all(spec.publish)


_HC_MIN_NS = 1_000_000  # docker's MinimumDuration (1ms)


def check_healthcheck(hc: dict | None) -> None:
    """docker's checks of a healthcheck given with the flags, compose or the Python API:
    durations 0 (the default) or at least 1ms, retries not negative, a test with a command."""
    if not hc:
        return
    if not isinstance(hc, dict):
        raise _bad(f"invalid healthcheck: {hc!r}")
    test = hc.get("Test")
    if test is not None:
        if not isinstance(test, list) or not all(isinstance(t, str) for t in test):
            raise _bad(f"invalid healthcheck test: {test!r}: a list of strings")
        if test and test[0] in ("CMD", "CMD-SHELL") and (len(test) < 2 or not "".join(test[1:]).strip()):
            raise _bad(f"invalid healthcheck test {test!r}: no command to run")
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        v = hc.get(key)
        if v is None or v == 0:
            continue
        if not isinstance(v, int) or isinstance(v, bool) or v < _HC_MIN_NS:
            raise _bad(f"{key} in Healthcheck cannot be less than 1ms")
    r = hc.get("Retries")
    if r is not None and (not isinstance(r, int) or isinstance(r, bool) or r < 0):
        raise _bad("Retries in Healthcheck cannot be negative")


def _show(text: str) -> str:
    """A value in a one-line message: control characters escaped."""
    return repr(str(text))[1:-1]


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


# docker's validateDomain (opts/opts.go): labels of letters, digits and inner hyphens
_DOMAIN = re.compile(r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9_-]*[a-zA-Z0-9])\.)*"
                     r"([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9_-]*[a-zA-Z0-9])\.?$")


def _check_dns_and_hosts(spec: ContainerSpec) -> None:
    """--dns (IP addresses), --dns-search (domains), --dns-option and --add-host as docker
    validates them: nothing with a newline or another control character reaches /etc/hosts or
    resolv.conf, whoever built the spec."""
    import ipaddress

    from nerdpy.engine.network.hosts import parse_add_host

    for d in spec.dns:
        try:
            ipaddress.ip_address(str(d).strip())
        except ValueError:
            raise _bad(f"invalid argument {d!r} for \"--dns\" flag: {_show(d)} is not an ip address") from None
    for d in spec.dns_search:
        d = str(d)
        if d != "." and (len(d) > 255 or not _DOMAIN.match(d)):
            raise _bad(f"invalid argument {d!r} for \"--dns-search\" flag: {_show(d)} is not a valid domain")
    for d in spec.dns_options:
        d = str(d)
        if not d or _has_control(d) or any(ch.isspace() for ch in d):
            raise _bad(f"invalid argument {d!r} for \"--dns-option\" flag: a DNS option is one word")
    for h in spec.extra_hosts:
        parse_add_host(str(h))
    if spec.domainname and (_has_control(spec.domainname) or any(ch.isspace() for ch in spec.domainname)):
        raise _bad(f"invalid domainname format: {spec.domainname!r}")


def _check_mounts(mounts: list) -> None:
    seen: set[str] = set()
    for m in mounts:
        text = f"{m.source}:{m.target}" if m.source else m.target
        _check_target(m.target, text)
        if m.target in seen:
            raise _bad(f"duplicate mount point: {m.target}")
        seen.add(m.target)
        if m.type == "bind":
            if not m.source.startswith("/"):
                raise _bad(f"invalid mount config {text!r}: the bind source {m.source!r} must be an absolute path")
            prop = (m.options or {}).get("propagation", "rprivate")
            if prop not in _PROPAGATIONS:
                raise _bad(f"invalid mount config {text!r}: invalid bind-propagation {prop!r}")
        elif m.type == "volume":
            if m.source and not (m.options or {}).get("anonymous"):
                _check_volume_name(m.source)
        elif m.type == "tmpfs":
            size = (m.options or {}).get("size")
            if size is not None:
                _ram_in_bytes(str(size), "tmpfs size")
        else:
            raise _bad(f"invalid mount config {text!r}: unknown type {m.type!r} (bind, volume or tmpfs)")


def _networks(o) -> tuple[str, list[dict]]:
    """--network (repeatable), --network-alias, --ip, --mac-address -> (mode, attachments)."""
    return networks_of(o["network"] or (), o["network_alias"], o["ip"], o["mac_address"],
                       bool(o["dns"] or o["dns_search"] or o["dns_option"] or o["add_host"]))


def networks_of(networks, aliases=(), ip: str | None = None, mac: str | None = None,
                dns: bool = False) -> tuple[str, list[dict]]:
    """Networks asked for (bridge, none, host, container:<name|id>, a network's name; the first
    gets the aliases, ip and mac) -> (ContainerSpec.network, ContainerSpec.networks)."""
    nets = [n for n in networks if n] or ["bridge"]
    mode = nets[0]
    if mode == "default":
        mode = nets[0] = "bridge"
    special = mode in ("none", "host") or mode.startswith("container:")
    if special or any(n in ("none", "host") or n.startswith("container:") for n in nets[1:]):
        if len(nets) > 1:
            raise _bad("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
        if aliases or ip:
            raise _bad("network-scoped aliases and --ip are only supported for user-defined networks")
        if mode.startswith("container:") and mac:
            raise _bad("conflicting options: mac-address and the network mode")
        if mode.startswith("container:") and dns:
            raise _bad("conflicting options: dns and the network mode")
        return mode, []
    attachments = [{"name": n, "aliases": [], "ip": None, "mac": None} for n in nets]
    attachments[0].update(aliases=list(aliases), ip=ip or None, mac=mac or None)
    return mode, attachments


# parsers shared with the lifecycle (which imports them from here) -----------------------------
def security_opts(opts: list[str]) -> tuple[str, bool]:
    """--security-opt: seccomp=unconfined|PATH, no-new-privileges[=|:true|false]; apparmor and
    label are accepted and ignored (no AppArmor or SELinux here)."""
    seccomp, nnp = "default", False
    for opt in opts:
        if opt == "no-new-privileges":
            nnp = True
            continue
        if "=" in opt:
            k, _, v = opt.partition("=")
        else:
            k, _, v = opt.partition(":")
        if k == "seccomp" and v:
            seccomp = v
        elif k == "no-new-privileges" and v in ("true", "false", "1", "0"):
            nnp = v in ("true", "1")
        elif k in ("apparmor", "label", "systempaths", "mask", "unmask") and v:
            pass
        else:
            raise InvalidArgument(f"invalid --security-opt: {opt!r}")
    return seccomp, nnp


def parse_device(text: str) -> dict:
    """--device HOST[:CONTAINER][:PERMISSIONS] (permissions a combination of r, w and m)."""
    parts = text.split(":")
    if len(parts) > 3 or not parts[0]:
        raise InvalidArgument(f"invalid device specification: {text}")
    host = parts[0]
    dest, access = host, "rwm"
    if len(parts) == 2:
        if parts[1].startswith("/"):
            dest = parts[1]
        else:
            access = parts[1]
    elif len(parts) == 3:
        dest, access = parts[1], parts[2]
    if not host.startswith("/") or not dest.startswith("/"):
        raise InvalidArgument(f"invalid device specification: {text}: paths must be absolute")
    if not access or any(ch not in "rwm" for ch in access):
        raise InvalidArgument(f"invalid device mode {access!r} in {text}: a combination of r, w and m")
    try:
        st = os.stat(host)
    except OSError as e:
        raise InvalidArgument(f"error gathering device information while adding custom device {host!r}: {e.strerror}") from None
    from nerdpy.engine.util.fs import device_kind

    kind = device_kind(st.st_mode)
    if kind is None:
        raise InvalidArgument(f"error gathering device information while adding custom device {host!r}: not a device node")
    return {"path": host, "container_path": dest, "type": kind, "major": os.major(st.st_rdev),
            "minor": os.minor(st.st_rdev), "access": access, "mode": st.st_mode & 0o777,
            "uid": st.st_uid, "gid": st.st_gid}


def parse_restart(text: str) -> dict:
    name, _, count = text.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise InvalidArgument(f"invalid restart policy {text!r}")
    if count and name != "on-failure":
        raise InvalidArgument(f"invalid restart policy {text!r}: maximum retry count only with on-failure")
    if count and not count.isdigit():
        raise InvalidArgument(f"invalid restart policy {text!r}: maximum retry count must be a number")
    return {"name": name, "max": int(count or 0)}


def parse_size(text: str) -> int:
    """A size (log max-size): docker's RAMInBytes, an InvalidArgument when it is not one."""
    from nerdpy.engine.util.units import parse_size as parse

    try:
        return parse(text)
    except ValueError:
        raise InvalidArgument(f"invalid size: {text!r}") from None


SIGNALS = {name[3:]: getattr(signal, name) for name in dir(signal)
           if name.startswith("SIG") and not name.startswith("SIG_") and isinstance(getattr(signal, name), int)}


def parse_signal(text: str) -> int:
    t = text.strip().upper()
    if t.isdigit():
        return int(t)
    if t.startswith("SIG"):
        t = t[3:]
    if t not in SIGNALS:
        raise InvalidArgument(f"invalid signal: {text}")
    return SIGNALS[t]
