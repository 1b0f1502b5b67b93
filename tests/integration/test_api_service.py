"""`nerdpy system service` itself: idle exit, socket permissions, socket activation (LISTEN_FDS),
concurrent clients, clients that hang up mid-stream, and hostile requests answered with docker's
error JSON and nothing left half-made."""
from __future__ import annotations

import http.client
import io
import json
import os
import socket
import stat
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from apiservice import ROOT, Service, module_service, service_env

docker = pytest.importorskip("docker")


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def call(sock: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    c = UnixHTTP(sock)
    try:
        c.request(method, path, body=body, headers=headers or {"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


svc = module_service("api-svc")


@pytest.fixture(scope="module")
def client(svc, images):
    c = docker.DockerClient(base_url=svc.url, timeout=120)
    c.images.pull(images.busybox)
    yield c
    c.close()


def _wait_exit(proc: subprocess.Popen, timeout: float) -> int | None:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def test_socket_is_owner_only(svc):
    st = os.stat(svc.sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.getuid()


def test_idle_exit_waits_for_open_streams(tmp_path, images, client):
    home = tmp_path / "home"
    home.mkdir()
    s = Service(str(tmp_path), service_env(str(home)), idle=1)
    s.start()
    try:
        dc = docker.DockerClient(base_url=s.url, timeout=60)
        dc.images.pull(images.busybox)
        kept = dc.containers.run(images.busybox, ["sleep", "300"], detach=True, name="outlives", network_mode="none")
        dc.close()
        # a request in flight (events follow) keeps it alive past the idle time
        c = UnixHTTP(s.sock)
        c.request("GET", "/v1.41/events")
        r = c.getresponse()
        assert r.status == 200
        assert _wait_exit(s.proc, 3) is None
        c.close()  # the client hangs up mid-stream: nothing holds the service any more
        t0 = time.monotonic()
        assert _wait_exit(s.proc, 10) == 0
        assert time.monotonic() - t0 < 6
        assert not os.path.exists(s.sock)
        # its container is an ordinary one, with its own monitor: it outlives the service
        assert s.cli("inspect", "-f", "{{.State.Status}}", kept.id).stdout.strip() == "running"
        assert s.cli("exec", "outlives", "echo", "alive").stdout == "alive\n"
    finally:
        s.teardown()


def test_socket_activation(tmp_path):
    """systemd's protocol: a listening socket as fd 3, LISTEN_FDS=1, LISTEN_PID=the service's pid."""
    home = tmp_path / "home"
    home.mkdir()
    path = str(tmp_path / "activated.sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(16)
    env = service_env(str(home))
    env.update(NERDPY_RUN_ROOT=str(tmp_path / "run"), LISTEN_FDS="1")
    fd = lsock.fileno()
    # what systemd does: the socket as fd 3, LISTEN_PID the pid that execs the service
    launcher = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_PID'] = str(os.getpid()); "
                "os.execv(sys.executable, [sys.executable] + sys.argv[2:])")
    proc = subprocess.Popen(
        [sys.executable, "-c", launcher, str(fd), "-m", "nerdpy", "--data-root", str(tmp_path / "data"),
         "system", "service", "--time", "1"],
        env=env, cwd=ROOT, pass_fds=(fd,), stderr=subprocess.PIPE)
    lsock.close()
    try:
        status, body = call(path, "GET", "/_ping")
        assert (status, body) == (200, b"OK")
        status, body = call(path, "GET", "/v1.41/version")
        assert json.loads(body)["ApiVersion"] == "1.44"
        assert _wait_exit(proc, 15) == 0
        assert b"systemd" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_hostile_requests(svc, client, images, tmp_path):
    sock = svc.sock
    status, body = call(sock, "POST", "/v1.41/containers/create", b"{not json")
    assert status == 400 and "message" in json.loads(body)
    status, body = call(sock, "POST", "/v1.41/containers/create", b"[1, 2]")
    assert status == 400
    status, body = call(sock, "POST", "/v1.41/containers/create", b'{"Image": 5}')
    assert status == 400
    status, body = call(sock, "POST", "/v1.41/containers/create",
                        json.dumps({"Image": images.busybox, "Cmd": "x" * 10, "Env": "A" * (5 << 20)}).encode())
    assert status == 413 and "too large" in json.loads(body)["message"]
    status, body = call(sock, "GET", "/v1.41/no/such/endpoint")
    assert status == 404 and json.loads(body)["message"]
    status, body = call(sock, "GET", "/v1.41/containers/..%2F..%2Fetc/json")
    assert status == 404 and "no such container" in json.loads(body)["message"].lower()
    status, body = call(sock, "GET", "/v1.99/version")
    assert status == 400 and "too new" in json.loads(body)["message"]
    status, body = call(sock, "POST", "/v1.41/containers/create",
                        json.dumps({"Image": images.busybox, "HostConfig": {"Memory": "lots"}}).encode())
    assert status == 400
    status, body = call(sock, "POST", "/v1.41/build")
    assert status == 501
    assert svc.cli("ps", "-a", "-q").stdout.strip() == ""
    # an archive that tries to climb out of the container
    c = client.containers.run(images.busybox, ["sleep", "300"], detach=True)
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            for name in ("../../../../../tmp/escaped-%d" % os.getpid(), "/abs-escape-%d" % os.getpid()):
                ti = tarfile.TarInfo(name)
                ti.size = 4
                tf.addfile(ti, io.BytesIO(b"evil"))
        try:
            c.put_archive("/tmp", buf.getvalue())
        except docker.errors.APIError as e:
            assert e.status_code == 400
        assert not os.path.exists("/tmp/escaped-%d" % os.getpid())
        assert not os.path.exists("/abs-escape-%d" % os.getpid())
        status, body = call(sock, "PUT", f"/v1.41/containers/{c.id}/archive?path=/tmp", b"this is not a tar",
                            {"Content-Type": "application/x-tar"})
        assert status == 400
        status, body = call(sock, "GET", f"/v1.41/containers/{c.id}/archive?path=/etc/../../../../etc/shadow-nope")
        assert status == 404
    finally:
        c.remove(force=True)


def test_client_hangs_up_mid_stream(svc, client, images):
    c = client.containers.run(images.busybox, ["sh", "-c", "while true; do echo tick; sleep 0.1; done"], detach=True)
    try:
        for path in (f"/v1.41/containers/{c.id}/logs?follow=1&stdout=1", "/v1.41/events",
                     f"/v1.41/containers/{c.id}/wait"):
            conn = UnixHTTP(svc.sock)
            conn.request("GET" if "wait" not in path else "POST", path)
            r = conn.getresponse()
            assert r.status == 200
            if "logs" in path:
                assert b"tick" in r.read1(4096)
            conn.close()
        s = socket.socket(socket.AF_UNIX)
        s.connect(svc.sock)
        s.sendall(f"POST /v1.41/containers/{c.id}/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\n"
                  "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
        assert s.recv(4096).startswith(b"HTTP/1.1 101")
        s.close()
        assert client.ping()
        assert c.exec_run(["echo", "still fine"]).output == b"still fine\n"
    finally:
        c.remove(force=True)


def test_twenty_parallel_runs(client, images, svc):
    def one(i: int) -> bytes:
        return client.containers.run(images.busybox, ["echo", f"run-{i}"], remove=True, network_mode="none")

    t0 = time.monotonic()
    with ThreadPoolExecutor(20) as pool:
        outs = list(pool.map(one, range(20)))
    assert outs == [f"run-{i}\n".encode() for i in range(20)]
    assert time.monotonic() - t0 < 120
    assert svc.cli("ps", "-a", "-q").stdout.strip() == ""


def test_pull_with_x_registry_auth(auth_registry, tmp_path):
    """Credentials in the request (docker-py's auth_config, the docker CLI after its login), not
    in the service user's docker config."""
    home = tmp_path / "home"
    home.mkdir()
    s = Service(str(tmp_path), service_env(str(home)), global_args=("--insecure-registry", auth_registry.host))
    s.start()
    try:
        c = docker.DockerClient(base_url=s.url, timeout=120)
        with pytest.raises(docker.errors.APIError):
            c.images.pull(auth_registry.image)
        with pytest.raises(docker.errors.APIError):
            c.images.pull(auth_registry.image, auth_config={"username": auth_registry.username, "password": "wrong"})
        img = c.images.pull(auth_registry.image, auth_config={"username": auth_registry.username,
                                                              "password": auth_registry.password})
        assert auth_registry.image in img.tags
        assert not os.path.exists(home / ".docker" / "config.json")  # nothing stored by the service
        c.close()
    finally:
        s.teardown()
