"""Lifecycle hooks of a service (docker compose 2.30+): each `post_start` command is exec'd in a
container once it has started, each `pre_stop` command before it is stopped (by `stop`, `down`,
or a recreate), in the order written. A post_start hook that fails (non-zero exit, or cannot be
run) fails the start with the hook's output; a failing pre_stop hook is reported and the stop
goes on, as in docker compose."""
from __future__ import annotations

import subprocess

from compose import model as m
from compose.errors import ComposeRuntimeError


def run_hooks(store, c, hooks: list[m.Hook], kind: str, timeout: float = 600) -> None:
    """Run the hooks in the running container `c`; a ComposeRuntimeError naming the container,
    the hook and its exit code (and the last line it printed) when one fails."""
    from nerdpy.engine.containers.exec import exec_argv, exec_error

    for i, h in enumerate(hooks):
        env = [f"{k}={v}" for k, v in h.environment.items() if v is not None]
        argv, cleanup = exec_argv(store, c, list(h.command), env=env, workdir=h.working_dir, user=h.user,
                                  privileged=h.privileged)
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
            err = exec_error(argv) if r.returncode != 0 else ""
        except subprocess.TimeoutExpired:
            raise ComposeRuntimeError(f"container {c.name}: {kind} hook {i + 1} timed out") from None
        finally:
            cleanup()
        if r.returncode != 0:
            out = (r.stderr or r.stdout).decode(errors="replace").strip().splitlines()
            detail = err or (out[-1] if out else "")
            raise ComposeRuntimeError(f"container {c.name}: {kind} hook {i + 1} ({' '.join(h.command)}) "
                                      f"exited with code {r.returncode}" + (f": {detail}" if detail else ""))
