"""The README's fresh-machine path with no internet but a registry mirror: `scripts/install.sh
--mirror URL` writes a docker.io hosts.toml naming the mirror and `nerdpy doctor` passes; a
docker.io short name (`busybox`) then runs from the mirror; the README's compose example comes up,
its client fetches the web service's page, and `compose down` removes it all. Doctor's mirror
check fails for a registry nothing answers for and warns when only the server does."""
from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request

import pytest
import world

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INSTALL = os.path.join(ROOT, "scripts", "install.sh")
EXAMPLE = os.path.join(ROOT, "examples", "hello-compose", "compose.yaml")
PAGE = open(os.path.join(ROOT, "examples", "hello-compose", "www", "index.html")).read()


@pytest.fixture(scope="module")
def mirror(registry, tmp_path_factory):
    """The session registry acting as a Docker Hub mirror: busybox (with httpd, as Docker Hub's
    has) under library/busybox, and a label Docker Hub's image does not carry."""
    layout = str(tmp_path_factory.mktemp("hub-busybox") / "oci")
    layer = world._tar(world.busybox_entries([("bin/httpd", "symlink", "busybox")]))
    world.write_image(layout, "latest", [layer], dict(world.BUSYBOX_CONFIG, Labels={"org.nerdpy.test": "mirror"}))
    world.push_layout(layout, "latest", f"{registry.host}/library/busybox:latest")
    return registry


@pytest.fixture
def fresh(nerdpy, tmp_path, mirror):
    """The nerdpy runner, with hosts.toml files read from a dir of this test's own."""
    hosts_dir = tmp_path / "certs.d"
    nerdpy.env["NERDPY_HOSTS_DIR"] = str(hosts_dir)
    nerdpy.hosts_dir = str(hosts_dir)
    return nerdpy


def install(nerdpy, *args, timeout=600):
    env = dict(nerdpy.env, NERDPY_DATA_ROOT=nerdpy.data_root)
    return subprocess.run(["bash", INSTALL, *args], capture_output=True, text=True, env=env, timeout=timeout)


def test_install_with_a_mirror_then_a_docker_hub_short_name_runs(fresh, mirror):
    url = f"http://{mirror.host}"
    # the real script: packages (already there on a prepared machine: a check, no apt-get), the
    # project (already installed from this checkout), no completion files on this host, the mirror
    # into the hosts dir nerdpy reads (NERDPY_HOSTS_DIR), then doctor
    r = install(fresh, "--mirror", url, "--no-completion")
    assert r.returncode == 0, r.stdout + r.stderr
    toml = os.path.join(fresh.hosts_dir, "docker.io", "hosts.toml")
    text = open(toml).read()
    assert f'[host."{url}"]' in text and 'server = "https://registry-1.docker.io"' in text
    assert re.search(rf"^\[ ok \] registry docker.io: {re.escape(toml)}: mirror {re.escape(url)} answers$",
                     r.stdout, re.M), r.stdout
    assert "Everything nerdpy needs is in place." in r.stdout
    # idempotent: a second run changes nothing
    r = install(fresh, "--mirror", url, "--no-completion")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{toml}: already up to date" in r.stdout
    assert not os.path.exists(toml + ".bak")

    r = fresh("run", "--rm", "busybox", "echo", "hello")
    assert (r.returncode, r.stdout) == (0, "hello\n"), r.stderr
    # it came from the mirror, under Docker Hub's name
    r = fresh("image", "inspect", "-f", '{{index .Config.Labels "org.nerdpy.test"}} {{json .RepoTags}}', "busybox",
              check=True)
    assert r.stdout.split(" ", 1)[0] == "mirror"
    assert "busybox:latest" in r.stdout
    r = fresh("doctor")
    assert r.returncode == 0, r.stdout


