"""The click root group: global flags, lazy loading of command modules, and the reporting of
errors: one line and docker's exit code from the table in nerdpy.exitcodes (125 for an error of
nerdpy itself, 1 where docker uses 1).

Only click is imported here; each command module is imported when its command runs, so
`nerdpy --version` and `nerdpy --help` stay cheap (no requests, rich or yaml).
"""
from __future__ import annotations

import importlib
import os
import sys

import click

from nerdpy import __version__

# command name -> (module under nerdpy.commands, attribute, short help for --help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "pull": ("pull", "pull", "Download an image from a registry"),
    "images": ("images", "images", "List images"),
    "image": ("images", "image", "Manage images"),
    "tag": ("images", "tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    "rmi": ("images", "rmi", "Remove one or more images"),
    "run": ("run", "run", "Create and run a new container from an image"),
    "create": ("run", "create", "Create a new container"),
    "ps": ("ps", "ps", "List containers"),
    "start": ("containers", "start", "Start one or more stopped containers"),
    "stop": ("containers", "stop", "Stop one or more running containers"),
    "restart": ("containers", "restart", "Restart one or more containers"),
    "kill": ("containers", "kill", "Kill one or more running containers"),
    "rm": ("containers", "rm", "Remove one or more containers"),
    "wait": ("containers", "wait", "Block until containers stop, then print their exit codes"),
    "logs": ("containers", "logs", "Fetch the logs of a container"),
    "exec": ("containers", "exec_", "Execute a command in a running container"),
    "inspect": ("containers", "inspect", "Return low-level information on objects"),
    "container": ("containers", "container", "Manage containers"),
    "system": ("system", "system", "Manage nerdpy"),
    "port": ("port", "port", "List port mappings or a specific mapping for the container"),
    "cp": ("cp", "cp", "Copy files/folders between a container and the local filesystem"),
    "attach": ("misc", "attach", "Attach local standard input, output, and error streams to a running container"),
    "top": ("misc", "top", "Display the running processes of a container"),
    "rename": ("misc", "rename", "Rename a container"),
    "pause": ("misc", "pause", "Pause all processes within one or more containers"),
    "unpause": ("misc", "unpause", "Unpause all processes within one or more containers"),
    "volume": ("volumes", "volume", "Manage volumes"),
    "compose": ("compose", "compose", "Define and run multi-container applications"),
    "export": ("imageio", "export", "Export a container's filesystem as a tar archive"),
    "import": ("imageio", "import_", "Import the contents from a tarball to create a filesystem image"),
    "commit": ("imageio", "commit", "Create a new image from a container's changes"),
    "doctor": ("doctor", "doctor", "Check that this host can run nerdpy, and say how to fix what is missing"),
    "network": ("network", "network", "Manage networks"),
    "push": ("push", "push", "Upload an image to a registry"),
    "login": ("login", "login", "Log in to a registry"),
    "logout": ("login", "logout", "Log out from a registry"),
    "save": ("saveload", "save", "Save one or more images to a tar archive (streamed to STDOUT by default)"),
    "load": ("saveload", "load", "Load an image from a tar archive or STDIN"),
    "history": ("images", "history", "Show the history of an image"),
    "version": ("version", "version", "Show the nerdpy version information"),
    "info": ("system", "info", "Display system-wide information"),
    "events": ("system", "events", "Get real time events from the server"),
    "stats": ("stats", "stats", "Display a live stream of container(s) resource usage statistics"),
    "update": ("update", "update", "Update configuration of one or more containers"),
    "diff": ("diff", "diff", "Inspect changes to files or directories on a container's filesystem"),
    "completion": ("completion", "completion", "Output shell completion code for bash, zsh or fish"),
}

EXIT_ERROR = 125  # nerdpy.exitcodes.EXIT_ERROR, without importing it on the fast paths


class DebugState:
    debug = False
    command: str | None = None  # the innermost command resolved (`container cp` -> "cp"): its exit codes


