"""A throwaway rootless user for the tests (issue 18): made with useradd (and /etc/subuid,
/etc/subgid ranges), running nerdpy through `runuser` with Debian's /usr/bin/python3 (root's
interpreter may live where the user cannot read) on a world-readable copy of this checkout's
packages. Used by tests/integration/test_rootless.py and, with NERDPY_TEST_ROOTLESS=1, by the
`nerdpy` runner fixture (tests/conftest.py) to run docker-compatibility tests as a user."""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

# why a test cannot pass as a user (`@pytest.mark.needs_root(...)`; docs/compatibility.md, "Rootless")
CGROUP = "cgroup limits and stats need a delegated cgroup v2, which users lack on this host"
FREEZER = "pause/unpause need the container's freezer cgroup"
PROC_SYS = "/proc/sys belongs to the host's root, --privileged or not"
DEVICE_ACCESS = "--device access modes need the device cgroup"
DOMAINNAME = "--domainname needs runc 1.2 in a user namespace (this host: runc 1.1)"
IN_PROCESS = "the test drives the engine in its own (root) process"

PY = "/usr/bin/python3"
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def missing_tools() -> str | None:
    for tool in ("newuidmap", "newgidmap", "slirp4netns", "runuser", "useradd"):
        if shutil.which(tool) is None:
            return f"{tool} (apt-get install uidmap slirp4netns)"
    r = subprocess.run([PY, "-c", "import click, requests, rich, yaml, cffi"], capture_output=True)
    if r.returncode != 0:
        return "Debian's python3 with python3-click python3-requests python3-rich python3-yaml python3-cffi"
    return None


