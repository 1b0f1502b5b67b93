"""`system`: commands that look after the whole store: `info`, `df`, `prune`, `events`, `check`,
and `restart-policies`, which a boot-time unit runs to start the containers whose restart
policy asks for it (there is no daemon to do it)."""
from __future__ import annotations

import dataclasses
import sys

import click

from nerdpy.cli import LazyGroup
from nerdpy.commands._util import human_size, settings_of, store_of


# `system service` lives in its own module (it imports aiohttp)
@click.group("system", cls=LazyGroup, lazy={
    "service": ("service", "service", "Serve the Docker Engine API on a socket until idle")})
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
    from nerdpy.engine.system.boot import container_namespaces, restart_on_boot
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


# -- info ----------------------------------------------------------------------------------------
def _info_text(info: dict) -> str:
    def gib(n: int) -> str:
        return f"{n / (1 << 30):.2f}GiB"

    lines = [
        "Client:",
        f" Version:    {info['ServerVersion']}",
        f" Namespace:  {info['Namespace']}",
        f" Debug Mode: {'true' if info['Debug'] else 'false'}",
        "",
        "Server:",
        f" Containers: {info['Containers']}",
        f"  Running: {info['ContainersRunning']}",
        f"  Paused: {info['ContainersPaused']}",
        f"  Stopped: {info['ContainersStopped']}",
        f" Images: {info['Images']}",
        f" Volumes: {info['Volumes']}",
        f" Server Version: {info['ServerVersion']} (daemonless)",
        f" Storage Driver: {info['Driver']}",
    ]
    lines += [f"  {k}: {v}" for k, v in info["DriverStatus"]]
    lines += [
        f" Logging Driver: {info['LoggingDriver']}",
        f" Cgroup Driver: {info['CgroupDriver']}",
        f" Cgroup Version: {info['CgroupVersion']}" + (" (hybrid)" if info["CgroupLayout"] == "hybrid" else ""),
        " Plugins:",
        "  Volume: " + " ".join(info["Plugins"]["Volume"]),
        "  Network: " + " ".join(info["Plugins"]["Network"]),
        "  Log: " + " ".join(info["Plugins"]["Log"]),
        " Runtimes: " + " ".join(info["Runtimes"]),
        f" Default Runtime: {info['DefaultRuntime']}",
        f" runc version: {info['RuncVersion'] or 'unknown'}"
        + (f" (commit {info['RuncCommit']['ID']})" if info["RuncCommit"]["ID"] else ""),
        f" runc path: {info['RuncPath'] or 'not found'}",
        f" CNI path: {':'.join(info['CNIPath'])}",
        f" CNI plugins: {' '.join(info['CNIPlugins']) or 'none found'}",
        f" CNI config path: {info['CNIConfPath']}",
        " Security Options:",
    ]
    for opt in info["SecurityOptions"]:
        kv = dict(x.split("=", 1) for x in opt.split(",") if "=" in x)
        lines.append(f"  {kv.get('name', opt)}")
        if "profile" in kv:
            lines.append(f"   Profile: {kv['profile']}")
    lines += [
        f" Kernel Version: {info['KernelVersion']}",
        f" Operating System: {info['OperatingSystem']}",
        f" OSType: {info['OSType']}",
        f" Architecture: {info['Architecture']}",
        f" CPUs: {info['NCPU']}",
        f" Total Memory: {gib(info['MemTotal'])}",
        f" Name: {info['Name']}",
        f" Docker Root Dir: {info['DockerRootDir']}",
        f" Run Root Dir: {info['RunRoot']}",
        " Insecure Registries:",
    ]
    lines += [f"  {r}" for r in info["InsecureRegistries"]]
    return "\n".join(lines) + "\n"


