"""The docs stay true: the generated reference is current, every command and flag has help,
the configuration page names every setting, the Python examples at least compile, and links
between docs resolve."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import click
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = os.path.join(ROOT, "docs")


def read(name: str) -> str:
    with open(os.path.join(DOCS, name), encoding="utf-8") as f:
        return f.read()


def test_reference_is_current():
    from nerdpy.docgen import REGENERATE, is_current

    assert is_current(), (
        "docs/reference.md is out of date: a command, flag or help text changed; "
        f"regenerate it with `{REGENERATE}` and commit it")


def test_reference_has_every_command():
    from nerdpy.docgen import commands

    text = read("reference.md")
    for path, _cmd, _ctx in commands():
        assert f"## {' '.join(['nerdpy'] + path)}\n" in text


def _walk():
    from nerdpy.docgen import commands

    return commands()


def test_every_command_and_flag_has_a_one_line_help():
    missing = []
    for path, cmd, ctx in _walk():
        name = " ".join(["nerdpy"] + path)
        if not (cmd.help or cmd.short_help):
            missing.append(name)
        for p in cmd.get_params(ctx):
            if isinstance(p, click.Option) and not p.hidden and not p.help:
                missing.append(f"{name} {'/'.join(p.opts)}")
    assert not missing, "commands or flags without a help text: " + ", ".join(missing)


def test_main_commands_show_examples():
    for args in (["run"], ["pull"], ["images"], ["exec"], ["logs"], ["volume", "create"], ["completion"]):
        r = subprocess.run([sys.executable, "-m", "nerdpy", *args, "--help"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0 and "Examples:" in r.stdout, (args, r.stdout)


def test_configuration_names_every_setting():
    from nerdpy.engine.config import _KEYS, Settings

    text = read("configuration.md")
    for key in _KEYS:
        assert f"`{key}`" in text, f"docs/configuration.md does not document the nerdpy.toml key {key}"
    for key in set(_KEYS.values()) & {f for f in Settings.__dataclass_fields__}:
        env = "NERDPY_" + next(k for k, v in _KEYS.items() if v == key).upper()
        assert env in text, f"docs/configuration.md does not document {env}"
    for var in ("NERDPY_CONFIG", "DOCKER_CONFIG", "NO_COLOR", "hosts.toml", "credHelpers", "credsStore"):
        assert var in text


def test_configuration_defaults_match_the_code():
    from nerdpy.engine.config import DEFAULT_CONFIG_PATH, DEFAULT_HOSTS_DIRS, Settings

    text = read("configuration.md")
    s = Settings()
    for value in (s.data_root, s.run_root, s.cni_netconfpath, DEFAULT_CONFIG_PATH, ":".join(DEFAULT_HOSTS_DIRS),
                  ":".join(s.cni_path)):
        assert f"`{value}`" in text, value


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.mark.parametrize("doc", ["python-api.md"])
def test_python_examples_compile(doc):
    blocks = _python_blocks(read(doc))
    assert blocks
    for i, block in enumerate(blocks):
        compile(block, f"{doc}[{i}]", "exec")


def test_python_api_doc_names_exist():
    """Every Client/Container method the page's tables name exists."""
    from nerdpy.client import Client, ComposeProject, Container

    text = read("python-api.md")
    for cls in (Client, Container, ComposeProject):
        public = {n for n in dir(cls) if not n.startswith("_")}
        for name in re.findall(r"\| `(\w+)\(", text):
            if name in public:
                continue
            assert any(name in dir(c) for c in (Client, Container, ComposeProject)), name


def test_links_between_docs_resolve():
    names = [n for n in os.listdir(DOCS) if n.endswith(".md")] + ["../README.md"]
    for name in names:
        text = read(name)
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", text):
            assert os.path.exists(os.path.normpath(os.path.join(DOCS, os.path.dirname(name), target))), \
                f"{name} links to {target}, which does not exist"


def test_import_nerdpy_stays_cheap():
    code = ("import sys, nerdpy\n"
            "print(sorted(m for m in sys.modules if m.startswith(('nerdpy', 'click', 'requests', 'rich', 'yaml'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "['nerdpy']", out
