"""Loading a compose project: files on disk -> a validated, normalised compose.model.Project.

The steps follow docker compose:
1. the environment: the process environment over the env files (``--env-file``, repeatable, or
   ``.env`` in the project directory);
2. the files: ``-f`` (repeatable, ``-`` is stdin), else ``COMPOSE_FILE``, else the first of
   compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml found in the current
   directory or a parent, with its override file (compose.override.yaml, ...) beside it;
3. each file is parsed (keeping lines), interpolated, validated against the schema and its
   ``extends`` resolved; then the files are merged in order;
4. the project name: ``-p``, else ``COMPOSE_PROJECT_NAME``, else the top-level ``name:``, else
   the project directory's name made lowercase and stripped to [a-z0-9_-];
5. the model is built, profiles applied (``--profile``, else ``COMPOSE_PROFILES``) and
   references checked (services, networks, volumes, secrets, configs, dependency cycles).
"""
from __future__ import annotations

import os
import re
import sys
from typing import Callable, Iterable, Mapping, TextIO

from compose import model as m
from compose.envfile import read_env_file
from compose.errors import ComposeError, CycleError, FileNotFound, ModelError, ProjectNameError
from compose.interpolate import interpolate_file
from compose.merge import ExtendsResolver, merge_files
from compose.normalize import Locator, Normalizer
from compose.schema import unimplemented_keys, validate
from compose.yamlsrc import SourceFile, parse

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE_FILES = ("compose.override.yaml", "compose.override.yml",
                  "docker-compose.override.yaml", "docker-compose.override.yml")
STDIN = "-"

_VALID_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def normalize_project_name(name: str) -> str:
    """Lowercase, keep only [a-z0-9_-], no leading '_' or '-' (docker compose's rule)."""
    return re.sub(r"[^a-z0-9_-]", "", name.lower()).lstrip("_-")


def check_project_name(name: str, origin: str) -> str:
    if not _VALID_NAME.match(name):
        raise ProjectNameError(
            f"invalid project name {name!r} (from {origin}): it must contain only lowercase letters, "
            "digits, '-' and '_', and start with a letter or a digit")
    return name


def find_default_files(start: str) -> tuple[list[str], list[str]]:
    """(files, warnings): the default compose file in `start` or its nearest parent, and its
    override file."""
    d = os.path.abspath(start)
    while True:
        found = [os.path.join(d, n) for n in DEFAULT_FILES if os.path.isfile(os.path.join(d, n))]
        if found:
            warnings = []
            if len(found) > 1:
                warnings.append("found multiple config files with supported names: "
                                + ", ".join(found) + f"; using {found[0]}")
            files = [found[0]]
            overrides = [os.path.join(d, n) for n in OVERRIDE_FILES if os.path.isfile(os.path.join(d, n))]
            if overrides:
                files.append(overrides[0])
            return files, warnings
        parent = os.path.dirname(d)
        if parent == d:
            return [], []
        d = parent


def _display(path: str, cwd: str) -> str:
    rel = os.path.relpath(path, cwd)
    return path if rel.startswith("..") else rel


