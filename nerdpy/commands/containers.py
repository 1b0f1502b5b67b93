"""Container commands: start, stop, restart, kill, rm, wait, logs, exec, inspect, ps, and the
`container` group (with the hidden `cleanup` the monitor calls)."""
from __future__ import annotations

import os
import sys
import time

import click

from nerdpy.commands._util import parse_time, store_of
from nerdpy.exitcodes import report_missing


def _each(ctx, names, fn) -> None:
    """Run fn(store, container) for each name; print errors per name like docker; exit 1 if any failed."""
    from nerdpy.engine.containers.records import find_container
    from nerdpy.engine.errors import NerdpyError
    from nerdpy.exitcodes import SomeFailed, message

    store = store_of(ctx)
    failed = False
    for name in names:
        try:
            fn(store, find_container(store, name), name)
        except NerdpyError as e:
            click.echo(message(e), err=True)
            failed = True
    if failed:
        raise SomeFailed()


@click.command("start")
@click.argument("containers", nargs=-1, required=True)
@click.option("-a", "--attach", is_flag=True, help="Attach STDOUT/STDERR and forward signals")
@click.option("-i", "--interactive", is_flag=True, help="Attach container's STDIN")
@click.option("--detach-keys", help="Override the key sequence for detaching a container")
@click.pass_context
def start(ctx, containers, attach, interactive, detach_keys):
    """Start one or more stopped containers."""
    from nerdpy.engine.containers.records import container_state, find_container
    from nerdpy.engine.containers.lifecycle import prepare_start

    if attach or interactive:
        if len(containers) > 1:
            raise click.UsageError("you cannot start and attach multiple containers at once")
        from nerdpy.commands.run import attach_and_start

        store = store_of(ctx)
        c = find_container(store, containers[0])
        if container_state(store, c).running:
            raise click.UsageError(f"container {containers[0]} is already running")
        handle = prepare_start(store, c)
        sys.exit(attach_and_start(store, c, handle, interactive and c.spec.stdin_open,
                                  bool(c.spec.tty), True, detach_keys))

    def one(store, c, name):
        if container_state(store, c).running:
            click.echo(name)
            return
        prepare_start(store, c).start()
        click.echo(name)

    _each(ctx, containers, one)


@click.command("stop")
@click.argument("containers", nargs=-1, required=True)
@click.option("-t", "--time", "timeout", type=int, help="Seconds to wait before killing the container")
@click.option("-s", "--signal", "sig", help="Signal to send to the container")
@click.pass_context
def stop(ctx, containers, timeout, sig):
    """Stop one or more running containers."""
    from nerdpy.engine.containers.lifecycle import stop_container

    def one(store, c, name):
        stop_container(store, c, timeout=timeout, sig=sig)
        click.echo(name)

    _each(ctx, containers, one)


@click.command("restart")
@click.argument("containers", nargs=-1, required=True)
@click.option("-t", "--time", "timeout", type=int, help="Seconds to wait before killing the container")
@click.pass_context
def restart(ctx, containers, timeout):
    """Restart one or more containers."""
    from nerdpy.engine.containers.lifecycle import restart_container

    def one(store, c, name):
        restart_container(store, c, timeout=timeout)
        click.echo(name)

    _each(ctx, containers, one)


@click.command("kill")
@click.argument("containers", nargs=-1, required=True)
@click.option("-s", "--signal", "sig", default="KILL", help="Signal to send to the container")
@click.pass_context
def kill(ctx, containers, sig):
    """Kill one or more running containers."""
    from nerdpy.engine.containers.lifecycle import kill_container, parse_signal

    parse_signal(sig)

    def one(store, c, name):
        kill_container(store, c, sig)
        click.echo(name)

    _each(ctx, containers, one)


