"""`export`, `import` and `commit`: thin layers over nerdpy.engine.containers.export and nerdpy.engine.images.commit.

Errors exit 1, as docker's do for these commands (nerdpy.exitcodes)."""
from __future__ import annotations

import sys

import click

from nerdpy.commands._util import store_of
from nerdpy.exitcodes import CommandError

_CHANGE_HELP = "Apply Dockerfile instruction to the created image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, " \
               "ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)"


@click.command("export")
@click.argument("container")
@click.option("-o", "--output", metavar="FILE", help="Write to a file, instead of STDOUT")
@click.pass_context
def export(ctx, container, output) -> None:
    """Export a container's filesystem as a tar archive.

    \b
    Examples:
      nerdpy export web > web.tar
      nerdpy export -o web.tar web
    """
    from nerdpy.engine.containers.records import find_container
    from nerdpy.engine.containers.export import export_container

    store = store_of(ctx)
    c = find_container(store, container)
    if not output:
        if sys.stdout.isatty():
            raise CommandError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        export_container(store, c, sys.stdout.buffer)
        return
    from nerdpy.engine.util.fs import atomic_file

    try:
        with atomic_file(output) as f:
            export_container(store, c, f)
    except OSError as e:
        raise CommandError(f"failed to export container: {e.strerror or e}: {output}") from None


@click.command("import")
@click.argument("source", metavar="file|URL|-")
@click.argument("reference", required=False, metavar="[REPOSITORY[:TAG]]")
@click.option("-c", "--change", "changes", multiple=True, metavar="INSTRUCTION", help=_CHANGE_HELP)
@click.option("-m", "--message", default="", help="Set commit message for imported image")
@click.option("--platform", metavar="OS/ARCH", help="Set platform if server is multi-platform capable")
@click.pass_context
def import_(ctx, source, reference, changes, message, platform) -> None:
    """Import the contents from a tarball to create a filesystem image.

    \b
    Examples:
      nerdpy import rootfs.tar myimage:1.0
      cat rootfs.tar.gz | nerdpy import --change 'CMD ["/bin/sh"]' - myimage
      nerdpy import https://example.com/rootfs.tar.xz myimage
    """
    from nerdpy.engine.containers.export import import_image

    if source == "-" and sys.stdin.isatty():
        raise CommandError("refusing to read an archive from a terminal: redirect stdin or name a file")
    result = import_image(store_of(ctx), source, reference, changes=changes, message=message,
                          platform=platform, stdin=sys.stdin.buffer)
    click.echo(result.image_id)


@click.command("commit")
@click.argument("container")
@click.argument("reference", required=False, metavar="[REPOSITORY[:TAG]]")
@click.option("-a", "--author", default="", help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
@click.option("-c", "--change", "changes", multiple=True, metavar="INSTRUCTION", help=_CHANGE_HELP)
@click.option("-m", "--message", default="", help="Commit message")
@click.option("-p", "--pause", type=click.BOOL, is_flag=False, flag_value=True, default=True, show_default=True,
              help="Pause container during commit (--pause=false to not pause)")
@click.pass_context
def commit(ctx, container, reference, author, changes, message, pause) -> None:
    """Create a new image from a container's changes.

    \b
    Examples:
      nerdpy commit web myweb:v2
      nerdpy commit -c 'CMD ["nginx", "-g", "daemon off;"]' -m "tuned" web myweb:v3
    """
    from nerdpy.engine.images.commit import commit_container
    from nerdpy.engine.containers.records import find_container

    store = store_of(ctx)
    c = find_container(store, container)
    result = commit_container(store, c, reference, changes=changes, message=message, author=author,
                              pause=pause)
    click.echo(result.image_id)
