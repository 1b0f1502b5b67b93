"""`nerdpy completion bash|zsh|fish` prints a completion script, and `nerdpy __complete KIND`
(hidden) prints live names for the scripts, one per line.

`__complete` is the scripts' fast path: nerdpy.cli.main hands it `argv` before click parses
anything, and it reads `<data-root>/meta.db` (read-only, never creating it) and the containers'
`state.json` with the standard library alone: no engine, no requests, rich or yaml (yaml only
for compose service names). Anything missing (no data root, no database, no compose file)
prints nothing; it never fails loudly, since its output lands in a shell's completion menu.

    nerdpy __complete [--data-root DIR] [-n NS] containers [--all|--stopped|--paused]
    nerdpy __complete [--data-root DIR] [-n NS] images|networks|volumes [--all]
    nerdpy __complete [-f FILE]... [--project-directory DIR] services
"""
from __future__ import annotations

import json
import os
import sys

import click

SHELLS = ("bash", "zsh", "fish")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx, shell):
    """Output shell completion code for bash, zsh or fish.

    \b
    Examples:
      source <(nerdpy completion bash)                   # bash, this shell only
      nerdpy completion bash > /etc/bash_completion.d/nerdpy
      nerdpy completion zsh > "${fpath[1]}/_nerdpy"       # zsh, then restart it
      nerdpy completion fish > ~/.config/fish/completions/nerdpy.fish
    """
    click.echo(script(shell, ctx.find_root().command), nl=False)


def script(shell: str, root: click.Command) -> str:
    """Generated from the click tree (`root`, the CLI this command runs in) now, so it always
    matches this nerdpy (completions/ holds the same scripts, checked in, for packagers)."""
    from nerdpy.completion_gen import collect, render

    return render(shell, collect(root))


# the fast path ---------------------------------------------------------------------------
def complete_main(argv: list[str] | None = None) -> None:
    """`nerdpy __complete ...`: nerdpy.cli.main calls this, before click, with its whole argv."""
    argv = sys.argv[1:] if argv is None else argv
    code = 0
    try:
        for name in values(argv[1:] if argv[:1] == ["__complete"] else argv):
            sys.stdout.write(name + "\n")
        sys.stdout.flush()
    except Exception:  # a completion menu is no place for a traceback
        if os.environ.get("NERDPY_DEBUG"):
            raise
        code = 1
    sys.exit(code)


def values(argv: list[str]) -> list[str]:
    overrides: dict = {}
    files: list[str] = []
    project_dir = None
    kind = None
    flags: set[str] = set()
    it = iter(argv)
    for a in it:
        opt, eq, val = a.partition("=") if a.startswith("--") else (a, "", "")
        if opt in ("--data-root", "-n", "--namespace", "-f", "--file", "--project-directory"):
            if not eq:
                val = next(it, "")
            if opt == "--data-root":
                overrides["data_root"] = os.path.abspath(val) if val else None
            elif opt in ("-n", "--namespace"):
                overrides["namespace"] = val or None
            elif opt in ("-f", "--file"):
                files.append(val)
            else:
                project_dir = val
        elif a.startswith("-"):
            flags.add(a.lstrip("-"))
        elif kind is None:
            kind = a
    if kind == "services":
        return compose_services(files, project_dir)
    if kind not in ("containers", "images", "networks", "volumes"):
        return []
    from nerdpy.engine.config import load_settings

    settings = load_settings(overrides)
    db = _open_db(settings.data_root)
    if db is None:
        return ["bridge", "host", "none"] if kind == "networks" else []
    try:
        if kind == "containers":
            return _containers(db, settings, flags)
        if kind == "images":
            return _images(db, settings.namespace, "all" in flags)
        if kind == "networks":
            return _networks(db)
        return _volumes(db, settings.namespace, "all" in flags)
    finally:
        db.close()


def _open_db(data_root: str):
    import sqlite3

    path = os.path.join(data_root, "meta.db")
    if not os.path.isfile(path):
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
        db.execute("PRAGMA busy_timeout = 2000")
        return db
    except sqlite3.Error:
        return None


def _query(db, sql: str, params: tuple = ()) -> list[tuple]:
    import sqlite3

    try:
        return db.execute(sql, params).fetchall()
    except sqlite3.Error:  # a table that an older database does not have yet
        return []


