"""`compose watch` and `up --watch`: the services' `develop.watch` rules, applied to their running
containers as files change on the host.

Actions: `sync` (copy the changed files into the containers, remove deleted ones), `sync+restart`
(then restart the service), `restart`, `sync+exec` (then run `exec.command` in each container).
`rebuild` needs an image build, which nerdpy does not do: an error before anything starts.
`ignore` patterns (relative to the rule's `path`) follow .dockerignore syntax (`*`, `?`, `**`,
a leading `!` re-includes, a pattern naming a directory covers what is below it); editor temp
files and `.git` are always ignored, as docker compose does.

Changes come from the `watchdog` library (inotify on Linux), imported only here; a burst of
changes (an editor's save, a `git checkout`) is handled as one batch once QUIET seconds pass
without a new change. Messages go to `out` in docker compose's words.
"""
from __future__ import annotations

import io
import os
import re
import tarfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from compose.errors import ComposeRuntimeError, ModelError

QUIET = 0.2          # seconds without a new change that end a batch
ACTIONS = ("sync", "sync+restart", "restart", "sync+exec", "rebuild")
# always ignored (docker compose's defaults): VCS data and editors' temporary files
DEFAULT_IGNORES = [".git", ".git/**", "**/.git", "**/.git/**", "**/*.swp", "**/*.swx", "**/*~", "**/.#*",
                   "**/#*#", "**/4913", "**/.DS_Store"]


# -- .dockerignore-style patterns -------------------------------------------------------------------
def _pattern_regex(pat: str) -> re.Pattern:
    out = ""
    i = 0
    while i < len(pat):
        ch = pat[i]
        if pat.startswith("**", i):
            i += 2
            if pat.startswith("/", i):  # `**/` : zero or more directories
                out += "(?:.*/)?"
                i += 1
            else:
                out += ".*"
            continue
        if ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            j = pat.find("]", i)
            if j < 0:
                out += re.escape(ch)
            else:
                out += "[" + pat[i + 1:j].replace("\\", "\\\\") + "]"
                i = j
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + r"\Z")


@dataclass
class Ignore:
    """Ordered patterns; the last one that matches a path (or one of its parents) decides."""
    rules: list[tuple[bool, re.Pattern]] = field(default_factory=list)

    @classmethod
    def parse(cls, patterns: list[str]) -> "Ignore":
        rules = []
        for p in patterns:
            p = p.strip()
            if not p or p.startswith("#"):
                continue
            negate = p.startswith("!")
            if negate:
                p = p[1:].strip()
            p = os.path.normpath(p).lstrip("/")
            if p == ".":
                continue
            rules.append((negate, _pattern_regex(p)))
        return cls(rules)

    def ignored(self, rel: str) -> bool:
        parts = rel.split("/")
        candidates = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
        verdict = False
        for negate, rx in self.rules:
            if any(rx.match(c) for c in candidates):
                verdict = not negate
        return verdict


# -- rules ------------------------------------------------------------------------------------------
@dataclass
class Rule:
    service: str
    action: str
    path: str                      # absolute, on the host
    target: str | None             # absolute, in the container (sync actions)
    ignore: Ignore
    exec_command: list[str] | None = None
    exec_user: str | None = None
    exec_workdir: str | None = None
    exec_env: list[str] = field(default_factory=list)
    exec_privileged: bool = False
    initial_sync: bool = False
    context: str | None = None             # the build context, when its .dockerignore applies
    context_ignore: Ignore | None = None
    include: Ignore | None = None          # `include`: only paths matching these patterns

    def covers(self, path: str) -> str | None:
        """The path relative to the rule's (`.` for the path itself), or None when outside or ignored."""
        if path != self.path and not path.startswith(self.path.rstrip("/") + "/"):
            return None
        rel = os.path.relpath(path, self.path)
        if rel != "." and self.ignore.ignored(rel):
            return None
        if self.include is not None and rel != "." and not self.include.ignored(rel):
            return None
        if self.context_ignore is not None and path.startswith(self.context.rstrip("/") + "/") \
                and self.context_ignore.ignored(os.path.relpath(path, self.context)):
            return None
        return rel


