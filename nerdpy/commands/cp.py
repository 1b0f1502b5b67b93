"""`cp`: copy files and folders between a container and the host (docker's semantics)."""
from __future__ import annotations

import sys

import click

from nerdpy.commands._util import human_size, store_of


def split_cp_arg(arg: str) -> tuple[str | None, str]:
    """docker's splitCpArg: `/abs` and `./rel:with:colons` are local; `NAME:PATH` is a container's."""
    if arg.startswith("/"):
        return None, arg
    name, sep, path = arg.partition(":")
    if not sep or name.startswith("."):
        return None, arg
    return name, path


@click.command("cp", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-a", "--archive", is_flag=True, help="Archive mode (copy all uid/gid information)")
@click.option("-L", "--follow-link", is_flag=True, help="Always follow symbol link in SRC_PATH")
@click.option("-q", "--quiet", is_flag=True,
              help="Suppress progress output during copy (automatic when stderr is not a terminal)")
@click.argument("src")
@click.argument("dst")
@click.pass_context
def cp(ctx, archive, follow_link, quiet, src, dst):
    """Copy files/folders between a container and the local filesystem.

    \b
    nerdpy cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-
    nerdpy cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH

    Use '-' as the source to read a tar archive from stdin and extract it to a directory
    destination in a container. Use '-' as the destination to stream a tar archive of a
    container source to stdout. Paths in the container are resolved inside its root.
    """
    from nerdpy.engine.containers import cp as engine
    from nerdpy.engine.containers.records import find_container

    src_ctr, src_path = split_cp_arg(src)
    dst_ctr, dst_path = split_cp_arg(dst)
    if src_ctr is not None and dst_ctr is not None:
        raise click.UsageError("copying between containers is not supported")
    if src_ctr is None and dst_ctr is None:
        raise click.UsageError("must specify at least one container source")
    if not src_path:
        raise click.UsageError("source path cannot be empty")
    if not dst_path:
        raise click.UsageError("destination path cannot be empty")
    store = store_of(ctx)
    if src_ctr is not None:
        c = find_container(store, src_ctr)
        if dst_path == "-":
            engine.archive_to(store, c, src_path, sys.stdout.buffer)
            return
        n = engine.copy_from_container(store, c, src_path, dst_path, follow_link=follow_link)
    else:
        c = find_container(store, dst_ctr)
        if src_path == "-":
            n = engine.extract_to_container(store, c, dst_path, sys.stdin.buffer, copy_uid_gid=archive)
        else:
            n = engine.copy_to_container(store, c, src_path, dst_path, follow_link=follow_link,
                                         copy_uid_gid=archive)
    if not quiet and sys.stderr.isatty():
        click.echo(f"Successfully copied {human_size(n)} to {dst}", err=True)