def load_project(files: Iterable[str] | None = None, *, project_name: str | None = None,
                 project_directory: str | None = None, env_files: Iterable[str] | None = None,
                 profiles: Iterable[str] | None = None, services: Iterable[str] | None = None,
                 environ: Mapping[str, str] | None = None, cwd: str | None = None,
                 stdin: TextIO | None = None,
                 on_warning: Callable[[str], None] | None = None, interpolate: bool = True,
                 on_source: Callable[[dict], None] | None = None) -> m.Project:
    """Load, validate and normalise a compose project (see the module doc for the steps).

    files: as -f (``"-"`` reads `stdin`); project_name: -p; project_directory:
    --project-directory; env_files: --env-file; profiles: --profile; services: services named
    on the command line (their profiles become active, as the spec says); environ: the process
    environment (os.environ); on_warning: called with each warning (they are also kept in
    Project.warnings); interpolate=False leaves `${VAR}` as written (`config --no-interpolate`);
    on_source: called with each file's data as parsed, before interpolation (`config --variables`). Raises a ComposeError subclass (with file and line) on any error."""
    environ = dict(os.environ if environ is None else environ)
    cwd = os.path.abspath(cwd or os.getcwd())
    warnings: list[str] = []

    def warn(msg: str) -> None:
        if msg not in warnings:
            warnings.append(msg)
            if on_warning:
                on_warning(msg)

    files = list(files or [])
    if project_directory:
        project_directory = os.path.abspath(os.path.join(cwd, project_directory))
        if not os.path.isdir(project_directory):
            raise FileNotFound(f"project directory {project_directory} not found")

    # 1. the environment
    first_real = next((f for f in files if f != STDIN), None)
    env_dir = project_directory or (os.path.dirname(os.path.join(cwd, first_real)) if first_real else cwd)
    dotenv: dict[str, str] = {}
    if env_files:
        for ef in env_files:
            path = os.path.join(cwd, ef)
            dotenv.update(read_env_file(path, display=ef, env=_chain(environ, dotenv)))
    elif os.path.isfile(os.path.join(env_dir, ".env")):
        dotenv.update(read_env_file(os.path.join(env_dir, ".env"), display=_display(os.path.join(env_dir, ".env"), cwd),
                                    env=_chain(environ, dotenv)))
    env = {**dotenv, **environ}

    # 2. the files
    if not files and env.get("COMPOSE_FILE"):
        sep = env.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
        base = project_directory or cwd
        files = [os.path.join(base, f) for f in env["COMPOSE_FILE"].split(sep) if f]
    if not files:
        files, ws = find_default_files(project_directory or cwd)
        for w in ws:
            warn(w)
        if not files:
            raise FileNotFound("no configuration file provided: not found (looked for "
                               + ", ".join(DEFAULT_FILES) + f" in {project_directory or cwd} and its parents)")
    first_real = next((f for f in files if f != STDIN), None)
    working_dir = project_directory or (os.path.dirname(os.path.abspath(os.path.join(cwd, first_real)))
                                        if first_real else cwd)

    if not env_files and not os.path.isfile(os.path.join(env_dir, ".env")) and working_dir != env_dir \
            and os.path.isfile(os.path.join(working_dir, ".env")):
        # the compose file was found in a parent directory: its .env is the project's
        dotenv.update(read_env_file(os.path.join(working_dir, ".env"),
                                    display=_display(os.path.join(working_dir, ".env"), cwd),
                                    env=_chain(environ, dotenv)))
        env = {**dotenv, **environ}
    if project_name:
        env.setdefault("COMPOSE_PROJECT_NAME", project_name)

    unset_seen: set[str] = set()

    def on_unset(name: str) -> None:
        if name not in unset_seen:
            unset_seen.add(name)
            warn(f'the "{name}" variable is not set, defaulting to a blank string')

    fileset = _FileSet(cwd, env, on_unset, interpolate=interpolate, on_source=on_source)
    sources = fileset.load(files, working_dir, stdin)
    data = merge_files(sources)
    if data.get("include"):
        _apply_includes(data, sources, working_dir, env, cwd, on_unset, chain=())
    locate = Locator(sources)
    if not data:
        raise ModelError("empty compose file", sources[0].name, None)

    # 4. the project name
    if project_name:
        name = check_project_name(project_name, "-p/--project-name")
    elif environ.get("COMPOSE_PROJECT_NAME") or dotenv.get("COMPOSE_PROJECT_NAME"):
        name = check_project_name(env["COMPOSE_PROJECT_NAME"], "COMPOSE_PROJECT_NAME")
    elif data.get("name"):
        name = str(data["name"])
        if not _VALID_NAME.match(name):
            file, line = locate(("name",))
            raise ProjectNameError(f"invalid project name {name!r}: it must contain only lowercase letters, "
                                   "digits, '-' and '_', and start with a letter or a digit", file, line)
    else:
        name = normalize_project_name(os.path.basename(working_dir.rstrip("/")) or "")
        if not name:
            raise ProjectNameError(f"cannot derive a project name from the directory {working_dir}: "
                                   "use -p or a top-level name:")

    # warnings about what nerdpy ignores
    if "version" in data:
        warn("the attribute `version` is obsolete, it will be ignored")

    # 5. the model
    norm = Normalizer(data, project_name=name, working_dir=working_dir, environment=env, locate=locate, warn=warn)
    networks = norm.networks()
    volumes = norm.volumes()
    secrets = norm.secrets("secrets")
    configs = norm.secrets("configs")
    all_services = {sname: norm.service(sname, raw) for sname, raw in (data.get("services") or {}).items()}

    if profiles is None:
        profiles = [p.strip() for p in env.get("COMPOSE_PROFILES", "").split(",") if p.strip()]
    active = list(dict.fromkeys(profiles))
    for sname in services or []:
        if sname not in all_services:
            raise ModelError(f"no such service: {sname}")
        for p in all_services[sname].profiles:
            if p not in active:
                active.append(p)
    everything = "*" in active
    enabled = {k: s for k, s in all_services.items()
               if not s.profiles or everything or set(s.profiles) & set(active)}
    disabled = {k: s for k, s in all_services.items() if k not in enabled}

    _check_references(enabled, disabled, all_services, networks, volumes, secrets, configs, locate, warn)

    if any("default" in s.networks for s in enabled.values()) and "default" not in networks:
        networks["default"] = m.Network(name=f"{name}_default")

    try:
        m.dependency_levels(enabled)
    except CycleError as e:
        file, line = locate(("services", e.cycle[0], "depends_on"))
        raise CycleError(e.cycle, file, line) from None

    ignored = unimplemented_keys(data)
    if ignored:
        warn("nerdpy ignores these keys, which it does not implement: " + ", ".join(ignored))

    return m.Project(
        name=name, working_dir=working_dir, files=[s.path or STDIN for s in sources], services=enabled,
        networks=networks, volumes=volumes, secrets=secrets, configs=configs, disabled_services=disabled,
        profiles=active, environment=env,
        extensions={k: v for k, v in data.items() if k.startswith("x-")}, warnings=warnings)


