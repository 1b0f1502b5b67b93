"""`run` and `create`: docker's flags -> ContainerSpec -> engine lifecycle, then attach or print
the ID."""
from __future__ import annotations

import os
import signal
import sys

import click

from nerdpy.commands._util import store_of


def _parse_kv_list(items, what: str) -> dict[str, str]:
    out = {}
    for item in items:
        k, _, v = item.partition("=")
        if not k:
            raise click.UsageError(f"invalid {what}: {item!r}")
        out[k] = v
    return out


def _read_env_file(path: str) -> list[str]:
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise click.UsageError(f"open {path}: {e.strerror}")
    out = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        out.append(line)
    return out


def parse_volume(text: str):
    """-v forms: /ctr (anonymous), name:/ctr[:opts], /host:/ctr[:opts]."""
    from nerdpy.engine.containers import MountSpec

    parts = text.split(":")
    if len(parts) == 1:
        if not parts[0].startswith("/"):
            raise click.UsageError(f"invalid volume specification: {text!r}")
        return MountSpec("volume", parts[0], "", False, {"anonymous": True})
    if len(parts) > 3:
        raise click.UsageError(f"invalid volume specification: {text!r}")
    src, dst = parts[0], parts[1]
    opts = parts[2].split(",") if len(parts) == 3 else []
    if not dst.startswith("/"):
        raise click.UsageError(f"invalid volume specification: {text!r}: the destination must be an absolute path")
    ro = False
    for o in opts:
        if o == "ro":
            ro = True
        elif o in ("rw", "z", "Z", "nocopy", "private", "rprivate", "shared", "rshared", "slave", "rslave", ""):
            continue
        else:
            raise click.UsageError(f"invalid volume specification: {text!r}: unknown option {o!r}")
    if src.startswith("/") or src.startswith("."):
        return MountSpec("bind", dst, os.path.abspath(src), ro, {"create_host_path": True})
    return MountSpec("volume", dst, src, ro, {"nocopy": "nocopy" in opts})


def parse_mount(text: str):
    from nerdpy.engine.containers import MountSpec

    fields: dict[str, str] = {}
    for part in text.split(","):
        k, eq, v = part.partition("=")
        fields[k.strip().lower()] = v if eq else "true"
    kind = fields.get("type", "volume")
    target = fields.get("target") or fields.get("destination") or fields.get("dst")
    if not target:
        raise click.UsageError(f"invalid --mount {text!r}: target is required")
    ro = fields.get("readonly", fields.get("ro", "false")) in ("true", "1")
    src = fields.get("source") or fields.get("src") or ""
    if kind == "bind":
        if not src:
            raise click.UsageError(f"invalid --mount {text!r}: source is required for a bind")
        return MountSpec("bind", target, os.path.abspath(src), ro, {"create_host_path": False,
                         "propagation": fields.get("bind-propagation", "rprivate")})
    if kind == "volume":
        if not src:
            return MountSpec("volume", target, "", ro, {"anonymous": True})
        return MountSpec("volume", target, src, ro, {"nocopy": fields.get("volume-nocopy") == "true"})
    if kind == "tmpfs":
        opts = {}
        if "tmpfs-size" in fields:
            opts["size"] = fields["tmpfs-size"]
        if "tmpfs-mode" in fields:
            opts["mode"] = fields["tmpfs-mode"]
        return MountSpec("tmpfs", target, "", ro, opts)
    raise click.UsageError(f"invalid --mount {text!r}: unknown type {kind!r}")


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


