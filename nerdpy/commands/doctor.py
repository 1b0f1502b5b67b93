"""`doctor`: print each host check of nerdpy.engine.system.doctor with its fix; exit 1 when one fails."""
from __future__ import annotations

import sys

import click

from nerdpy.commands._util import settings_of

_MARK = {"ok": "[ ok ]", "warn": "[warn]", "fail": "[FAIL]"}


@click.command("doctor")
@click.option("--format", "fmt", metavar="FORMAT",
              help="Format output using a custom template: 'json' or a template over Name, Status, Detail, Fix")
@click.pass_context
def doctor(ctx, fmt) -> None:
    """Check that this host can run nerdpy, and say how to fix what is missing.

    \b
    Checks root, runc (and its CVE-2024-21626 fix), overlayfs, cgroups, the CNI plugins,
    iptables, iproute2, tini, the data root's filesystem, free space, and that the registry
    mirrors of each hosts.toml answer. Run as a user (rootless), also the subuid and subgid
    ranges, newuidmap, overlayfs inside a user namespace, slirp4netns, /dev/net/tun and
    cgroup delegation. Warnings do not fail. Exits 0 when all is well, 1 otherwise.
    """
    settings = settings_of(ctx)
    if settings.rootless_uid is not None:  # a plain user: rootless mode's checks
        from nerdpy.engine.system.doctor_rootless import run_checks
    else:
        from nerdpy.engine.system.doctor import run_checks

    checks = run_checks(settings)
    failed = [c for c in checks if not c.ok]
    if fmt:
        from nerdpy.template import format_output

        rows = [{"Name": c.name, "Status": c.status, "Detail": c.detail, "Fix": c.fix} for c in checks]
        sys.stdout.write(format_output(fmt, rows, default_table="table {{.Name}}\t{{.Status}}\t{{.Detail}}",
                                       headers={}))
    else:
        for c in checks:
            click.echo(f"{_MARK.get(c.status, c.status)} {c.name}: {c.detail}")
            if c.fix and c.status != "ok":
                click.echo(f"       fix: {c.fix}")
        click.echo("")
        if failed:
            click.echo(f"{len(failed)} problem{'s' if len(failed) != 1 else ''} found.")
        else:
            click.echo("Everything nerdpy needs is in place.")
    sys.exit(1 if failed else 0)
