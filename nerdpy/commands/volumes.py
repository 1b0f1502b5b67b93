"""`volume create/ls/inspect/rm/prune`: named volumes under the data root."""
from __future__ import annotations

import sys

import click

from nerdpy.commands._util import human_size, print_inspect, store_of
from nerdpy.exitcodes import SomeFailed, message, report_missing


def volume_json(store, v) -> dict:
    """docker's `volume inspect` object (also used by `nerdpy inspect --type volume`)."""
    from nerdpy.engine.containers.volumes import volume_json as _json

    return _json(store, v)


def _kv(items, what: str) -> dict[str, str]:
    out = {}
    for item in items:
        k, _, v = item.partition("=")
        if not k:
            raise click.UsageError(f"invalid {what}: {item!r}")
        out[k] = v
    return out


@click.group("volume")
def volume():
    """Manage volumes."""


@volume.command("create")
@click.argument("name", required=False)
@click.option("--name", "name_opt", hidden=True, help="Specify volume name")
@click.option("-d", "--driver", default="local", show_default=True, help="Specify volume driver name")
@click.option("-l", "--label", "labels", multiple=True, help="Set metadata for a volume")
@click.option("-o", "--opt", "opts", multiple=True, help="Set driver specific options")
@click.pass_context
def create(ctx, name, name_opt, driver, labels, opts):
    """Create a volume.

    \b
    Examples:
      nerdpy volume create data
      nerdpy run -d -v data:/var/lib/db busybox sleep 1d
    """
    from nerdpy.engine.containers.volumes import create_volume

    if name and name_opt and name != name_opt:
        raise click.UsageError("conflicting options: either specify --name or provide positional arg, not both")
    v = create_volume(store_of(ctx), name or name_opt, labels=_kv(labels, "label"), driver=driver,
                      options=_kv(opts, "option"))
    click.echo(v.name)


@volume.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display volume names")
@click.option("-f", "--filter", "filters", multiple=True,
              help="Provide filter values (e.g. 'dangling=true', 'label=k=v', 'name=x')")
@click.option("--format", "fmt", help="Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'")
@click.pass_context
def ls(ctx, quiet, filters, fmt):
    """List volumes."""
    from nerdpy.engine.containers.volumes import filter_volumes, list_volumes, volume_labels, volumes_in_use
    from nerdpy.template import format_output

    store = store_of(ctx)
    vols = filter_volumes(store, list_volumes(store), list(filters))
    if quiet:
        sys.stdout.write("".join(v.name + "\n" for v in vols))
        return
    used = volumes_in_use(store) if fmt and "Links" in fmt else {}
    rows = []
    for v in vols:
        labels = volume_labels(v)
        row = {
            "Name": v.name, "Driver": "local", "Scope": "local", "Mountpoint": v.mountpoint,
            "Labels": ",".join(f"{k}={val}" for k, val in labels.items()),
            "Links": str(len(used.get(v.name, []))) if used else "N/A",
            "Size": "N/A", "Availability": "N/A", "Group": "N/A", "Status": "N/A",
        }
        if not (fmt and fmt.strip() == "json"):
            row["Label"] = (lambda lb: lambda key: lb.get(key, ""))(labels)
        rows.append(row)
    headers = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
               "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE"}
    sys.stdout.write(format_output(fmt, rows, default_table="table {{.Driver}}\t{{.Name}}", headers=headers))


@volume.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", help="Format output using a custom template")
@click.pass_context
def inspect(ctx, names, fmt):
    """Display detailed information on one or more volumes."""
    from nerdpy.engine.containers.volumes import get_volume

    store = store_of(ctx)
    results, missing = [], []
    for name in names:
        v = get_volume(store, name)
        if v is None:
            missing.append(name)
        else:
            results.append(volume_json(store, v))
    print_inspect(results, fmt)
    report_missing("no such volume: {}", missing)


@volume.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Do not error on missing volumes (in-use volumes are never removed)")
@click.pass_context
def rm(ctx, names, force):
    """Remove one or more volumes. A volume used by a container (even a stopped one) is refused."""
    from nerdpy.engine.errors import NerdpyError
    from nerdpy.engine.containers.volumes import remove_volume

    store = store_of(ctx)
    failed = False
    for name in names:
        try:
            remove_volume(store, name, force=force)
            click.echo(name)
        except NerdpyError as e:
            click.echo(message(e), err=True)
            failed = True
    if failed:
        raise SomeFailed()


@volume.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove all unused volumes, not just anonymous ones")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (e.g. 'label=<label>')")
@click.pass_context
def prune(ctx, all_, force, filters):
    """Remove unused local volumes (anonymous ones only, unless -a)."""
    from nerdpy.engine.containers.volumes import prune_volumes

    if not force:
        what = "all local volumes" if all_ else "anonymous local volumes"
        click.echo(f"WARNING! This will remove {what} not used by at least one container.")
        click.echo("Are you sure you want to continue? [y/N] ", nl=False)
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return
    names, reclaimed = prune_volumes(store_of(ctx), all_=all_, filters=list(filters))
    if names:
        click.echo("Deleted Volumes:")
        for n in names:
            click.echo(n)
        click.echo("")
    click.echo(f"Total reclaimed space: {human_size(reclaimed)}")


volume.add_command(ls, "list")
volume.add_command(rm, "remove")
