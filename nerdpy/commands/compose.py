"""`nerdpy compose`: the click layer over the top-level `compose` package.

Structure for further subcommands (`up`, `down`, `ps`, ...): define them with
``@compose.command("up")`` and ``@click.pass_context``, then

    project = load(ctx)                    # compose.model.Project, errors -> one line, exit 1
    project = load(ctx, services=[...])    # services named on the command line enable their profiles

and wrap the body in ``with compose_errors():`` (or decorate with ``@handles_compose_errors``)
so that any ComposeError becomes ``nerdpy: FILE:LINE: message`` on stderr and exit 1.
Nothing here imports yaml or the compose package at import time: `nerdpy --help` stays cheap.
"""
from __future__ import annotations

import contextlib
import functools
import json
import sys
from dataclasses import dataclass

import click

OPTIONS_KEY = "nerdpy.compose.options"


@dataclass
class ComposeOptions:
    files: tuple[str, ...] = ()
    project_name: str | None = None
    project_directory: str | None = None
    env_files: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    progress: str = "auto"
    compatibility: bool = False


def options_of(ctx: click.Context) -> ComposeOptions:
    opts = ctx.meta.get(OPTIONS_KEY)
    return opts if opts is not None else ComposeOptions()


def _warn(message: str) -> None:
    click.echo(f"nerdpy: warning: {message}", err=True)


def load(ctx: click.Context, services: list[str] | None = None, quiet_warnings: bool = False,
         interpolate: bool = True, on_source=None):
    """The project for this invocation's global compose flags (-f, -p, --project-directory,
    --env-file, --profile). Raises ComposeError; use inside compose_errors()."""
    from compose.loader import load_project

    o = options_of(ctx)
    return load_project(
        list(o.files) or None, project_name=o.project_name, project_directory=o.project_directory,
        env_files=list(o.env_files) or None, profiles=list(o.profiles) if o.profiles else None,
        services=services, on_warning=None if quiet_warnings else _warn, interpolate=interpolate,
        on_source=on_source)


@contextlib.contextmanager
def compose_errors():
    """A live progress view ends before an error's line. The error itself (ComposeError:
    `nerdpy: FILE:LINE: message`; the engine's errors) is reported by nerdpy.cli.main with the
    code of nerdpy.exitcodes' table: 1 for compose, as docker compose; 126/127 (exec/run: not
    invokable, not found) stay."""
    from nerdpy.commands.progress import close_all

    try:
        yield
    finally:
        close_all()


def handles_compose_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with compose_errors():
            return fn(*args, **kwargs)
    return wrapper


@click.group("compose", invoke_without_command=True)
@click.option("-f", "--file", "files", multiple=True, metavar="FILE",
              help="Compose configuration files (repeatable; '-' reads stdin)")
@click.option("-p", "--project-name", metavar="NAME", help="Project name")
@click.option("--project-directory", metavar="DIR",
              help="Alternate working directory [default: the directory of the first compose file]")
@click.option("--env-file", "env_files", multiple=True, metavar="FILE",
              help="Alternate environment files (repeatable)")
@click.option("--profile", "profiles", multiple=True, metavar="PROFILE", help="Profiles to enable (repeatable)")
@click.option("--progress", type=click.Choice(["auto", "tty", "plain", "quiet"]), default="auto",
              show_default=True, help="Set type of progress output (on stderr)")
@click.option("--compatibility", is_flag=True,
              help="Run compose in backward compatibility mode (container names joined with '_', as v1)")
@click.pass_context
def compose(ctx, files, project_name, project_directory, env_files, profiles, progress, compatibility):
    """Define and run multi-container applications."""
    ctx.meta[OPTIONS_KEY] = ComposeOptions(files=files, project_name=project_name,
                                           project_directory=project_directory, env_files=env_files,
                                           profiles=profiles, progress=progress, compatibility=compatibility)
    if ctx.invoked_subcommand is None:  # `nerdpy compose` alone: help, as docker compose
        click.echo(ctx.get_help())
        ctx.exit(0)


def _dump_yaml(data) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def str_rep(dumper, value):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, str_rep)
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     width=1 << 30)


@compose.command("config")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True,
              help="Format the output")
@click.option("--services", "list_services", is_flag=True, help="Print the service names, one per line")
@click.option("--volumes", "list_volumes", is_flag=True, help="Print the volume names, one per line")
@click.option("--profiles", "list_profiles", is_flag=True, help="Print the profile names, one per line")
@click.option("--images", "list_images", is_flag=True, help="Print the image names, one per line")
@click.option("--hash", "hash_of", metavar="SERVICES",
              help="Print the service config hash, one per line ('*' for all, or a comma-separated list)")
@click.option("--variables", "list_variables", is_flag=True, help="Print the model variables and their default values")
@click.option("--no-interpolate", is_flag=True, help="Don't interpolate environment variables")
@click.option("-q", "--quiet", is_flag=True, help="Only validate the configuration, don't print anything")
@click.option("-o", "--output", metavar="FILE", help="Save to file (default: stdout)")
@click.pass_context
@handles_compose_errors
def config(ctx, fmt, list_services, list_volumes, list_profiles, list_images, hash_of, list_variables,
           no_interpolate, quiet, output):
    """Parse, resolve and render the compose file in canonical format."""
    from compose.errors import ComposeError
    from compose.render import config_hash, project_to_dict

    if list_variables:
        # from the files as written: a value that only makes sense once interpolated (a port
        # `${P:-80}:80`) does not stop the listing
        sources: list = []
        try:
            load(ctx, quiet_warnings=True, interpolate=False, on_source=sources.append)
        except ComposeError:
            if not sources:
                raise
    else:
        project = load(ctx, quiet_warnings=quiet, interpolate=not no_interpolate)
    if quiet:
        return
    if hash_of is not None:
        names = list(project.services) if hash_of.strip() == "*" else [n.strip() for n in hash_of.split(",")
                                                                         if n.strip()]
        text = "".join(f"{n} {config_hash(project.service(n), project)}\n" for n in names)
    elif list_variables:
        from compose.interpolate import variables
        from nerdpy.commands.misc import tabwrite

        found = variables(sources)
        if fmt == "json":
            text = json.dumps(found, indent=2) + "\n"
        else:
            rows = [["NAME", "REQUIRED", "DEFAULT VALUE", "ALTERNATE VALUE"]]
            rows += [[v["Name"], str(v["Required"]).lower(), v["DefaultValue"], v["PresenceValue"]]
                     for v in found.values()]
            text = tabwrite(rows)
    elif list_services:
        text = "".join(f"{s}\n" for s in project.services)
    elif list_volumes:
        text = "".join(f"{v}\n" for v in project.volumes)
    elif list_profiles:
        text = "".join(f"{p}\n" for p in project.all_profiles())
    elif list_images:
        text = "".join(f"{s.image}\n" for s in project.services.values())
    elif fmt == "json":
        text = json.dumps(project_to_dict(project, escape=not no_interpolate), indent=2) + "\n"
    else:
        text = _dump_yaml(project_to_dict(project, escape=not no_interpolate))
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


