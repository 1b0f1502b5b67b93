"""`attach`, `top`, `rename`, `pause`/`unpause` and `container prune` against real containers."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time

import pytest
import rootless_user


@pytest.fixture
def bb(nerdpy, images):
    nerdpy("pull", "-q", images.busybox, check=True)
    return images.busybox


def wait_for(pred, timeout=10.0, interval=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()


def state(nerdpy, name) -> dict:
    return json.loads(nerdpy("inspect", "-f", "{{json .State}}", name).stdout)


# -- pause / unpause ---------------------------------------------------------------------------
@pytest.mark.needs_root(rootless_user.FREEZER)
def test_pause_unpause(nerdpy, bb):
    nerdpy("run", "-d", "--name", "p", bb, "sh", "-c", "while true; do date +%s%N >> /tmp/ticks; sleep 0.05; done",
           check=True)
    assert nerdpy("pause", "p").stdout == "p\n"
    st = state(nerdpy, "p")
    assert st["Status"] == "paused" and st["Paused"] is True and st["Running"] is True
    assert re.search(r"Up .* \(Paused\)\s+p$", nerdpy("ps").stdout.splitlines()[1])
    assert nerdpy("ps", "-q", "--filter", "status=paused").stdout.strip() != ""
    # frozen: nothing runs while paused
    n1 = _ticks(nerdpy)
    time.sleep(0.5)
    assert _ticks(nerdpy) == n1
    r = nerdpy("pause", "p")
    assert r.returncode == 1 and "already paused" in r.stderr
    assert nerdpy("unpause", "p").stdout == "p\n"
    st = state(nerdpy, "p")
    assert st["Status"] == "running" and st["Paused"] is False
    assert "(Paused)" not in nerdpy("ps").stdout
    assert wait_for(lambda: _ticks(nerdpy) > n1)
    r = nerdpy("unpause", "p")
    assert r.returncode == 1 and "is not paused" in r.stderr
    # a paused container can still be stopped
    nerdpy("pause", "p", check=True)
    nerdpy("stop", "-t", "1", "p", check=True)
    assert state(nerdpy, "p")["Status"] == "exited"
    r = nerdpy("pause", "p", "nosuch")
    assert r.returncode == 1 and "is not running" in r.stderr and "nosuch" in r.stderr


def _ticks(nerdpy) -> int:
    """Lines in the container's /tmp/ticks, read on the host through its rootfs."""
    cid = nerdpy("inspect", "-f", "{{.Id}}", "p").stdout.strip()
    path = os.path.join(nerdpy.data_root, "containers", "default", cid, "rootfs", "tmp", "ticks")
    try:
        with open(path) as f:
            return len(f.read().splitlines())
    except FileNotFoundError:
        return 0


# -- top ---------------------------------------------------------------------------------------
def test_top(nerdpy, bb):
    nerdpy("run", "-d", "--name", "t", bb, "sh", "-c", "sleep 600 & exec sleep 601", check=True)
    assert wait_for(lambda: "sleep 600" in nerdpy("top", "t").stdout)
    lines = nerdpy("top", "t", check=True).stdout.splitlines()
    assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert lines[0].startswith("UID                 PID")          # docker's tabwriter: 20 wide
    cmds = sorted(re.split(r"\s{2,}", line.strip())[-1] for line in lines[1:])
    assert cmds == ["sleep 600", "sleep 601"]
    pid = state(nerdpy, "t")["Pid"]
    assert str(pid) in [line.split()[1] for line in lines[1:]]
    # ps options are passed on; the PID column is required
    lines = nerdpy("top", "t", "-o", "pid,comm", check=True).stdout.splitlines()
    assert lines[0].split() == ["PID", "COMMAND"] and len(lines) == 3
    assert all(line.split()[1] == "sleep" for line in lines[1:])
    r = nerdpy("top", "t", "-o", "comm")
    assert r.returncode == 1 and "PID" in r.stderr
    nerdpy("stop", "-t", "0", "t", check=True)
    r = nerdpy("top", "t")
    assert r.returncode == 1 and "is not running" in r.stderr


# -- rename --------------------------------------------------------------------------------------
def test_rename(nerdpy, bb):
    nerdpy("run", "-d", "--name", "old", bb, "sleep", "600", check=True)
    nerdpy("create", "--name", "other", bb, "true", check=True)
    r = nerdpy("rename", "old", "new")
    assert r.returncode == 0 and r.stdout == ""
    assert nerdpy("ps", "--format", "{{.Names}}").stdout == "new\n"
    assert nerdpy("inspect", "-f", "{{.Name}}", "new").stdout == "/new\n"
    assert nerdpy("exec", "new", "echo", "still-running").stdout == "still-running\n"
    r = nerdpy("inspect", "old")
    assert r.returncode == 1
    r = nerdpy("rename", "new", "other")
    assert r.returncode == 1 and 'the container name "/other" is already in use' in r.stderr
    r = nerdpy("rename", "new", "new")
    assert r.returncode == 1 and "same name" in r.stderr
    r = nerdpy("rename", "new", "bad name!")
    assert r.returncode == 1 and "invalid container name" in r.stderr
    r = nerdpy("rename", "nosuch", "x")
    assert r.returncode == 1 and "No such container" in r.stderr
    # the old name is free again
    nerdpy("create", "--name", "old", bb, "true", check=True)
    nerdpy("container", "rename", "other", "other2", check=True)
    assert sorted(nerdpy("ps", "-a", "--format", "{{.Names}}").stdout.split()) == ["new", "old", "other2"]


