"""The modules the hot command paths load, pinned (project rule: start-up, run, exec, ps stay cheap).

`loaded_modules(argv, env)` runs `python -m nerdpy ARGV` and returns every module in sys.modules
when the command ends (also when it ends with os._exit, as `run` does). The pinned sets below are
exact: a module that joins a path fails its test until it is added here, deliberately, with the
before/after timings the change needs (python3 -X importtime; bench/ and docs/performance-analysis.md).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_WRAP = r"""
import os, sys
_pid, _out = os.getpid(), os.environ.pop("_NERDPY_MODULES_OUT")
def _dump():
    if os.getpid() == _pid:  # (not in a forked child)
        with open(_out, "w") as f:
            f.write("\n".join(sorted(sys.modules)))
import atexit
atexit.register(_dump)
_exit = os._exit
def _dump_exit(code):
    _dump()
    _exit(code)
os._exit = _dump_exit
sys.argv[0] = "nerdpy"
from nerdpy.launch import main
main()
"""


def loaded_modules(argv: list[str], env: dict | None = None) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run nerdpy with `argv` (from the checkout); its result and the modules it had loaded."""
    fd, out = tempfile.mkstemp(prefix="nerdpy-modules-")
    os.close(fd)
    try:
        e = dict(os.environ if env is None else env, _NERDPY_MODULES_OUT=out)
        r = subprocess.run([sys.executable, "-c", _WRAP, *argv], capture_output=True, text=True, env=e, cwd=ROOT,
                           timeout=120)
        with open(out) as f:
            return r, set(f.read().split())
    finally:
        os.unlink(out)


def nerdpy_modules(modules: set[str]) -> set[str]:
    return {m for m in modules if m == "nerdpy" or m.startswith("nerdpy.")}


# never on these paths: the registry client's stack, compose's yaml, TLS, and (ps, exec) OpenSSL's hashes
HEAVY = {"requests", "urllib3", "yaml", "rich", "ssl", "http.client"}
NO_HASHING = {"hashlib", "_hashlib", "secrets", "socket"}

VERSION = {"nerdpy", "nerdpy.launch"}

_STORE = {
    "nerdpy", "nerdpy.cli", "nerdpy.commands", "nerdpy.commands._util", "nerdpy.engine", "nerdpy.engine.config",
    "nerdpy.engine.containers", "nerdpy.engine.containers.records", "nerdpy.engine.content",
    "nerdpy.engine.content.blobs", "nerdpy.engine.content.damage", "nerdpy.engine.content.metadata",
    "nerdpy.engine.content.reserve", "nerdpy.engine.content.sidecar", "nerdpy.engine.errors",
    "nerdpy.engine.snapshots", "nerdpy.engine.snapshots.mount", "nerdpy.engine.snapshots.overlay",
    "nerdpy.engine.snapshots.snapshotter", "nerdpy.engine.store", "nerdpy.engine.util", "nerdpy.engine.util.locks",
    "nerdpy.engine.util.lean", "nerdpy.launch",
}

PS = _STORE | {"nerdpy.commands.ps", "nerdpy.template"}

EXEC = _STORE | {
    "nerdpy.commands.containers", "nerdpy.engine.containers.exec", "nerdpy.engine.runtime",
    "nerdpy.engine.runtime.runc", "nerdpy.engine.system", "nerdpy.engine.system.journal", "nerdpy.exitcodes",
}

RUN = _STORE | {
    "nerdpy.commands._attach", "nerdpy.commands.run", "nerdpy.engine.containers.etcfiles",
    "nerdpy.engine.containers.lifecycle", "nerdpy.engine.containers.oci", "nerdpy.engine.containers.options",
    "nerdpy.engine.containers.resources", "nerdpy.engine.containers.seccomp", "nerdpy.engine.containers.volumes",
    "nerdpy.engine.distribution", "nerdpy.engine.distribution.reference", "nerdpy.engine.images",
    "nerdpy.engine.images.image", "nerdpy.engine.network", "nerdpy.engine.network.container",
    "nerdpy.engine.network.hosts", "nerdpy.engine.runtime", "nerdpy.engine.runtime.cgroups",
    "nerdpy.engine.runtime.monitor", "nerdpy.engine.runtime.monitor.handoff", "nerdpy.engine.runtime.monitor.spawn",
    "nerdpy.engine.runtime.monitor.wire", "nerdpy.engine.runtime.runc", "nerdpy.engine.system",
    "nerdpy.engine.system.journal", "nerdpy.engine.util._libc_ffi", "nerdpy.engine.util.fs",
}


def diff(pinned: set[str], got: set[str]) -> str:
    return f"loaded now but not pinned: {sorted(got - pinned)}; pinned but not loaded: {sorted(pinned - got)}"