@system.command("info")
@click.option("-f", "--format", "fmt", metavar="FORMAT", help="Format output using a custom template ('json' too)")
@click.pass_context
def info(ctx, fmt) -> None:
    """Display system-wide information."""
    from nerdpy.engine.system.info import system_info

    data = system_info(store_of(ctx))
    if fmt:
        from nerdpy.template import render

        tmpl = fmt.replace("\\t", "\t").replace("\\n", "\n")
        if tmpl.strip() == "json":
            tmpl = "{{json .}}"
        sys.stdout.write(render(tmpl, data) + "\n")
        return
    sys.stdout.write(_info_text(data))
    for w in data.get("Warnings") or []:  # as docker: after the text, on stderr
        sys.stderr.write(w + "\n")


# -- df ------------------------------------------------------------------------------------------
DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}


def _reclaimable(reclaimable: int, size: int) -> str:
    if size > 0:
        return f"{human_size(reclaimable)} ({int(100 * reclaimable / size)}%)"
    return human_size(reclaimable)


@system.command("df")
@click.option("-v", "--verbose", is_flag=True, help="Show detailed information on space usage")
@click.option("--format", "fmt", metavar="FORMAT", help="Format output using a custom template ('table', 'json', ...)")
@click.pass_context
def df(ctx, verbose, fmt) -> None:
    """Show nerdpy disk usage."""
    from nerdpy.engine.system.df import disk_usage
    from nerdpy.template import format_output

    u = disk_usage(store_of(ctx))
    rows = [
        {"Type": "Images", "TotalCount": str(u.images_total), "Active": str(u.images_active),
         "Size": human_size(u.images_size), "Reclaimable": _reclaimable(u.images_reclaimable, u.images_size)},
        {"Type": "Containers", "TotalCount": str(len(u.containers)),
         "Active": str(sum(1 for c in u.containers if c.status in ("running", "paused", "restarting"))),
         "Size": human_size(u.containers_size),
         "Reclaimable": _reclaimable(u.containers_reclaimable, u.containers_size)},
        {"Type": "Local Volumes", "TotalCount": str(len(u.volumes)),
         "Active": str(sum(1 for v in u.volumes if v.links)), "Size": human_size(u.volumes_size),
         "Reclaimable": _reclaimable(u.volumes_reclaimable, u.volumes_size)},
        {"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"},
    ]
    if not verbose:
        default = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
        sys.stdout.write(format_output(fmt, rows, default_table=default, headers=DF_HEADERS))
        return
    sys.stdout.write(_df_verbose(u, fmt))