# -- attach ---------------------------------------------------------------------------------------
def test_attach_to_detached_container_streams_and_passes_exit_code(nerdpy, bb):
    nerdpy("run", "-d", "--name", "a", bb, "sh", "-c",
           "while [ ! -e /go ]; do echo tick; sleep 0.1; done; echo bye-out; echo bye-err >&2; exit 7", check=True)
    p = subprocess.Popen(nerdpy.argv("attach", "a"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=nerdpy.env)
    try:
        assert p.stdout.readline() == b"tick\n"      # attached and streaming
        nerdpy("exec", "a", "touch", "/go", check=True)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 7
    assert out.endswith(b"bye-out\n") and b"bye-err\n" in err
    r = nerdpy("attach", "a")
    assert r.returncode == 1 and "You cannot attach to a stopped container" in r.stderr


def _pty_run(argv, env, size=None):
    pid, fd = pty.fork()
    if pid == 0:
        if size:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
        os.environ.update(env)
        os.execvp(argv[0], argv)
    return pid, fd


def _read_until(fd, needle: bytes, timeout=20.0) -> bytes:
    buf = b""
    end = time.monotonic() + timeout
    while needle not in buf and time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


def _wait_exit(pid, timeout=20.0) -> int | None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.WEXITSTATUS(status)
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return None


def test_attach_tty_detach_keys_and_exit_code(nerdpy, bb):
    nerdpy("run", "-dit", "--name", "sh", bb, "sh", check=True)
    argv = nerdpy.argv("attach", "sh")
    pid, fd = _pty_run(argv, nerdpy.env, size=(31, 97))
    try:
        time.sleep(0.3)
        os.write(fd, b"echo hi-$(stty size)\n")
        assert b"hi-31 97" in _read_until(fd, b"hi-31 97")
        os.write(fd, b"\x10\x11")                     # ctrl-p ctrl-q
        assert _wait_exit(pid) == 0
    finally:
        os.close(fd)
    assert state(nerdpy, "sh")["Status"] == "running"
    # docker's events: the client's terminal size is a `resize`, ctrl-p ctrl-q a `detach`
    out = nerdpy("events", "--since", "0", "--until", "0s", "--filter", "container=sh", "--format",
                 "{{.Action}} {{.Actor.Attributes.height}} {{.Actor.Attributes.width}}", check=True).stdout
    actions = [line.split(" ")[0] for line in out.splitlines()]
    assert actions[-3:] == ["attach", "resize", "detach"], out
    assert "resize 31 97" in out.splitlines(), out
    # attach again, then the shell exits: its code is attach's
    pid, fd = _pty_run(argv, nerdpy.env)
    try:
        time.sleep(0.3)
        os.write(fd, b"echo again-$((1+1))\n")
        assert b"again-2" in _read_until(fd, b"again-2")
        os.write(fd, b"exit 3\n")
        assert _wait_exit(pid) == 3
    finally:
        os.close(fd)
    st = state(nerdpy, "sh")
    assert st["Status"] == "exited" and st["ExitCode"] == 3


@pytest.mark.needs_root(rootless_user.FREEZER)
def test_attach_refusals(nerdpy, bb):
    nerdpy("run", "-dit", "--name", "tty", bb, "sh", check=True)
    r = nerdpy("attach", "tty", input="")            # stdin is not a terminal
    assert r.returncode == 1 and "the input device is not a TTY" in r.stderr
    nerdpy("pause", "tty", check=True)
    r = nerdpy("attach", "tty")
    assert r.returncode == 1 and "paused" in r.stderr
    nerdpy("unpause", "tty", check=True)
    r = nerdpy("attach", "nosuch")
    assert r.returncode == 1 and "No such container" in r.stderr


# -- container prune ------------------------------------------------------------------------------
def test_container_prune(nerdpy, bb):
    nerdpy("run", "-d", "--name", "keep", bb, "sleep", "600", check=True)
    gone1 = nerdpy("run", "-d", "--name", "gone1", bb, "true", check=True).stdout.strip()
    gone2 = nerdpy("create", "--name", "gone2", bb, "true", check=True).stdout.strip()
    assert wait_for(lambda: state(nerdpy, "gone1")["Status"] == "exited")
    r = nerdpy("container", "prune", "-f", check=True)
    lines = r.stdout.splitlines()
    assert lines[0] == "Deleted Containers:"
    assert sorted(lines[1:3]) == sorted([gone1, gone2])
    assert "Total reclaimed space:" in r.stdout
    assert nerdpy("ps", "-a", "--format", "{{.Names}}").stdout == "keep\n"
    assert not os.path.exists(os.path.join(nerdpy.data_root, "containers", "default", gone1))
