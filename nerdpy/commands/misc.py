"""Small container commands: attach, top, rename, pause, unpause."""
from __future__ import annotations

import os
import signal
import sys

import click

from nerdpy.commands._util import store_of
from nerdpy.exitcodes import CommandError


def _each(ctx, names, fn) -> None:
    """fn(store, container) per name, printing the name when done; docker prints each error and
    exits 1 if any failed (the loop of nerdpy.commands.containers)."""
    from nerdpy.commands.containers import _each as each

    def one(store, c, name):
        fn(store, c)
        click.echo(name)

    each(ctx, names, one)


@click.command("attach")
@click.option("--no-stdin", is_flag=True, help="Do not attach STDIN")
@click.option("--sig-proxy/--no-sig-proxy", default=True, help="Proxy all received signals to the process")
@click.option("--detach-keys", help="Override the key sequence for detaching a container")
@click.argument("container")
@click.pass_context
def attach(ctx, no_stdin, sig_proxy, detach_keys, container):
    """Attach local standard input, output, and error streams to a running container.

    Detach from a container started with -t with ctrl-p ctrl-q (or --detach-keys); the
    container keeps running. When the container exits, its exit code is ours.
    """
    from nerdpy.commands._attach import DETACHED, RawTerminal, connect, parse_detach_keys, pump, terminal_size
    from nerdpy.engine.containers.records import container_state, find_container, run_dir
    from nerdpy.engine.containers.lifecycle import kill_container
    from nerdpy.engine.errors import Conflict

    try:
        keys = parse_detach_keys(detach_keys)
    except ValueError as e:
        raise click.UsageError(str(e))
    store = store_of(ctx)
    c = find_container(store, container)
    state = container_state(store, c)
    if state.status == "paused":
        raise Conflict("You cannot attach to a paused container, unpause it first")
    if not state.running:
        raise Conflict("You cannot attach to a stopped container, start it first")
    tty = bool(c.spec.tty)
    with_stdin = bool(c.spec.stdin_open) and not no_stdin
    if tty and with_stdin and not sys.stdin.isatty():
        raise CommandError("the input device is not a TTY")
    stdin_fd = sys.stdin.fileno() if with_stdin else None
    size = terminal_size(sys.stdin.fileno()) if tty and sys.stdin.isatty() else None
    from nerdpy.engine.containers.records import container_event

    container_event(store, c, "attach")  # before the hello, whose terminal size is a `resize` event
    try:
        sock = connect(os.path.join(run_dir(store, c.id), "attach.sock"), stdin=with_stdin, size=size)
    except OSError:
        if not container_state(store, c).running:
            raise Conflict("You cannot attach to a stopped container, start it first") from None
        raise CommandError(f"cannot attach to container {c.name}: its monitor does not answer") from None
    if sig_proxy and not tty:
        def forward(signum, _frame):
            try:
                kill_container(store, c, str(signum))
            except Exception:
                pass
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(s, forward)
    if tty and stdin_fd is not None and os.isatty(stdin_fd):
        with RawTerminal(stdin_fd):
            code = pump(sock, stdin_fd, tty=True, detach_keys=keys, close_stdin_on_eof=False)
    else:
        code = pump(sock, stdin_fd, tty=tty, detach_keys=keys, close_stdin_on_eof=not tty)
    if code == DETACHED:
        container_event(store, c, "detach")
        click.echo("read escape sequence", err=True)
        sys.exit(0)
    if code == 0:
        # no exit frame (the monitor went away?) or a real 0: the record says which
        from nerdpy.engine.containers.records import ContainerNotFound

        try:
            st = container_state(store, find_container(store, c.id))
        except ContainerNotFound:   # --rm: removed already; the frame's code stands
            st = None
        if st is not None and st.status == "exited":
            code = st.exit_code
    sys.exit(code)


@click.command("top", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})
@click.argument("container")
@click.argument("ps_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def top(ctx, container, ps_args):
    """Display the running processes of a container: `top CONTAINER [ps OPTIONS]` (default -ef)."""
    from nerdpy.engine.containers.records import container_top, find_container

    store = store_of(ctx)
    titles, rows = container_top(store, find_container(store, container), list(ps_args))
    sys.stdout.write(tabwrite([titles] + rows))


def tabwrite(rows: list[list[str]], minwidth: int = 20, padding: int = 3) -> str:
    """Go's tabwriter as docker top uses it (minwidth 20, padding 3; the last cell unpadded)."""
    if not rows:
        return ""
    ncols = max(len(r) for r in rows)
    widths = [0] * ncols
    for r in rows:
        for i, cell in enumerate(r[:-1]):
            widths[i] = max(widths[i], len(cell) + padding, minwidth)
    out = []
    for r in rows:
        line = "".join(cell.ljust(widths[i]) for i, cell in enumerate(r[:-1])) + (r[-1] if r else "")
        out.append(line.rstrip() + "\n")
    return "".join(out)


@click.command("rename")
@click.argument("container")
@click.argument("new_name")
@click.pass_context
def rename(ctx, container, new_name):
    """Rename a container."""
    from nerdpy.engine.containers.records import find_container, rename_container

    store = store_of(ctx)
    rename_container(store, find_container(store, container), new_name)


@click.command("pause")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def pause(ctx, containers):
    """Pause all processes within one or more containers."""
    from nerdpy.engine.containers.records import pause_container

    _each(ctx, containers, pause_container)


@click.command("unpause")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def unpause(ctx, containers):
    """Unpause all processes within one or more containers."""
    from nerdpy.engine.containers.records import unpause_container

    _each(ctx, containers, unpause_container)
