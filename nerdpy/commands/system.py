"""`system`: commands that look after the whole store. For now `restart-policies`, which a
boot-time unit runs to start the containers whose restart policy asks for it (there is no
daemon to do it)."""
from __future__ import annotations

import dataclasses
import sys

import click

from nerdpy.commands._util import settings_of


@click.group("system")
def system() -> None:
    """Manage nerdpy."""


@system.command("restart-policies")
@click.option("--all-namespaces", "all_ns", is_flag=True, default=True, hidden=True)
@click.pass_context
def restart_policies(ctx: click.Context, all_ns: bool) -> None:
    """Start the containers whose restart policy asks for it (run once at boot).

    \b
    A systemd unit that does it at boot:
      [Unit]
      Description=nerdpy containers with a restart policy
      After=network-online.target
      [Service]
      Type=oneshot
      ExecStart=/usr/local/bin/nerdpy system restart-policies
      [Install]
      WantedBy=multi-user.target
    """
    from nerdpy.engine.boot import container_namespaces, restart_on_boot
    from nerdpy.engine.store import open_store

    settings = settings_of(ctx)
    first = open_store(settings)
    failed = False
    for ns in container_namespaces(first):
        store = open_store(dataclasses.replace(settings, namespace=ns))
        for r in restart_on_boot(store):
            if r.error:
                failed = True
                click.echo(f"nerdpy: {ns}/{r.name}: {r.error}", err=True)
            else:
                click.echo(f"{ns}/{r.name}")
    sys.exit(1 if failed else 0)
