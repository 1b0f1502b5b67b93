"""The docker CLI itself (20.10, Debian's docker.io package, used only as a client: its dockerd
is never started) against a real `nerdpy system service`: run, ps, logs, exec, cp, pull, images,
inspect, commit, network and volume commands.

The client is looked for at $NERDPY_DOCKER_CLI, then /opt/docker-io/usr/bin/docker (where
`apt-get download docker.io && dpkg-deb -x docker.io_*.deb /opt/docker-io` puts it)."""
from __future__ import annotations

import os
import subprocess

import pytest

from apiservice import module_service

DOCKER = os.environ.get("NERDPY_DOCKER_CLI") or "/opt/docker-io/usr/bin/docker"

pytestmark = pytest.mark.skipif(not os.access(DOCKER, os.X_OK), reason=f"no docker CLI at {DOCKER}")


svc = module_service("api-cli")


@pytest.fixture(scope="module")
def docker(svc, tmp_path_factory):
    cfg = tmp_path_factory.mktemp("docker-config")
    env = dict(os.environ, DOCKER_HOST=svc.url, DOCKER_CONFIG=str(cfg))

    def run(*args, input=None, check=True, timeout=60):
        r = subprocess.run([DOCKER, *args], capture_output=True, text=True, input=input, env=env, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r

    run.env = env
    return run


def test_version_pull_images(docker, images):
    out = docker("version", "--format", "{{.Server.APIVersion}} {{.Client.APIVersion}}").stdout.split()
    assert out == ["1.44", "1.41"]
    out = docker("pull", images.busybox).stdout
    assert "Image is up to date" in out or "Downloaded newer image" in out
    repo = images.busybox.rsplit(":", 1)[0]
    assert repo in docker("images", "--format", "{{.Repository}}").stdout


def test_import_from_stdin(docker, tmp_path):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add("/bin/busybox", arcname="bin/busybox")
    r = subprocess.run([DOCKER, "import", "-c", 'ENTRYPOINT ["/bin/busybox"]', "-", "cli/imported:1"],
                       input=buf.getvalue(), capture_output=True, env=docker.env, timeout=60)
    assert r.returncode == 0, r.stderr
    image_id = r.stdout.decode().strip()
    assert image_id.startswith("sha256:")
    assert docker("run", "--rm", "--network", "none", "cli/imported:1", "echo", "hi").stdout == "hi\n"
    assert docker("inspect", "-f", "{{.Id}}", "cli/imported:1").stdout.strip() == image_id
    docker("rmi", "cli/imported:1")


def test_run_foreground(docker, images, svc):
    r = docker("run", "--rm", images.busybox, "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    r = docker("run", "--rm", "-i", images.busybox, "cat", input="piped through\n")
    assert r.stdout == "piped through\n"
    assert docker("run", "--rm", "-t", images.busybox, "echo", "tty").stdout == "tty\n"  # \r\n: universal newlines
    assert svc.cli("ps", "-a", "-q").stdout.strip() == ""
    r = docker("run", "--rm", "--memory", "1k", images.busybox, "true", check=False)
    assert r.returncode == 125 and "minimum memory" in r.stderr.lower()


def test_detached_ps_logs_exec_cp_inspect(docker, images, svc, tmp_path):
    cid = docker("run", "-d", "--name", "cli-box", "-e", "X=42", images.busybox,
                 "sh", "-c", "echo started; sleep 300").stdout.strip()
    try:
        assert "cli-box" in docker("ps", "--format", "{{.Names}}").stdout
        assert "cli-box" in svc.cli("ps", "--format", "{{.Names}}").stdout
        for _ in range(50):
            if docker("logs", "cli-box").stdout == "started\n":
                break
        assert docker("logs", "cli-box").stdout == "started\n"
        r = docker("exec", "cli-box", "sh", "-c", "echo $X; exit 4", check=False)
        assert (r.returncode, r.stdout) == (4, "42\n")
        assert docker("exec", "-i", "cli-box", "cat", input="via exec\n").stdout == "via exec\n"
        src = tmp_path / "h.txt"
        src.write_text("hello cp\n")
        docker("cp", str(src), "cli-box:/tmp/")
        assert docker("exec", "cli-box", "cat", "/tmp/h.txt").stdout == "hello cp\n"
        docker("cp", "cli-box:/tmp/h.txt", str(tmp_path / "back.txt"))
        assert (tmp_path / "back.txt").read_text() == "hello cp\n"
        # docker commit (POST /commit): the copied file and the --change are in the new image
        docker("commit", "-c", "ENV FROM=cli", "-m", "cli commit", "cli-box", "cli/committed:1")
        assert docker("run", "--rm", "--network", "none", "cli/committed:1", "sh", "-c",
                      "cat /tmp/h.txt; echo $FROM").stdout == "hello cp\ncli\n"
        assert "cli commit" in docker("history", "cli/committed:1").stdout
        docker("rmi", "cli/committed:1")
        assert docker("inspect", "-f", "{{.State.Status}} {{.Id}}", "cli-box").stdout.split() == ["running", cid]
        docker("stop", "-t", "1", "cli-box")
        assert docker("inspect", "-f", "{{.State.Status}}", "cli-box").stdout.strip() == "exited"
    finally:
        docker("rm", "-f", "cli-box", check=False)
    r = docker("inspect", "cli-box", check=False)
    assert r.returncode == 1 and "no such" in r.stderr.lower()


def test_networks_and_volumes(docker, images):
    r = docker("network", "create", "--ipam-opt", "x=y", "cli-ipam", check=False)  # never accepted and ignored
    assert r.returncode == 1 and "IPAM options are not supported" in r.stderr, r.stderr
    docker("network", "create", "cli-net")
    docker("volume", "create", "cli-vol")
    try:
        assert "cli-net" in docker("network", "ls", "--format", "{{.Name}}").stdout
        assert "cli-vol" in docker("volume", "ls", "--format", "{{.Name}}").stdout
        docker("run", "--rm", "--network", "cli-net", "-v", "cli-vol:/data", images.busybox,
               "sh", "-c", "echo kept > /data/f")
        out = docker("run", "--rm", "-v", "cli-vol:/data", images.busybox, "cat", "/data/f").stdout
        assert out == "kept\n"
    finally:
        docker("network", "rm", "cli-net", check=False)
        docker("volume", "rm", "cli-vol", check=False)
    assert "cli-net" not in docker("network", "ls", "--format", "{{.Name}}").stdout


def test_info_df_events(docker, images):
    import time

    since = str(int(time.time()) - 1)
    docker("run", "--rm", "--network", "none", images.busybox, "true")
    assert "Server Version" in docker("info").stdout
    assert "Images" in docker("system", "df").stdout
    until = str(int(time.time()) + 1)
    out = docker("events", "--since", since, "--until", until, "--filter", "type=container",
                 "--format", "{{.Action}}").stdout.split()
    assert "create" in out and "start" in out and "destroy" in out
