"""testcontainers-python against a real `nerdpy system service`: a DockerContainer with a
published port reached from the test, wait_for_logs, exec, and its cleanup.

testcontainers' Ryuk reaper is a container that needs the Docker socket mounted inside it; it is
disabled here (TESTCONTAINERS_RYUK_DISABLED=true, as docs/api.md says): the `with` block's
cleanup removes the container."""
from __future__ import annotations

import socket
import time

import pytest

pytest.importorskip("testcontainers")

from apiservice import module_service  # noqa: E402


svc = module_service("api-tc")


@pytest.fixture
def tc_env(svc, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", svc.url)
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    monkeypatch.delenv("TESTCONTAINERS_HOST_OVERRIDE", raising=False)
    monkeypatch.delenv("TC_HOST", raising=False)
    return svc


def _recv(host: str, port: int, timeout: float = 15) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                data = s.recv(64)
                if data:
                    return data
        except OSError:
            pass
        time.sleep(0.1)
    return b""


def test_docker_container_port_logs_exec_cleanup(tc_env, images):
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    cmd = "sh -c 'echo server ready; while true; do echo hello-tc | nc -l -p 8080; done'"
    with DockerContainer(images.busybox).with_command(cmd).with_exposed_ports(8080) \
            .with_env("MODE", "test").with_kwargs(labels={"suite": "tc"}) as c:
        wait_for_logs(c, "server ready", timeout=30)
        host = c.get_container_host_ip()
        port = int(c.get_exposed_port(8080))
        assert _recv(host, port) == b"hello-tc\n"
        code, out = c.exec(["sh", "-c", "echo $MODE"])
        assert code == 0 and out == b"test\n"
        cid = c.get_wrapped_container().id
        assert cid in tc_env.cli("ps", "-q", "--no-trunc").stdout
    # the context manager's cleanup removed it
    assert cid not in tc_env.cli("ps", "-a", "-q", "--no-trunc").stdout
