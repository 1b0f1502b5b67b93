"""Running a process inside a running container: a `runc exec` argv built from docker's flags."""
from __future__ import annotations

import json
import os
import tempfile
from typing import Callable

from nerdpy.engine.containers.records import Container, container_dir, runc_root
from nerdpy.engine.store import Store


def exec_argv(store: Store, c: Container, command: list[str], *, env: list[str] = (), workdir: str | None = None,
              user: str | None = None, tty: bool = False, detach: bool = False,
              privileged: bool = False) -> tuple[list[str], Callable[[], None]]:
    """The argv of `runc exec` for this process (runc's JSON log after `--log`), and a cleanup
    to call afterwards."""
    from nerdpy.engine.runtime.runc import global_flags, runc_path, runtime_binary

    with open(os.path.join(container_dir(store, c.id), "config.json")) as f:
        spec = json.load(f)
    proc = dict(spec["process"])
    rootfs = os.path.join(container_dir(store, c.id), "rootfs")
    if user:
        from nerdpy.engine.containers.etcfiles import lookup_user

        uid, gid, gids, home = lookup_user(rootfs, user)
        proc["user"] = {"uid": uid, "gid": gid, "additionalGids": gids}
    base = {e.split("=", 1)[0]: e for e in proc.get("env", [])}
    for e in env:
        k, sep, v = e.partition("=")
        if not sep:
            if k in os.environ:
                base[k] = f"{k}={os.environ[k]}"
            continue
        base[k] = e
    proc["env"] = list(base.values())
    proc["args"] = command
    proc["terminal"] = tty
    if workdir:
        from nerdpy.engine.containers.oci import check_workdir

        proc["cwd"] = check_workdir(workdir)
    if privileged:
        from nerdpy.engine.containers.oci import available_caps

        # every capability we hold ourselves (asking for more fails), as for run --privileged
        caps = available_caps()
        proc["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    fd, path = tempfile.mkstemp(prefix="exec-", suffix=".json", dir=container_dir(store, c.id))
    with os.fdopen(fd, "w") as f:
        json.dump(proc, f)
    # runc's own errors go to a log beside it (not /tmp: a killed exec leaves nothing behind
    # that the container's removal does not take)
    log = path[:-len(".json")] + ".log"
    binary, rt_args = runtime_binary(store.settings, c.spec.runtime or "")
    argv = [runc_path(binary), *rt_args, "--root", runc_root(store), *global_flags(), "--log", log, "--log-format", "json",
            "exec", "--process", path]
    if tty:
        argv.append("--tty")
    if detach:
        argv.append("--detach")
    argv.append(c.id)

    def cleanup() -> None:
        for p in (path, log):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass

    return argv, cleanup


def exec_error(argv: list[str]) -> str:
    """runc's own error for an `exec_argv` process that failed to start (command not found...):
    the last error in runc's JSON log, without its "exec failed: " prefix; "" if there is none."""
    msg = ""
    try:
        with open(argv[argv.index("--log") + 1], errors="replace") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("level") in ("error", "fatal"):
                    msg = entry.get("msg", "")
    except (ValueError, IndexError, OSError):
        pass
    return msg.removeprefix("exec failed: ")


def exec_event(store: Store, c: Container, action: str | tuple[str, ...], exec_id: str, command: list[str],
               exit_code: int | None = None) -> None:
    """docker's exec events: `exec_create: CMD`, `exec_start: CMD` and `exec_die` (with exitCode);
    a tuple of actions is recorded with one write."""
    from nerdpy.engine.containers.records import container_event

    extra = {"execID": exec_id}
    if exit_code is not None:
        extra["exitCode"] = exit_code
    names = tuple(a if a == "exec_die" else f"{a}: {' '.join(command)}"
                  for a in ((action,) if isinstance(action, str) else action))
    container_event(store, c, names, **extra)
