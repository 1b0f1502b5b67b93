"""The launcher's fast paths (`--version`, `--help` without click) say exactly what click says."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _nerdpy(args, env=None, fast=True):
    code = ("import sys; from nerdpy.launch import main; main()" if fast else
            "import sys; from nerdpy.cli import main; main()")
    e = dict(os.environ, **(env or {}))
    e.pop("COLUMNS", None) if env is None or "COLUMNS" not in env else None
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=e, cwd=ROOT)
    return r.returncode, r.stdout, r.stderr


def test_pre_rendered_help_is_current():
    from nerdpy.docgen import REGENERATE, top_help_is_current

    assert top_help_is_current(), f"nerdpy/_top_help.py is out of date: run `{REGENERATE}`"


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["--version"], ["-v"]])
@pytest.mark.parametrize("columns", [None, "80", "60", "120"])
def test_fast_paths_match_click(args, columns):
    env = {"COLUMNS": columns} if columns else None
    assert _nerdpy(args, env, fast=True) == _nerdpy(args, env, fast=False)


def test_fast_paths_do_not_load_click():
    code = ("import sys; from nerdpy.launch import main\n"
            "for a in (['--help'], ['--version']):\n"
            "    main(a)\n"
            "print('click' in sys.modules, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, COLUMNS="80"))
    assert r.returncode == 0 and r.stderr.strip() == "False", r.stderr
    assert r.stdout.startswith("Usage: nerdpy [OPTIONS] COMMAND [ARGS]...")
    assert r.stdout.rstrip().endswith("nerdpy version 0.1.0") or "nerdpy version" in r.stdout


def test_version_and_ps_load_only_their_pinned_modules(tmp_path):
    """--version loads nerdpy.launch alone; `ps` exactly the pinned modules (tests/startup_imports.py;
    run and exec: tests/integration/test_startup_imports.py), never OpenSSL's hashes or a registry stack."""
    import startup_imports as si

    env = dict(os.environ, NERDPY_RUN_ROOT=str(tmp_path / "run"), NERDPY_CONFIG="/nonexistent")
    r, mods = si.loaded_modules(["--version"], env)
    assert r.returncode == 0 and si.nerdpy_modules(mods) == si.VERSION and "click" not in mods, r.stderr
    r, mods = si.loaded_modules(["--data-root", str(tmp_path / "data"), "ps", "-a"], env)
    assert r.returncode == 0 and r.stdout.startswith("CONTAINER ID"), r.stderr
    assert si.nerdpy_modules(mods) == si.PS, si.diff(si.PS, si.nerdpy_modules(mods))
    assert not mods & (si.HEAVY | si.NO_HASHING)