class _FileSet:
    """Reads, interpolates, validates and resolves extends for a list of files with one
    environment (the main project's, or an included project's)."""

    def __init__(self, cwd: str, env: Mapping[str, str], on_unset, interpolate: bool = True, on_source=None):
        self.interpolate = interpolate
        self.on_source = on_source
        self.cwd = cwd
        self.env = env
        self.on_unset = on_unset
        self.resolver = ExtendsResolver(self._extends_file)

    def read(self, path: str, display: str) -> SourceFile:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            raise FileNotFound(f"compose file {display} not found") from None
        except IsADirectoryError:
            raise ComposeError(f"compose file {display} is a directory") from None
        except UnicodeDecodeError:
            raise ComposeError(f"compose file {display} is not UTF-8 text") from None
        except PermissionError:
            raise ComposeError(f"compose file {display}: permission denied") from None
        return self.prepare(parse(text, display, path, os.path.dirname(path)))

    def prepare(self, src: SourceFile) -> SourceFile:
        if self.on_source is not None:
            self.on_source(src.data)
        if self.interpolate:
            interpolate_file(src, self.env, on_unset=self.on_unset)
        validate(src)
        return src

    def _extends_file(self, path: str) -> SourceFile:
        src = self.read(path, _display(path, self.cwd))
        self.resolver.resolve_file(src)
        return src

    def load(self, files: list[str], working_dir: str, stdin=None, base: str | None = None) -> list[SourceFile]:
        sources = []
        for f in files:
            if f == STDIN:
                text = (stdin or sys.stdin).read()
                src = self.prepare(parse(text, "<stdin>", None, working_dir))
            else:
                path = os.path.abspath(os.path.join(base or self.cwd, f))
                display = _display(path, self.cwd) if (os.path.isabs(f) or base) else f
                src = self.read(path, display)
            self.resolver.resolve_file(src)
            sources.append(src)
        return sources


_RESOURCES = ("services", "networks", "volumes", "secrets", "configs")


def _apply_includes(data: dict, sources: list, working_dir: str, env: Mapping[str, str], cwd: str,
                    on_unset, chain: tuple) -> None:
    """Load each ``include`` entry as its own project (own directory and .env, the including
    project's environment winning) and copy its resources in; conflicting definitions are
    errors. Relative paths of included files become absolute against their own directory."""
    locate = Locator(sources)
    includes = data.pop("include")
    for i, entry in enumerate(includes):
        file, line = locate(("include", i))
        if isinstance(entry, str):
            entry = {"path": entry}
        paths = entry.get("path")
        paths = [paths] if isinstance(paths, str) else list(paths or [])
        if not paths:
            raise ModelError("include: an entry needs a path", file, line)
        abs_paths = [os.path.normpath(os.path.join(working_dir, p)) for p in paths]
        for p in abs_paths:
            if p in chain:
                raise ModelError(f"include cycle: {' -> '.join(chain + (p,))}", file, line)
            if not os.path.isfile(p):
                raise FileNotFound(f"included compose file {p} not found", file, line)
        sub_dir = os.path.normpath(os.path.join(working_dir, entry["project_directory"])) \
            if entry.get("project_directory") else os.path.dirname(abs_paths[0])
        env_files = entry.get("env_file")
        env_files = [env_files] if isinstance(env_files, str) else list(env_files or [])
        sub_dotenv: dict[str, str] = {}
        if env_files:
            for ef in env_files:
                sub_dotenv.update(read_env_file(os.path.join(working_dir, ef), display=ef, env=_chain(env, sub_dotenv)))
        elif os.path.isfile(os.path.join(sub_dir, ".env")):
            sub_dotenv.update(read_env_file(os.path.join(sub_dir, ".env"), env=_chain(env, sub_dotenv)))
        sub_env = {**sub_dotenv, **env}
        sub_sources = _FileSet(cwd, sub_env, on_unset).load(abs_paths, sub_dir, base=sub_dir)
        sub = merge_files(sub_sources)
        if sub.get("include"):
            _apply_includes(sub, sub_sources, sub_dir, sub_env, cwd, on_unset, chain + tuple(abs_paths))
        _rebase_project(sub, sub_dir)
        for kind in _RESOURCES:
            for key, value in (sub.get(kind) or {}).items():
                if data.get(kind) is None:
                    data[kind] = {}
                mine = data[kind]
                if key in mine and mine[key] != value:
                    raise ModelError(f"included compose file {sub_sources[0].name} defines conflicting "
                                     f"{kind[:-1]} {key!r}", file, line)
                mine[key] = value
        sources.extend(sub_sources)


