"""`stats` (and `container stats`): the engine's usage figures (engine/containers/stats.py) as
docker prints them: a table redrawn in place on a terminal, printed once with `--no-stream` or
when the output is not a terminal; `--format` table, json or a Go template."""
from __future__ import annotations

import sys

import click

from nerdpy.commands._util import bytes_size, human_size, store_of

DEFAULT_TABLE = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t"
                 "{{.BlockIO}}\t{{.PIDs}}")
HEADERS = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %",
           "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
           "PIDs": "PIDS"}


def stats_row(u, asked: str, no_trunc: bool) -> dict:
    """One row with docker's keys ({{json .}}) from the engine's Usage (also `compose stats`)."""
    return {
        "Container": asked,
        "ID": u.id if no_trunc else u.id[:12],
        "Name": u.name,
        "CPUPerc": f"{u.cpu_percent:.2f}%",
        "MemUsage": f"{bytes_size(u.mem_usage)} / {bytes_size(u.mem_limit)}",
        "MemPerc": f"{u.mem_percent:.2f}%",
        "NetIO": f"{human_size(u.net_rx)} / {human_size(u.net_tx)}",
        "BlockIO": f"{human_size(u.blk_read)} / {human_size(u.blk_write)}",
        "PIDs": str(u.pids),
    }


@click.command("stats")
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running)")
@click.option("--no-stream", is_flag=True, help="Disable streaming stats and only pull the first result")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output")
@click.option("--format", "fmt", metavar="FORMAT",
              help="Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template")
@click.argument("containers", nargs=-1)
@click.pass_context
def stats(ctx, all_, no_stream, no_trunc, fmt, containers):
    """Display a live stream of container(s) resource usage statistics.

    \b
    Examples:
      nerdpy stats --no-stream
      nerdpy stats --no-stream --format '{{.Name}} {{.CPUPerc}} {{.MemUsage}}' web
    """
    from nerdpy.engine.containers.records import container_state, find_container, list_containers
    from nerdpy.engine.containers.stats import stats_once
    from nerdpy.template import format_output

    store = store_of(ctx)
    if containers:
        chosen = [(find_container(store, q), q) for q in containers]
    else:
        chosen = [(c, c.id if no_trunc else c.id[:12]) for c in list_containers(store)
                  if all_ or container_state(store, c).running]
    asked = {c.id: q for c, q in chosen}
    ctrs = [c for c, _ in chosen]
    live = not no_stream and sys.stdout.isatty()
    previous = None
    try:
        while True:
            entries, previous = stats_once(store, ctrs, previous=previous)
            rows = [stats_row(u, asked[u.id], no_trunc) for u in entries]
            text = format_output(fmt, rows, default_table=DEFAULT_TABLE, headers=HEADERS)
            if live:
                sys.stdout.write("\033[2J\033[H" + text)
                sys.stdout.flush()
            else:
                sys.stdout.write(text)
                return
            import time

            time.sleep(1.0)
            if not containers:  # follow containers that start and stop, as docker does
                chosen = [(c, c.id if no_trunc else c.id[:12]) for c in list_containers(store)
                          if all_ or container_state(store, c).running]
                asked = {c.id: q for c, q in chosen}
                ctrs = [c for c, _ in chosen]
    except KeyboardInterrupt:
        pass