def _df_verbose(u, fmt) -> str:
    import time

    from nerdpy.commands._util import human_duration, parse_time
    from nerdpy.commands.ps import status_text
    from nerdpy.engine.distribution.reference import parse_reference
    from nerdpy.template import format_output

    images = []
    for i in u.images:
        if i.dangling:
            repo, tag = "<none>", "<none>"
        else:
            ref = parse_reference(i.name, default_tag=None)
            repo, tag = ref.familiar_name(), ref.tag or "<none>"
        created = parse_time(i.created)
        images.append({"Repository": repo, "Tag": tag, "ID": i.image_id[7:19],
                       "CreatedSince": human_duration(time.time() - created) + " ago" if created else "N/A",
                       "Size": human_size(i.size), "SharedSize": human_size(i.shared),
                       "UniqueSize": human_size(i.unique), "Containers": str(i.containers)})
    containers = []
    for c in u.containers:
        cmd = c.command if len(c.command) <= 20 else c.command[:19] + "…"
        containers.append({"ID": c.id[:12], "Image": c.image, "Command": f'"{cmd}"', "LocalVolumes": str(c.volumes),
                           "Size": human_size(c.size), "RunningFor": human_duration(time.time() - c.created_at) + " ago",
                           "Status": status_text(c.state), "Names": c.name})
    volumes = [{"Name": v.name, "Links": str(v.links), "Size": human_size(v.size)} for v in u.volumes]
    if fmt and fmt.strip() == "json":
        import json

        return json.dumps({"Images": images, "Containers": containers, "Volumes": volumes, "BuildCache": []}) + "\n"
    out = ["Images space usage:\n\n"]
    out.append(format_output(None, images, default_table="table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t"
                             "{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
                             headers={"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID",
                                      "CreatedSince": "CREATED", "Size": "SIZE", "SharedSize": "SHARED SIZE",
                                      "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS"}))
    out.append("\nContainers space usage:\n\n")
    out.append(format_output(None, containers, default_table="table {{.ID}}\t{{.Image}}\t{{.Command}}\t"
                             "{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
                             headers={"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
                                      "LocalVolumes": "LOCAL VOLUMES", "Size": "SIZE", "RunningFor": "CREATED",
                                      "Status": "STATUS", "Names": "NAMES"}))
    out.append("\nLocal Volumes space usage:\n\n")
    out.append(format_output(None, volumes, default_table="table {{.Name}}\t{{.Links}}\t{{.Size}}",
                             headers={"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}))
    out.append("\nBuild cache usage: 0B\n")
    return "".join(out)


# -- prune ---------------------------------------------------------------------------------------
@system.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove all unused images not just dangling ones")
@click.option("--volumes", is_flag=True, help="Prune anonymous volumes")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, metavar="FILTER",
              help="Provide filter values: label=KEY[=VALUE], label!=KEY[=VALUE], until=TIME")
@click.pass_context
def prune(ctx, all_, volumes, force, filters) -> None:
    """Remove unused data: stopped containers, unused networks, dangling images (-a: unused
    images), with --volumes unused anonymous volumes, and what crashes left behind."""
    from nerdpy.engine.system.prune import prune_system
    from nerdpy.engine.system.prunefilter import parse_prune_filters

    parse_prune_filters(filters, "system")  # a bad filter fails before the question

    if not force:
        what = ["all stopped containers", "all networks not used by at least one container"]
        if volumes:
            what.append("all anonymous volumes not used by at least one container")
        what.append("all images without at least one container associated to them" if all_
                    else "all dangling images")
        what.append("unused build cache")
        click.echo("WARNING! This will remove:\n" + "".join(f"  - {w}\n" for w in what))
        click.echo("Are you sure you want to continue? [y/N] ", nl=False)
        answer = sys.stdin.readline()
        if not answer.endswith("\n"):
            click.echo("")
        if answer.strip().lower() not in ("y", "yes"):
            click.echo("Total reclaimed space: 0B")
            return
    r = prune_system(store_of(ctx), all_images=all_, volumes=volumes, filters=list(filters))
    for title, items in (("Deleted Containers:", r.containers), ("Deleted Networks:", r.networks),
                         ("Deleted Volumes:", r.volumes), ("Deleted Images:", r.images),
                         ("Unmounted:", r.mounts), ("Reclaimed from crashes:", r.leaks)):
        if items:
            click.echo(title)
            for item in items:
                click.echo(item)
            click.echo("")
    for err in r.errors:
        click.echo(f"nerdpy: {err}", err=True)
    click.echo(f"Total reclaimed space: {human_size(r.reclaimed)}")


# -- events --------------------------------------------------------------------------------------
class _Message(dict):
    """An event for templates: docker's Go field names (`.ID`, `.Status`, `.From`, `.Time`...)
    as well as the JSON keys; `{{json .}}` shows the JSON keys."""

    _ALIASES = {"Status": "status", "ID": "id", "From": "from", "Scope": "scope", "Time": "time",
                "TimeNano": "timeNano"}

    def __contains__(self, key) -> bool:
        return dict.__contains__(self, key) or (key in self._ALIASES and dict.__contains__(self, self._ALIASES[key]))

    def __getitem__(self, key):
        if not dict.__contains__(self, key) and key in self._ALIASES:
            return dict.__getitem__(self, self._ALIASES[key])
        return dict.__getitem__(self, key)


def _render_event(ev: dict, fmt: str | None) -> str:
    from nerdpy.engine.system.events import event_line, public_event

    if not fmt:
        return event_line(ev)
    from nerdpy.template import render

    tmpl = fmt.replace("\\t", "\t").replace("\\n", "\n")
    if tmpl.strip() == "json":
        tmpl = "{{json .}}"
    msg = public_event(ev)
    if isinstance(msg.get("Actor"), dict):
        msg["Actor"] = dict(msg["Actor"])
    return render(tmpl, _Message(msg))


@system.command("events")
@click.option("--since", metavar="TIME", help="Show all events created since timestamp (or relative: 10m)")
@click.option("--until", metavar="TIME", help="Stream events until this timestamp (or relative: 10m)")
@click.option("-f", "--filter", "filters", multiple=True, metavar="FILTER",
              help="Filter output based on conditions provided (container=, event=, image=, label=, type=, "
                   "volume=, network=)")
@click.option("--format", "fmt", metavar="FORMAT", help="Format the output using the given Go template ('json' too)")
@click.pass_context
def events(ctx, since, until, filters, fmt) -> None:
    """Get real time events from the journal the commands and monitors write.

    Without --until it follows new events until interrupted (Ctrl-C); with --since it first
    shows what happened since then.

    \b
    Examples:
      nerdpy system events --since 1h --until 0s
      nerdpy system events --filter type=container --filter event=die --format '{{json .}}'
    """
    import signal
    import time

    from nerdpy.engine.system.events import EventFilter, follow_events, parse_time_arg, read_events

    store = store_of(ctx)
    now = time.time()
    t_since = parse_time_arg(since, now) if since else None
    t_until = parse_time_arg(until, now) if until else None
    flt = EventFilter.parse(filters)
    out = sys.stdout
    if t_until is not None and t_until <= time.time():
        for ev in read_events(store, t_since, t_until, flt):
            out.write(_render_event(ev, fmt) + "\n")
        out.flush()
        return
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        for ev in follow_events(store, t_since, t_until, flt, stop=lambda: bool(stopping)):
            out.write(_render_event(ev, fmt) + "\n")
            out.flush()
    except KeyboardInterrupt:
        pass


# -- check ---------------------------------------------------------------------------------------
@system.command("check")
@click.option("--repair", is_flag=True, help="Fix what can be fixed (see below)")
@click.option("-q", "--quiet", is_flag=True, help="Print problems only")
@click.pass_context
def check(ctx, repair, quiet) -> None:
    """Verify the store: every blob's digest, every snapshot's directory, every image's
    content, every container's directory and writable layer, mounts and leftover temp files.

    \b
    --repair deletes corrupt blobs, unpacks lost snapshots again from their blobs (or forgets
    them, and the names of the images that need them, so that `pull` restores them), recreates
    lost container directories and writable layers, unmounts orphaned mounts and removes
    leftovers. It never removes a container, nor anything of a container whose processes are
    alive. A missing or damaged metadata database is rebuilt from what is on disk (the records
    beside containers and snapshots, image names, volumes, the content store), saying what was
    recovered and what was not. Exit status: 0 when no error is left, 1 otherwise.
    """
    from nerdpy.engine.system.rebuild import check_and_rebuild

    report = check_and_rebuild(settings_of(ctx), repair=repair)
    for p in report.problems:
        mark = "warning" if p.severity == "warning" else "error"
        line = f"{mark}: {p.kind} {p.subject}: {p.detail}"
        if p.repaired:
            line += f" -> {p.action or 'repaired'}"
        click.echo(line)
        if not p.repaired and p.fix:
            click.echo(f"  fix: {p.fix}")
    if not quiet:
        c = report.counts
        errors = [p for p in report.problems if p.severity == "error"]
        fixed = [p for p in report.problems if p.repaired]
        summary = (f"checked {c.get('blobs', 0)} blobs, {c.get('snapshots', 0)} snapshots, "
                   f"{c.get('images', 0)} images, {c.get('containers', 0)} containers: ")
        if not report.problems:
            summary += "no problems found"
        else:
            summary += f"{len(errors)} error(s), {len(report.problems) - len(errors)} warning(s)"
            if repair:
                summary += f", {len(fixed)} repaired"
            elif any(not p.repaired for p in report.problems):
                summary += "; run `nerdpy system check --repair` to fix them"
        click.echo(summary)
    sys.exit(0 if report.ok else 1)
