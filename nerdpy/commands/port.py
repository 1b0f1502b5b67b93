"""`port CONTAINER [PRIVATE_PORT[/PROTO]]`: the container's published ports, as docker prints them."""
from __future__ import annotations

import sys

import click

from nerdpy.commands._util import store_of


@click.command("port")
@click.argument("container")
@click.argument("private_port", required=False)
@click.pass_context
def port(ctx: click.Context, container: str, private_port: str | None) -> None:
    """List port mappings or a specific mapping for the container.

    \b
    Examples:
      nerdpy port web            80/tcp -> 0.0.0.0:8080
      nerdpy port web 80         0.0.0.0:8080
    """
    from nerdpy.engine.network.container import published_ports
    from nerdpy.engine.containers.records import container_state, find_container
    from nerdpy.engine.errors import NotFound

    store = store_of(ctx)
    c = find_container(store, container)
    mappings = published_ports(store, c.id) if container_state(store, c).running else []
    want = None
    if private_port:
        num, _, proto = private_port.partition("/")
        if not num.isdigit():
            raise click.UsageError(f"invalid port {private_port!r}")
        want = (int(num), proto or "tcp")
    lines = []
    for m in mappings:
        if want and (m.container_port, m.protocol) != want:
            continue
        host = m.host_ip or "0.0.0.0"
        if ":" in host:
            host = f"[{host}]"
        addr = f"{host}:{m.host_port}"
        lines.append(addr if want else f"{m.container_port}/{m.protocol} -> {addr}")
    if want and not lines:
        raise NotFound(f"no public port '{want[0]}/{want[1]}' published for {container}")
    sys.stdout.write("".join(line + "\n" for line in lines))
