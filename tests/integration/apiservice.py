"""A real `nerdpy system service` for the API client tests: a subprocess serving a temp socket
with a temp data root (and the session's bridge), torn down with everything it made."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import world

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


class Service:
    def __init__(self, base: str, env: dict, idle: int = 0, extra_args: tuple = (), global_args: tuple = ()):
        self.base = base
        self.data_root = os.path.join(base, "data")
        self.run_root = os.path.join(base, "run")
        self.sock = os.path.join(base, "api.sock")
        self.url = "unix://" + self.sock
        self.env = dict(env, NERDPY_RUN_ROOT=self.run_root, NERDPY_CNI_NETCONFPATH=os.path.join(base, "net.d"))
        self.log_path = os.path.join(base, "service.log")
        self.idle = idle
        self.extra_args = extra_args
        self.global_args = global_args
        self.proc: subprocess.Popen | None = None

    def cli(self, *args, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, "-m", "nerdpy", "--data-root", self.data_root, *args],
                           capture_output=True, text=True, env=self.env, timeout=timeout, cwd=ROOT)
        if check and r.returncode != 0:
            raise AssertionError(f"nerdpy {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r

    def start(self) -> "Service":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nerdpy", "--data-root", self.data_root, *self.global_args, "system", "service",
             "--time", str(self.idle), *self.extra_args, self.url],
            env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(self.log_path, "ab"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the service exited {self.proc.returncode}: {self.log()}")
            if self.answers():
                return self
            time.sleep(0.05)
        raise AssertionError(f"the service did not answer: {self.log()}")

    def answers(self) -> bool:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.sock)
            s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.")
        except OSError:
            return False
        finally:
            s.close()

    def log(self) -> str:
        try:
            return open(self.log_path, errors="replace").read()[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def teardown(self) -> None:
        """Stop the service, remove what the tests left, unmount what is left under base."""
        self.stop()
        if os.path.exists(os.path.join(self.data_root, "meta.db")):
            left = self.cli("ps", "-a", "-q", "--no-trunc").stdout.split()
            if left:
                self.cli("rm", "-f", "-v", *left)
            self.cli("network", "prune", "-f")
        world.kill_monitors(self.run_root)
        runc_root = os.path.join(self.run_root, "runc")
        if os.path.isdir(runc_root):
            for ns in os.listdir(runc_root):
                for cid in os.listdir(os.path.join(runc_root, ns)):
                    subprocess.run(["runc", "--root", os.path.join(runc_root, ns), "delete", "-f", cid],
                                   capture_output=True)
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
        for p in sorted((p for p in points if p.startswith(self.base)), key=len, reverse=True):
            subprocess.run(["umount", "-l", p], capture_output=True)


def service_env(home: str) -> dict:
    from conftest import BRIDGE_NAME, BRIDGE_SUBNET

    env = dict(os.environ, HOME=home, NERDPY_CONFIG="/nonexistent", NERDPY_BRIDGE_NAME=BRIDGE_NAME,
               NERDPY_BRIDGE_SUBNET=BRIDGE_SUBNET)
    env.pop("DOCKER_CONFIG", None)
    env.pop("DOCKER_HOST", None)
    return env


def module_service(name: str):
    """A module-scoped fixture (assign it to `svc` in the test module): a started service on a
    fresh temp dir named `name`, torn down with everything it made after the module."""
    import pytest

    @pytest.fixture(scope="module")
    def svc(tmp_path_factory):
        base = tmp_path_factory.mktemp(name)
        home = base / "home"
        home.mkdir()
        s = Service(str(base), service_env(str(home)))
        try:
            yield s.start()
        finally:
            s.teardown()

    return svc
