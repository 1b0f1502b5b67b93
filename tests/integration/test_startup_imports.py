"""`run`, `exec` and `ps` against real containers load exactly their pinned modules
(tests/startup_imports.py): a module joining a hot path is a deliberate, measured change."""
from __future__ import annotations

import startup_imports as si


def test_run_exec_ps_load_only_their_pinned_modules(nerdpy, images):
    nerdpy("pull", "-q", images.busybox, check=True)
    base = ["--data-root", nerdpy.data_root]
    r, mods = si.loaded_modules(base + ["run", "--rm", "--network", "none", images.busybox, "true"], nerdpy.env)
    assert r.returncode == 0, r.stderr
    assert si.nerdpy_modules(mods) == si.RUN, si.diff(si.RUN, si.nerdpy_modules(mods))
    assert not mods & si.HEAVY

    cid = nerdpy("run", "-d", "--network", "none", images.busybox, "sleep", "60", check=True).stdout.strip()
    r, mods = si.loaded_modules(base + ["exec", cid, "true"], nerdpy.env)
    assert r.returncode == 0, r.stderr
    assert si.nerdpy_modules(mods) == si.EXEC, si.diff(si.EXEC, si.nerdpy_modules(mods))
    assert not mods & (si.HEAVY | si.NO_HASHING)

    r, mods = si.loaded_modules(base + ["ps", "-a"], nerdpy.env)
    assert r.returncode == 0 and cid[:12] in r.stdout, r.stderr
    assert si.nerdpy_modules(mods) == si.PS, si.diff(si.PS, si.nerdpy_modules(mods))
    assert not mods & (si.HEAVY | si.NO_HASHING)
    nerdpy("rm", "-f", cid, check=True)
