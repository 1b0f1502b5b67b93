"""The command line as a user sees it, without a registry: exit codes, one-line errors, cheap start."""
import os
import subprocess
import sys

import pytest


def run(*args, data_root, input=None):
    env = dict(os.environ, NERDPY_CONFIG="/nonexistent")
    return subprocess.run(
        [sys.executable, "-m", "nerdpy", "--data-root", str(data_root), *args],
        capture_output=True, text=True, env=env, input=input, timeout=60,
    )


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["images", "--help"], ["pull", "--help"]])
def test_cheap_paths_import_no_heavy_modules(args, tmp_path):
    code = (
        "import sys; from nerdpy.cli import main\n"
        "try:\n    main(%r)\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('requests', 'rich', 'yaml') if m in sys.modules]\n"
        "print('HEAVY', bad)\n" % (args,)
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "HEAVY []" in out


def test_version(tmp_path):
    r = run("--version", data_root=tmp_path)
    assert r.returncode == 0
    assert r.stdout.startswith("nerdpy version ")


def test_unknown_flag_is_125_one_line(tmp_path):
    r = run("images", "--bogus", data_root=tmp_path)
    assert r.returncode == 125
    assert r.stderr.startswith("nerdpy: ")
    assert "Traceback" not in r.stderr


def test_unknown_command_is_125(tmp_path):
    r = run("frobnicate", data_root=tmp_path)
    assert r.returncode == 125
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("ref", ["library/UPPER", "a//b", "busybox:", "busybox@sha256:abc", "-x", "a b"])
def test_bad_reference_one_line_error(ref, tmp_path):
    r = run("pull", ref, data_root=tmp_path)
    assert r.returncode == 125, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) <= 2 and lines[0].startswith("nerdpy: ")
    assert "Traceback" not in r.stderr
    assert "reference" in r.stderr or "Usage" in r.stderr or "option" in r.stderr


def test_debug_shows_traceback(tmp_path):
    r = run("--debug", "pull", "UPPER/case", data_root=tmp_path)
    assert r.returncode == 125
    assert "Traceback" in r.stderr


def test_empty_store_images(tmp_path):
    r = run("images", data_root=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    r = run("images", "-q", data_root=tmp_path)
    assert r.stdout == ""


def test_inspect_missing_image_exits_1(tmp_path):
    r = run("image", "inspect", "nothere", data_root=tmp_path)
    assert r.returncode == 1
    assert "no such image: nothere" in r.stderr.lower()
    assert r.stdout.strip() == "[]"


def test_rmi_missing_image_exits_1(tmp_path):
    r = run("rmi", "nothere", data_root=tmp_path)
    assert r.returncode == 1
    assert "no such image" in r.stderr.lower()


def test_unreachable_registry_is_one_line(tmp_path):
    r = run("pull", "127.0.0.1:1/x/y:z", data_root=tmp_path)
    assert r.returncode == 125
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "127.0.0.1:1" in r.stderr


def test_unwritable_data_root_is_one_line(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = run("images", data_root=f / "sub")
    assert r.returncode == 125
    assert r.stderr.startswith("nerdpy: ") and "Traceback" not in r.stderr
