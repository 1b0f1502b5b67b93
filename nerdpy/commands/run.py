"""`run` and `create`: docker's flags (click) -> engine/containers/options.build_spec -> engine
lifecycle, then attach or print the ID. No checks of the values here: they are the options module's."""
from __future__ import annotations

import os
import signal
import sys

import click

from nerdpy.commands._util import store_of


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
        click.option("--device", multiple=True,
                     help="Add a host device (HOST[:CONTAINER][:rwm]) or a CDI device (vendor.com/class=name)"),
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
        click.option("--ipc", help="IPC mode to use (private, shareable, none, host, container:<name|id>)"),
        click.option("--uts", help="UTS namespace to use (host)"),
        click.option("--cgroupns", help="Cgroup namespace to use (host, private)"),
        click.option("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)"),
        click.option("--cpuset-mems", help="MEMs in which to allow execution (0-3, 0,1)"),
        click.option("--cpu-period", help="Limit CPU CFS (Completely Fair Scheduler) period"),
        click.option("--cpu-quota", help="Limit CPU CFS (Completely Fair Scheduler) quota"),
        click.option("--memory-swappiness", help="Tune container memory swappiness (0 to 100)"),
        click.option("--oom-kill-disable", is_flag=True, help="Disable OOM Killer"),
        click.option("--blkio-weight", help="Block IO (relative weight), between 10 and 1000, or 0 to disable"),
        click.option("--device-read-bps", multiple=True, help="Limit read rate (bytes per second) from a device"),
        click.option("--device-write-bps", multiple=True, help="Limit write rate (bytes per second) to a device"),
        click.option("--device-read-iops", multiple=True, help="Limit read rate (IO per second) from a device"),
        click.option("--device-write-iops", multiple=True, help="Limit write rate (IO per second) to a device"),
        click.option("--volumes-from", multiple=True, help="Mount volumes from the specified container(s)"),
        click.option("--runtime", help="Runtime to use for this container (runc, or one named in nerdpy.toml)"),
        click.option("--gpus", help="GPU devices to add to the container ('all' to pass all GPUs), through CDI"),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


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
        raise ImageNotFound(f"No such image: {image}")
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

    from nerdpy.engine.containers.options import build_spec

    store = store_of(ctx)
    spec = build_spec(image, command, o)
    # docker's CLI makes the ID file before anything else, so that a path it cannot write is
    # refused up front (and removed again when the create fails)
    fd = _open_cidfile(o["cidfile"]) if o["cidfile"] else None
    try:
        old = sys.stdout
        sys.stdout = sys.stderr  # pull progress must not pollute the ID on stdout
        try:
            _ensure_image(ctx, store, image, o["pull"], o["platform"], o["quiet"])
        finally:
            sys.stdout = old
        _check_user(store, spec)
        c = create_container(store, spec)
    except BaseException:
        if fd is not None:
            os.close(fd)
            try:
                os.unlink(o["cidfile"])
            except OSError:
                pass
        raise
    if fd is not None:
        os.write(fd, c.id.encode())
        os.close(fd)
    return store, c


def _open_cidfile(path: str) -> int:
    from nerdpy.engine.errors import InvalidArgument

    if os.path.lexists(path):
        raise InvalidArgument(f"container ID file found, make sure the other container isn't running or delete {path}")
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as e:
        raise InvalidArgument(f"failed to create the container ID file: open {path}: "
                              f"{(e.strerror or str(e)).lower()}") from None


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
    streams = _attach_streams(attach, detach)
    # the monitor's interpreter starts while we create the container (it waits for its config)
    from nerdpy.engine.runtime.monitor.spawn import spawn_monitor

    if os.geteuid() != 0:  # rootless: into the user namespace first, so the monitor starts inside
        ctx.obj.store()
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
    _exit_now(attach_and_start(store, c, handle, o["interactive"], o["tty"], sig_proxy, detach_keys, streams))


def _attach_streams(attach, detach: bool) -> tuple[bool, bool] | None:
    """-a/--attach STDIN|STDOUT|STDERR (repeatable) -> (stdout, stderr) to forward; None: both."""
    if not attach:
        return None
    if detach:
        raise click.UsageError("conflicting options: cannot specify both --attach and --detach")
    names = {a.lower() for a in attach}
    bad = names - {"stdin", "stdout", "stderr"}
    if bad:
        raise click.UsageError(f"invalid argument {sorted(bad)[0]!r} for \"-a, --attach\" flag: "
                               "valid streams are STDIN, STDOUT and STDERR")
    return "stdout" in names, "stderr" in names


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


def attach_and_start(store, c, handle, interactive: bool, tty: bool, sig_proxy: bool, detach_keys,
                     streams: tuple[bool, bool] | None = None) -> int:
    from nerdpy.commands._attach import DETACHED, RawTerminal, connect, parse_detach_keys, pump, terminal_size
    from nerdpy.engine.containers.records import run_dir
    from nerdpy.engine.containers.lifecycle import kill_container, wait_container

    stdin_fd = sys.stdin.fileno() if interactive else None
    size = terminal_size(sys.stdin.fileno()) if tty and sys.stdin.isatty() else None
    from nerdpy.engine.containers.records import container_event

    container_event(store, c, "attach")  # before the hello, whose terminal size is a `resize` event
    try:
        out, err = streams or (True, True)
        sock = connect(os.path.join(run_dir(store, c.id), "attach.sock"), stdin=interactive, size=size,
                       cleanup=True, stdout=out, stderr=err)
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
        container_event(store, c, "detach")
        return 0
    if code is None:  # no exit code from the monitor: ask the records
        final = wait_container(store, c, timeout=30)
        code = final if final is not None else 125
    return code