# -- the runtime half: up, down, ps, logs, exec, run, ... -------------------------------------------
def _store(ctx):
    from nerdpy.commands._util import store_of

    return store_of(ctx)


def load_or_named(ctx, services: list[str] | None = None):
    """The project; without a compose file but with -p, an empty project of that name (so that
    `down`, `ps`, `logs`, `stop` ... work on what the labels say, as docker compose's do)."""
    from compose.errors import FileNotFound

    try:
        return load(ctx, services=services)
    except FileNotFound:
        o = options_of(ctx)
        if not o.project_name or o.files:
            raise
        import os

        from compose.loader import normalize_project_name
        from compose.model import Project

        return Project(name=normalize_project_name(o.project_name), working_dir=os.getcwd(), files=[],
                       services={})


def runtime(ctx, project, quiet_pull: bool = False):
    """A Runtime whose events are rendered on stderr as the compose --progress option says (a
    live view on a terminal, plain lines otherwise); `rt.view` is the renderer (close it before
    handing the terminal to a container)."""
    from compose.runtime import Runtime

    from nerdpy.commands.progress import ComposeProgress, compose_mode

    view = ComposeProgress(compose_mode(options_of(ctx).progress), quiet_pull=quiet_pull)
    rt = Runtime(_store(ctx), project, on_event=view, on_warning=view.warn,
                 compatibility=options_of(ctx).compatibility)
    rt.view = view
    return rt


def _parse_scale(items) -> dict[str, int]:
    out = {}
    for item in items:
        name, eq, n = item.partition("=")
        if not eq or not n.isdigit():
            raise click.UsageError(f"invalid --scale {item!r}: expected SERVICE=NUM")
        out[name] = int(n)
    return out


def _use_color(no_color: bool) -> bool:
    import os

    return not no_color and sys.stdout.isatty() and "NO_COLOR" not in os.environ


class _Out:
    """Log lines to stdout (a container's stderr lines to stderr, as docker compose does)."""

    def __call__(self, text: str, err: bool = False) -> None:
        stream = sys.stderr if err else sys.stdout
        try:
            stream.write(text)
            stream.flush()
        except BrokenPipeError:
            pass


@compose.command("up")
@click.option("-d", "--detach", is_flag=True, help="Detached mode: run containers in the background")
@click.option("--no-deps", is_flag=True, help="Don't start linked services")
@click.option("--force-recreate", is_flag=True, help="Recreate containers even if their configuration hasn't changed")
@click.option("--no-recreate", is_flag=True, help="If containers already exist, don't recreate them")
@click.option("--remove-orphans", is_flag=True, help="Remove containers for services not defined in the Compose file")
@click.option("--scale", multiple=True, metavar="SERVICE=NUM", help="Scale SERVICE to NUM instances")
@click.option("--abort-on-container-exit", is_flag=True, help="Stops all containers if any container was stopped")
@click.option("--abort-on-container-failure", is_flag=True,
              help="Stops all containers if any container exited with failure")
@click.option("--attach", "attach_services", multiple=True, metavar="SERVICE",
              help="Restrict attaching to the specified services (repeatable)")
@click.option("--no-attach", "no_attach_services", multiple=True, metavar="SERVICE",
              help="Do not attach (stream logs) to the specified services (repeatable)")
@click.option("--exit-code-from", metavar="SERVICE", help="Return the exit code of the selected service container")
@click.option("--wait", is_flag=True, help="Wait for services to be running|healthy. Implies detached mode")
@click.option("--wait-timeout", type=int, help="Maximum duration to wait for the project to be running|healthy")
@click.option("--pull", type=click.Choice(["always", "missing", "never"]), help="Pull image before running")
@click.option("--quiet-pull", is_flag=True, help="Pull without printing progress information")
@click.option("--no-start", is_flag=True, help="Don't start the services after creating them")
@click.option("-t", "--timeout", type=int, help="Shutdown timeout in seconds")
@click.option("--no-color", is_flag=True, help="Produce monochrome output")
@click.option("--no-log-prefix", is_flag=True, help="Don't print prefix in logs")
@click.option("--timestamps", is_flag=True, help="Show timestamps")
@click.option("--attach-dependencies", is_flag=True, help="Show logs from dependencies too")
@click.option("-V", "--renew-anon-volumes", is_flag=True,
              help="Recreate anonymous volumes instead of retrieving data from the previous containers")
@click.option("-w", "--watch", is_flag=True,
              help="Watch source code and refresh the services' containers when files are updated (develop.watch)")