def _rebase_project(data: dict, directory: str) -> None:
    from compose.merge import _rebase

    for name, svc in list((data.get("services") or {}).items()):
        if isinstance(svc, dict):
            data["services"][name] = _rebase(svc, directory)
    for kind in ("secrets", "configs"):
        for value in (data.get(kind) or {}).values():
            if isinstance(value, dict) and isinstance(value.get("file"), str):
                value["file"] = os.path.normpath(os.path.join(directory, os.path.expanduser(value["file"])))


def _chain(*maps: Mapping[str, str]) -> Callable[[str], str | None]:
    def lookup(key: str):
        for mp in maps:
            if key in mp:
                return mp[key]
        return None
    return lookup


def _check_references(enabled, disabled, all_services, networks, volumes, secrets, configs, locate, warn):
    def err(path, message):
        file, line = locate(path)
        return ModelError(message, file, line)

    container_names: dict[str, str] = {}
    for sname, s in enabled.items():
        p = ("services", sname)
        for dep in list(s.depends_on):
            d = s.depends_on[dep]
            if dep == sname:
                raise CycleError([sname, sname], *locate(p + ("depends_on", dep)))
            if dep in enabled:
                continue
            if dep in disabled:
                if d.required:
                    raise err(p + ("depends_on", dep),
                              f"service {dep!r} is required by {sname!r} but is disabled; it can be enabled "
                              f"by the profiles {', '.join(disabled[dep].profiles)}")
                del s.depends_on[dep]
                continue
            if d.required:
                raise err(p + ("depends_on", dep), f"service {sname!r} depends on undefined service {dep!r}")
            warn(f"service {sname!r} depends on undefined service {dep!r} (not required, ignored)")
            del s.depends_on[dep]
        nm = s.network_mode or ""
        if nm.startswith("service:"):
            target = nm.split(":", 1)[1]
            if target not in all_services:
                raise err(p + ("network_mode",), f"service {sname!r} uses the network stack of undefined "
                          f"service {target!r}")
        elif nm and nm not in ("host", "none", "bridge", "default") and not nm.startswith("container:"):
            raise err(p + ("network_mode",), f"invalid network_mode {nm!r} (host, none, bridge, service:NAME "
                      "or container:NAME)")
        for net in s.networks:
            if net not in networks and net != "default":
                raise err(p + ("networks", net), f"service {sname!r} refers to undefined network {net!r}")
        for i, v in enumerate(s.volumes):
            if v.type == "volume" and v.source and v.source not in volumes:
                raise err(p + ("volumes", i), f"service {sname!r} refers to undefined volume {v.source!r}")
        for kind, defined, items in (("secret", secrets, s.secrets), ("config", configs, s.configs)):
            for i, e in enumerate(items):
                if e.source not in defined:
                    raise err(p + (kind + "s", i), f"service {sname!r} refers to undefined {kind} {e.source!r}")
        if s.container_name:
            if s.scale > 1:
                raise err(p + ("container_name",), f"service {sname!r}: container_name {s.container_name!r} "
                          f"cannot be used with scale {s.scale} (container names must be unique)")
            if s.container_name in container_names:
                raise err(p + ("container_name",), f"service {sname!r}: container name {s.container_name!r} "
                          f"is already used by service {container_names[s.container_name]!r}")
            container_names[s.container_name] = sname
