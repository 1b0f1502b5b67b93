"""Loud skips: a test skipped because this machine lacks what it needs (a tool, a Python package,
root) is never a quiet green run. The session ends with one line naming what is missing and the
command that installs it; in a strict run (CI, scripts/test.sh) any such skip fails the session.
tests/conftest.py registers LoudSkips; the unit tests register it in a throw-away conftest.

Strict: NERDPY_TEST_STRICT=1 or CI=true; NERDPY_ALLOW_SKIPS=1 turns it off again (a quick local
run of the unit tests as a user, say). Skips for other reasons (a host that is not amd64, no
overlay mount) are not the machine's set-up and stay ordinary skips."""
from __future__ import annotations

import os
import re
from collections.abc import Mapping

import pytest

SETUP_COMMAND = "bash scripts/test.sh"
# the Debian package of a tool the tests name, where the two differ
DEBIAN_PACKAGE = {"htpasswd": "apache2-utils"}

_TOOLS = re.compile(r"missing tools: (.+)")
_NOT_INSTALLED = re.compile(r"(\S+) is not installed")
_NO_MODULE = re.compile(r"could not import '([^']+)'")
_ROOT = re.compile(r"\bneeds? root\b")


def _on(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no")


def strict(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether a skip for the machine's set-up fails the session."""
    if _on(environ.get("NERDPY_ALLOW_SKIPS")):
        return False
    return _on(environ.get("NERDPY_TEST_STRICT")) or _on(environ.get("CI"))


def missing(reason: str) -> tuple[list[str], bool]:
    """What a skip reason says this machine lacks: (tools or Python packages, whether root)."""
    reason = reason.strip()
    if reason.startswith("Skipped: "):
        reason = reason[len("Skipped: "):]
    if m := _TOOLS.match(reason):
        return [t.strip() for t in m.group(1).split(",") if t.strip()], False
    if m := _NOT_INSTALLED.match(reason):
        return [m.group(1)], False
    if m := _NO_MODULE.match(reason):
        return [m.group(1)], False
    return [], bool(_ROOT.search(reason))


def summary(count: int, tools: list[str], root: bool, *, is_root: bool, strict_run: bool) -> str:
    """The one line that ends a session with such skips."""
    lacking = []
    if tools:
        named = [f"{t} ({DEBIAN_PACKAGE[t]})" if t in DEBIAN_PACKAGE else t for t in tools]
        lacking.append("missing tools: " + ", ".join(named))
    if root:
        lacking.append("not run as root")
    command = SETUP_COMMAND if is_root else "sudo " + SETUP_COMMAND
    line = (f"{count} test{'s' if count != 1 else ''} skipped for this machine's set-up "
            f"({'; '.join(lacking)}): install what the tests need and run them with `{command}`")
    if strict_run:
        line += "; failing: no such skips in a strict run (CI, NERDPY_TEST_STRICT; NERDPY_ALLOW_SKIPS=1 allows them)"
    return line


class LoudSkips:
    """The pytest plugin: counts set-up skips, prints the line, fails a strict session."""

    def __init__(self, strict_run: bool | None = None):
        self.strict = strict() if strict_run is None else strict_run
        self.count = 0
        self.tools: list[str] = []
        self.root = False

    def pytest_runtest_logreport(self, report):
        if not report.skipped or hasattr(report, "wasxfail") or not isinstance(report.longrepr, tuple):
            return
        tools, root = missing(str(report.longrepr[2]))
        if not tools and not root:
            return
        self.count += 1
        self.root = self.root or root
        self.tools += [t for t in tools if t not in self.tools]

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session):
        if self.count and self.strict and session.exitstatus == 0:
            session.exitstatus = 1

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter):
        if not self.count:
            return
        line = summary(self.count, self.tools, self.root, is_root=os.geteuid() == 0, strict_run=self.strict)
        terminalreporter.write_line(line, red=self.strict, yellow=not self.strict, bold=True)