class LazyGroup(click.Group):
    """A group whose sub-commands live in modules imported on first use."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name, cmd, rest = super().resolve_command(ctx, args)
        if cmd is not None:
            DebugState.command = name
        return name, cmd, rest

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attr, _ = self.lazy[name]
            mod = importlib.import_module(f"nerdpy.commands.{module}")
            return getattr(mod, attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # list lazy commands from the table, without importing their modules
        names = [n for n, c in self.commands.items() if not c.hidden and n not in self.lazy]
        width = max((len(n) for n in list(self.lazy) + names), default=0)
        limit = formatter.width - 6 - width  # as click's own
        rows = [(name, self.lazy[name][2]) for name in self.lazy]
        rows += [(name, self.commands[name].get_short_help_str(limit)) for name in names]
        rows.sort()
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class Context:
    """What every command receives: the settings and a store opened on first use."""

    def __init__(self, overrides: dict):
        self.overrides = overrides
        self._settings = None
        self._store = None

    @property
    def settings(self):
        if self._settings is None:
            from nerdpy.engine.config import load_settings

            self._settings = load_settings(self.overrides)
        return self._settings

    def store(self):
        if self._store is None:
            from nerdpy.engine.store import open_store
            from nerdpy.engine.util import locks

            locks.set_reporter(lambda line: click.echo(f"nerdpy: {line}", err=True))

            self._store = open_store(self.settings)
        return self._store


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-v", "--version", prog_name="nerdpy", message="nerdpy version %(version)s")
@click.option("--data-root", metavar="DIR", help="Root of persistent state [default: /var/lib/nerdpy; for a user ~/.local/share/nerdpy]")
@click.option("-n", "--namespace", metavar="NS", help="Namespace to use [default: default]")
@click.option("--debug", is_flag=True, default=None, help="Show debug output and tracebacks")
@click.option("--insecure-registry", "insecure_registries", multiple=True, metavar="HOST",
              help="Allow plain HTTP and unverified TLS for this registry (repeatable)")
@click.option("--hosts-dir", metavar="DIRS",
              help="Colon-separated dirs holding hosts.toml files "
                   "[default: /etc/nerdpy/certs.d:/etc/containerd/certs.d:/etc/docker/certs.d]")
@click.pass_context
def cli(ctx: click.Context, data_root, namespace, debug, insecure_registries, hosts_dir) -> None:
    """A Docker-compatible container command line with an embedded, daemonless engine."""
    overrides = {
        "data_root": os.path.abspath(data_root) if data_root else None,
        "namespace": namespace,
        "debug": debug,
        "insecure_registries": list(insecure_registries) or None,
        "hosts_dirs": [d for d in hosts_dir.split(":") if d] if hosts_dir else None,
    }
    if debug or os.environ.get("NERDPY_DEBUG", "").lower() in ("1", "true", "yes"):
        DebugState.debug = True
    ctx.obj = Context(overrides)


def _no_space(e: OSError) -> None:
    """A full disk (the data root, or the file a command writes its output to): one line, and
    the command's exit code for an error of nerdpy's own. Output still buffered is dropped."""
    from nerdpy import exitcodes
    from nerdpy.engine.errors import NerdpyError

    where = e.filename or ("/dev/stdout" if _stdout_failed() else "")
    click.echo(f"nerdpy: write {where}: no space left on device" if where else "nerdpy: no space left on device",
               err=True)
    sys.exit(exitcodes.exit_code(NerdpyError(), DebugState.command))


def _stdout_failed() -> bool:
    """Flush stdout; on failure, point fd 1 at /dev/null so the exit's own flush is silent."""
    try:
        sys.stdout.flush()
        return False
    except OSError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
        return True


def main(argv: list[str] | None = None) -> None:
    DebugState.command = None
    try:
        cli.main(args=argv, prog_name="nerdpy", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("", err=True)
        sys.exit(130)
    except click.ClickException as e:
        if isinstance(e, click.UsageError):
            msg = e.format_message()
            hint = ""
            if e.ctx is not None:
                hint = f"\nSee '{e.ctx.command_path} --help'."
            click.echo(f"nerdpy: {msg}{hint}", err=True)
            sys.exit(EXIT_ERROR)
        click.echo(f"nerdpy: {e.format_message()}", err=True)
        sys.exit(EXIT_ERROR if e.exit_code in (1, 2) else e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)
    except Exception as e:
        from nerdpy import exitcodes

        if exitcodes.is_reported(e):  # nerdpy's and compose's errors: the table's line and code
            if DebugState.debug:
                import traceback

                traceback.print_exc()
            line = exitcodes.message(e)
            if line:
                click.echo(line, err=True)
            sys.exit(exitcodes.exit_code(e, DebugState.command))
        if DebugState.debug:
            raise
        if type(e).__name__ == "DatabaseError" and ("malformed" in str(e) or "not a database" in str(e)):
            click.echo(f"nerdpy: the metadata database is damaged ({e}): run `nerdpy system check --repair` "
                       "to rebuild it from what is on disk", err=True)
            sys.exit(EXIT_ERROR)
        if isinstance(e, OSError) and e.errno in (28, 122):  # ENOSPC, EDQUOT: a full disk, wherever it hit
            _no_space(e)
        # an error we did not plan for: still one line unless --debug
        click.echo(f"nerdpy: internal error: {type(e).__name__}: {e} (run with --debug for details)", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(0)
