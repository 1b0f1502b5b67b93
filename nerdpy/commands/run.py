"""`run` and `create`: docker's flags -> ContainerSpec -> engine lifecycle, then attach or print
the ID."""
from __future__ import annotations

import os
import signal
import sys

import click

from nerdpy.commands._util import store_of


def _duration_ns(text: str | None) -> int | None:
    if not text:
        return None
    import re

    total = 0.0
    pos = 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", text):
        if m.start() != pos:
            raise click.UsageError(f"invalid duration {text!r}")
        pos = m.end()
        total += float(m.group(1)) * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}[m.group(2)]
    if pos != len(text):
        if text.isdigit():
            return int(text) * 10**9
        raise click.UsageError(f"invalid duration {text!r}")
    return int(total)


def _bad(message: str):
    """A flag value that cannot be used: one line on stderr, exit 125, nothing created."""
    from nerdpy.engine.errors import InvalidArgument

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


_VOLUME_NAME = __import__("re").compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
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
    import re

    m = re.fullmatch(r"(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?", (text or "").strip())
    if not m:
        raise _bad(f"invalid argument {text!r} for {flag}: invalid size: {text!r}")
    mult = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
    size = float(m.group(1)) * mult[m.group(2).lower() if m.group(2) else None]
    if size >= 1 << 63:  # int64 in docker (and inf for a number too long for a float)
        raise _bad(f"invalid argument {text!r} for {flag}: size too large")
    return int(size)


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

    from nerdpy.engine.containers.lifecycle import _security_opts as check
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


def build_spec(image: str, command: tuple, o: dict):
    from nerdpy.engine.containers.records import ContainerSpec
    from nerdpy.engine.containers.lifecycle import _device, parse_restart, parse_signal
    from nerdpy.engine.containers.oci import normalise_cap

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
    seen: set[str] = set()
    for m in mounts:
        if m.target in seen:
            raise _bad(f"duplicate mount point: {m.target}")
        seen.add(m.target)
    ulimits: dict[str, tuple[str, int, int]] = {}
    for u in o["ulimit"]:
        lim = parse_ulimit(u)
        ulimits[lim[0]] = lim
    if o["restart"]:
        parse_restart(o["restart"])
        if o["rm"] and o["restart"] not in ("no",):
            raise click.UsageError("conflicting options: cannot specify both --restart and --rm")
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
    if memory is not None and memory < 6 << 20:
        raise _bad("minimum memory limit allowed is 6MB")
    swap = None
    if o["memory_swap"]:
        swap = -1 if o["memory_swap"].strip() == "-1" else _ram_in_bytes(o["memory_swap"], "--memory-swap")
        if swap == 0:
            swap = None
        elif memory is None:
            raise _bad("you should always set the memory limit when using the memoryswap limit, see usage")
        elif swap != -1 and swap < memory:
            raise _bad("minimum memoryswap limit should be larger than memory limit, see usage")
    reservation = _ram_in_bytes(o["memory_reservation"], "--memory-reservation") if o["memory_reservation"] else None
    if reservation and memory and reservation > memory:
        raise _bad("minimum memory limit can not be less than memory reservation limit, see usage")
    shm = _ram_in_bytes(o["shm_size"], "--shm-size") if o["shm_size"] else None
    oom = _int_flag(o["oom_score_adj"], "--oom-score-adj")
    if oom is not None and not -1000 <= oom <= 1000:
        raise _bad(f"invalid value {oom}, range for oom score adj is [-1000, 1000]")
    for cap in list(o["cap_add"]) + list(o["cap_drop"]):
        normalise_cap(cap)
    for d in o["device"]:
        _device(d)
    if o["stop_signal"]:
        parse_signal(o["stop_signal"])
    hostname = o["hostname"] or None
    if hostname is not None and (len(hostname) > 64 or any(ch.isspace() or ch == "/" for ch in hostname)):
        raise _bad(f"invalid hostname format: {hostname!r}")
    if not hostname and network == "host":
        hostname = os.uname().nodename  # docker: the host's name with the host's network
    user = o["user"] or None
    if user is not None and (user.startswith(":") or user.endswith(":") or user.count(":") > 1):
        raise _bad(f"invalid user: {user!r}: expected <name|uid>[:<group|gid>]")
    if o["workdir"] is not None and not o["workdir"].startswith("/"):
        raise _bad(f"the working directory {o['workdir']!r} is invalid, it needs to be an absolute path")
    return ContainerSpec(
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
    )