@click.argument("services", nargs=-1)
@click.pass_context
@handles_compose_errors
def up(ctx, detach, no_deps, force_recreate, no_recreate, remove_orphans, scale, abort_on_container_exit,
       abort_on_container_failure, attach_services, no_attach_services,
       exit_code_from, wait, wait_timeout, pull, quiet_pull, no_start, timeout, no_color, no_log_prefix,
       timestamps, attach_dependencies, renew_anon_volumes, watch, services):
    """Create and start containers."""
    if force_recreate and no_recreate:
        raise click.UsageError("--force-recreate and --no-recreate are incompatible")
    if abort_on_container_exit and abort_on_container_failure:
        raise click.UsageError("--abort-on-container-exit and --abort-on-container-failure are incompatible")
    if exit_code_from and not abort_on_container_failure:
        abort_on_container_exit = True
    if wait:
        detach = True
    if detach and (abort_on_container_exit or abort_on_container_failure):
        raise click.UsageError("--abort-on-container-exit and --detach are incompatible" if abort_on_container_exit
                               else "--abort-on-container-failure and --detach are incompatible")
    if detach and (attach_services or no_attach_services or attach_dependencies):
        raise click.UsageError("--attach, --no-attach and --attach-dependencies need an attached up (no -d/--wait)")
    if wait_timeout is not None and not wait:
        raise click.UsageError("--wait-timeout needs --wait")
    project = load(ctx, services=list(services) or None)
    if exit_code_from:
        project.service(exit_code_from)
    for s in attach_services + no_attach_services:
        project.service(s)
    watch_rules = None
    if watch:
        if detach or no_start:
            raise click.UsageError("--watch needs an attached up (no -d/--wait/--no-start)")
        from compose.watch import rules_of

        watch_rules = rules_of(project, [n for n in project.services if n in (services or project.services)],
                               warn=_warn)
        if not watch_rules:
            raise click.UsageError("none of the selected services is configured for watch, "
                                   "consider setting a 'develop' section")
    rt = runtime(ctx, project, quiet_pull=quiet_pull)
    kw = dict(no_deps=no_deps, force_recreate=force_recreate, no_recreate=no_recreate,
              remove_orphans=remove_orphans, scale=_parse_scale(scale), pull=pull, no_start=no_start,
              timeout=timeout, renew_anon_volumes=renew_anon_volumes)
    if detach or no_start:
        rt.up(list(services) or None, **kw)
        if wait and not no_start:
            rt.wait_ready(rt.select(list(services) or None, with_deps=not no_deps), timeout=wait_timeout)
        return
    abort_on = "exit" if abort_on_container_exit else "failure" if abort_on_container_failure else None
    sys.exit(_up_attached(ctx, rt, list(services), kw, abort_on, exit_code_from, timeout,
                          no_color, no_log_prefix, timestamps, attach_dependencies,
                          list(attach_services), set(no_attach_services), watch_rules))


def _up_attached(ctx, rt, services, kw, abort_on, exit_code_from, timeout, no_color, no_log_prefix,
                 timestamps, attach_dependencies, attach_services=(), no_attach=frozenset(),
                 watch_rules=None) -> int:
    """`abort_on`: "exit" (--abort-on-container-exit), "failure" (--abort-on-container-failure) or None."""
    import signal
    import threading
    import time

    from compose.logs import Follower, Formatter, display_name
    from compose.runtime import service_of

    if attach_services:
        attach_to = set(attach_services)
    else:
        attach_to = set(rt.select(services or None, with_deps=attach_dependencies or not services))
    attach_to -= set(no_attach)
    abort_on_exit = abort_on is not None
    fmt = Formatter([], color=_use_color(no_color), prefix=not no_log_prefix, timestamps=timestamps)
    starting = threading.Event()
    starting.set()
    first_exit: dict = {}
    abort = threading.Event()
    codes: dict[str, int] = {}

    from compose.model import CONDITION_COMPLETED

    # a one-shot dependency that others wait for to complete is expected to exit: no abort
    one_shots = {d for s in rt.project.services.values() for d, cond in s.depends_on.items()
                 if cond.condition == CONDITION_COMPLETED}

    def on_exit(c, code):
        codes[c.id] = code
        if service_of(c) in one_shots and code == 0:
            return
        if abort_on == "failure" and code == 0:
            return
        if "c" not in first_exit:
            first_exit["c"] = (c, code)
        if abort_on_exit:
            abort.set()

    follower = Follower(rt.store, fmt, _Out(), on_exit=on_exit)

    def before_start(created):
        rt.view.close()  # the logs follow: state changes from here on are plain lines
        t0 = time.time()
        chosen = [c for name, cs in created.items() if name in attach_to for c in cs]
        names = [display_name(rt.project.name, c) for c in chosen]
        for n in names:
            fmt.add(n)
        click.echo("Attaching to " + ", ".join(names))
        for c, n in zip(chosen, names):
            st = rt.state(c)
            fresh = st.status == "created" and not st.started_at
            follower.add(c, n, since=None if fresh else t0, pending_start=starting.is_set, report_exit=True)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, on_term)
    stopped = False
    watcher = None
    try:
        try:
            rt.up(services or None, before_start=before_start, **kw)
        finally:
            starting.clear()
        if watch_rules:
            watcher = _start_watch(rt, watch_rules)
        while follower.alive() or watcher is not None:
            if abort.is_set():
                click.echo("Aborting on container exit...", err=True)
                break
            time.sleep(0.1)
    except KeyboardInterrupt:
        rt.view.close()
        click.echo("Gracefully stopping... (press Ctrl+C again to force)", err=True)
        try:
            rt.abort.set()
            rt.stop(None if not services else list(attach_to), timeout)
            stopped = True
        except KeyboardInterrupt:
            rt.kill(None)
            stopped = True
    finally:
        signal.signal(signal.SIGTERM, old_term)
        if watcher is not None:
            watcher.stop()
    if abort.is_set() and not stopped:
        try:
            rt.stop(None if not services else list(attach_to), timeout)
        except KeyboardInterrupt:
            rt.kill(None)
    try:
        follower.wait(timeout=30)
    except KeyboardInterrupt:
        follower.stop()
    if exit_code_from:
        for c in rt.service_containers(exit_code_from):
            if c.id in codes:
                return codes[c.id]
            st = rt.state(c)
            return st.exit_code if not st.running else 0
        return 0
    if abort_on_exit and "c" in first_exit:
        return first_exit["c"][1]
    return 0


@compose.command("down")
@click.option("-v", "--volumes", is_flag=True, help="Remove named volumes declared in the volumes section and anonymous volumes")
@click.option("--rmi", type=click.Choice(["local", "all"]), help="Remove images used by services")
@click.option("--remove-orphans", is_flag=True, help="Remove containers for services not defined in the Compose file")
@click.option("-t", "--timeout", type=int, help="Shutdown timeout in seconds")
@click.argument("services", nargs=-1)
@click.pass_context
@handles_compose_errors
def down(ctx, volumes, rmi, remove_orphans, timeout, services):
    """Stop and remove containers, networks."""
    project = load_or_named(ctx)
    rt = runtime(ctx, project)
    rt.down(remove_orphans=remove_orphans or not project.files, volumes=volumes, rmi=rmi, timeout=timeout,
            services=list(services) or None)


