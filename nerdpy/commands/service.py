"""`system service`: serve the Docker Engine API (nerdpy.api) on a unix socket until idle.

aiohttp is imported here, on this command's path only."""
from __future__ import annotations

import sys

import click

from nerdpy.commands._util import settings_of


@click.command("service")
@click.option("-t", "--time", "idle", default=5, type=click.IntRange(min=0), show_default=True,
              help="Seconds without a connection before the service exits (0: never)")
@click.option("--group", metavar="GROUP",
              help="Group allowed to use the socket (mode 0660); by default only its owner (0600)")
@click.argument("uri", required=False)
@click.pass_context
def service(ctx: click.Context, idle: int, group: str | None, uri: str | None) -> None:
    """Serve the Docker Engine API, started on demand, exiting when idle.

    \b
    URI: unix:///run/nerdpy/nerdpy.sock by default ($XDG_RUNTIME_DIR/nerdpy/nerdpy.sock for a
    user other than root), unix:///var/run/docker.sock, or tcp://127.0.0.1:PORT (loopback only).
    Started by systemd with a listening socket (LISTEN_FDS), it serves that socket
    (contrib/systemd/nerdpy.socket and nerdpy.service).

    \b
    Examples:
      nerdpy system service --time 0 &
      DOCKER_HOST=unix:///run/nerdpy/nerdpy.sock docker ps
    """
    try:
        from nerdpy.api.server import serve
    except ImportError as e:
        raise click.UsageError(f"the API service needs aiohttp ({e}): pip install aiohttp") from None

    def log(msg: str) -> None:
        click.echo(f"nerdpy service: {msg}", err=True)

    serve(settings_of(ctx), uri, idle=float(idle), group=group, log=log)
    sys.exit(0)