def _containers(db, settings, flags: set[str]) -> list[str]:
    rows = _query(db, "SELECT id, name FROM containers WHERE namespace = ? ORDER BY created_at DESC",
                  (settings.namespace,))
    if "all" in flags:
        return [name for _, name in rows]
    out = []
    for cid, name in rows:
        status = _status(settings, cid)
        if "stopped" in flags:
            ok = status in ("created", "exited", "dead")
        elif "paused" in flags:
            ok = status == "paused"
        else:
            ok = status in ("running", "restarting", "paused")
        if ok:
            out.append(name)
    return out


def _status(settings, cid: str) -> str:
    """The container's status as `ps` would show it, from the monitor's records alone."""
    ns = settings.namespace
    try:
        with open(os.path.join(settings.data_root, "containers", ns, cid, "state.json")) as f:
            st = json.load(f)
    except (OSError, ValueError):
        return "created"
    status = st.get("status", "created")
    if status not in ("running", "restarting"):
        return status
    run = os.path.join(settings.run_root, ns, cid)
    alive = False
    try:
        with open(os.path.join(run, "monitor.pid")) as f:
            pid, start = f.read().split()
        with open(f"/proc/{int(pid)}/stat") as f:
            alive = f.read().rsplit(")", 1)[1].split()[19] == start
    except (OSError, ValueError, IndexError):
        alive = False
    if not alive and not (st.get("pid") and os.path.exists(f"/proc/{st['pid']}")):
        return "exited"
    if status == "running" and os.path.exists(os.path.join(run, "paused")):
        return "paused"
    return status


def familiar(name: str) -> str:
    """docker.io/library/busybox:latest -> busybox:latest; docker.io/a/b:1 -> a/b:1."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if name.startswith(prefix):
            rest = name[len(prefix):]
            if prefix == "docker.io/library/" and "/" in rest.split(":")[0].split("@")[0]:
                continue
            return rest
    return name


def _images(db, namespace: str, all_: bool) -> list[str]:
    rows = _query(db, "SELECT name, config FROM images WHERE namespace = ? ORDER BY name", (namespace,))
    out = [familiar(name) for name, _ in rows]
    if all_:
        out += sorted({config.split(":", 1)[-1][:12] for _, config in rows})
    return out


def _networks(db) -> list[str]:
    names = [r[0] for r in _query(db, "SELECT name FROM networks ORDER BY name")]
    return ["bridge", "host", "none"] + [n for n in names if n not in ("bridge", "host", "none")]


def _volumes(db, namespace: str, all_: bool) -> list[str]:
    rows = _query(db, "SELECT name, anonymous FROM volumes WHERE namespace = ? ORDER BY name", (namespace,))
    return [name for name, anon in rows if all_ or not anon]


# compose services ------------------------------------------------------------------------
_DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
_OVERRIDE_FILES = ("compose.override.yaml", "compose.override.yml",
                   "docker-compose.override.yaml", "docker-compose.override.yml")


def compose_files(files: list[str], project_dir: str | None, environ=None, cwd: str | None = None) -> list[str]:
    """The files `nerdpy compose` would read (as compose.loader finds them: -f, COMPOSE_FILE,
    else the first default name in the directory or a parent, with its override)."""
    environ = os.environ if environ is None else environ
    cwd = cwd or os.getcwd()
    files = [f for f in files if f and f != "-"]
    if files:
        return [os.path.join(cwd, f) for f in files]
    base = os.path.join(cwd, project_dir) if project_dir else cwd
    if environ.get("COMPOSE_FILE"):
        sep = environ.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
        return [os.path.join(base, f) for f in environ["COMPOSE_FILE"].split(sep) if f]
    d = os.path.abspath(base)
    while True:
        found = [os.path.join(d, n) for n in _DEFAULT_FILES if os.path.isfile(os.path.join(d, n))]
        if found:
            over = [os.path.join(d, n) for n in _OVERRIDE_FILES if os.path.isfile(os.path.join(d, n))]
            return found[:1] + over[:1]
        parent = os.path.dirname(d)
        if parent == d:
            return []
        d = parent


def compose_services(files: list[str], project_dir: str | None = None) -> list[str]:
    names: list[str] = []
    paths = compose_files(files, project_dir)
    if not paths:
        return names
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.load(f, Loader=loader)
        except (OSError, yaml.YAMLError):
            continue
        services = doc.get("services") if isinstance(doc, dict) else None
        if isinstance(services, dict):
            names += [str(n) for n in services if str(n) not in names]
    return names
