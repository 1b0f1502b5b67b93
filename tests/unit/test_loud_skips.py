"""Skips for the machine's set-up are loud (issue 20): a pytest session with tests skipped for a
missing tool or for not being root ends with one line naming what is missing and the command
that installs it, and fails when strict (CI, NERDPY_TEST_STRICT, scripts/test.sh) unless
NERDPY_ALLOW_SKIPS allows them. Runs pytest on a tiny generated test dir that registers
tests/skipcheck.py as tests/conftest.py does; and scripts/test.sh fails on "no tests"."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTS = os.path.join(ROOT, "tests")
sys.path.insert(0, TESTS)

import skipcheck  # noqa: E402

QUIET_ENV = {k: v for k, v in os.environ.items() if k not in ("CI", "NERDPY_TEST_STRICT", "NERDPY_ALLOW_SKIPS")}


@pytest.mark.parametrize("env, expected", [
    ({}, False),
    ({"CI": "true"}, True),
    ({"CI": "false"}, False),
    ({"NERDPY_TEST_STRICT": "1"}, True),
    ({"NERDPY_TEST_STRICT": "0"}, False),
    ({"CI": "true", "NERDPY_ALLOW_SKIPS": "1"}, False),
    ({"NERDPY_TEST_STRICT": "1", "NERDPY_ALLOW_SKIPS": "1"}, False),
    ({"NERDPY_TEST_STRICT": "1", "NERDPY_ALLOW_SKIPS": "0"}, True),
])
def test_strict_from_the_environment(env, expected):
    assert skipcheck.strict(env) is expected


@pytest.mark.parametrize("reason, expected", [
    ("Skipped: missing tools: htpasswd, umoci", (["htpasswd", "umoci"], False)),
    ("missing tools: busybox-static", (["busybox-static"], False)),
    ("zsh is not installed", (["zsh"], False)),
    ("could not import 'hypothesis': No module named 'hypothesis'", (["hypothesis"], False)),
    ("integration tests need root", ([], True)),
    ("applying layers needs root", ([], True)),
    ("host is not amd64", ([], False)),
    ("overlay mount unavailable: permission denied", ([], False)),
])
def test_what_a_skip_reason_says_is_missing(reason, expected):
    assert skipcheck.missing(reason) == expected


def test_the_summary_line_names_tools_packages_and_the_command():
    line = skipcheck.summary(3, ["htpasswd", "umoci"], True, is_root=False, strict_run=False)
    assert line == ("3 tests skipped for this machine's set-up (missing tools: htpasswd (apache2-utils), umoci; "
                    "not run as root): install what the tests need and run them with `sudo bash scripts/test.sh`")
    line = skipcheck.summary(1, ["zsh"], False, is_root=True, strict_run=True)
    assert line.startswith("1 test skipped for this machine's set-up (missing tools: zsh): install what the tests "
                           "need and run them with `bash scripts/test.sh`; failing:")
    assert "\n" not in line


TINY_TESTS = '''
import pytest

def test_ok():
    pass

@pytest.mark.skip(reason="missing tools: htpasswd, umoci")
def test_needs_tools():
    pass

def test_needs_root():
    pytest.skip("integration tests need root")

def test_not_amd64():
    pytest.skip("host is not amd64")

@pytest.mark.xfail(reason="zsh is not installed")
def test_expected_failure():
    assert False
'''


@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "conftest.py").write_text(textwrap.dedent(f'''
        import sys
        sys.path.insert(0, {TESTS!r})
        import skipcheck

        def pytest_configure(config):
            config.pluginmanager.register(skipcheck.LoudSkips(), "nerdpy-loud-skips")
        '''))
    (tmp_path / "test_tiny.py").write_text(TINY_TESTS)

    def run(*args, **env):
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                               "--rootdir", str(tmp_path), str(tmp_path), *args],
                              capture_output=True, text=True, timeout=120, cwd=str(tmp_path),
                              env=dict(QUIET_ENV, **env))
    return run


def _loud_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if "skipped for this machine's set-up" in line]


def test_a_set_up_skip_ends_the_run_with_one_line_and_passes_when_not_strict(tiny):
    r = tiny()
    assert r.returncode == 0, r.stdout + r.stderr
    lines = _loud_lines(r.stdout)
    assert len(lines) == 1, r.stdout
    assert lines[0].startswith("2 tests skipped for this machine's set-up (missing tools: htpasswd (apache2-utils), "
                               "umoci; not run as root): install what the tests need and run them with `")
    assert "scripts/test.sh`" in lines[0] and "failing" not in lines[0]
    # it comes last, just before pytest's own counts
    tail = r.stdout.rstrip().splitlines()
    assert tail[-2] == lines[0] and "3 skipped" in tail[-1], tail[-3:]


def test_a_strict_run_fails_on_a_set_up_skip(tiny):
    r = tiny(NERDPY_TEST_STRICT="1")       # CI=true is strict too (test_strict_from_the_environment)
    assert r.returncode == 1, r.stdout + r.stderr
    (line,) = _loud_lines(r.stdout)
    assert "failing: no such skips in a strict run" in line and "NERDPY_ALLOW_SKIPS=1" in line


def test_allow_skips_overrides_strict(tiny):
    r = tiny(CI="true", NERDPY_TEST_STRICT="1", NERDPY_ALLOW_SKIPS="1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(_loud_lines(r.stdout)) == 1


def test_other_skips_are_quiet_even_when_strict(tiny):
    r = tiny("-k", "ok or amd64 or expected", NERDPY_TEST_STRICT="1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert _loud_lines(r.stdout) == [] and "1 skipped" in r.stdout


def test_test_sh_fails_when_pytest_collects_nothing():
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "test.sh"), "tests/unit/test_docs.py", "-k",
                        "no_such_test_anywhere", "-p", "no:cacheprovider"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT,
                       env=dict(QUIET_ENV, NERDPY_TEST_SETUP="0"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.splitlines()[-1] == "test.sh: pytest collected no tests: failing"