@click.command("rm")
@click.argument("containers", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Force the removal of a running container (uses SIGKILL)")
@click.option("-v", "--volumes", is_flag=True, help="Remove anonymous volumes associated with the container")
@click.pass_context
def rm(ctx, containers, force, volumes):
    """Remove one or more containers."""
    from nerdpy.engine.containers.lifecycle import remove_container

    def one(store, c, name):
        remove_container(store, c, force=force, volumes=volumes)
        click.echo(name)

    _each(ctx, containers, one)


@click.command("wait")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def wait(ctx, containers):
    """Block until one or more containers stop, then print their exit codes."""
    from nerdpy.engine.containers.lifecycle import wait_container

    def one(store, c, name):
        code = wait_container(store, c)
        click.echo(code if code is not None else 0)

    _each(ctx, containers, one)


@click.command("logs")
@click.argument("container")
@click.option("-f", "--follow", is_flag=True, help="Follow log output")
@click.option("-n", "--tail", default="all", help="Number of lines to show from the end of the logs")
@click.option("--since", help="Show logs since timestamp or relative (e.g. 42m)")
@click.option("--until", help="Show logs before a timestamp or relative (e.g. 42m)")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@click.pass_context
def logs(ctx, container, follow, tail, since, until, timestamps):
    """Fetch the logs of a container.

    \b
    Examples:
      nerdpy logs web
      nerdpy logs -f --tail 10 web
      nerdpy logs --since 10m -t web
    """
    from nerdpy.engine.containers.records import container_state, find_container
    from nerdpy.engine.containers.logs import read_logs

    store = store_of(ctx)
    c = find_container(store, container)
    if tail != "all" and not tail.lstrip("-").isdigit():
        raise click.UsageError(f"invalid --tail value {tail!r}")
    t0 = _parse_since(since)
    t1 = _parse_since(until)
    out, err = sys.stdout.buffer, sys.stderr.buffer
    for entry in read_logs(store, c, tail=None if tail == "all" else int(tail), since=t0, until=t1,
                           follow=follow, running=lambda: container_state(store, c).running):
        data = entry["log"].encode()
        if timestamps:
            data = entry["time"].encode() + b" " + data
        (err if entry.get("stream") == "stderr" else out).write(data)
        if follow:
            (err if entry.get("stream") == "stderr" else out).flush()
    lost = container_state(store, c).log_dropped
    if lost:
        out.flush()
        err.write(f"WARNING: {lost} log lines were dropped before the container exited: no space left for the log\n"
                  .encode())


def _parse_since(text: str | None) -> float | None:
    if not text:
        return None
    import re

    m = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|h)", text)
    if m:
        return time.time() - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    t = parse_time(text)
    if t is None:
        raise click.UsageError(f"invalid time {text!r}")
    return t


@click.command("exec", context_settings={"allow_interspersed_args": False})
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY")
@click.option("-d", "--detach", is_flag=True, help="Detached mode: run command in the background")
@click.option("-e", "--env", multiple=True, help="Set environment variables")
@click.option("--env-file", multiple=True, help="Read in a file of environment variables")
@click.option("-w", "--workdir", help="Working directory inside the container")
@click.option("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])")
@click.option("--privileged", is_flag=True, help="Give extended privileges to the command")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def exec_(ctx, interactive, tty, detach, env, env_file, workdir, user, privileged, container, command):
    """Execute a command in a running container.

    \b
    Examples:
      nerdpy exec web ls /etc
      nerdpy exec -it web sh
      nerdpy exec -u nobody -w /tmp -e DEBUG=1 web id
    """
    from nerdpy.engine.containers.records import container_state, find_container
    from nerdpy.engine.containers.exec import exec_argv

    if env or env_file:
        from nerdpy.engine.containers.options import exec_env

        env = exec_env(env_file, env)  # files first, then -e, as docker does
    store = store_of(ctx)
    c = find_container(store, container)
    state = container_state(store, c)
    if state.status != "running":
        from nerdpy.engine.errors import Conflict

        if state.status == "paused":
            raise Conflict(f"container {container} is paused, unpause the container before exec")
        raise Conflict(f"container {container} is not running")
    argv, cleanup = exec_argv(store, c, list(command), env=list(env), workdir=workdir, user=user,
                              tty=tty and sys.stdin.isatty(), detach=detach, privileged=privileged)
    import subprocess

    from nerdpy.engine.containers.exec import exec_event

    exec_id = os.urandom(32).hex()  # (secrets.token_hex without loading secrets and OpenSSL)
    exec_event(store, c, ("exec_create", "exec_start"), exec_id, list(command))
    try:
        if detach:
            _run_exec_detached(argv)
            return
        stdin = None if interactive else subprocess.DEVNULL
        code = _run_exec(argv, stdin, tty)
    finally:
        cleanup()
    exec_event(store, c, "exec_die", exec_id, list(command), code)
    sys.exit(code)


def _run_exec_detached(argv: list[str]) -> None:
    """`runc exec --detach`: the process inherits runc's stdio, so that is /dev/null (with pipes,
    waiting for runc's output would wait for the process to end); runc's own error comes from its
    log."""
    import subprocess

    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode == 0:
        return
    from nerdpy.engine.containers.exec import exec_error
    from nerdpy.engine.containers.lifecycle import _start_error

    raise _start_error(exec_error(argv) or f"runc exec exited with status {r.returncode}")


def _run_exec(argv: list[str], stdin, tty: bool) -> int:
    """Run `runc exec`; its own failure (command not found...) becomes one `nerdpy:` line with
    docker's exit code (127 not found, 126 not invokable, 125 otherwise), while the process's
    own stderr passes through untouched."""
    import subprocess
    import threading

    if tty:
        return subprocess.run(argv, stdin=stdin).returncode
    p = subprocess.Popen(argv, stdin=stdin, stderr=subprocess.PIPE)
    held = bytearray()

    def forward() -> None:
        out = sys.stderr.buffer
        first = True
        while True:
            chunk = p.stderr.read1(65536)
            if not chunk:
                break
            if first and chunk.startswith(b"exec failed:") or held:
                held.extend(chunk)  # perhaps runc's own error: decided once runc exits
            else:
                out.write(chunk)
                out.flush()
            first = False

    t = threading.Thread(target=forward, daemon=True)
    t.start()
    code = p.wait()
    t.join()
    if code == 255:
        from nerdpy.engine.containers.exec import exec_error
        from nerdpy.engine.containers.lifecycle import _start_error

        msg = exec_error(argv)
        if msg:
            raise _start_error(msg)
    if held:
        sys.stderr.buffer.write(bytes(held))
    return code


