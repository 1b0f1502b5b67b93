"""The Python API (nerdpy.Client) against a real registry and real runc, with its own data root:
what a test suite that starts containers without Docker would do."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from nerdpy import Client, ContainerError, ContainerNotFound, ImageNotFound
from nerdpy.client import Conflict


def mounts_under(prefix: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("NERDPY_CONFIG", "/nonexistent")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    from conftest import BRIDGE_NAME, BRIDGE_SUBNET

    # the session's bridge (a data root of its own would otherwise get a default bridge of its own)
    monkeypatch.setenv("NERDPY_BRIDGE_NAME", BRIDGE_NAME)
    monkeypatch.setenv("NERDPY_BRIDGE_SUBNET", BRIDGE_SUBNET)
    c = Client(data_root=str(tmp_path / "data"), run_root=str(tmp_path / "run"))
    yield c
    # whatever a failing test left behind
    for ctr in c.containers():
        try:
            ctr.remove(force=True, volumes=True)
        except Exception:
            pass
    c.close()
    __import__("world").kill_monitors(str(tmp_path / "run"))
    for p in sorted(mounts_under(str(tmp_path)), key=len, reverse=True):
        subprocess.run(["umount", "-l", p], capture_output=True)


def cli(client: Client, *args, env=None):
    e = dict(os.environ, NERDPY_CONFIG="/nonexistent", NERDPY_RUN_ROOT=client.settings.run_root)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "nerdpy", "--data-root", client.data_root, *args],
                          capture_output=True, text=True, env=e, timeout=120)


def test_pull_run_exec_logs_stop_remove(client, images, tmp_path):
    img = client.pull(images.busybox)
    assert img.name == images.busybox and img.id.startswith("sha256:")
    assert [i.name for i in client.images()] == [images.busybox]
    assert client.image(images.busybox).id == img.id

    c = client.run(images.busybox, ["sh", "-c", "echo ready; echo oops >&2; exec sleep 300"],
                   name="api-box", network="none", env={"GREETING": "hi"}, labels={"t": "1"})
    assert c.name == "api-box" and len(c.id) == 64
    m = c.wait_for_log(r"ready", timeout=30)
    assert m.group(0) == "ready"
    assert c.status == "running" and c.running and c.exit_code is None
    assert c.labels == {"t": "1"}

    code, out = c.exec(["sh", "-c", "echo $GREETING; exit 3"])
    assert (code, out) == (3, "hi\n")
    r = c.exec("sh -c 'echo out; echo err >&2'", demux=True)
    assert r.exit_code == 0 and r.output == "out\n" and r.stderr == "err\n"
    with pytest.raises(ContainerError) as e:
        c.exec(["false"], check=True)
    assert e.value.exit_status == 1
    from nerdpy.engine.containers.records import CommandNotFound

    with pytest.raises(CommandNotFound):
        c.exec(["no-such-command"])

    assert c.logs() == "ready\noops\n"
    assert c.logs(stderr=False) == "ready\n"
    assert c.logs(stdout=False) == "oops\n"

    # the CLI sees the same container
    r = cli(client, "ps", "--format", "{{.Names}} {{.Status}}")
    assert r.stdout.startswith("api-box Up"), r.stdout + r.stderr
    assert [x.name for x in client.containers(all=False)] == ["api-box"]
    assert client.container("api-box") == c

    with pytest.raises(Conflict):
        c.remove()
    c.stop(timeout=1)
    assert c.status == "exited" and c.exit_code == 137 and not c.running
    assert c.wait(timeout=5) == 137
    c.remove()
    assert c.status == "removed"
    with pytest.raises(ContainerNotFound):
        client.container("api-box")
    assert client.containers() == []
    assert mounts_under(client.data_root) == []


def test_context_manager_and_run_to_completion(client, images):
    with client.run(images.busybox, ["sleep", "300"], network="none") as c:
        assert c.running
        cid = c.id
    assert not os.path.exists(os.path.join(client.data_root, "containers", "default", cid))
    assert client.containers() == []

    done = client.run(images.busybox, ["sh", "-c", "echo fine"], network="none", detach=False)
    assert done.exit_code == 0 and done.logs() == "fine\n"
    done.remove()
    with pytest.raises(ContainerError) as e:
        client.run(images.busybox, ["sh", "-c", "echo bad; exit 4"], network="none", detach=False, name="bad")
    assert e.value.exit_status == 4 and "bad" in e.value.output
    client.container("bad").remove()

    # --rm: the container removes itself when it exits
    gone = client.run(images.busybox, ["true"], network="none", remove=True)
    gone.wait(timeout=30)
    deadline = time.monotonic() + 10
    while gone.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not gone.exists()
    assert mounts_under(client.data_root) == []


def test_volumes_and_missing_images(client, images, tmp_path):
    v = client.create_volume("api-data", labels={"k": "v"})
    assert v.name == "api-data"
    host = tmp_path / "host"
    host.mkdir()
    (host / "in.txt").write_text("from host\n")
    c = client.run(images.busybox, ["sh", "-c", "cat /h/in.txt; echo saved > /data/f; exec sleep 300"],
                   network="none", volumes={"api-data": "/data", str(host): {"bind": "/h", "mode": "ro"}})
    c.wait_for_log("from host", timeout=30)
    assert c.exec(["cat", "/data/f"]).output == "saved\n"
    assert c.exec(["sh", "-c", "touch /h/x"]).exit_code != 0  # read-only bind
    assert [x.name for x in client.volumes()] == ["api-data"]
    from nerdpy.engine.containers.volumes import VolumeInUse

    with pytest.raises(VolumeInUse):
        client.remove_volume("api-data")
    c.remove(force=True)
    client.remove_volume("api-data")
    assert client.volumes() == []

    with pytest.raises(ImageNotFound):
        client.run("127.0.0.1:1/nothing/here:1", ["true"], pull="never")
    with pytest.raises(TypeError):
        client.run(images.busybox, ["true"], no_such_option=1)
    assert client.containers() == []


def test_created_container_and_rename(client, images):
    c = client.create(images.busybox, "sleep 300", name="later", network="none")  # pulls as needed
    assert c.status == "created" and c.exit_code is None
    c.rename("sooner")
    assert c.name == "sooner"
    c.start()
    assert c.status == "running"
    c.kill()
    assert c.wait(timeout=30) == 137
    c.remove()


def test_compose_project(client, images, tmp_path):
    proj = tmp_path / "app"
    proj.mkdir()
    (proj / "compose.yaml").write_text(f"""