def test_readme_compose_example(fresh, mirror, tmp_path):
    url = f"http://{mirror.host}"
    r = install(fresh, "--mirror", url, "--no-packages", "--no-project", "--no-completion", "--no-doctor")
    assert r.returncode == 0, r.stdout + r.stderr
    port = world.free_port()
    env = {"HELLO_PORT": str(port)}
    r = fresh("compose", "-f", EXAMPLE, "up", "-d", env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Container hello-web-1  Healthy" in r.stderr
    # the client fetched the page from the web service by its name, once web was healthy
    deadline = time.monotonic() + 60
    while True:
        st = fresh("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "hello-client-1", check=True).stdout.split()
        if st[0] == "exited" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert st == ["exited", "0"], st
    logs = fresh("compose", "-f", EXAMPLE, "logs", "--no-log-prefix", "client", env=env, check=True).stdout
    assert logs == PAGE, logs
    # and the published port serves it on the host
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
        assert resp.read().decode() == PAGE
    r = fresh("compose", "-f", EXAMPLE, "down", env=env)
    assert r.returncode == 0, r.stderr
    assert fresh("ps", "-a", "-q").stdout == ""
    assert "hello_default" not in fresh("network", "ls", "--format", "{{.Name}}").stdout


def test_doctor_reports_mirrors_that_do_not_answer(fresh, mirror):
    dead = f"http://127.0.0.1:{world.free_port()}"
    os.makedirs(os.path.join(fresh.hosts_dir, "nowhere.invalid"))
    with open(os.path.join(fresh.hosts_dir, "nowhere.invalid", "hosts.toml"), "w") as f:
        f.write(f'server = "https://nowhere.invalid"\n[host."{dead}"]\n  capabilities = ["pull", "resolve"]\n')
    # a dead mirror in front of a live server: pulls still work, a warning (the HOST_PORT spelling
    # of the directory names HOST:PORT)
    live_dir = os.path.join(fresh.hosts_dir, mirror.host.replace(":", "_"))
    os.makedirs(live_dir)
    with open(os.path.join(live_dir, "hosts.toml"), "w") as f:
        f.write(f'[host."{dead}"]\n  capabilities = ["pull", "resolve"]\n')
    r = fresh("doctor")
    assert r.returncode == 1, r.stdout
    fail = re.search(r"^\[FAIL\] registry nowhere\.invalid: (.*)\n\s+fix: (.*)$", r.stdout, re.M)
    assert fail, r.stdout
    assert dead in fail.group(1) and "nor does the server https://nowhere.invalid" in fail.group(1)
    assert "check the mirror URL" in fail.group(2)
    assert re.search(rf"^\[warn\] registry {re.escape(mirror.host)}: .*not answering: {re.escape(dead)}.*"
                     rf"pulls fall back to https://{re.escape(mirror.host)}", r.stdout, re.M), r.stdout
    assert "1 problem found." in r.stdout
    # a hosts.toml that is not TOML fails with its path
    with open(os.path.join(fresh.hosts_dir, "nowhere.invalid", "hosts.toml"), "w") as f:
        f.write("server = [\n")
    r = fresh("doctor")
    assert r.returncode == 1
    assert re.search(r"^\[FAIL\] registry nowhere\.invalid: cannot read .*nowhere\.invalid/hosts\.toml", r.stdout,
                     re.M), r.stdout


def test_install_refuses_a_bad_mirror_without_writing(fresh):
    r = install(fresh, "--mirror", "mirror.lan:5000", "--no-packages", "--no-project", "--no-completion",
                "--no-doctor")
    assert r.returncode == 2
    assert r.stderr.splitlines()[0] == ("install.sh: --mirror mirror.lan:5000: give a URL starting with http:// "
                                        "or https://")
    assert not os.path.exists(fresh.hosts_dir)


def test_install_puts_completion_where_shells_find_it_and_it_completes_flags(fresh, tmp_path):
    dirs = {"BASH_COMPLETION_DIR": tmp_path / "bash", "ZSH_COMPLETION_DIR": tmp_path / "zsh",
            "FISH_COMPLETION_DIR": tmp_path / "fish"}
    fresh.env.update({k: str(v) for k, v in dirs.items()})
    r = install(fresh, "--no-packages", "--no-project", "--no-doctor")
    assert r.returncode == 0, r.stdout + r.stderr
    bash_file = dirs["BASH_COMPLETION_DIR"] / "nerdpy"
    assert bash_file.read_text() == fresh("completion", "bash", check=True).stdout
    for shell, name in (("zsh", "_nerdpy"), ("fish", "nerdpy.fish")):
        path = dirs[f"{shell.upper()}_COMPLETION_DIR"] / name
        if subprocess.run(["sh", "-c", f"command -v {shell}"], capture_output=True).returncode == 0:
            assert path.read_text() == fresh("completion", shell, check=True).stdout
        else:
            assert not path.exists()
    # what a new bash shell gets: the installed file completes every flag of a command
    script = (f"source {bash_file}; COMP_WORDS=(nerdpy compose up --); COMP_CWORD=3; _nerdpy; "
              "printf '%s\\n' \"${COMPREPLY[@]}\"")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=fresh.env, timeout=60)
    assert {"--detach", "--wait", "--force-recreate"} <= set(out.stdout.split()), out.stdout + out.stderr
    r = install(fresh, "--no-packages", "--no-project", "--no-doctor")
    assert r.returncode == 0 and f"{bash_file}: already up to date" in r.stdout, r.stdout
