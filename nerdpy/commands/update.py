"""`update` (and `container update`): new resource limits and restart policy for containers,
applied by the engine (engine/containers/update.py)."""
from __future__ import annotations

import click

from nerdpy.commands.containers import _each


@click.command("update")
@click.option("--blkio-weight", metavar="UINT16", help="Block IO (relative weight), between 10 and 1000, or 0 to disable")
@click.option("--cpu-period", metavar="INT", help="Limit CPU CFS (Completely Fair Scheduler) period")
@click.option("--cpu-quota", metavar="INT", help="Limit CPU CFS (Completely Fair Scheduler) quota")
@click.option("-c", "--cpu-shares", metavar="INT", help="CPU shares (relative weight)")
@click.option("--cpus", metavar="DECIMAL", help="Number of CPUs")
@click.option("--cpuset-cpus", metavar="STRING", help="CPUs in which to allow execution (0-3, 0,1)")
@click.option("--cpuset-mems", metavar="STRING", help="MEMs in which to allow execution (0-3, 0,1)")
@click.option("-m", "--memory", metavar="BYTES", help="Memory limit")
@click.option("--memory-reservation", metavar="BYTES", help="Memory soft limit")
@click.option("--memory-swap", metavar="BYTES", help="Swap limit equal to memory plus swap: -1 to enable unlimited swap")
@click.option("--pids-limit", metavar="INT", help="Tune container pids limit (set -1 for unlimited)")
@click.option("--restart", metavar="POLICY", help="Restart policy to apply when a container exits")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def update(ctx, containers, **flags):
    """Update configuration of one or more containers.

    \b
    Examples:
      nerdpy update --memory 256m --memory-swap 512m web
      nerdpy update --cpus 0.5 --pids-limit 100 web worker
      nerdpy update --restart unless-stopped web
    """
    from nerdpy.engine.containers.update import parse_update, update_container

    req = parse_update(flags)

    def one(store, c, name):
        update_container(store, c, req)
        click.echo(name)

    _each(ctx, containers, one)