PS_HEADERS = {"ID": "CONTAINER ID", "Name": "NAME", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
              "Service": "SERVICE", "Project": "PROJECT", "RunningFor": "CREATED", "CreatedAt": "CREATED AT",
              "Status": "STATUS", "State": "STATE", "Ports": "PORTS", "Health": "HEALTH", "ExitCode": "EXIT CODE",
              "Labels": "LABELS", "Networks": "NETWORKS", "Mounts": "MOUNTS", "Size": "SIZE"}


def _ports_of(store, c) -> tuple[str, list[dict]]:
    try:
        from nerdpy.engine.network.attach import get_setup
        from nerdpy.engine.network.ports import format_ports

        setup = get_setup(store, c.id)
    except Exception:
        return "", []
    if setup is None:
        return "", []
    pubs = [{"URL": m.host_ip or "0.0.0.0", "TargetPort": m.container_port, "PublishedPort": m.host_port,
             "Protocol": m.protocol} for m in setup.ports]
    return format_ports(setup.ports), pubs


def _ps_rows(rt, containers) -> list[dict]:
    import time

    from compose.model import LABEL_PROJECT
    from compose.runtime import service_of
    from nerdpy.commands._util import human_duration
    from nerdpy.commands.ps import _command_text, status_text

    rows = []
    for c in containers:
        st = rt.state(c)
        ports, pubs = _ports_of(rt.store, c) if st.running else ("", [])
        labels = c.spec.labels or {}
        rows.append({
            "ID": c.id,
            "Name": c.name,
            "Names": c.name,
            "Image": c.image,
            "Command": _command_text(c, False),
            "Project": labels.get(LABEL_PROJECT, ""),
            "Service": service_of(c),
            "Created": int(c.created_at),
            "CreatedAt": _local(c.created_at),
            "RunningFor": human_duration(time.time() - c.created_at) + " ago",
            "State": st.status,
            "Status": status_text(st),
            "Health": (st.health or {}).get("Status", ""),
            "ExitCode": st.exit_code if not st.running else 0,
            "Publishers": pubs,
            "Ports": ports,
            "Labels": ",".join(f"{k}={v}" for k, v in labels.items()),
            "Networks": ",".join(n["name"] for n in c.spec.networks or []) or (c.spec.network or ""),
            "Mounts": ",".join(mt.source or mt.target for mt in c.spec.mounts or []),
            "LocalVolumes": sum(1 for mt in c.spec.mounts or [] if mt.type == "volume"),
            "Size": 0,
            "_state": st,
        })
    return rows


def _local(ts):
    from nerdpy.commands._util import local_time

    return local_time(ts)


@compose.command("ps")
@click.option("-a", "--all", "all_", is_flag=True, help="Show all stopped containers")
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs")
@click.option("--services", "list_services", is_flag=True, help="Display services")
@click.option("--status", "statuses", multiple=True,
              type=click.Choice(["paused", "restarting", "removing", "running", "dead", "created", "exited"]),
              help="Filter services by status")
@click.option("--filter", "filters", multiple=True, help="Filter services by a property (status=...)")
@click.option("--format", "fmt", help="Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'")
@click.argument("services", nargs=-1)
@click.pass_context
@handles_compose_errors
def ps(ctx, all_, quiet, list_services, statuses, filters, fmt, services):
    """List containers."""
    from nerdpy.template import format_output

    project = load_or_named(ctx)
    rt = runtime(ctx, project)
    for s in services:
        project.service(s)
    statuses = list(statuses)
    for f in filters:
        k, eq, v = f.partition("=")
        if k != "status" or not eq:
            raise click.UsageError(f"invalid filter {f!r} (status=STATUS)")
        statuses.append(v)
    rows = _ps_rows(rt, rt.containers(list(services) or None, oneoff=None))
    if statuses:
        rows = [r for r in rows if r["State"] in statuses]
    elif not all_:
        rows = [r for r in rows if r["_state"].running]
    if list_services:
        sys.stdout.write("".join(f"{s}\n" for s in dict.fromkeys(r["Service"] for r in rows)))
        return
    if quiet:
        sys.stdout.write("".join(r["ID"] + "\n" for r in rows))
        return
    public = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    default = "table {{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}"
    sys.stdout.write(format_output(fmt, public, default_table=default, headers=PS_HEADERS))


def _tail(value: str) -> int | None:
    if value == "all":
        return None
    try:
        n = int(value)
    except ValueError:
        raise click.UsageError(f"invalid --tail value {value!r}") from None
    return None if n < 0 else n


@compose.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Follow log output")
@click.option("-n", "--tail", default="all", help="Number of lines to show from the end of the logs for each container")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@click.option("--since", help="Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)")
@click.option("--until", help="Show logs before a timestamp or relative")
@click.option("--no-color", is_flag=True, help="Produce monochrome output")
@click.option("--no-log-prefix", is_flag=True, help="Don't print prefix in logs")
@click.option("--index", type=int, help="index of the container if service has multiple replicas")
@click.argument("services", nargs=-1)
@click.pass_context
@handles_compose_errors
def logs(ctx, follow, tail, timestamps, since, until, no_color, no_log_prefix, index, services):
    """View output from containers."""
    from compose.logs import Follower, Formatter, display_name, read_merged
    from compose.runtime import number_of
    from nerdpy.commands.containers import _parse_since

    project = load_or_named(ctx)
    for s in services:
        project.service(s)
    rt = runtime(ctx, project)
    cs = rt.containers(list(services) or None)
    if index is not None:
        cs = [c for c in cs if number_of(c) == index]
    names = {c.id: display_name(project.name, c) for c in cs}
    fmt = Formatter(list(names.values()), color=_use_color(no_color), prefix=not no_log_prefix,
                    timestamps=timestamps)
    n = _tail(tail)
    t0, t1 = _parse_since(since), _parse_since(until)
    out = _Out()
    if not follow:
        for text, err in read_merged(rt.store, cs, names, fmt, n, since=t0, until=t1):
            out(text, err)
        return
    follower = Follower(rt.store, fmt, out)
    for c in cs:
        follower.add(c, names[c.id], tail=n, since=t0, report_exit=True)
    try:
        follower.wait()
    except KeyboardInterrupt:
        follower.stop()


