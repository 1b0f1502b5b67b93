"""`network create/ls/inspect/rm/prune`: thin layers over nerdpy.engine.network that render
docker's tables and JSON."""
from __future__ import annotations

import sys

import click

from nerdpy.commands._util import local_time, print_inspect, store_of
from nerdpy.exitcodes import SomeFailed, message, report_missing

LS_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
              "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}


def _kv(items, what: str) -> dict[str, str]:
    out = {}
    for item in items:
        k, _, v = item.partition("=")
        if not k:
            raise click.UsageError(f"invalid {what}: {item!r}")
        out[k] = v
    return out


@click.group("network")
def network():
    """Manage networks."""


@network.command("create")
@click.argument("name")
@click.option("-d", "--driver", default="bridge", show_default=True, help="Driver to manage the network (bridge, macvlan, ipvlan)")
@click.option("--subnet", help="Subnet in CIDR format that represents a network segment")
@click.option("--gateway", help="IPv4 gateway for the subnet")
@click.option("--ip-range", "ip_range", help="Allocate container IPs from a sub-range")
@click.option("--internal", is_flag=True, help="Restrict external access to the network")
@click.option("-o", "--opt", "opts", multiple=True, help="Set driver specific options (e.g. parent=eth0, mtu=1400)")
@click.option("--label", "labels", multiple=True, help="Set metadata on a network")
@click.option("--ipv6", is_flag=True, help="Enable IPv6 networking (not supported yet)")
@click.option("--attachable", is_flag=True, hidden=True)
@click.pass_context
def create(ctx, name, driver, subnet, gateway, ip_range, internal, opts, labels, ipv6, attachable):
    """Create a network."""
    from nerdpy.engine.network.networks import create_network

    if ipv6:
        raise click.UsageError("IPv6 networks are not supported yet")
    net = create_network(store_of(ctx), name, driver=driver, subnet=subnet, gateway=gateway, ip_range=ip_range,
                         internal=internal, labels=_kv(labels, "label"), options=_kv(opts, "option"))
    click.echo(net.id)


@network.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs")
@click.option("-f", "--filter", "filters", multiple=True,
              help="Provide filter values (e.g. 'name=x', 'label=k=v', 'driver=bridge', 'type=custom', 'dangling=true')")
@click.option("--format", "fmt", help="Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output")
@click.pass_context
def ls(ctx, quiet, filters, fmt, no_trunc):
    """List networks."""
    from nerdpy.engine.network.views import filter_network_rows, network_rows
    from nerdpy.template import format_output

    store = store_of(ctx)
    rows = filter_network_rows(store, network_rows(store), list(filters))
    if quiet:
        sys.stdout.write("".join((r["ID"] if no_trunc else r["ID"][:12]) + "\n" for r in rows))
        return
    out = []
    for r in rows:
        labels = r["Labels"]
        row = {"ID": r["ID"] if no_trunc else r["ID"][:12], "Name": r["Name"], "Driver": r["Driver"],
               "Scope": r["Scope"], "IPv6": str(r["IPv6"]).lower(), "Internal": str(r["Internal"]).lower(),
               "Labels": ",".join(f"{k}={v}" for k, v in labels.items()),
               "CreatedAt": local_time(r["Created"]) if r["Created"] else ""}
        if not (fmt and fmt.strip() == "json"):
            row["Label"] = (lambda lb: lambda key: lb.get(key, ""))(labels)
        out.append(row)
    sys.stdout.write(format_output(fmt, out, default_table="table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
                                   headers=LS_HEADERS))


def _inspect_objects(store, names) -> tuple[list[dict], list[str]]:
    from nerdpy.engine.errors import NotFound
    from nerdpy.engine.network.networks import find_network
    from nerdpy.engine.network.views import network_json

    results, missing = [], []
    for name in names:
        if name in ("host", "none"):
            results.append(network_json(store, None, name))
            continue
        try:
            results.append(network_json(store, find_network(store, name)))
        except NotFound:
            missing.append(name)
    return results, missing


@network.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", help="Format output using a custom template")
@click.option("-v", "--verbose", is_flag=True, hidden=True)
@click.pass_context
def inspect(ctx, names, fmt, verbose):
    """Display detailed information on one or more networks."""
    results, missing = _inspect_objects(store_of(ctx), names)
    print_inspect(results, fmt)
    report_missing("network {} not found", missing)


@network.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Do not error if the network does not exist")
@click.pass_context
def rm(ctx, names, force):
    """Remove one or more networks. A network used by a container (even a stopped one) is refused."""
    from nerdpy.engine.errors import NerdpyError
    from nerdpy.engine.network import NetworkNotFound
    from nerdpy.engine.network.networks import remove_network

    store = store_of(ctx)
    failed = False
    for name in names:
        try:
            remove_network(store, name)
            click.echo(name)
        except NetworkNotFound as e:
            if not force:
                click.echo(message(e), err=True)
                failed = True
        except NerdpyError as e:
            click.echo(message(e), err=True)
            failed = True
    if failed:
        raise SomeFailed()


@network.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, metavar="FILTER",
              help="Provide filter values: label=KEY[=VALUE], label!=KEY[=VALUE], until=TIME")
@click.pass_context
def prune(ctx, force, filters):
    """Remove all unused networks (and what crashed containers left behind)."""
    from nerdpy.engine.network.attach import reclaim_leaks
    from nerdpy.engine.network.networks import prune_networks
    from nerdpy.engine.system.prunefilter import parse_prune_filters

    flt = parse_prune_filters(filters, "network")

    if not force:
        click.echo("WARNING! This will remove all custom networks not used by at least one container.")
        click.echo("Are you sure you want to continue? [y/N] ", nl=False)
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return
    store = store_of(ctx)
    reclaim_leaks(store)
    names = prune_networks(store, flt)
    if names:
        click.echo("Deleted Networks:")
        for n in names:
            click.echo(n)


network.add_command(ls, "list")
network.add_command(rm, "remove")


@network.command("connect")
@click.option("--alias", "aliases", multiple=True, help="Add network-scoped alias for the container")
@click.option("--ip", help="IPv4 address (e.g., 172.30.100.104)")
@click.argument("name")
@click.argument("container")
@click.pass_context
def connect(ctx, aliases, ip, name, container):
    """Connect a container to a network."""
    from nerdpy.engine.network.container import connect_network
    from nerdpy.engine.containers.records import find_container

    store = store_of(ctx)
    connect_network(store, find_container(store, container), name, list(aliases), ip)


@network.command("disconnect")
@click.option("-f", "--force", is_flag=True, help="Force the container to disconnect from a network")
@click.argument("name")
@click.argument("container")
@click.pass_context
def disconnect(ctx, force, name, container):
    """Disconnect a container from a network."""
    from nerdpy.engine.network.container import disconnect_network
    from nerdpy.engine.containers.records import find_container

    store = store_of(ctx)
    disconnect_network(store, find_container(store, container), name, force)