def build_spec(image: str, command: tuple, o: dict):
    from nerdpy.engine.containers import ContainerSpec, MountSpec
    from nerdpy.engine.lifecycle import parse_restart, parse_size

    env = []
    for f in o["env_file"]:
        env += _read_env_file(f)
    env += list(o["env"])
    labels = {}
    for f in o["label_file"]:
        labels.update(_parse_kv_list(_read_env_file(f), "label"))
    labels.update(_parse_kv_list(o["label"], "label"))
    mounts = [parse_volume(v) for v in o["volume"]] + [parse_mount(m) for m in o["mount"]]
    for t in o["tmpfs"]:
        dst, _, opts = t.partition(":")
        mo = {}
        for kv in opts.split(",") if opts else []:
            k, _, v = kv.partition("=")
            if k in ("size", "mode"):
                mo[k] = v
        mounts.append(MountSpec("tmpfs", dst, "", False, mo))
    ulimits = []
    for u in o["ulimit"]:
        name, _, val = u.partition("=")
        soft, _, hard = val.partition(":")
        try:
            ulimits.append((name, int(soft), int(hard or soft)))
        except ValueError:
            raise click.UsageError(f"invalid ulimit {u!r}")
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
    network = o["network"] or "none"
    if network == "bridge" and not o["network_explicit"]:
        network = "none"
    if network not in ("none", "host"):
        raise click.UsageError(f"network {network!r} is not supported yet (use --network none or host)")
    if o["publish"]:
        raise click.UsageError("publishing ports (-p) needs a bridge network, which is not supported yet")
    entrypoint = None
    if o["entrypoint"] is not None:
        entrypoint = [o["entrypoint"]] if o["entrypoint"] else []
    swap = None
    if o["memory_swap"]:
        swap = -1 if o["memory_swap"] == "-1" else parse_size(o["memory_swap"])
    return ContainerSpec(
        image=image,
        name=o["name"],
        cmd=list(command) or None,
        entrypoint=entrypoint,
        env=env,
        workdir=o["workdir"],
        user=o["user"],
        group_add=list(o["group_add"]),
        hostname=o["hostname"],
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
        memory=parse_size(o["memory"]) if o["memory"] else None,
        memory_swap=swap,
        memory_reservation=parse_size(o["memory_reservation"]) if o["memory_reservation"] else None,
        cpus=o["cpus"],
        cpu_shares=o["cpu_shares"],
        pids_limit=o["pids_limit"],
        ulimits=ulimits,
        shm_size=parse_size(o["shm_size"]) if o["shm_size"] else None,
        sysctls=_parse_kv_list(o["sysctl"], "sysctl"),
        devices=list(o["device"]),
        privileged=o["privileged"],
        cap_add=list(o["cap_add"]),
        cap_drop=list(o["cap_drop"]),
        security_opt=list(o["security_opt"]),
        init=o["init"],
        stop_signal=o["stop_signal"],
        stop_timeout=o["stop_timeout"],
        healthcheck=hc,
        no_healthcheck=o["no_healthcheck"],
        log_opts=_parse_kv_list(o["log_opt"], "log option"),
        oom_score_adj=o["oom_score_adj"],
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
        click.option("--cpus", type=float, help="Number of CPUs"),
        click.option("--cpu-shares", "-c", type=int, help="CPU shares (relative weight)"),
        click.option("--pids-limit", type=int, help="Tune container pids limit (set -1 for unlimited)"),
        click.option("--ulimit", multiple=True, help="Ulimit options"),
        click.option("--init", is_flag=True, help="Run an init inside the container that forwards signals and reaps processes"),
        click.option("--stop-signal", help="Signal to stop the container"),
        click.option("--stop-timeout", type=int, help="Timeout (in seconds) to stop a container"),
        click.option("--privileged", is_flag=True, help="Give extended privileges to this container"),
        click.option("--cap-add", multiple=True, help="Add Linux capabilities"),
        click.option("--cap-drop", multiple=True, help="Drop Linux capabilities"),
        click.option("--security-opt", multiple=True, help="Security Options"),
        click.option("--device", multiple=True, help="Add a host device to the container"),
        click.option("--shm-size", help="Size of /dev/shm"),
        click.option("--sysctl", multiple=True, help="Sysctl options"),
        click.option("--oom-score-adj", type=int, help="Tune host's OOM preferences (-1000 to 1000)"),
        click.option("--health-cmd", help="Command to run to check health"),
        click.option("--health-interval", help="Time between running the check (ms|s|m|h)"),
        click.option("--health-timeout", help="Maximum time to allow one check to run (ms|s|m|h)"),
        click.option("--health-retries", type=int, help="Consecutive failures needed to report unhealthy"),
        click.option("--health-start-period", help="Start period for the container to initialize before counting retries"),
        click.option("--no-healthcheck", is_flag=True, help="Disable any container-specified HEALTHCHECK"),
        click.option("--platform", help="Set platform if server is multi-platform capable"),
        click.option("--log-opt", multiple=True, help="Log driver options (max-size, max-file)"),
        click.option("--log-driver", help="Logging driver for the container (json-file)"),
        click.option("--network", "--net", "network", help="Connect a container to a network (none, host)"),
        click.option("-p", "--publish", multiple=True, help="Publish a container's port(s) to the host"),
        click.option("-P", "--publish-all", is_flag=True, help="Publish all exposed ports to random ports"),
        click.option("--dns", multiple=True, help="Set custom DNS servers"),
        click.option("--add-host", multiple=True, help="Add a custom host-to-IP mapping (host:ip)"),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _ensure_image(ctx, store, image: str, pull_policy: str, platform: str | None, quiet: bool) -> None:
    from nerdpy.engine.errors import ImageNotFound
    from nerdpy.engine.images import lookup_images

    have = bool(lookup_images(store, image))
    if have and pull_policy != "always":
        return
    if not have and pull_policy == "never":
        raise ImageNotFound(f"no such image: {image}")
    from nerdpy.commands.progress import pull_progress
    from nerdpy.engine.pull import pull_image
    from nerdpy.engine.reference import parse_reference

    ref = parse_reference(image)
    if not quiet:
        click.echo(f"Unable to find image '{ref.familiar()}' locally", err=True) if not have else None
    with pull_progress("quiet" if quiet else "plain", ref) as cb:
        pull_image(store, image, platform=platform, progress=cb)


def do_create(ctx, image, command, o):
    if o["log_driver"] not in (None, "json-file", "none"):
        raise click.UsageError(f"log driver {o['log_driver']!r} is not supported (json-file)")
    from nerdpy.engine.lifecycle import create_container

    store = store_of(ctx)
    spec = build_spec(image, command, o)
    old = sys.stdout
    sys.stdout = sys.stderr  # pull progress must not pollute the ID on stdout
    try:
        _ensure_image(ctx, store, image, o["pull"], o["platform"], o["quiet"])
    finally:
        sys.stdout = old
    c = create_container(store, spec)
    if o["cidfile"]:
        try:
            fd = os.open(o["cidfile"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            from nerdpy.engine.lifecycle import _remove_everything

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
    o["network_explicit"] = o["network"] is not None
    store, c = do_create(ctx, image, command, o)
    from nerdpy.engine.lifecycle import prepare_start

    handle = prepare_start(store, c)
    if detach:
        handle.start()
        click.echo(c.id)
        return
    sys.exit(attach_and_start(store, c, handle, o["interactive"], o["tty"], sig_proxy, detach_keys))


def attach_and_start(store, c, handle, interactive: bool, tty: bool, sig_proxy: bool, detach_keys) -> int:
    from nerdpy.commands._attach import DETACHED, RawTerminal, connect, parse_detach_keys, pump, terminal_size
    from nerdpy.engine.containers import run_dir
    from nerdpy.engine.lifecycle import kill_container, wait_container

    stdin_fd = sys.stdin.fileno() if interactive else None
    size = terminal_size(sys.stdin.fileno()) if tty and sys.stdin.isatty() else None
    try:
        sock = connect(os.path.join(run_dir(store, c.id), "attach.sock"), stdin=interactive, size=size)
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
    if tty and stdin_fd is not None and os.isatty(stdin_fd):
        with RawTerminal(stdin_fd):
            code = pump(sock, stdin_fd, tty=True, detach_keys=keys)
    else:
        code = pump(sock, stdin_fd, tty=tty, detach_keys=keys)
    if code == DETACHED:
        return 0
    if code is None:  # no exit code from the monitor: ask the records
        final = wait_container(store, c, timeout=30)
        code = final if final is not None else 125
    return code
