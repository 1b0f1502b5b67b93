"""`nerdpy pull`: flags -> engine.pull.pull_image -> progress rendering."""
from __future__ import annotations

import sys

import click

from nerdpy.commands._util import store_of


@click.command("pull")
@click.argument("name")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]", help="Set platform if server is multi-platform capable")
@click.option("-a", "--all-platforms", is_flag=True, help="Pull content for all platforms")
@click.option("--progress", type=click.Choice(["auto", "plain", "tty", "quiet"]), default="auto",
              help="Progress output: auto, plain, tty or quiet")
@click.pass_context
def pull(ctx: click.Context, name: str, quiet: bool, platform: str | None, all_platforms: bool, progress: str) -> None:
    """Download an image from a registry.

    \b
    Examples:
      nerdpy pull busybox
      nerdpy pull 127.0.0.1:5000/team/app:1.2 --platform linux/arm64
    """
    from nerdpy.commands.progress import pull_progress

    store = store_of(ctx)
    from nerdpy.engine.distribution.pull import pull_image
    from nerdpy.engine.distribution.reference import parse_reference

    ref = parse_reference(name)
    mode = "quiet" if quiet else progress
    if mode != "quiet":
        bare = parse_reference(name, default_tag=None)
        if bare.tag is None and bare.digest is None:
            click.echo(f"Using default tag: {ref.tag}")
    with pull_progress(mode, ref) as on_event:
        result = pull_image(store, name, platform=platform, all_platforms=all_platforms, progress=on_event)
    if quiet:
        click.echo(result.reference)
        return
    familiar = parse_reference(result.reference, default_tag=None).familiar()
    click.echo(f"Digest: {result.digest}")
    if result.updated:
        click.echo(f"Status: Downloaded newer image for {familiar}")
    else:
        click.echo(f"Status: Image is up to date for {familiar}")
    click.echo(result.reference)
    sys.stdout.flush()
