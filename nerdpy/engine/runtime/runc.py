"""The runtime: runc invoked directly (create, start, exec, kill, delete, state, pause).

Each namespace has its own runc state root under the run root, so two namespaces can use the
same container ID. Errors carry runc's own message, cleaned of its log prefixes.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

from nerdpy.engine.errors import InvalidArgument, NerdpyError, NotFound, RuncError


_RUNC_MSG = r'msg="((?:[^"\\]|\\.)*)"'  # (compiled on first use: re's cache)


def clean_runc_error(text: str) -> str:
    """runc's stderr is logrus lines; keep the message of the last error."""
    text = text.strip()
    msgs = re.findall(_RUNC_MSG, text)
    if msgs:
        msg = msgs[-1].encode().decode("unicode_escape")
    else:
        msg = text.splitlines()[-1] if text else "runc failed"
    return msg.strip()


def runc_path(name: str = "runc") -> str:
    path = shutil.which(name) or (name if os.path.isabs(name) and os.access(name, os.X_OK) else None)
    if path is None:
        for cand in ("/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"):
            if os.access(cand, os.X_OK):
                return cand
        raise NerdpyError("runc not found: install the runc package")
    return path


RUNC_NAMES = ("", "runc", "io.containerd.runc.v2", "io.containerd.runtime.v1.linux")


def runtime_binary(settings, name: str) -> tuple[str, list[str]]:
    """(binary, global args) of the OCI runtime `name` ("" or runc: the settings' runc)."""
    if name in RUNC_NAMES and name not in (settings.runtimes or {}):
        return settings.runc or "runc", []
    rt = (settings.runtimes or {}).get(name)
    if rt is None:
        known = ", ".join(["runc"] + sorted(settings.runtimes or {}))
        raise InvalidArgument(f"unknown or invalid runtime name: {name} (configured: {known}; add "
                              f"[runtimes.{name}] path = \"...\" to nerdpy.toml)")
    path = rt["path"]
    found = shutil.which(path) if not os.path.isabs(path) else (path if os.access(path, os.X_OK) else None)
    if found is None:
        raise InvalidArgument(f"runtime {name}: {path} not found or not executable")
    return found, list(rt.get("args") or [])


def global_flags() -> list[str]:
    """runc's global flags for this process: rootless mode inside a rootless user namespace
    (cgroups then are best effort: runc skips the ones it may not write)."""
    from nerdpy.engine.config import rootless_uid

    # rootless.inside(), without importing the rootless machinery on every runc call
    return ["--rootless", "true"] if os.geteuid() == 0 and rootless_uid() is not None else []


class Runc:
    def __init__(self, root: str, binary: str = "runc", args: list[str] | tuple = ()):
        self.root = root
        self.binary = runc_path(binary)
        self.global_args = list(args)  # a configured runtime's own global flags
        os.makedirs(root, mode=0o700, exist_ok=True)

    def argv(self, *args: str) -> list[str]:
        return [self.binary, *self.global_args, "--root", self.root, *global_flags(), *args]

    def _run(self, *args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess:
        r = subprocess.run(self.argv(*args), capture_output=True, input=input)
        if check and r.returncode != 0:
            msg = clean_runc_error(r.stderr.decode(errors="replace"))
            if "does not exist" in msg or "container not found" in msg.lower():
                raise NotFound(msg)
            raise RuncError(msg)
        return r

    def state(self, cid: str) -> dict | None:
        r = self._run("state", cid, check=False)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)

    def kill(self, cid: str, signal: str = "TERM", all_: bool = False) -> None:
        args = ["kill"]
        # --all finds the processes through the container's cgroup, which a rootless container
        # lacks: there the signal goes to its init (SIGKILL to a pid namespace's init ends them all)
        if all_ and not global_flags():
            args.append("--all")
        self._run(*args, cid, signal)

    def delete(self, cid: str, force: bool = False) -> None:
        args = ["delete"]
        if force:
            args.append("--force")
        r = self._run(*args, cid, check=False)
        if r.returncode != 0:
            msg = clean_runc_error(r.stderr.decode(errors="replace"))
            if "does not exist" in msg or "not found" in msg.lower():
                return
            raise RuncError(msg)

    def pause(self, cid: str) -> None:
        self._run("pause", cid)

    def resume(self, cid: str) -> None:
        self._run("resume", cid)

    def ps(self, cid: str) -> list[int]:
        if global_flags():  # rootless: no cgroup to list; the processes of its pid namespace
            st = self.state(cid)
            if st is None or not st.get("pid"):
                raise NotFound(f"container {cid} does not exist")
            return _pid_namespace_members(int(st["pid"]))
        r = self._run("ps", "--format", "json", cid)
        return json.loads(r.stdout or b"[]") or []


def _pid_namespace_members(init: int) -> list[int]:
    """The processes in `init`'s pid namespace, or its descendants when it shares ours."""
    def ns(pid) -> str | None:
        try:
            return os.readlink(f"/proc/{pid}/ns/pid")
        except OSError:
            return None

    theirs = ns(init)
    procs = [int(d) for d in os.listdir("/proc") if d.isdigit()]
    if theirs is not None and theirs != ns("self"):
        return [p for p in procs if ns(p) == theirs]
    parent = {}
    for p in procs:
        try:
            with open(f"/proc/{p}/stat") as f:
                parent[p] = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            pass
    out, todo = [], [init]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += [c for c, pp in parent.items() if pp == p]
    return out