@click.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", help="Format output using a custom template")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes")
@click.option("--type", "kind", type=click.Choice(["container", "image", "volume"]), help="Return JSON for specified type")
@click.pass_context
def inspect(ctx, names, fmt, size, kind):
    """Return low-level information on containers or images."""
    from nerdpy.engine.containers.records import ContainerNotFound, find_container
    from nerdpy.engine.errors import ImageNotFound
    from nerdpy.engine.containers.inspect import container_json

    store = store_of(ctx)
    results, missing = [], []
    for name in names:
        obj = None
        if kind in (None, "container"):
            try:
                obj = container_json(store, find_container(store, name))
            except ContainerNotFound:
                obj = None
        if obj is None and kind in (None, "image"):
            from nerdpy.commands.images import inspect_json
            from nerdpy.engine.images.image import resolve_image

            try:
                obj = inspect_json(store, resolve_image(store, name))
            except ImageNotFound:
                obj = None
        if obj is None and kind == "volume":
            from nerdpy.commands.volumes import volume_json
            from nerdpy.engine.containers.volumes import get_volume

            v = get_volume(store, name)
            obj = volume_json(store, v) if v else None
        if obj is None:
            missing.append(name)
        else:
            results.append(obj)
    _print_inspect(results, fmt)
    report_missing("no such object: {}", missing)


def _print_inspect(results, fmt):
    from nerdpy.commands._util import print_inspect

    print_inspect(results, fmt)


@click.command("container-inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", help="Format output using a custom template")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes")
@click.pass_context
def container_inspect(ctx, names, fmt, size):
    """Display detailed information on one or more containers."""
    from nerdpy.engine.containers.records import ContainerNotFound, find_container
    from nerdpy.engine.containers.inspect import container_json

    store = store_of(ctx)
    results, missing = [], []
    for name in names:
        try:
            results.append(container_json(store, find_container(store, name)))
        except ContainerNotFound:
            missing.append(name)
    _print_inspect(results, fmt)
    report_missing("No such container: {}", missing)


@click.command("cleanup", hidden=True)
@click.argument("cid")
@click.pass_context
def cleanup(ctx, cid):
    """(internal) Called by a container's monitor when the container has stopped."""
    from nerdpy.engine.containers.lifecycle import cleanup_container

    cleanup_container(store_of(ctx), cid)


@click.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, metavar="FILTER",
              help="Provide filter values: label=KEY[=VALUE], label!=KEY[=VALUE], until=TIME")
@click.pass_context
def prune(ctx, force, filters):
    """Remove all stopped containers."""
    from nerdpy.engine.system.prune import prune_containers
    from nerdpy.engine.system.prunefilter import parse_prune_filters

    flt = parse_prune_filters(filters, "container")
    if not force:
        if not sys.stdin.isatty():
            raise click.UsageError("refusing to prune without confirmation: use -f/--force")
        if not click.confirm("WARNING! This will remove all stopped containers.\nAre you sure you want to continue?"):
            return
    from nerdpy.commands._util import human_size

    ids, freed = prune_containers(store_of(ctx), flt)
    if ids:
        click.echo("Deleted Containers:")
        for cid in ids:
            click.echo(cid)
        click.echo("")
    click.echo(f"Total reclaimed space: {human_size(freed)}")


def _container_group():
    from nerdpy.cli import COMMANDS, LazyGroup

    # the sub-commands living in other modules are imported only when used (`exec` and `logs`
    # need neither run's nor ps's module); module and help as the top-level commands'
    lazy = {name: COMMANDS[top] for name, top in (
        ("ls", "ps"), ("list", "ps"), ("ps", "ps"), ("run", "run"), ("create", "create"), ("cp", "cp"),
        ("attach", "attach"), ("top", "top"), ("rename", "rename"), ("pause", "pause"), ("unpause", "unpause"),
        ("stats", "stats"), ("update", "update"), ("diff", "diff"), ("commit", "commit"), ("export", "export"),
        ("port", "port"))}

    @click.group("container", cls=LazyGroup, lazy=lazy)
    def container():
        """Manage containers."""

    for cmd, name in ((start, "start"), (stop, "stop"), (restart, "restart"), (kill, "kill"),
                      (rm, "rm"), (rm, "remove"), (wait, "wait"), (logs, "logs"), (exec_, "exec"),
                      (container_inspect, "inspect"), (cleanup, "cleanup"), (prune, "prune")):
        container.add_command(cmd, name)
    return container


container = _container_group()
