"""`nerdpy login` and `nerdpy logout`: flags and prompts -> engine.login."""
from __future__ import annotations

import sys

import click

from nerdpy.commands._util import settings_of

_PLAIN_WARNING = ("WARNING! Your password will be stored unencrypted in {path}.\n"
                  "Configure a credential helper to remove this warning. See\n"
                  "https://docs.docker.com/engine/reference/commandline/login/#credential-stores\n")


def _client(ctx):
    from nerdpy.engine.distribution.registry import RegistryClient

    settings = settings_of(ctx)
    return RegistryClient(hosts_dirs=list(settings.hosts_dirs), insecure=list(settings.insecure_registries))


def _interactive() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


@click.command("login")
@click.argument("server", required=False)
@click.option("-u", "--username", metavar="USER", help="Username")
@click.option("-p", "--password", metavar="PASSWORD", help="Password")
@click.option("--password-stdin", is_flag=True, help="Take the password from stdin")
@click.pass_context
def login(ctx: click.Context, server: str | None, username: str | None, password: str | None,
          password_stdin: bool) -> None:
    """Log in to a registry (Docker Hub when no SERVER is given).

    \b
    Examples:
      nerdpy login 127.0.0.1:5000 -u alice --password-stdin < pass.txt
      nerdpy login registry.example.com
    """
    from nerdpy.engine.distribution.login import check_stored, login as do_login, normalise_server, stored_credentials

    if password is not None:
        click.echo("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", err=True)
        if password_stdin:
            raise click.UsageError("--password and --password-stdin are mutually exclusive")
    if password_stdin:
        if not username:
            raise click.UsageError("Must provide --username with --password-stdin")
        password = sys.stdin.read()
        if password.endswith("\n"):
            password = password[:-1]
        if password.endswith("\r"):
            password = password[:-1]
    _, key = normalise_server(server)
    client = _client(ctx)
    if not username and not password:
        stored = stored_credentials(server)
        if stored is not None and stored.username and stored.password:
            click.echo("Authenticating with existing credentials...")
            if check_stored(client, server):
                click.echo("Login Succeeded")
                return
    if not username:
        if not _interactive():
            raise click.ClickException("Cannot perform an interactive login from a non TTY device")
        stored = stored_credentials(server)
        default = stored.username if stored is not None and stored.username else ""
        prompt = f"Username ({default}): " if default else "Username: "
        sys.stdout.write(prompt)
        sys.stdout.flush()
        username = sys.stdin.readline().strip() or default
        if not username:
            raise click.ClickException("Error: Non-null Username Required")
    if not password:
        if not _interactive():
            raise click.ClickException("Cannot perform an interactive login from a non TTY device")
        import getpass

        password = getpass.getpass("Password: ")
        if not password:
            raise click.ClickException("Error: Password Required")
    result = do_login(client, server, username, password)
    if result.helper is None:
        click.echo(_PLAIN_WARNING.format(path=result.config), err=True, nl=False)
    click.echo("Login Succeeded")


@click.command("logout")
@click.argument("server", required=False)
def logout(server: str | None) -> None:
    """Log out from a registry (Docker Hub when no SERVER is given)."""
    from nerdpy.engine.distribution.login import logout as do_logout

    key, found, warning = do_logout(server)
    if not found:
        click.echo(f"Not logged in to {key}")
        return
    click.echo(f"Removing login credentials for {key}")
    if warning:
        click.echo(f"WARNING: {warning}", err=True)