name: apitest
services:
  db:
    image: {images.busybox}
    network_mode: none
    stop_grace_period: 1s
    command: ["sh", "-c", "touch /tmp/ready; exec sleep 300"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      retries: 30
  web:
    image: {images.busybox}
    network_mode: none
    stop_grace_period: 1s
    command: ["sleep", "300"]
    depends_on:
      db:
        condition: service_healthy
""")
    project = client.compose(str(proj / "compose.yaml"))
    assert project.name == "apitest" and project.services == ["db", "web"]
    with project:
        cs = project.up(timeout=60)
        assert sorted(c.name for c in cs) == ["apitest-db-1", "apitest-web-1"]
        assert project.service("db").health == "healthy"
        assert project.service("web").exec(["echo", "up"]).output == "up\n"
        r = cli(client, "compose", "-f", str(proj / "compose.yaml"), "ps", "--format", "{{.Name}}")
        assert r.stdout.split() == ["apitest-db-1", "apitest-web-1"], r.stderr
    assert project.containers() == []
    assert client.containers() == []
    assert mounts_under(client.data_root) == []


def test_testcontainers_style_published_port(client, images):
    """The example of docs/python-api.md: a server on the default bridge, a published port."""
    with client.run(images.busybox, ["sh", "-c", "echo listening; exec nc -ll -p 8080 -e echo hello"],
                    ports={"8080/tcp": None}, remove=True) as server:
        server.wait_for_log("listening", timeout=30)
        host, port = server.wait_for_port(8080, timeout=30)
        assert port == server.host_port(8080) and port > 0
        assert server.ip_address().startswith("10.")
        import socket

        with socket.create_connection(("127.0.0.1", server.host_port(8080)), timeout=10) as s:
            assert s.recv(100) == b"hello\n"
        assert server.exec(["echo", "inside"]) == client.container(server.id).exec(["echo", "inside"])
    assert client.containers() == []
    assert mounts_under(client.data_root) == []
