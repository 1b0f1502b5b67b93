"""Behaviour scripts rely on: `run -a` forwards only the chosen streams, `kill` returns once the
container has stopped, `.State.OOMKilled` after a real OOM kill by the memory cgroup."""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pytest  # noqa: E402
import rootless_user  # noqa: E402

T = 60


def state(nerdpy, name: str) -> dict:
    return json.loads(nerdpy("inspect", "--format", "{{json .State}}", name, check=True).stdout)


def test_attach_chosen_streams(nerdpy, images):
    both = "echo to-out; echo to-err >&2"
    nerdpy("pull", "-q", images.busybox, check=True)
    r = nerdpy("run", "--rm", "-a", "stdout", images.busybox, "sh", "-c", both, timeout=T)
    assert (r.returncode, r.stdout, r.stderr) == (0, "to-out\n", "")
    r = nerdpy("run", "--rm", "-a", "STDERR", images.busybox, "sh", "-c", both, timeout=T)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "to-err\n")
    r = nerdpy("run", "--rm", "-a", "stdout", "-a", "stderr", images.busybox, "sh", "-c", both, timeout=T)
    assert (r.stdout, r.stderr) == ("to-out\n", "to-err\n")
    r = nerdpy("run", "--rm", "-a", "bogus", images.busybox, "true", timeout=T)
    assert r.returncode == 125 and "valid streams are STDIN, STDOUT and STDERR" in r.stderr
    r = nerdpy("run", "-d", "-a", "stdout", images.busybox, "true", timeout=T)
    assert r.returncode == 125 and "--attach and --detach" in r.stderr
    assert nerdpy("ps", "-aq").stdout.strip() == ""


def test_kill_returns_once_stopped(nerdpy, images):
    for i in range(3):
        nerdpy("run", "-d", "--name", f"k{i}", images.busybox, "sleep", "300", check=True)
        nerdpy("kill", f"k{i}", check=True)
        st = state(nerdpy, f"k{i}")
        assert (st["Running"], st["Status"], st["ExitCode"]) == (False, "exited", 137), st
    nerdpy("run", "-d", "--name", "kr", "--restart", "always", images.busybox, "sleep", "300", check=True)
    pid = state(nerdpy, "kr")["Pid"]
    nerdpy("kill", "kr", check=True)
    st = state(nerdpy, "kr")
    assert st["Pid"] != pid, st
    nerdpy("rm", "-f", "k0", "k1", "k2", "kr", check=True)


@pytest.mark.needs_root(rootless_user.CGROUP)
def test_oom_killed(nerdpy, images):
    hog = 'x=$(head -c 64m /dev/zero | tr "\\0" a); echo survived'
    r = nerdpy("run", "--name", "oom", "--memory", "8m", "--memory-swap", "8m", images.busybox,
               "sh", "-c", hog, timeout=T)
    assert "survived" not in r.stdout
    st = state(nerdpy, "oom")
    assert st["OOMKilled"] is True, st
    assert st["ExitCode"] == r.returncode != 0
    ev = nerdpy("events", "--since", "0", "--until", "0s", "--filter", "container=oom", "--format", "{{.Action}}",
                check=True).stdout.split()
    assert ev[-2:] == ["oom", "die"], ev  # docker's oom event, before the die
    nerdpy("run", "--name", "fine", "--memory", "8m", images.busybox, "true", check=True)
    assert state(nerdpy, "fine")["OOMKilled"] is False
    nerdpy("rm", "oom", "fine", check=True)