@compose.command("exec", context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Detached mode: Run command in the background")
@click.option("-T", "--no-TTY", "no_tty", is_flag=True, help="Disable pseudo-TTY allocation (default: auto-detected)")
@click.option("-e", "--env", multiple=True, help="Set environment variables")
@click.option("-w", "--workdir", help="Path to workdir directory for this command")
@click.option("-u", "--user", help="Run the command as this user")
@click.option("--index", type=int, default=1, show_default=True, help="Index of the container if service has multiple replicas")
@click.option("--privileged", is_flag=True, help="Give extended privileges to the process")
@click.option("-i", "--interactive", is_flag=True, default=True, hidden=True, help="Keep STDIN open (always)")
@click.argument("service")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
@handles_compose_errors
def exec_(ctx, detach, no_tty, env, workdir, user, index, privileged, interactive, service, command):
    """Execute a command in a running container."""
    from compose.errors import ComposeRuntimeError
    from nerdpy.commands.containers import _run_exec, _run_exec_detached
    from nerdpy.engine.containers.exec import exec_argv

    project = load(ctx, quiet_warnings=True)
    rt = runtime(ctx, project)
    c = rt.find(service, index)
    st = rt.state(c)
    if st.status != "running":
        raise ComposeRuntimeError(f"service \"{service}\" is not running" if st.status != "paused"
                            else f"container {c.name} is paused, unpause it before exec")
    tty = not no_tty and sys.stdin.isatty() and not detach
    argv, cleanup = exec_argv(rt.store, c, list(command), env=list(env), workdir=workdir, user=user, tty=tty,
                              detach=detach, privileged=privileged)
    try:
        if detach:  # runc exec --detach: returns once the process runs, as the top-level exec -d
            _run_exec_detached(argv)
            return
        code = _run_exec(argv, None, tty)
    finally:
        cleanup()
    sys.exit(code)


@compose.command("run", context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run container in background and print container ID")
@click.option("--rm", is_flag=True, help="Automatically remove the container when it exits")
@click.option("--name", help="Assign a name to the container")
@click.option("-e", "--env", multiple=True, help="Set environment variables")
@click.option("-l", "--label", multiple=True, help="Add or override a label")
@click.option("-w", "--workdir", help="Working directory inside the container")
@click.option("-u", "--user", help="Run as specified username or uid")
@click.option("-v", "--volume", multiple=True, help="Bind mount a volume")
@click.option("--entrypoint", help="Override the entrypoint of the image")
@click.option("--no-deps", is_flag=True, help="Don't start linked services")
@click.option("--service-ports", is_flag=True, help="Run command with all service's ports enabled and mapped to the host")
@click.option("--use-aliases", is_flag=True, help="Use the service's network aliases in the networks the container connects to")
@click.option("-T", "--no-TTY", "no_tty", is_flag=True, help="Disable pseudo-TTY allocation (default: auto-detected)")
@click.option("-i", "--interactive/--no-interactive", default=True, help="Keep STDIN open even if not attached")
@click.option("--pull", type=click.Choice(["always", "missing", "never"]), help="Pull image before running")
@click.option("--quiet-pull", is_flag=True, help="Pull without printing progress information")
@click.argument("service")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
@handles_compose_errors
def run(ctx, detach, rm, name, env, label, workdir, user, volume, entrypoint, no_deps, service_ports, use_aliases,
        no_tty, interactive, pull, quiet_pull, service, command):
    """Run a one-off command on a service."""
    import shlex

    from compose.convert import Overrides
    from nerdpy.engine.containers.lifecycle import prepare_start

    project = load(ctx, services=[service])
    rt = runtime(ctx, project, quiet_pull=quiet_pull)
    tty = not no_tty and sys.stdin.isatty() and not detach
    stdin_open = interactive and not detach
    labels = {}
    for item in label:
        k, _, v = item.partition("=")
        labels[k] = v
    o = Overrides(command=list(command) or None,
                  entrypoint=(shlex.split(entrypoint) if entrypoint else []) if entrypoint is not None else None,
                  env=list(env), workdir=workdir, user=user, volumes=list(volume), publish=service_ports,
                  tty=tty, stdin_open=stdin_open, auto_remove=rm, restart="no", labels=labels,
                  use_aliases=use_aliases)
    c = rt.create_oneoff(service, o, name=name, no_deps=no_deps, pull=pull)
    rt.view.close()
    handle = prepare_start(rt.store, c)
    if detach:
        handle.start()
        click.echo(c.name)
        return
    from nerdpy.commands.run import attach_and_start

    sys.exit(attach_and_start(rt.store, c, handle, stdin_open, tty, True, None))


@compose.command("create")
@click.option("--force-recreate", is_flag=True, help="Recreate containers even if their configuration hasn't changed")
@click.option("--no-recreate", is_flag=True, help="If containers already exist, don't recreate them")
@click.option("--remove-orphans", is_flag=True, help="Remove containers for services not defined in the Compose file")
@click.option("--scale", multiple=True, metavar="SERVICE=NUM", help="Scale SERVICE to NUM instances")
@click.option("--pull", type=click.Choice(["always", "missing", "never"]), help="Pull image before running")
@click.option("--quiet-pull", is_flag=True, help="Pull without printing progress information")
@click.argument("services", nargs=-1)
@click.pass_context
@handles_compose_errors
def create(ctx, force_recreate, no_recreate, remove_orphans, scale, pull, quiet_pull, services):
    """Creates containers for a service."""
    if force_recreate and no_recreate:
        raise click.UsageError("--force-recreate and --no-recreate are incompatible")
    project = load(ctx, services=list(services) or None)
    runtime(ctx, project, quiet_pull=quiet_pull).up(list(services) or None, force_recreate=force_recreate, no_recreate=no_recreate,
                             remove_orphans=remove_orphans, scale=_parse_scale(scale), pull=pull, no_start=True)


def _services_cmd(name: str, doc: str, extra=()):
    """A subcommand taking SERVICES... (plus options) that loads the project and calls fn(rt, services, **kw)."""
    def deco(fn):
        @click.argument("services", nargs=-1)
        @click.pass_context
        @handles_compose_errors
        @functools.wraps(fn)
        def cmd(ctx, services, **kw):
            project = load_or_named(ctx)
            for s in services:
                project.service(s)
            return fn(runtime(ctx, project), list(services) or None, **kw)

        cmd.__doc__ = doc
        for opt in reversed(extra):
            cmd = opt(cmd)
        return compose.command(name)(cmd)
    return deco


@_services_cmd("start", "Start services.",
               [click.option("--wait", is_flag=True, help="Wait for services to be running|healthy"),
                click.option("--wait-timeout", type=int, help="Maximum duration in seconds to wait for the project to be running|healthy")])
def start(rt, services, wait, wait_timeout):
    if wait_timeout is not None and not wait:
        raise click.UsageError("--wait-timeout needs --wait")
    rt.start_existing(services)
    if wait:
        rt.wait_ready(rt.select(services, with_deps=False), timeout=wait_timeout)


@_services_cmd("stop", "Stop services.",
               [click.option("-t", "--timeout", type=int, help="Specify a shutdown timeout in seconds")])
def stop(rt, services, timeout):
    rt.stop(services, timeout)


@_services_cmd("restart", "Restart service containers.",
               [click.option("-t", "--timeout", type=int, help="Specify a shutdown timeout in seconds"),
                click.option("--no-deps", is_flag=True, help="Don't restart dependent services")])
def restart(rt, services, timeout, no_deps):
    rt.restart(services, timeout)


@_services_cmd("kill", "Force stop service containers.",
               [click.option("-s", "--signal", "sig", default="SIGKILL", show_default=True,
                             help="SIGNAL to send to the container"),
                click.option("--remove-orphans", is_flag=True, help="Remove containers for services not defined in the Compose file")])
def kill(rt, services, sig, remove_orphans):
    from nerdpy.engine.containers.lifecycle import parse_signal

    parse_signal(sig)
    rt.kill(services, sig)


@_services_cmd("rm", "Removes stopped service containers.",
               [click.option("-f", "--force", is_flag=True, help="Don't ask to confirm removal"),
                click.option("-s", "--stop", "stop_first", is_flag=True, help="Stop the containers, if required, before removing"),
                click.option("-v", "--volumes", is_flag=True, help="Remove any anonymous volumes attached to containers")])
def rm(rt, services, force, stop_first, volumes):
    cs = [c for c in rt.containers(services, oneoff=None if not services else False)
          if stop_first or not rt.state(c).running]
    if not cs:
        click.echo("No stopped containers", err=True)
        return
    if not force and sys.stdin.isatty():
        click.echo("Going to remove " + ", ".join(c.name for c in cs), err=True)
        if not click.confirm("Are you sure?", default=False, err=True):
            return
    rt.remove(services, stop_first=stop_first, volumes=volumes)


@_services_cmd("pause", "Pause services.")
def pause(rt, services):
    rt.pause(services)


@_services_cmd("unpause", "Unpause services.")
def unpause(rt, services):
    rt.pause(services, unpause=True)


@_services_cmd("pull", "Pull service images.",
               [click.option("-q", "--quiet", is_flag=True, help="Pull without printing progress information"),
                click.option("--ignore-pull-failures", is_flag=True, help="Pull what it can and ignores images with pull failures"),
                click.option("--include-deps", is_flag=True, help="Also pull services declared as dependencies")])
def pull(rt, services, quiet, ignore_pull_failures, include_deps):
    if quiet:
        rt.view.quiet_pull = True
    names = rt.select(services, with_deps=include_deps)
    for msg in rt.pull(names, ignore_failures=ignore_pull_failures):
        rt.view.warn(msg)


@_services_cmd("top", "Display the running processes.")
def top(rt, services):
    from nerdpy.commands.misc import tabwrite
    from nerdpy.engine.containers.records import container_top

    for c in rt.containers(services):
        if not rt.state(c).running:
            continue
        titles, rows = container_top(rt.store, c)
        sys.stdout.write(f"{c.name}\n" + tabwrite([titles] + rows) + "\n")


@_services_cmd("images", "List images used by the created containers.",
               [click.option("-q", "--quiet", is_flag=True, help="Only display IDs"),
                click.option("--format", "fmt", help="Format the output: table or json")])
def images(rt, services, quiet, fmt):
    from nerdpy.commands.images import _split_name
    from nerdpy.commands._util import human_size
    from nerdpy.engine.images.image import image_config, image_size, lookup_images
    from nerdpy.template import format_output

    rows, docs = [], []
    for c in rt.containers(services, oneoff=None):
        found = lookup_images(rt.store, c.image)
        img = next((i for i in found if i.config == c.image_id), found[0] if found else None)
        repo, tag, _ = _split_name(img.name) if img is not None and not img.dangling else ("<none>", "<none>", None)
        size = image_size(rt.store, img) if img is not None else 0
        rows.append({"ContainerName": c.name, "Repository": repo, "Tag": tag, "ID": c.image_id[7:19],
                     "Size": human_size(size) if img is not None else ""})
        # docker compose's JSON: the full ID, empty repository/tag rather than <none>, bytes
        doc = {"ID": c.image_id, "ContainerName": c.name, "Repository": "" if repo == "<none>" else repo,
               "Tag": "" if tag == "<none>" else tag, "Platform": "", "Size": size}
        if img is not None:
            cfg = image_config(rt.store, img)
            doc["Platform"] = "/".join(p for p in (cfg.get("os"), cfg.get("architecture"), cfg.get("variant")) if p)
            if cfg.get("created"):
                doc["Created"] = cfg["created"]
        docs.append(doc)
    if not quiet and (fmt or "").strip() == "json":  # one JSON array, as docker compose
        sys.stdout.write(json.dumps(docs, separators=(",", ":")) + "\n")
        return
    if quiet:
        sys.stdout.write("".join(f"{i}\n" for i in dict.fromkeys(r["ID"] for r in rows)))
        return
    sys.stdout.write(format_output(fmt, rows, default_table="table {{.ContainerName}}\t{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}",
                                   headers={"ContainerName": "CONTAINER", "Repository": "REPOSITORY", "Tag": "TAG",
                                            "ID": "IMAGE ID", "Size": "SIZE"}))


@compose.command("port")
@click.option("--protocol", default="tcp", type=click.Choice(["tcp", "udp", "sctp"]), help="tcp or udp")
@click.option("--index", type=int, default=1, help="Index of the container if service has multiple replicas")
@click.argument("service")
@click.argument("private_port")
@click.pass_context
@handles_compose_errors
def port(ctx, protocol, index, service, private_port):
    """Print the public port for a port binding."""
    from compose.errors import ComposeRuntimeError

    project = load(ctx, quiet_warnings=True)
    rt = runtime(ctx, project)
    c = rt.find(service, index)
    pnum, _, proto = private_port.partition("/")
    proto = proto or protocol
    _, pubs = _ports_of(rt.store, c)
    for p in pubs:
        if str(p["TargetPort"]) == pnum and p["Protocol"] == proto:
            click.echo(f"{p['URL']}:{p['PublishedPort']}")
            return
    raise ComposeRuntimeError(f"no port {pnum}/{proto} for container {c.name}")


@compose.command("ls")
@click.option("-a", "--all", "all_", is_flag=True, help="Show all stopped Compose projects")
@click.option("-q", "--quiet", is_flag=True, help="Only display project names")
@click.option("--format", "fmt", help="Format the output: table, json or a template")
@click.option("--filter", "filters", multiple=True, help="Filter output based on conditions provided (name=...)")
@click.pass_context
@handles_compose_errors
def ls(ctx, all_, quiet, fmt, filters):
    """List running compose projects."""
    from compose.runtime import list_projects
    from nerdpy.template import format_output

    rows = list_projects(_store(ctx))
    if not all_:
        rows = [r for r in rows if r["running"]]
    for f in filters:
        k, eq, v = f.partition("=")
        if k != "name" or not eq:
            raise click.UsageError(f"invalid filter {f!r} (name=NAME)")
        rows = [r for r in rows if v in r["Name"]]
    if quiet:
        sys.stdout.write("".join(r["Name"] + "\n" for r in rows))
        return
    public = [{"Name": r["Name"], "Status": r["Status"], "ConfigFiles": r["ConfigFiles"]} for r in rows]
    if (fmt or "").strip() == "json":  # docker compose prints one JSON array here
        sys.stdout.write(json.dumps(public, separators=(",", ":")) + "\n")
        return
    sys.stdout.write(format_output(fmt, public, default_table="table {{.Name}}\t{{.Status}}\t{{.ConfigFiles}}",
                                   headers={"Name": "NAME", "Status": "STATUS", "ConfigFiles": "CONFIG FILES"}))


# The docker compose release whose command line and output nerdpy's compose follows; `version`
# reports it, since tools (python-on-whales, CI scripts) parse "Docker Compose version vX.Y.Z"
# and gate features on it. nerdpy's own version is `nerdpy version`'s.
DOCKER_COMPOSE_VERSION = "2.32.4"


@compose.command("version")
@click.option("--short", is_flag=True, help="Shows only the version number")
@click.option("-f", "--format", "fmt", type=click.Choice(["pretty", "json"]), default="pretty", help="Format the output")
def version(short, fmt):
    """Show the Docker Compose version information (the docker compose release nerdpy follows)."""
    if short:
        click.echo(DOCKER_COMPOSE_VERSION)
    elif fmt == "json":
        click.echo(json.dumps({"version": f"v{DOCKER_COMPOSE_VERSION}"}))
    else:
        click.echo(f"Docker Compose version v{DOCKER_COMPOSE_VERSION}")


# -- cp, wait, events, stats, attach, scale ------------------------------------------------------
def _project_runtime(ctx, services):
    """The runtime of the project (or of `-p NAME` without a file), the named services checked
    against the file when there is one."""
    project = load_or_named(ctx)
    if project.services:
        for s in services:
            project.service(s)
    return runtime(ctx, project)


@compose.command("cp")
@click.option("--all", "all_", is_flag=True, help="Include containers created by the run command")
@click.option("-a", "--archive", is_flag=True, help="Archive mode (copy all uid/gid information)")
@click.option("-L", "--follow-link", is_flag=True, help="Always follow symbol link in SRC_PATH")
@click.option("--index", type=int, help="Index of the container if service has multiple replicas")
@click.argument("src")
@click.argument("dst")
@click.pass_context
@handles_compose_errors
def cp(ctx, all_, archive, follow_link, index, src, dst):
    """Copy files/folders between a service container and the local filesystem.

    \b
    nerdpy compose cp [OPTIONS] SERVICE:SRC_PATH DEST_PATH|-
    nerdpy compose cp [OPTIONS] SRC_PATH|- SERVICE:DEST_PATH

    Copying to a service copies into each of its containers (or the one --index names); copying
    from a service copies from its first container (or --index).
    """
    from compose.errors import ComposeRuntimeError
    from compose.runtime import number_of
    from nerdpy.commands.cp import split_cp_arg
    from nerdpy.engine.containers import cp as engine

    src_svc, src_path = split_cp_arg(src)
    dst_svc, dst_path = split_cp_arg(dst)
    if src_svc is not None and dst_svc is not None:
        raise click.UsageError("copying between services is not supported")
    if src_svc is None and dst_svc is None:
        raise click.UsageError("one of the source or destination must be a SERVICE:PATH")
    if not src_path or not dst_path:
        raise click.UsageError("source and destination paths cannot be empty")
    service = src_svc or dst_svc
    rt = _project_runtime(ctx, [service])
    cs = [c for c in rt.containers([service], oneoff=None if all_ else False)
          if index is None or number_of(c) == index]
    if not cs:
        raise ComposeRuntimeError(f'no container found for service "{service}"'
                                  + (f" with index {index}" if index is not None else ""))
    if src_svc is not None:
        c = cs[0]
        if dst_path == "-":
            engine.archive_to(rt.store, c, src_path, sys.stdout.buffer)
            return
        engine.copy_from_container(rt.store, c, src_path, dst_path, follow_link=follow_link)
        return
    if src_path == "-":
        data = sys.stdin.buffer.read()
        import io

        for c in cs:
            engine.extract_to_container(rt.store, c, dst_path, io.BytesIO(data), copy_uid_gid=archive)
        return
    for c in cs:
        engine.copy_to_container(rt.store, c, src_path, dst_path, follow_link=follow_link, copy_uid_gid=archive)


@compose.command("wait")
@click.option("--down-project", is_flag=True, help="Drops project when the first container stops")
@click.argument("services", nargs=-1, required=True)
@click.pass_context
@handles_compose_errors
def wait(ctx, down_project, services):
    """Block until containers of all (or specified) services stop."""
    from compose.ops import wait_all

    rt = _project_runtime(ctx, services)

    def report(c, code):
        click.echo(f'container "{c.id}" exited with status code {code}')

    code = wait_all(rt, list(services), report, first_only=down_project)
    if down_project:
        rt.down(remove_orphans=True)
    sys.exit(code)


@compose.command("events")
@click.option("--json", "as_json", is_flag=True, help="Output events as a stream of json objects")
@click.argument("services", nargs=-1)
@click.pass_context
@handles_compose_errors
def events(ctx, as_json, services):
    """Receive real time events from containers."""
    from compose.ops import follow_project_events

    rt = _project_runtime(ctx, services)
    try:
        for ev in follow_project_events(rt, list(services) or None):
            line = json.dumps(ev.as_json(), separators=(",", ":")) if as_json else ev.as_line()
            try:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            except BrokenPipeError:
                return
    except KeyboardInterrupt:
        return



@compose.command("stats")
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running)")
@click.option("--format", "fmt", help="Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'")
@click.option("--no-stream", is_flag=True, help="Disable streaming stats and only pull the first result")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output")
@click.argument("service", required=False)
@click.pass_context
@handles_compose_errors
def stats(ctx, all_, fmt, no_stream, no_trunc, service):
    """Display a live stream of container(s) resource usage statistics."""
    import time

    from nerdpy.commands.stats import DEFAULT_TABLE, HEADERS, stats_row
    from nerdpy.engine.containers.stats import sample, usage
    from nerdpy.template import format_output

    rt = _project_runtime(ctx, [service] if service else [])
    prev: dict = {}
    first = True
    try:
        while True:
            shown = [c for c in rt.containers([service] if service else None, oneoff=None)
                     if all_ or rt.state(c).running]
            if first and shown:
                # CPU % needs an interval: one sample of all now, the shown one shortly after
                prev = {c.id: sample(rt.store, c) for c in shown}
                time.sleep(0.5)
            rows = []
            for c in shown:
                cur = sample(rt.store, c)
                rows.append(stats_row(usage(c, prev.get(c.id, cur), cur), c.id if no_trunc else c.id[:12], no_trunc))
                prev[c.id] = cur
            first = False
            text = format_output(fmt, rows, default_table=DEFAULT_TABLE, headers=HEADERS)
            if not no_stream and sys.stdout.isatty():
                text = "\x1b[2J\x1b[H" + text
            sys.stdout.write(text)
            sys.stdout.flush()
            if no_stream:
                return
            time.sleep(1)
    except (KeyboardInterrupt, BrokenPipeError):
        return


@compose.command("attach")
@click.option("--index", type=int, default=1, show_default=True, help="Index of the container if service has multiple replicas")
@click.option("--no-stdin", is_flag=True, help="Do not attach STDIN")
@click.option("--sig-proxy/--no-sig-proxy", default=True, help="Proxy all received signals to the process")
@click.option("--detach-keys", help="Override the key sequence for detaching from a container")
@click.argument("service")
@click.pass_context
@handles_compose_errors
def attach(ctx, index, no_stdin, sig_proxy, detach_keys, service):
    """Attach local standard input, output, and error streams to a service's running container."""
    from nerdpy.commands.misc import attach as attach_container

    project = load_or_named(ctx)
    rt = runtime(ctx, project)
    c = rt.find(service, index)
    ctx.invoke(attach_container, no_stdin=no_stdin, sig_proxy=sig_proxy, detach_keys=detach_keys, container=c.id)


@compose.command("scale")
@click.option("--no-deps", is_flag=True, help="Don't start linked services")
@click.argument("scale", nargs=-1, required=True, metavar="SERVICE=REPLICAS...")
@click.pass_context
@handles_compose_errors
def scale(ctx, no_deps, scale):
    """Scale services (without recreating their existing containers)."""
    wanted = _parse_scale(scale)
    project = load(ctx, services=list(wanted))
    rt = runtime(ctx, project)
    rt.up(list(wanted), no_deps=no_deps, no_recreate=True, scale=wanted)


# -- watch ------------------------------------------------------------------------------------------
def _start_watch(rt, rules):
    """A Watcher over `rules`, applying batches in a thread; its lines go to stdout."""
    import threading

    from compose.watch import Watcher

    w = Watcher(rt, rules, lambda line: _Out()(line + "\n"))
    w.start()
    threading.Thread(target=w.run, name="compose-watch", daemon=True).start()
    click.echo("Watch enabled")
    return w


@compose.command("watch")
@click.option("--no-up", is_flag=True, help="Do not start the services before watching")
@click.argument("services", nargs=-1)
@click.pass_context
@handles_compose_errors
def watch(ctx, no_up, services):
    """Watch the services' develop.watch paths and sync/restart/exec in their containers on changes."""
    import signal

    from compose.watch import Watcher, rules_of

    project = load(ctx, services=list(services) or None)
    names = [n for n in project.services if n in (services or project.services)]
    rules = rules_of(project, names, warn=_warn)
    if not rules:
        raise click.UsageError("none of the selected services is configured for watch, "
                               "consider setting a 'develop' section")
    rt = runtime(ctx, project)
    if not no_up:
        rt.up(list(services) or None)
    rt.view.close()
    w = Watcher(rt, rules, lambda line: _Out()(line + "\n"))

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    w.start()
    click.echo("Watch enabled")
    try:
        w.run()
    except KeyboardInterrupt:
        pass
    finally:
        w.stop()