def container_options(f):
    opts = [
        click.option("--name", help="Assign a name to the container"),
        click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached"),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY"),
        click.option("--rm", is_flag=True, help="Automatically remove the container when it exits"),
        click.option("--restart", help="Restart policy: no, always, unless-stopped, on-failure[:max-retries]"),
        click.option("--pull", type=click.Choice(["missing", "always", "never"]), default="missing",
                     help="Pull image before running"),
        click.option("-q", "--quiet", is_flag=True, help="Suppress the pull output"),
        click.option("--cidfile", help="Write the container ID to the file"),
        click.option("-e", "--env", multiple=True, help="Set environment variables"),
        click.option("--env-file", multiple=True, help="Read in a file of environment variables"),
        click.option("-w", "--workdir", help="Working directory inside the container"),
        click.option("--entrypoint", help="Overwrite the default ENTRYPOINT of the image"),
        click.option("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])"),
        click.option("--group-add", multiple=True, help="Add additional groups to join"),
        click.option("-h", "--hostname", help="Container host name"),
        click.option("--domainname", help="Container NIS domain name"),
        click.option("-v", "--volume", multiple=True, help="Bind mount a volume"),
        click.option("--mount", multiple=True, help="Attach a filesystem mount to the container"),
        click.option("--tmpfs", multiple=True, help="Mount a tmpfs directory"),
        click.option("--read-only", is_flag=True, help="Mount the container's root filesystem as read only"),
        click.option("-l", "--label", multiple=True, help="Set meta data on a container"),
        click.option("--label-file", multiple=True, help="Read in a line delimited file of labels"),
        click.option("-m", "--memory", help="Memory limit"),
        click.option("--memory-swap", help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
        click.option("--memory-reservation", help="Memory soft limit"),
        click.option("--cpus", help="Number of CPUs"),
        click.option("--cpu-shares", "-c", help="CPU shares (relative weight)"),
        click.option("--pids-limit", help="Tune container pids limit (set -1 for unlimited)"),
        click.option("--ulimit", multiple=True, help="Ulimit options"),
        click.option("--init", is_flag=True, help="Run an init inside the container that forwards signals and reaps processes"),
        click.option("--stop-signal", help="Signal to stop the container"),
        click.option("--stop-timeout", help="Timeout (in seconds) to stop a container"),
        click.option("--privileged", is_flag=True, help="Give extended privileges to this container"),
        click.option("--cap-add", multiple=True, help="Add Linux capabilities"),
        click.option("--cap-drop", multiple=True, help="Drop Linux capabilities"),
        click.option("--security-opt", multiple=True, help="Security Options"),
        click.option("--device", multiple=True, help="Add a host device to the container"),
        click.option("--shm-size", help="Size of /dev/shm"),
        click.option("--sysctl", multiple=True, help="Sysctl options"),
        click.option("--oom-score-adj", help="Tune host's OOM preferences (-1000 to 1000)"),
        click.option("--health-cmd", help="Command to run to check health"),
        click.option("--health-interval", help="Time between running the check (ms|s|m|h)"),
        click.option("--health-timeout", help="Maximum time to allow one check to run (ms|s|m|h)"),
        click.option("--health-retries", type=int, help="Consecutive failures needed to report unhealthy"),
        click.option("--health-start-period", help="Start period for the container to initialize before counting retries"),
        click.option("--no-healthcheck", is_flag=True, help="Disable any container-specified HEALTHCHECK"),
        click.option("--platform", help="Set platform if server is multi-platform capable"),
        click.option("--log-opt", multiple=True, help="Log driver options (max-size, max-file)"),
        click.option("--log-driver", help="Logging driver for the container (json-file)"),
        click.option("--network", "--net", "network", multiple=True,
                     help="Connect a container to a network (bridge, none, host, container:<name|id>, NAME)"),
        click.option("--network-alias", "--net-alias", "network_alias", multiple=True,
                     help="Add network-scoped alias for the container"),
        click.option("--ip", help="IPv4 address (e.g., 172.30.100.104)"),
        click.option("--mac-address", help="Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
        click.option("-p", "--publish", multiple=True, help="Publish a container's port(s) to the host"),
        click.option("-P", "--publish-all", is_flag=True, help="Publish all exposed ports to random ports"),
        click.option("--dns", multiple=True, help="Set custom DNS servers"),
        click.option("--pid", help="PID namespace to use (host, container:<name|id>)"),
        click.option("--expose", multiple=True, help="Expose a port or a range of ports"),
        click.option("--dns-search", multiple=True, help="Set custom DNS search domains"),
        click.option("--dns-option", "--dns-opt", "dns_option", multiple=True, help="Set DNS options"),
        click.option("--add-host", multiple=True, help="Add a custom host-to-IP mapping (host:ip)"),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _networks(o) -> tuple[str, list[dict]]:
    """--network (repeatable), --network-alias, --ip, --mac-address -> (mode, attachments)."""
    nets = [n for n in o["network"] if n] or ["bridge"]
    mode = nets[0]
    if mode == "default":
        mode = nets[0] = "bridge"
    special = mode in ("none", "host") or mode.startswith("container:")
    if special or any(n in ("none", "host") or n.startswith("container:") for n in nets[1:]):
        if len(nets) > 1:
            raise _bad("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
        if o["network_alias"] or o["ip"]:
            raise _bad("network-scoped aliases and --ip are only supported for user-defined networks")
        if mode.startswith("container:") and o["mac_address"]:
            raise _bad("conflicting options: mac-address and the network mode")
        if mode.startswith("container:") and (o["dns"] or o["dns_search"] or o["dns_option"] or o["add_host"]):
            raise _bad("conflicting options: dns and the network mode")
        return mode, []
    attachments = [{"name": n, "aliases": [], "ip": None, "mac": None} for n in nets]
    attachments[0].update(aliases=list(o["network_alias"]), ip=o["ip"] or None, mac=o["mac_address"] or None)
    return mode, attachments


def _ensure_image(ctx, store, image: str, pull_policy: str, platform: str | None, quiet: bool) -> None:
    from nerdpy.engine.errors import ImageNotFound
    from nerdpy.engine.images.image import lookup_images

    wanted = None
    if platform:
        from nerdpy.engine.distribution.platforms import parse_platform

        wanted = parse_platform(platform)
    found = lookup_images(store, image)
    have = bool(found)
    if have and wanted is not None and _image_platform_error(store, found[0], image, wanted):
        have = False  # another platform's image under that name: pull the one asked for
    if have and pull_policy != "always":
        return
    if not have and pull_policy == "never":
        if found:
            raise ImageNotFound(_image_platform_error(store, found[0], image, wanted))
        raise ImageNotFound(f"no such image: {image}")
    from nerdpy.commands.progress import pull_progress
    from nerdpy.engine.distribution.pull import pull_image
    from nerdpy.engine.distribution.reference import parse_reference

    ref = parse_reference(image)
    if not quiet:
        click.echo(f"Unable to find image '{ref.familiar()}' locally", err=True) if not found else None
    with pull_progress("quiet" if quiet else "auto", ref, stream=sys.stderr) as cb:  # docker: progress on stderr
        result = pull_image(store, image, platform=platform, progress=cb)
    if not quiet:
        familiar = parse_reference(result.reference, default_tag=None).familiar()
        click.echo(f"Digest: {result.digest}\nStatus: "
                   f"{'Downloaded newer image' if result.updated else 'Image is up to date'} for {familiar}", err=True)
    if wanted is not None:
        found = lookup_images(store, image)
        err = found and _image_platform_error(store, found[0], image, wanted)
        if err:
            from nerdpy.engine.errors import PlatformNotFound

            raise PlatformNotFound(err)


def _image_platform_error(store, img, image: str, wanted) -> str | None:
    """docker's check of --platform against the image's own config: the message, or None."""
    from nerdpy.engine.images.image import image_config
    from nerdpy.engine.distribution.platforms import platform_matches

    cfg = image_config(store, img)
    got = {"os": cfg.get("os", ""), "architecture": cfg.get("architecture", ""), "variant": cfg.get("variant")}
    if platform_matches(wanted, got):
        return None
    actual = "/".join(x for x in (got["os"], got["architecture"], got["variant"]) if x)
    return (f"image with reference {image} was found but does not match the specified platform: "
            f"wanted {wanted}, actual: {actual}")


def _check_user(store, spec) -> None:
    """A -u user or --group-add group the image does not have fails now, before anything is
    created, rather than when the container starts."""
    from nerdpy.engine.containers.etcfiles import check_user_in_layers
    from nerdpy.engine.images.image import image_chain_id, image_config, resolve_image

    img = resolve_image(store, spec.image)
    user = spec.user or (image_config(store, img).get("config") or {}).get("User") or ""
    if not user and not spec.group_add:
        return
    chain = image_chain_id(store, img)
    if chain is not None and not store.snapshots.exists(chain):
        return  # not unpacked: checked at start, inside the mounted root
    layers = store.snapshots.lowerdirs(chain) if chain else []
    check_user_in_layers(layers, user, spec.group_add)


def do_create(ctx, image, command, o):
    if o["log_driver"] not in (None, "json-file", "none"):
        raise click.UsageError(f"log driver {o['log_driver']!r} is not supported (json-file)")
    from nerdpy.engine.containers.lifecycle import create_container

    store = store_of(ctx)
    spec = build_spec(image, command, o)
    old = sys.stdout
    sys.stdout = sys.stderr  # pull progress must not pollute the ID on stdout
    try:
        _ensure_image(ctx, store, image, o["pull"], o["platform"], o["quiet"])
    finally:
        sys.stdout = old
    _check_user(store, spec)
    c = create_container(store, spec)
    if o["cidfile"]:
        try:
            fd = os.open(o["cidfile"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            from nerdpy.engine.containers.lifecycle import _remove_everything

            _remove_everything(store, c.id)
            raise click.UsageError(f"container ID file found, make sure the other container isn't running or delete {o['cidfile']}")
        os.write(fd, c.id.encode())
        os.close(fd)
    return store, c


@click.command("create", context_settings={"ignore_unknown_options": False, "allow_interspersed_args": False})
@container_options
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def create(ctx, image, command, **o):
    """Create a new container."""
    o["detach"] = True
    o["network_explicit"] = o["network"] is not None
    _, c = do_create(ctx, image, command, o)
    click.echo(c.id)


@click.command("run", context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run container in background and print container ID")
@click.option("--sig-proxy/--no-sig-proxy", default=True, help="Proxy received signals to the process")
@click.option("--detach-keys", help="Override the key sequence for detaching a container")
@click.option("-a", "--attach", multiple=True, help="Attach to STDIN, STDOUT or STDERR")
@container_options
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run(ctx, image, command, detach, sig_proxy, detach_keys, attach, **o):
    """Create and run a new container from an image.

    \b
    Examples:
      nerdpy run --rm busybox echo hello
      nerdpy run -d --name web --restart unless-stopped busybox httpd -f
      nerdpy run -it busybox sh
    """
    o["detach"] = detach
    # the monitor's interpreter starts while we create the container (it waits for its config)
    from nerdpy.engine.runtime.monitor.spawn import spawn_monitor

    monitor = spawn_monitor()
    try:
        store, c = do_create(ctx, image, command, o)
    except BaseException:
        monitor.close()
        raise
    from nerdpy.engine.containers.lifecycle import prepare_start

    handle = prepare_start(store, c, monitor=monitor)
    if detach:
        handle.start()
        click.echo(c.id)
        _exit_now(0)
    _exit_now(attach_and_start(store, c, handle, o["interactive"], o["tty"], sig_proxy, detach_keys))


def _exit_now(code: int) -> None:
    """Exit without the interpreter's teardown (some 10 ms with the engine loaded): everything
    that matters is on disk already (SQLite commits, renamed files), so only the streams need
    flushing."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)


def attach_and_start(store, c, handle, interactive: bool, tty: bool, sig_proxy: bool, detach_keys) -> int:
    from nerdpy.commands._attach import DETACHED, RawTerminal, connect, parse_detach_keys, pump, terminal_size
    from nerdpy.engine.containers.records import run_dir
    from nerdpy.engine.containers.lifecycle import kill_container, wait_container

    stdin_fd = sys.stdin.fileno() if interactive else None
    size = terminal_size(sys.stdin.fileno()) if tty and sys.stdin.isatty() else None
    try:
        sock = connect(os.path.join(run_dir(store, c.id), "attach.sock"), stdin=interactive, size=size,
                       cleanup=True)
    except OSError:
        handle.abort()
        raise
    handle.start()
    if sig_proxy and not tty:
        def forward(signum, _frame):
            try:
                kill_container(store, c, str(signum))
            except Exception:
                pass
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(s, forward)
    try:
        keys = parse_detach_keys(detach_keys)
    except ValueError as e:
        raise click.UsageError(str(e))
    def cleanup(remove: bool) -> None:  # the monitor hands it over: it would import the engine first
        from nerdpy.engine.containers.lifecycle import cleanup_container

        cleanup_container(store, c.id, after_failure=not remove, runc_deleted=True)

    if tty and stdin_fd is not None and os.isatty(stdin_fd):
        with RawTerminal(stdin_fd):
            code = pump(sock, stdin_fd, tty=True, detach_keys=keys, cleanup=cleanup)
    else:
        code = pump(sock, stdin_fd, tty=tty, detach_keys=keys, cleanup=cleanup)
    if code == DETACHED:
        return 0
    if code is None:  # no exit code from the monitor: ask the records
        final = wait_container(store, c, timeout=30)
        code = final if final is not None else 125
    return code