class User:
    """A throwaway user and a runner of nerdpy as that user."""

    def __init__(self, name: str, subids: bool = True):
        self.name = name
        args = ["useradd", "-m", "-s", "/bin/sh"]
        if not subids:
            args += ["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0"]
        subprocess.run(args + [name], check=True, capture_output=True)
        if subids and not any(line.startswith(name + ":") for line in open("/etc/subuid")):
            subprocess.run(["usermod", "--add-subuids", "300000-365535", "--add-subgids", "300000-365535", name],
                           check=True)
        pw = pwd.getpwnam(name)
        self.uid, self.gid, self.home = pw.pw_uid, pw.pw_gid, pw.pw_dir
        self.subuids = range(0)
        for line in open("/etc/subuid"):
            parts = line.strip().split(":")
            if parts[0] == name and len(parts) == 3:
                self.subuids = range(int(parts[1]), int(parts[1]) + int(parts[2]))
        self.src = tempfile.mkdtemp(prefix="nerdpy-rootless-src-")
        for package in ("nerdpy", "compose"):  # compose: before Debian's docker-compose module
            shutil.copytree(os.path.join(CHECKOUT, package), os.path.join(self.src, package),
                            ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run(["chmod", "-R", "a+rX", self.src], check=True)
        os.chmod(self.src, 0o755)
        self.xdg_run = f"/tmp/nerdpy-test-xdg-{self.uid}"
        os.makedirs(self.xdg_run, mode=0o700, exist_ok=True)
        os.chown(self.xdg_run, self.uid, self.gid)
        self.run_root = os.path.join(self.xdg_run, "nerdpy")
        self.data_root = os.path.join(self.home, ".local", "share", "nerdpy")

    # Debian's PATH for users (no sbin directories: nerdpy must find root's tools itself)
    def env(self) -> list[str]:
        return ["env", "-i", f"HOME={self.home}", f"USER={self.name}", "PATH=/usr/local/bin:/usr/bin:/bin:/usr/games",
                f"XDG_RUNTIME_DIR={self.xdg_run}", f"PYTHONPATH={self.src}"]

    def __call__(self, *args, timeout=120, input=None, env=()) -> subprocess.CompletedProcess:
        return subprocess.run(["runuser", "-u", self.name, "--", *self.env(), *env, PY, "-m", "nerdpy", *args],
                              capture_output=True, text=True, cwd=self.src, timeout=timeout, input=input)

    # what a root test's environment passes on to the user's nerdpy (never root's PATH, PYTHONPATH,
    # XDG_RUNTIME_DIR...)
    PASSED = ("NERDPY_", "DOCKER_", "COMPOSE_", "HOME", "TERM", "LANG", "LC_", "TZ", "NO_COLOR", "COLUMNS")

    def argv(self, *args, env: dict, extra: dict = {}) -> list[str]:
        """`nerdpy ARGS` as this user, with the parts of a test's environment `env` that are
        nerdpy's or docker's (and every variable of `extra`, set by the test for this command)."""
        passed = [f"{k}={v}" for k, v in env.items() if k in extra or k.startswith(self.PASSED)]
        # setpriv execs nerdpy itself (runuser stays as a parent): signals and ptys reach it as
        # they reach root's nerdpy
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "env", "-i", f"USER={self.name}",
                "PATH=/usr/local/bin:/usr/bin:/bin:/usr/games", f"PYTHONPATH={self.src}", *passed,
                PY, "-m", "nerdpy", *args]

    def own(self, path: str) -> None:
        """Give the user a test's temp directory (and passage through its parents, which pytest
        makes 0700), so that nerdpy run as the user can make its data root and run root there."""
        subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", path], check=True)
        parent = os.path.dirname(path)
        while parent not in ("/", "/tmp", ""):
            st = os.stat(parent)
            if not st.st_mode & 0o001:
                os.chmod(parent, (st.st_mode & 0o7777) | 0o011)
            parent = os.path.dirname(parent)

    def test_dir(self, name: str):
        """A new directory of the user's own for one test's data root, home and run root
        (under a 0711 directory of root's, outside pytest's temp root)."""
        import pathlib

        if not hasattr(self, "tests_root"):
            self.tests_root = tempfile.mkdtemp(prefix="nerdpy-rootless-tests-")
            os.chmod(self.tests_root, 0o711)
        d = tempfile.mkdtemp(prefix=name[:40] + "-", dir=self.tests_root)
        os.chown(d, self.uid, self.gid)
        return pathlib.Path(d)

    def kill_processes(self) -> None:
        """SIGKILL every process of the user (and of its subordinate ids): monitors, slirp4netns,
        the pause process holding its namespaces."""
        for _ in range(5):
            procs = self.processes()
            if not procs:
                return
            for pid, _ in procs:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.2)

    def sh(self, cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(["runuser", "-u", self.name, "--", "sh", "-c", cmd], capture_output=True, text=True)

    def pause_pid(self) -> int | None:
        try:
            pid = int(open(os.path.join(self.run_root, "pause.pid")).read())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def processes(self) -> list[tuple[int, str]]:
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        if f.read().rpartition(")")[2].split()[0] == "Z":
                            continue  # exited, waiting to be reaped
                    if os.stat(f"/proc/{d}").st_uid == self.uid or os.stat(f"/proc/{d}").st_uid in self.subuids:
                        out.append((int(d), open(f"/proc/{d}/cmdline", "rb").read().replace(b"\0", b" ").decode()))
                except OSError:
                    pass
        return out

    def remove(self) -> None:
        if os.path.exists(os.path.join(self.data_root, "meta.db")):
            left = self("ps", "-a", "-q", "--no-trunc").stdout.split()
            if left:
                self("rm", "-f", *left)
        self.kill_processes()
        subprocess.run(["userdel", "-r", self.name], capture_output=True)
        for f in ("/etc/subuid", "/etc/subgid"):  # userdel keeps them on some versions
            subprocess.run(["sed", "-i", f"/^{self.name}:/d", f], capture_output=True)
        shutil.rmtree(self.src, ignore_errors=True)
        shutil.rmtree(self.xdg_run, ignore_errors=True)
        if hasattr(self, "tests_root"):
            subprocess.run(["rm", "-rf", self.tests_root], capture_output=True)


def tun_opened():
    """Open /dev/net/tun to users (mode 0666, as most distributions ship it and as .ci/run may
    set it) so that slirp4netns can open it as the user; returns the function restoring its mode."""
    import stat

    if not os.path.exists("/dev/net/tun"):
        return lambda: None
    mode = stat.S_IMODE(os.stat("/dev/net/tun").st_mode)
    if mode == 0o666:
        return lambda: None
    os.chmod("/dev/net/tun", 0o666)
    return lambda: os.chmod("/dev/net/tun", mode)
