"""docker-compose 1.29 (Debian's `docker-compose`, a docker-py client) against a real `nerdpy
system service`: a health-gated two-service app with a published port and a named volume, up
and down through the socket."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from apiservice import module_service

COMPOSE = os.environ.get("NERDPY_DOCKER_COMPOSE") or shutil.which("docker-compose") or "/usr/bin/docker-compose"

pytestmark = pytest.mark.skipif(not os.access(COMPOSE, os.X_OK), reason="no docker-compose 1.29")


svc = module_service("api-compose")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_health_gated_app_up_and_down(svc, images, tmp_path):
    port = _free_port()
    (tmp_path / "docker-compose.yml").write_text(f"""
version: "2.4"
services:
  db:
    image: {images.busybox}
    command: ["sh", "-c", "sleep 1; touch /tmp/ready; while true; do echo db-answer | nc -l -p 5000; done"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      timeout: 2s
      retries: 20
  web:
    image: {images.busybox}
    command: ["sh", "-c", "while true; do nc db 5000 | nc -l -p 8080; done"]
    ports: ["127.0.0.1:{port}:8080"]
    depends_on:
      db:
        condition: service_healthy
    volumes: ["data:/data"]
volumes:
  data:
""")
    env = dict(os.environ, DOCKER_HOST=svc.url, COMPOSE_PROJECT_NAME="npv1", DOCKER_CONFIG=str(tmp_path / "cfg"))

    def compose(*args, check=True):
        r = subprocess.run([COMPOSE, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
        if check and r.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r

    try:
        compose("up", "-d")
        # web was started only once db was healthy
        state = svc.cli("inspect", "-f", "{{.State.Health.Status}}", "npv1_db_1").stdout.strip()
        assert state == "healthy"
        ps = compose("ps").stdout
        assert "npv1_db_1" in ps and "npv1_web_1" in ps and "Up (healthy)" in ps
        got = b""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not got:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    got = s.recv(64)
            except OSError:
                time.sleep(0.2)
        assert got == b"db-answer\n"
        assert "npv1_data" in svc.cli("volume", "ls", "-q").stdout
        # a one-off container: its output, its exit code, stdin piped in (attached before start)
        r = subprocess.run([COMPOSE, "run", "-T", "--rm", "web", "sh", "-c", "cat; nc db 5000; exit 4"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, input="piped\n")
        assert (r.returncode, r.stdout) == (4, "piped\ndb-answer\n"), r.stderr
    finally:
        compose("down", "-v", "-t", "1", check=False)
    assert svc.cli("ps", "-a", "-q").stdout.strip() == ""
    assert "npv1_default" not in svc.cli("network", "ls").stdout
    assert "npv1_data" not in svc.cli("volume", "ls", "-q").stdout
