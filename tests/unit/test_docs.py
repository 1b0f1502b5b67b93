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


# -- the README's quick start: install.sh, quickstart.sh, the compose example ----------------------
README = os.path.join(ROOT, "README.md")
INSTALL = os.path.join(ROOT, "scripts", "install.sh")
EXAMPLE = os.path.join(ROOT, "examples", "hello-compose", "compose.yaml")


def readme() -> str:
    with open(README, encoding="utf-8") as f:
        return f.read()


def install_sh(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", INSTALL, *args], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **(env or {})))


def test_readme_test_command_is_what_ci_runs():
    block = re.search(r"## Running the tests\n\n```sh\n(.*?)\n```", readme(), re.S)
    assert block and block.group(1) == "bash scripts/test.sh"
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        assert re.search(r"^bash scripts/test\.sh$", f.read(), re.M)


def test_readme_compose_snippet_is_the_example_file():
    blocks = re.findall(r"```yaml\n(.*?)```", readme(), re.S)
    with open(EXAMPLE) as f:
        assert f.read() in blocks
    assert "nerdpy compose -f examples/hello-compose/compose.yaml up -d" in readme()
    with open(os.path.join(ROOT, "examples", "hello-compose", "www", "index.html")) as f:
        page = f.read().strip()
    assert f"`{page}`" in readme() and f"`{page}`" in read("getting-started.md")


def test_compose_example_is_valid():
    r = subprocess.run([sys.executable, "-m", "nerdpy", "compose", "-f", EXAMPLE, "config", "--services"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == ["client", "web"]


def test_readme_lists_every_doc_and_its_paths_exist():
    text = readme()
    for name in os.listdir(DOCS):
        if name.endswith(".md"):
            assert f"docs/{name}" in text, f"README.md's documentation list lacks docs/{name}"
    for path in re.findall(r"`((?:docs|scripts|examples|completions)/[^`\s]*)`", text):
        assert os.path.exists(os.path.join(ROOT, path)), f"README.md names {path}, which does not exist"


def test_relative_links_to_any_file_resolve():
    for name in [n for n in os.listdir(DOCS) if n.endswith(".md")] + ["../README.md"]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", read(name)):
            assert os.path.exists(os.path.normpath(os.path.join(DOCS, os.path.dirname(name), target))), \
                f"{name} links to {target}, which does not exist"


def test_scripts_parse():
    for script in ("install.sh", "quickstart.sh", "test.sh"):
        r = subprocess.run(["bash", "-n", os.path.join(ROOT, "scripts", script)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def _install_options() -> set[str]:
    r = install_sh("--help")
    assert r.returncode == 0 and r.stdout.startswith("Usage: scripts/install.sh"), r.stderr
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", r.stdout))


def test_install_help_and_every_documented_option_exists():
    options = _install_options()
    assert {"--mirror", "--dry-run", "--with-test-tools", "--no-doctor", "--hosts-dir"} <= options
    for text in (readme(), read("getting-started.md")):
        for cmd in re.findall(r"scripts/install\.sh((?: --?[\w-]+(?: [^\s`-][^\s`]*)?)*)", text):
            for opt in re.findall(r"--[\w-]+", cmd):
                assert opt in options, f"the docs use scripts/install.sh {opt}, which --help does not list"


def test_install_rejects_bad_usage_in_one_line_with_exit_2():
    for args, msg in ((["--bogus"], "install.sh: unknown option: --bogus"),
                      (["--mirror"], "install.sh: --mirror needs a value"),
                      (["--mirror", "mirror.lan"], "install.sh: --mirror mirror.lan: give a URL starting with "
                                                   "http:// or https://"),
                      (["--mirror-for", "a/b", "--mirror", "http://m"], "install.sh: --mirror-for a/b: give a "
                                                                          "registry host[:port] or _default")):
        r = install_sh("--dry-run", *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stderr.splitlines()[0] == msg
        assert r.stdout == ""


def test_install_packages_cover_what_doctor_asks_for():
    with open(INSTALL) as f:
        script = f.read()
    runtime = set(re.search(r"^RUNTIME_PACKAGES=\((.*)\)$", script, re.M).group(1).split())
    with open(os.path.join(ROOT, "nerdpy", "engine", "system", "doctor.py")) as f:
        wanted = set(re.findall(r"apt-get install (?:--reinstall )?-y ([\w.+-]+)", f.read()))
    assert wanted and wanted <= runtime, wanted - runtime
    # CI runs scripts/test.sh, which installs them (and the test tools) with install.sh
    with open(os.path.join(ROOT, "scripts", "test.sh")) as f:
        test_sh = f.read()
    assert re.search(r'^INSTALL_ARGS=\(.*--with-test-tools.*\)$', test_sh, re.M)
    assert re.search(r'^    bash scripts/install\.sh "\$\{INSTALL_ARGS\[@\]\}"$', test_sh, re.M)
    assert "--no-packages" not in test_sh and "--no-project" not in test_sh


@pytest.mark.skipif(not os.path.exists("/usr/bin/dpkg-query"), reason="needs a Debian system (dpkg-query)")
def test_install_dry_run_writes_the_documented_hosts_toml_and_changes_nothing(tmp_path):
    hosts = tmp_path / "certs.d"
    r = install_sh("--dry-run", "--mirror", "https://mirror.lan:5000", "--hosts-dir", str(hosts),
                   "--no-completion")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "==> dry run: nothing was changed"
    assert "==> packages" in r.stdout and "==> nerdpy doctor\n+ nerdpy doctor\n" in r.stdout
    assert not hosts.exists()
    written = re.search(rf"^\+ write {re.escape(str(hosts))}/docker.io/hosts.toml:\n((?:    \| .*\n|    \|\n)+)",
                        r.stdout, re.M)
    assert written, r.stdout
    toml = "".join(line[6:] + "\n" for line in written.group(1).splitlines())
    # what getting-started.md shows is what the script writes, and nerdpy reads it as a mirror
    assert f"```toml\n{toml}```" in read("getting-started.md")
    import tomllib

    from nerdpy.engine.distribution.hosts import resolve_hosts

    (hosts / "docker.io").mkdir(parents=True)
    (hosts / "docker.io" / "hosts.toml").write_text(toml)
    tomllib.loads(toml)
    endpoints = resolve_hosts("docker.io", [str(hosts)])
    assert [h.url for h in endpoints] == ["https://mirror.lan:5000", "https://registry-1.docker.io"]
    assert endpoints[0].capabilities == {"pull", "resolve"}


@pytest.mark.skipif(not (os.path.exists("/usr/bin/dpkg-query") and os.path.exists("/usr/bin/python3")),
                    reason="needs Debian's python3")
def test_install_dry_run_for_debian_python_takes_requirements_from_apt():
    r = install_sh("--dry-run", "--no-completion", env={"PYTHON": "/usr/bin/python3"})
    assert r.returncode == 0, r.stderr
    with open(INSTALL) as f:
        py = re.search(r"^PY_PACKAGES=\(([^)]*)\)", f.read(), re.M | re.S).group(1).split()
    assert {"python3-click", "python3-requests", "python3-yaml", "python3-zstandard", "python3-setuptools"} <= set(py)
    packages = r.stdout.split("==> nerdpy (Python package)")[0]
    for p in py:                                           # installed already, or apt-get installs it
        installed = "ok installed" in subprocess.run(["dpkg-query", "-W", "-f", "${Status}", p],
                                                     capture_output=True, text=True).stdout
        assert installed or re.search(rf"^\+ apt-get install .* {p}( |$)", packages, re.M), (p, packages)
    if subprocess.run(["/usr/bin/python3", "-c", "import nerdpy"], cwd="/", capture_output=True).returncode != 0:
        assert re.search(r"^\+ /usr/bin/python3 -m pip install .*--no-build-isolation -e \.$", r.stdout, re.M), r.stdout
