"""Shell completion: the checked-in scripts are current, and they really complete in bash (and in
zsh and fish where those shells are installed), with live names from `nerdpy __complete`."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASH_SCRIPT = os.path.join(ROOT, "completions", "nerdpy.bash")
ZSH_SCRIPT = os.path.join(ROOT, "completions", "_nerdpy")
FISH_SCRIPT = os.path.join(ROOT, "completions", "nerdpy.fish")


def test_checked_in_scripts_are_current():
    from nerdpy.completion_gen import REGENERATE, stale_files

    stale = stale_files()
    assert not stale, (
        f"completion scripts out of date: {', '.join(os.path.relpath(p, ROOT) for p in stale)}; "
        f"a command or flag changed: regenerate them with `{REGENERATE}` and commit completions/")


def test_tree_covers_every_command_and_lazy_group():
    from nerdpy.cli import COMMANDS
    from nerdpy.completion_gen import collect

    cmds = {c.path: c for c in collect()}
    root = cmds["nerdpy"]
    assert set(COMMANDS) <= {name for name, _ in root.subcommands}
    assert "__complete" not in {name for name, _ in root.subcommands}
    assert "nerdpy image inspect" in cmds and "nerdpy volume rm" in cmds and "nerdpy network rm" in cmds
    assert "nerdpy container cleanup" not in cmds  # hidden
    kinds = {p: c.args for p, c in cmds.items()}
    assert kinds["nerdpy logs"] == ["containers-all"]
    assert kinds["nerdpy exec"] == ["containers", "stop..."]
    assert kinds["nerdpy start"] == ["containers-stopped..."]
    assert kinds["nerdpy run"] == ["images", "stop..."]
    assert kinds["nerdpy rmi"] == ["images..."]
    assert kinds["nerdpy image inspect"] == ["images..."]
    assert kinds["nerdpy network rm"] == ["networks..."]
    assert kinds["nerdpy volume inspect"] == ["volumes..."]
    run_opts = {n: o for o in cmds["nerdpy run"].options for n in o.names}
    assert run_opts["--network"].kind == "networks"
    assert run_opts["--detach"].takes_value is False


def test_completion_command_prints_scripts(tmp_path):
    for shell in ("bash", "zsh", "fish"):
        r = subprocess.run([sys.executable, "-m", "nerdpy", "completion", shell], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        from nerdpy.completion_gen import render

        assert r.stdout == render(shell)
        assert r.stdout.startswith("#compdef nerdpy" if shell == "zsh" else "#")
    r = subprocess.run([sys.executable, "-m", "nerdpy", "completion", "tcsh"], capture_output=True, text=True)
    assert r.returncode == 125


# a data root with a few objects, made with the engine's own schema -------------------------
@pytest.fixture
def world(tmp_path):
    from nerdpy.engine.content.metadata import Metadata

    data = tmp_path / "data"
    db = Metadata(str(data / "meta.db"))
    with db.write() as cur:
        for i, (name, status) in enumerate([("web", "running"), ("old", "exited"), ("fresh", None)]):
            cid = f"{i + 1:064x}"
            cur.execute("INSERT INTO containers VALUES (?,?,?,?,?,?,?)",
                        ("default", cid, name, "busybox", "sha256:x", "{}", time.time() + i))
            if status:
                d = data / "containers" / "default" / cid
                d.mkdir(parents=True)
                # "running" with a live pid (ours) but no monitor: what ps shows as running
                (d / "state.json").write_text(json.dumps({"status": status, "pid": os.getpid()}))
        cur.execute("INSERT INTO containers VALUES (?,?,?,?,?,?,?)",
                    ("other", "f" * 64, "elsewhere", "busybox", "sha256:x", "{}", time.time()))
        for name, cfg in (("docker.io/library/busybox:latest", "ab"), ("127.0.0.1:5000/test/app:1", "cd"),
                          ("docker.io/someone/tool:2", "ef")):
            cur.execute("INSERT INTO images VALUES (?,?,?,?,?,?,?,?,?)",
                        ("default", name, "sha256:t", "m", 1, "sha256:m", "sha256:" + cfg * 32, 0, 0))
        cur.execute("INSERT INTO volumes(namespace, name, anonymous, created_at) VALUES ('default', 'dbdata', 0, 0)")
        cur.execute("INSERT INTO volumes(namespace, name, anonymous, created_at) VALUES ('default', ?, 1, 0)",
                    ("a" * 64,))
        cur.execute("INSERT INTO networks(name, id, driver, subnet, gateway, created_at) "
                    "VALUES ('appnet', ?, 'bridge', '10.89.1.0/24', '10.89.1.1', 0)", ("1" * 64,))
    db.close()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "nerdpy"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m nerdpy \"$@\"\n")
    wrapper.chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", NERDPY_CONFIG="/nonexistent",
               NERDPY_RUN_ROOT=str(tmp_path / "run"), PYTHONPATH=ROOT, NERDPY_DATA_ROOT=str(data))
    return {"data": str(data), "env": env, "tmp": tmp_path}


def complete_values(world, *args, env=None):
    e = dict(world["env"])
    e.update(env or {})
    r = subprocess.run([sys.executable, "-m", "nerdpy", "__complete", *args], capture_output=True, text=True,
                       env=e, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_live_values(world):
    assert complete_values(world, "containers", "--all") == ["fresh", "old", "web"]
    assert complete_values(world, "containers") == ["web"]
    assert complete_values(world, "containers", "--stopped") == ["fresh", "old"]
    assert complete_values(world, "-n", "other", "containers", "--all") == ["elsewhere"]
    assert complete_values(world, "images") == ["127.0.0.1:5000/test/app:1", "busybox:latest", "someone/tool:2"]
    assert "abababababab" in complete_values(world, "images", "--all")
    assert complete_values(world, "volumes") == ["dbdata"]
    assert complete_values(world, "networks") == ["bridge", "host", "none", "appnet"]


def test_live_values_respect_data_root_flag_and_tolerate_a_missing_one(world):
    missing = str(world["tmp"] / "nothing-here")
    assert complete_values(world, "--data-root", missing, "containers", "--all") == []
    assert not os.path.exists(missing)  # nothing created
    assert complete_values(world, "--data-root", missing, "networks") == ["bridge", "host", "none"]
    assert complete_values(world, f"--data-root={world['data']}", "volumes",
                           env={"NERDPY_DATA_ROOT": missing}) == ["dbdata"]
    assert complete_values(world, "bogus") == []


def test_fast_path_imports_no_heavy_modules(world):
    code = (
        "import sys\nfrom nerdpy.launch import main\n"
        "try:\n    main(['__complete', '--data-root', %r, 'containers', '--all'])\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', [m for m in ('requests', 'rich', 'yaml', 'nerdpy.engine.store') if m in sys.modules])\n"
        % world["data"]
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=world["env"]).stdout
    assert "HEAVY []" in out, out
    assert out.splitlines()[:3] == ["fresh", "old", "web"]


def test_compose_services(world):
    proj = world["tmp"] / "proj"
    (proj / "sub").mkdir(parents=True)
    (proj / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n  db:\n    image: busybox\n")
    (proj / "compose.override.yaml").write_text("services:\n  cache:\n    image: busybox\n")
    (proj / "other.yml").write_text("services:\n  solo: {image: busybox}\n")
    e = dict(world["env"])
    r = subprocess.run([sys.executable, "-m", "nerdpy", "__complete", "services"], cwd=proj / "sub",
                       capture_output=True, text=True, env=e, timeout=60)
    assert r.stdout.splitlines() == ["web", "db", "cache"]
    r = subprocess.run([sys.executable, "-m", "nerdpy", "__complete", "-f", "other.yml", "services"], cwd=proj,
                       capture_output=True, text=True, env=e, timeout=60)
    assert r.stdout.splitlines() == ["solo"]
    r = subprocess.run([sys.executable, "-m", "nerdpy", "__complete", "services"], cwd=world["tmp"],
                       capture_output=True, text=True, env=e, timeout=60)
    assert r.returncode == 0 and r.stdout == ""


# bash, for real ----------------------------------------------------------------------------
def bash_complete(world, words: list[str], line: str | None = None, cwd=None) -> list[str]:
    """Source the script, set COMP_WORDS/COMP_CWORD (and COMP_LINE when given, as readline does)
    and call the completion function; COMPREPLY, one per line."""
    setup = 'COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); '
    if line is not None:
        setup += f"COMP_LINE={shlex_quote(line)}; COMP_POINT=${{#COMP_LINE}}; "
    script = f"source {shlex_quote(BASH_SCRIPT)}; {setup} _nerdpy; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    r = subprocess.run(["bash", "-c", script, "bash", *words], capture_output=True, text=True,
                       env=world["env"], timeout=60, cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr
    return [x for x in r.stdout.splitlines() if x]


def shlex_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def test_bash_subcommands_and_flags(world):
    assert "run" in bash_complete(world, ["nerdpy", "r"])
    assert set(bash_complete(world, ["nerdpy", "run", "--de"])) == {
        "--detach", "--detach-keys", "--device", "--device-read-bps", "--device-write-bps",
        "--device-read-iops", "--device-write-iops"}
    assert bash_complete(world, ["nerdpy", "image", "insp"]) == ["inspect"]
    assert "--data-root" in bash_complete(world, ["nerdpy", "--d"])
    assert bash_complete(world, ["nerdpy", "completion", ""]) == ["bash", "zsh", "fish"]
    assert "unless-stopped" in bash_complete(world, ["nerdpy", "run", "--restart", "u"])
    assert bash_complete(world, ["nerdpy", "kill", "-s", "TER"]) == ["TERM"]
    # after the image, the rest is the container's command line: nothing to offer
    assert bash_complete(world, ["nerdpy", "run", "-d", "busybox", "--de"]) == []
    assert bash_complete(world, ["nerdpy", "exec", "web", "ls", "-"]) == []


def test_bash_live_names(world):
    assert bash_complete(world, ["nerdpy", "logs", ""]) == ["fresh", "old", "web"]
    assert bash_complete(world, ["nerdpy", "stop", ""]) == ["web"]
    assert bash_complete(world, ["nerdpy", "rm", "-f", "o"]) == ["old"]
    assert bash_complete(world, ["nerdpy", "container", "inspect", "w"]) == ["web"]
    assert bash_complete(world, ["nerdpy", "run", "--rm", "bu"]) == ["busybox:latest"]
    assert bash_complete(world, ["nerdpy", "rmi", "some"]) == ["someone/tool:2"]
    assert bash_complete(world, ["nerdpy", "image", "inspect", "b"]) == ["busybox:latest"]
    assert bash_complete(world, ["nerdpy", "run", "--network", "a"]) == ["appnet"]
    assert bash_complete(world, ["nerdpy", "network", "rm", ""]) == ["bridge", "host", "none", "appnet"]
    assert bash_complete(world, ["nerdpy", "volume", "rm", ""]) == ["dbdata"]
    assert "web:" in bash_complete(world, ["nerdpy", "cp", "w"])
    assert set(bash_complete(world, ["nerdpy", "inspect", ""])) >= {"web", "busybox:latest"}


def test_bash_respects_data_root_and_namespace(world):
    missing = str(world["tmp"] / "empty")
    assert bash_complete(world, ["nerdpy", "--data-root", missing, "logs", ""]) == []
    assert bash_complete(world, ["nerdpy", "-n", "other", "logs", ""]) == ["elsewhere"]
    env_less = dict(world)
    env_less["env"] = {k: v for k, v in world["env"].items() if k != "NERDPY_DATA_ROOT"}
    assert bash_complete(env_less, ["nerdpy", "--data-root", world["data"], "logs", "w"]) == ["web"]


def test_bash_words_split_at_colon_and_equals(world):
    # readline splits at ':' and '=': bash hands over the pieces, and replaces only the last one
    line = "nerdpy run 127.0.0.1:5000/te"
    assert bash_complete(world, ["nerdpy", "run", "127.0.0.1", ":", "5000/te"], line=line) == ["5000/test/app:1"]
    line = f"nerdpy --data-root={world['data']} run --network=ap"
    words = ["nerdpy", "--data-root", "=", world["data"], "run", "--network", "=", "ap"]
    env_less = dict(world)
    env_less["env"] = {k: v for k, v in world["env"].items() if k != "NERDPY_DATA_ROOT"}
    assert bash_complete(env_less, words, line=line) == ["appnet"]
    line = "nerdpy run -e A= bu"
    assert bash_complete(world, ["nerdpy", "run", "-e", "A", "=", "bu"], line=line) == ["busybox:latest"]


def test_bash_files(world, tmp_path):
    (tmp_path / "envfile.txt").write_text("A=1\n")
    assert bash_complete(world, ["nerdpy", "run", "--env-file", "envf"], cwd=tmp_path) == ["envfile.txt"]
    assert bash_complete(world, ["nerdpy", "load", "-i", "envf"], cwd=tmp_path) == ["envfile.txt"]


# zsh and fish, where installed ---------------------------------------------------------------
ZSH_STUBS = r'''
compdef() { :; }
compset() { :; }
compadd() {
    while [[ $1 == -* ]]; do
        case $1 in
            -a) print -rl -- ${(P)2}; return ;;
            -S) shift 2 ;;
            --) shift; break ;;
            *) shift ;;
        esac
    done
    print -rl -- "$@"
}
_describe() { local -a arr; arr=(${(P)4}); print -rl -- ${${arr%%:*}:#}; }
_files() { print -r -- "<files>"; }
'''


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh(world):
    def z(*words):
        script = ZSH_STUBS + f"source {shlex_quote(ZSH_SCRIPT)}\nwords=(\"$@\"); CURRENT=$#\n_nerdpy\n"
        r = subprocess.run(["zsh", "-f", "-c", script, "zsh", *words], capture_output=True, text=True,
                           env=world["env"], timeout=60)
        assert r.returncode == 0 and r.stderr == "", r.stderr
        return [x for x in r.stdout.splitlines() if x]

    assert "run" in z("nerdpy", "r")
    assert "--detach" in z("nerdpy", "run", "--de")
    assert z("nerdpy", "logs", "") == ["fresh", "old", "web"]
    assert z("nerdpy", "stop", "") == ["web"]
    assert z("nerdpy", "run", "--network", "") == ["bridge", "host", "none", "appnet"]
    assert z("nerdpy", "-n", "other", "rm", "") == ["elsewhere"]
    assert z("nerdpy", "load", "-i", "") == ["<files>"]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish(world):
    def f(line):
        script = f"source {shlex_quote(FISH_SCRIPT)}; complete -C{shlex_quote(line)}"
        r = subprocess.run(["fish", "--no-config", "-c", script], capture_output=True, text=True,
                           env=world["env"], timeout=60)
        assert r.returncode == 0 and r.stderr == "", r.stderr
        return [x.split("\t")[0] for x in r.stdout.splitlines() if x]

    assert "run" in f("nerdpy r")
    assert "--detach" in f("nerdpy run --de")
    assert f("nerdpy logs ") == ["fresh", "old", "web"]
    assert f("nerdpy stop ") == ["web"]
    assert f("nerdpy run --network=a") == ["--network=appnet"]
    assert f("nerdpy -n other rm ") == ["elsewhere"]
    assert f("nerdpy run -d busybox ") == []


def test_bash_compose_services(world):
    proj = world["tmp"] / "cproj"
    proj.mkdir()
    (proj / "compose.yaml").write_text("services:\n  web: {image: busybox}\n  db: {image: busybox}\n")
    (proj / "other.yml").write_text("services:\n  solo: {image: busybox}\n")
    assert bash_complete(world, ["nerdpy", "compose", "up", "-d", ""], cwd=proj) == ["web", "db"]
    assert bash_complete(world, ["nerdpy", "compose", "logs", "w"], cwd=proj) == ["web"]
    assert bash_complete(world, ["nerdpy", "compose", "-f", "other.yml", "stop", ""], cwd=proj) == ["solo"]
    assert bash_complete(world, ["nerdpy", "compose", "--project-directory", str(proj), "ps", ""],
                         cwd=world["tmp"]) == ["web", "db"]
    # compose exec SERVICE COMMAND...: after the service, the command line is the container's
    assert bash_complete(world, ["nerdpy", "compose", "exec", "web", ""], cwd=proj) == []