def rules_of(project, services: list[str], warn: Callable[[str], None] | None = None) -> list[Rule]:
    """The watch rules of `services`; errors for a rule nerdpy cannot follow. A sync rule whose
    path a bind mount of the service already shares is left out (with a warning), as docker
    compose does."""
    out = []
    for name in services:
        s = project.service(name)
        context = (s.build or {}).get("context")
        context_ignore = None
        if isinstance(context, str) and os.path.isfile(os.path.join(context, ".dockerignore")):
            # as docker compose: the build context's .dockerignore also filters what is synced
            with open(os.path.join(context, ".dockerignore"), encoding="utf-8", errors="replace") as fh:
                context_ignore = Ignore.parse(fh.read().splitlines())
        for i, w in enumerate((s.develop or {}).get("watch") or []):
            action = w.get("action")
            where = f"service {name!r}: develop.watch[{i}]"
            if action == "rebuild":
                raise ModelError(f"{where}: action rebuild needs an image build, which nerdpy does not do "
                                 "(use sync, sync+restart, restart or sync+exec)")
            if action not in ACTIONS:
                raise ModelError(f"{where}: unknown action {action!r}")
            target = w.get("target")
            if action.startswith("sync") and not target:
                raise ModelError(f"{where}: action {action} needs a target")
            ex = w.get("exec") or {}
            cmd = ex.get("command")
            if action == "sync+exec":
                if not cmd:
                    raise ModelError(f"{where}: action sync+exec needs exec.command")
                if isinstance(cmd, str):
                    import shlex

                    cmd = shlex.split(cmd)
            if action.startswith("sync") and any(
                    v.type == "bind" and v.source and (w["path"] == v.source or
                                                       w["path"].startswith(v.source.rstrip("/") + "/"))
                    for v in s.volumes):
                if warn is not None:
                    warn(f"path '{w['path']}' also declared by a bind mount volume, this path won't be monitored!")
                continue
            env = ex.get("environment") or {}
            env = [f"{k}={v}" for k, v in env.items()] if isinstance(env, dict) else list(env)
            out.append(Rule(service=name, action=action, path=w["path"], target=target,
                            ignore=Ignore.parse(DEFAULT_IGNORES + [str(p) for p in w.get("ignore") or []]),
                            exec_command=[str(c) for c in cmd] if cmd else None, exec_user=ex.get("user"),
                            exec_workdir=ex.get("working_dir"), exec_env=env,
                            exec_privileged=bool(ex.get("privileged")),
                            initial_sync=bool(w.get("initial_sync")),
                            context=context if context_ignore is not None else None,
                            context_ignore=context_ignore,
                            include=Ignore.parse([str(p) for p in w["include"]]) if w.get("include") else None))
    return out


# -- applying a batch ---------------------------------------------------------------------------------
def _container_path(rule: Rule, rel: str) -> str:
    return rule.target if rel == "." else rule.target.rstrip("/") + "/" + rel


def _tar_of(files: list[tuple[str, str]]) -> io.BytesIO:
    """A tar of (host path, container path) pairs, names relative to `/`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for host, dest in files:
            try:
                tf.add(host, arcname=dest.lstrip("/"), recursive=False)
            except FileNotFoundError:
                continue
    buf.seek(0)
    return buf


def _exec(store, c, argv: list[str], **kw) -> int:
    import subprocess

    from nerdpy.engine.containers.exec import exec_argv

    run_argv, cleanup = exec_argv(store, c, argv, **kw)
    try:
        return subprocess.run(run_argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode
    finally:
        cleanup()


def sync_files(rt, rule: Rule, rels: list[str]) -> None:
    """Copy what exists, remove what is gone, in each running container of the rule's service."""
    from nerdpy.engine.containers.cp import extract_to_container

    present, gone = [], []
    for rel in sorted(set(rels)):
        host = rule.path if rel == "." else os.path.join(rule.path, rel)
        if os.path.lexists(host):
            if os.path.isdir(host) and not os.path.islink(host):
                for root, dirs, files in os.walk(host):
                    dirs[:] = [d for d in dirs if rule.covers(os.path.join(root, d)) is not None]
                    for n in dirs + files:
                        p = os.path.join(root, n)
                        r = rule.covers(p)
                        if r is not None:
                            present.append((p, _container_path(rule, r)))
                present.append((host, _container_path(rule, rel)))
            else:
                present.append((host, _container_path(rule, rel)))
        else:
            gone.append(_container_path(rule, rel))
    present.sort(key=lambda hd: hd[1])
    for c in rt.containers([rule.service]):
        if not rt.state(c).running:
            continue
        if present:
            extract_to_container(rt.store, c, "/", _tar_of(present))
        if gone:
            _exec(rt.store, c, ["rm", "-rf", "--", *gone])


