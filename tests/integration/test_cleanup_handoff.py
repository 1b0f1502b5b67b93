"""The final cleanup of a container: the foreground `run`, `stop` and `rm -f`, which have the
engine loaded, take it over from the monitor (which would have to import the engine first; see
nerdpy/engine/runtime/monitor/handoff.py). What a user sees must not change: when they return, an `--rm`
container is gone and any other is exited and unmounted; and when the CLI dies before or during
the cleanup, the monitor still does it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

T = 60


def _mounted_under(prefix: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]


def test_run_rm_returns_with_the_container_gone(nerdpy, images):
    nerdpy("pull", "-q", images.busybox, check=True)
    r = nerdpy("run", "--rm", "--network", "none", images.busybox, "sh", "-c", "echo out; echo err >&2; exit 7",
               timeout=T)
    assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n")
    assert nerdpy("ps", "-a", "-q", check=True).stdout == ""
    assert _mounted_under(nerdpy.data_root) == []
    assert os.listdir(os.path.join(nerdpy.data_root, "containers", "default")) == []


def test_run_returns_with_the_container_exited_and_unmounted(nerdpy, images):
    nerdpy("pull", "-q", images.busybox, check=True)
    r = nerdpy("run", "--name", "once", "--network", "none", images.busybox, "echo", "hi", timeout=T)
    assert (r.returncode, r.stdout) == (0, "hi\n")
    # no wait: the state is final and the rootfs unmounted when `run` returns
    st = nerdpy("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "once", check=True).stdout.split()
    assert st == ["exited", "0"]
    assert _mounted_under(nerdpy.data_root) == []
    r = nerdpy("start", "-a", "once", timeout=T)
    assert (r.returncode, r.stdout) == (0, "hi\n")
    nerdpy("rm", "once", check=True)


def test_monitor_cleans_up_when_the_cli_is_killed(nerdpy, images):
    nerdpy("pull", "-q", images.busybox, check=True)
    p = subprocess.Popen([sys.executable, "-m", "nerdpy", "--data-root", nerdpy.data_root, "run", "--rm",
                          "--name", "orphan", "--network", "none", images.busybox, "sleep", "1"],
                         env=nerdpy.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + T
    while nerdpy("ps", "-q", "--filter", "name=orphan").stdout.strip() == "":
        assert time.monotonic() < deadline and p.poll() is None, "the container never ran"
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    # the container still runs its second, then the monitor removes it
    while nerdpy("ps", "-a", "-q").stdout.strip():
        assert time.monotonic() < deadline, "the monitor did not remove the --rm container"
        time.sleep(0.1)
    assert _mounted_under(nerdpy.data_root) == []
    assert os.listdir(os.path.join(nerdpy.data_root, "containers", "default")) == []


def test_stop_and_rm_f_return_with_the_cleanup_done(nerdpy, images):
    nerdpy("pull", "-q", images.busybox, check=True)
    nerdpy("run", "-d", "--name", "a", "--network", "none", images.busybox, "sleep", "60", check=True)
    nerdpy("run", "-d", "--rm", "--name", "b", "--network", "none", images.busybox, "sleep", "60", check=True)
    nerdpy("run", "-d", "--name", "c", "--restart", "always", "--network", "none", images.busybox,
           "sleep", "60", check=True)
    # `stop`: exited and unmounted when it returns (sleep as pid 1 ignores TERM: killed after 1 s)
    nerdpy("stop", "-t", "1", "a", check=True, timeout=T)
    st = nerdpy("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "a", check=True).stdout.split()
    assert st == ["exited", "137"]
    rootfs = os.path.join(nerdpy.data_root, "containers", "default")
    cid_a = nerdpy("inspect", "-f", "{{.Id}}", "a", check=True).stdout.strip()
    assert _mounted_under(os.path.join(rootfs, cid_a)) == []
    # an --rm container stopped: gone when `stop` returns
    nerdpy("stop", "-t", "0", "b", check=True, timeout=T)
    assert sorted(nerdpy("ps", "-a", "--format", "{{.Names}}", check=True).stdout.split()) == ["a", "c"]
    # rm -f of a running container with a restart policy: nothing left, no restart
    nerdpy("rm", "-f", "c", check=True, timeout=T)
    nerdpy("rm", "a", check=True, timeout=T)
    assert nerdpy("ps", "-a", "-q", check=True).stdout == ""
    assert _mounted_under(nerdpy.data_root) == []
    assert os.listdir(rootfs) == []
    assert os.listdir(os.path.join(nerdpy.run_root, "default")) == []
