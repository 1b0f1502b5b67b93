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


def options_of(ctx: click.Context) -> ComposeOptions:
    opts = ctx.meta.get(OPTIONS_KEY)
    return opts if opts is not None else ComposeOptions()


def _warn(message: str) -> None:
    click.echo(f"nerdpy: warning: {message}", err=True)


def load(ctx: click.Context, services: list[str] | None = None, quiet_warnings: bool = False):
    """The project for this invocation's global compose flags (-f, -p, --project-directory,
    --env-file, --profile). Raises ComposeError; use inside compose_errors()."""
    from compose.loader import load_project

    o = options_of(ctx)
    return load_project(
        list(o.files) or None, project_name=o.project_name, project_directory=o.project_directory,
        env_files=list(o.env_files) or None, profiles=list(o.profiles) if o.profiles else None,
        services=services, on_warning=None if quiet_warnings else _warn)


@contextlib.contextmanager
def compose_errors():
    """ComposeError -> `nerdpy: FILE:LINE: message` on stderr, exit 1 (as docker compose)."""
    from compose.errors import ComposeError

    try:
        yield
    except ComposeError as e:
        from nerdpy.cli import DebugState

        if DebugState.debug:
            import traceback

            traceback.print_exc()
        click.echo(f"nerdpy: {e}", err=True)
        sys.exit(e.exit_code)


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
@click.pass_context
def compose(ctx, files, project_name, project_directory, env_files, profiles):
    """Define and run multi-container applications."""
    ctx.meta[OPTIONS_KEY] = ComposeOptions(files=files, project_name=project_name,
                                           project_directory=project_directory, env_files=env_files,
                                           profiles=profiles)
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
@click.option("-q", "--quiet", is_flag=True, help="Only validate the configuration, don't print anything")
@click.option("-o", "--output", metavar="FILE", help="Save to file (default: stdout)")
@click.pass_context
@handles_compose_errors
def config(ctx, fmt, list_services, list_volumes, list_profiles, list_images, quiet, output):
    """Parse, resolve and render the compose file in canonical format."""
    project = load(ctx, quiet_warnings=quiet)
    if quiet:
        return
    if list_services:
        text = "".join(f"{s}\n" for s in project.services)
    elif list_volumes:
        text = "".join(f"{v}\n" for v in project.volumes)
    elif list_profiles:
        text = "".join(f"{p}\n" for p in project.all_profiles())
    elif list_images:
        text = "".join(f"{s.image}\n" for s in project.services.values())
    elif fmt == "json":
        text = json.dumps(project.to_dict(escape_dollars=True), indent=2) + "\n"
    else:
        text = _dump_yaml(project.to_dict(escape_dollars=True))
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
