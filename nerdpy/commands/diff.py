"""`diff` (and `container diff`): the A/C/D lines of a container's changes (engine/containers/diff.py)."""
from __future__ import annotations

import sys

import click

from nerdpy.commands._util import store_of


@click.command("diff")
@click.argument("container")
@click.pass_context
def diff(ctx, container):
    """Inspect changes to files or directories on a container's filesystem.

    \b
    A: a file or directory was added
    C: a file or directory was changed
    D: a file or directory was deleted
    """
    from nerdpy.engine.containers.diff import container_changes
    from nerdpy.engine.containers.records import find_container

    store = store_of(ctx)
    for ch in container_changes(store, find_container(store, container)):
        sys.stdout.write(f"{ch.kind} {ch.path}\n")