class Watcher:
    """Watches the rules' paths, and applies each batch of changes. `out(line)` prints."""

    def __init__(self, rt, rules: list[Rule], out: Callable[[str], None], quiet: float = QUIET):
        self.rt = rt
        self.rules = rules
        self.out = out
        self.quiet = quiet
        self._pending: dict[str, float] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._observer = None

    # watchdog calls this from its thread
    def changed(self, path: str) -> None:
        with self._cond:
            self._pending[os.path.abspath(path)] = time.monotonic()
            self._cond.notify()

    def start(self) -> None:
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            raise ComposeRuntimeError("compose watch needs the watchdog library (pip install watchdog)") from None
        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):
                if event.event_type in ("opened", "closed_no_write"):
                    return
                if event.is_directory and event.event_type == "modified":
                    return
                watcher.changed(event.src_path)
                dest = getattr(event, "dest_path", "")
                if dest:
                    watcher.changed(dest)

        self._observer = Observer()
        roots = set()
        for r in self.rules:
            root = r.path if os.path.isdir(r.path) else os.path.dirname(r.path)
            if not os.path.isdir(root):
                raise ComposeRuntimeError(f"service {r.service!r}: watch path {r.path} does not exist")
            roots.add(root)
        for root in sorted(roots):
            self._observer.schedule(Handler(), root, recursive=True)
        self._observer.start()
        for r in self.rules:
            if r.initial_sync and r.action.startswith("sync"):
                sync_files(self.rt, r, ["."])

    def stop(self) -> None:
        if self._observer is not None and not self._stop.is_set():
            self.out("Watch disabled")
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)

    def _next_batch(self) -> list[str] | None:
        with self._cond:
            while not self._stop.is_set():
                if self._pending:
                    wait = max(self._pending.values()) + self.quiet - time.monotonic()
                    if wait <= 0:
                        batch = list(self._pending)
                        self._pending.clear()
                        return batch
                    self._cond.wait(wait)
                else:
                    self._cond.wait(0.5)
        return None

    def run(self) -> None:
        """Apply batches until stop() (or Ctrl-C in the caller)."""
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self.apply(batch)
            except Exception as e:  # one failed batch is reported; watching goes on
                self.out(f"watch: {e}")

    def apply(self, paths: list[str]) -> None:
        """As docker compose handles a batch: every sync first (one line per service), then one
        restart of the services that asked for it, then the sync+exec commands."""
        syncs: dict[str, list[tuple[Rule, list[str]]]] = {}
        restart: list[str] = []
        execs: list[Rule] = []
        for r in self.rules:
            rels = [rel for rel in (r.covers(p) for p in paths) if rel is not None]
            if not rels:
                continue
            if r.action.startswith("sync"):
                syncs.setdefault(r.service, []).append((r, rels))
            if r.action in ("sync+restart", "restart") and r.service not in restart:
                restart.append(r.service)
            if r.action == "sync+exec":
                execs.append(r)
        for service, items in syncs.items():
            self.out(f'Syncing service "{service}" after {sum(len(rels) for _, rels in items)} '
                     "changes were detected")
            for r, rels in items:
                sync_files(self.rt, r, rels)
        if restart:
            self.rt.restart(restart)
            self.out("service(s) [" + " ".join(f'"{n}"' for n in restart) + "] restarted")
        for r in execs:
            for c in self.rt.containers([r.service]):
                if self.rt.state(c).running:
                    _exec(self.rt.store, c, r.exec_command, user=r.exec_user, workdir=r.exec_workdir,
                          env=r.exec_env, privileged=r.exec_privileged)
