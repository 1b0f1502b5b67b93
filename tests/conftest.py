"""Fixtures: real registries with test images built independently of nerdpy, and a `nerdpy`
runner with a fresh data root per test.

NERDPY_TEST_ROOTLESS=1 (issue 18) runs every command of the `nerdpy` runner as a throwaway
rootless user (tests/rootless_user.py) on the test's own data root and run root, so that the
docker-compatibility modules measure rootless nerdpy; a test needing a privilege a user cannot
have is marked `@pytest.mark.needs_root("why")` and skipped in that mode only (the reasons are
listed in docs/compatibility.md, "Rootless")."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import skipcheck  # noqa: E402
import world  # noqa: E402


ROOTLESS = os.environ.get("NERDPY_TEST_ROOTLESS", "") not in ("", "0")


def pytest_configure(config):
    if ROOTLESS and not config.option.basetemp:
        # a temp root of this session's own: pytest resets /tmp/pytest-of-root to 0700 whenever
        # another session starts, which would lock the user out of its test's files
        config.option.basetemp = f"/tmp/nerdpy-rootless-pytest-{os.getpid()}"
    config.addinivalue_line("markers", "needs_root(reason): skipped when the tests run as a rootless "
                            "user (NERDPY_TEST_ROOTLESS=1): a privilege a user cannot have")
    config.addinivalue_line("markers", "as_rootless_user: the `nerdpy` runner runs as a throwaway rootless "
                            "user in this module, as with NERDPY_TEST_ROOTLESS=1")
    # a skip for a missing tool or for not being root ends the run with one line saying what to
    # install, and fails a strict run (CI, scripts/test.sh): see skipcheck
    config.pluginmanager.register(skipcheck.LoudSkips(), "nerdpy-loud-skips")
    if hasattr(config.option, "rerun_show_tracebacks"):
        # a test that passed on its retry still shows why its first run failed (a flake to fix)
        config.option.rerun_show_tracebacks = True


def _integration_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "integration tests need root"
    missing = world.tools_missing()
    if missing:
        return "missing tools: " + ", ".join(missing)
    return None


def _can_rerun() -> bool:
    try:
        import pytest_rerunfailures  # noqa: F401
    except ImportError:
        return False
    return True


def pytest_collection_modifyitems(config, items):
    reason = _integration_skip_reason()
    rerun = _can_rerun()
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
            if rerun:
                # real containers on a 2-core machine: one retry for a test that lost a race
                # with the machine's load (a failure twice in a row still fails)
                item.add_marker(pytest.mark.flaky(reruns=1, reruns_delay=1))
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
        mark = item.get_closest_marker("needs_root")
        if mark is not None and (ROOTLESS or item.get_closest_marker("as_rootless_user")):
            why = mark.args[0] if mark.args else "a privilege a user cannot have"
            item.add_marker(pytest.mark.skip(reason="not for a rootless user: " + why))


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    reg = world.Registry(str(tmp_path_factory.mktemp("registry")))
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def images(registry):
    return world.Images(registry)


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory):
    reg = world.AuthRegistry(str(tmp_path_factory.mktemp("auth-registry")))
    yield reg
    reg.stop()


# one default bridge and subnet per test session, so that sessions running side by side (and
# the host's own nerdpy) never share a bridge or hand out the same addresses
_SESSION_NET = os.getpid() % 200 + 20
BRIDGE_NAME = f"npt{os.getpid() % 100000}"
BRIDGE_SUBNET = f"10.{_SESSION_NET}.77.0/24"


@pytest.fixture(scope="session", autouse=True)
def _session_bridge():
    yield
    from nerdpy.engine.network.networks import remove_bridge

    remove_bridge(BRIDGE_NAME)  # with its loopback drop rule and its isolation rules


# -- zero leaks over the whole session (issue 8) -------------------------------------------------
_SESSION_LEAKS: list[str] = []
LEAK_SETTLE = float(os.environ.get("NERDPY_LEAK_SETTLE", "20"))


@pytest.fixture(scope="session", autouse=True)
def _zero_leaks(request, _session_bridge, tmp_path_factory):
    """The host at the session's end as at its start, for everything this session's nerdpy made:
    mounts, netns files, runc state and processes under the session's temp root; veths, rules,
    cgroups and processes of its containers; bridges of its networks; files naming its containers
    outside the test roots (/run/netns, /var/lib/cni, /run/nerdpy...). Other sessions and tools on
    the machine are never counted (see hostleaks). Runs its check before the session bridge is
    deleted (it depends on that fixture), after a settle period; a leak fails the run in
    pytest_sessionfinish (exit status 1) with what was left."""
    if os.geteuid() != 0 or not any("integration" in str(i.fspath) for i in request.session.items):
        yield
        return
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "integration")
    if here not in sys.path:
        sys.path.insert(0, here)
    import hostleaks

    base = str(tmp_path_factory.getbasetemp())
    since = time.time()
    hostleaks.baseline()
    before = hostleaks.HostState.take_session(base, since)
    yield

    def same():
        d = before.diff(hostleaks.HostState.take_session(base, since))
        d = {k: v["new"] for k, v in d.items() if v["new"]}
        if d:
            raise AssertionError(json.dumps(d, indent=1))

    try:
        hostleaks.settle(same, timeout=LEAK_SETTLE, interval=0.5)
    except AssertionError as e:
        _SESSION_LEAKS.append(str(e))


def pytest_unconfigure(config):
    base = f"/tmp/nerdpy-rootless-pytest-{os.getpid()}"
    if ROOTLESS and str(config.option.basetemp) == base:
        subprocess.run(["rm", "-rf", base], capture_output=True)


def pytest_sessionfinish(session, exitstatus):
    if not _SESSION_LEAKS:
        return
    msg = "nerdpy left these on the host after the session (zero-leak check):\n" + "\n".join(_SESSION_LEAKS)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "session leak check failed", red=True)
        reporter.write_line(msg)
    else:
        sys.stderr.write(msg + "\n")
    session.exitstatus = 1


class Nerdpy:
    def __init__(self, data_root: str, home: str, run_root: str, netconf: str | None = None, user=None):
        self.data_root = data_root
        self.home = home
        self.run_root = run_root
        self.user = user  # a rootless_user.User that runs every command (NERDPY_TEST_ROOTLESS=1)
        self.env = dict(os.environ, HOME=home, NERDPY_CONFIG="/nonexistent", NERDPY_RUN_ROOT=run_root,
                        NERDPY_BRIDGE_NAME=BRIDGE_NAME, NERDPY_BRIDGE_SUBNET=BRIDGE_SUBNET)
        if netconf:
            self.env["NERDPY_CNI_NETCONFPATH"] = netconf
        self.env.pop("DOCKER_CONFIG", None)

    def argv(self, *args, env: dict | None = None) -> list[str]:
        """The command line running `nerdpy ARGS` on this data root (as the rootless user, with
        this runner's environment and `env`, when there is one; else with `self.env`)."""
        if self.user is None:
            return [sys.executable, "-m", "nerdpy", "--data-root", self.data_root, *args]
        e = dict(self.env)
        e.update(env or {})
        return self.user.argv("--data-root", self.data_root, *args, env=e, extra=env or {})

    # what a test sees differently as a rootless user, where that is the kernel's doing
    def give(self, path) -> None:
        """A host directory the test made, made the rootless user's (as a user's own files are);
        nothing for root."""
        if self.user is not None:
            subprocess.run(["chown", "-R", f"{self.user.uid}:{self.user.gid}", str(path)], check=True)

    def host_id(self, n: int) -> int:
        """The host's uid for uid `n` in a container (the kernel shows tmpfs's uid= that way)."""
        if self.user is None or n == 0:
            return n if self.user is None else self.user.uid
        return self.user.subuids.start + n - 1

    def cap_ceiling(self) -> int:
        """The capabilities `--cap-add ALL` can reach: root's own set, or every capability in
        the rootless user's namespace (its pause process's)."""
        pid = None
        if self.user is not None:
            with open(os.path.join(self.run_root, "pause.pid")) as f:
                pid = int(f.read())
        with open(f"/proc/{pid or 'self'}/status") as f:
            return int(next(ln for ln in f if ln.startswith("CapEff:")).split()[1], 16)

    def __call__(self, *args, input=None, env=None, check=False, timeout=120):
        e = dict(self.env)
        e.update(env or {})
        r = subprocess.run(self.argv(*args, env=env), capture_output=True, text=True, input=input, env=e,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"nerdpy {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r


def _unmount_under(prefix: str) -> None:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for p in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", p], capture_output=True)


@pytest.fixture(scope="session")
def rootless_user():
    """NERDPY_TEST_ROOTLESS=1: the throwaway user the `nerdpy` runner runs commands as, with
    /dev/net/tun opened to users for slirp4netns (restored afterwards)."""
    import rootless_user as ru

    why = ru.missing_tools()
    if why:
        pytest.skip("rootless tests need " + why)
    u = ru.User(f"nprt{os.getpid() % 100000}")
    restore_tun = ru.tun_opened()
    try:
        yield u
    finally:
        u.remove()
        restore_tun()


@pytest.fixture
def nerdpy(request, tmp_path):
    as_user = ROOTLESS or request.node.get_closest_marker("as_rootless_user") is not None
    user = request.getfixturevalue("rootless_user") if as_user else None
    if user is not None:
        user.own(str(tmp_path))
    # a rootless user's data root, home and run root: in a directory of the user's own
    base = tmp_path if user is None else user.test_dir(tmp_path.name)
    data_root = str(base / "data")
    home = base / "home"
    home.mkdir()
    if user is not None:
        os.chown(home, user.uid, user.gid)
    run_root = str(base / "run")
    n = Nerdpy(data_root, str(home), run_root, netconf=str(tmp_path / "net.d"), user=user)
    yield n
    if user is not None:
        remove_everything(n)
        # everything of the user's goes: its monitors, slirp4netns and the pause process holding
        # the user namespace (with every mount of the test's data root in it)
        user.kill_processes()
        subprocess.run(["rm", "-rf", str(base)], capture_output=True)
        return
    remove_everything(n, stop=True)
    _unmount_under(str(tmp_path))


def remove_everything(n: Nerdpy, stop: bool = False) -> None:
    """What a test left in a store goes (its containers, which tears their networks down too,
    and its networks); with `stop`, whatever could not be removed is stopped."""
    if os.path.exists(os.path.join(n.data_root, "meta.db")):
        left = n("ps", "-a", "-q", "--no-trunc").stdout.split()
        if left:
            n("rm", "-f", *left)
        n("network", "prune", "-f")
    if not stop:
        return
    run_root = n.run_root
    world.kill_monitors(run_root)
    runc_root = os.path.join(run_root, "runc")
    if os.path.isdir(runc_root):
        for ns in os.listdir(runc_root):
            for cid in os.listdir(os.path.join(runc_root, ns)):
                subprocess.run(["runc", "--root", os.path.join(runc_root, ns), "delete", "-f", cid],
                               capture_output=True)
