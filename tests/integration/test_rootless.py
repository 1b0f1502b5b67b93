"""Rootless nerdpy (issue 18): a throwaway user with /etc/subuid and /etc/subgid ranges runs
nerdpy through `runuser`, on its own state (~/.local/share/nerdpy, $XDG_RUNTIME_DIR/nerdpy):
pull, run (exit codes, bind and named volumes), exec, logs, ps, stop, rm, -p reached from the
host (slirp4netns), cp, a restart policy and a health check, a user network with name
resolution and compose up/down of a health-gated
app (bridge + CNI in the user's network namespace), doctor, refused resource flags, one line for
a user without the setup, and nothing left behind (mounts in the user's namespace, processes,
nothing owned by real root in its home).

The user runs Debian's /usr/bin/python3 (root's interpreter may live where the user cannot read)
on a world-readable copy of this checkout's `nerdpy` package.
"""
from __future__ import annotations

import os
import shutil
import signal
import stat
import time
import urllib.request

import pytest

from rootless_user import User, missing_tools as _missing, tun_opened


@pytest.fixture(scope="module")
def user(images):
    if os.geteuid() != 0:
        pytest.skip("integration tests need root")
    why = _missing()
    if why:
        pytest.skip("rootless tests need " + why)
    u = User(f"nprl{os.getpid() % 100000}")
    restore_tun = tun_opened()
    try:
        r = u("pull", "-q", images.busybox)
        assert r.returncode == 0, r.stderr
        yield u
        # nothing left behind: no container mount in the user's namespace, no process but the pause
        for c in u("ps", "-a", "-q").stdout.split():
            u("rm", "-f", c)
        pid = u.pause_pid()
        assert pid is not None
        with open(f"/proc/{pid}/mountinfo") as f:
            mine = [ln.split()[4] for ln in f if ln.split()[4].startswith((u.data_root, u.run_root))]
        assert [m for m in mine if not m.endswith("/netns")] == []
        deadline = time.time() + 10  # a monitor or slirp4netns may still be exiting
        while [p for p in u.processes() if p[0] != pid] and time.time() < deadline:
            time.sleep(0.2)
        assert [p for p in u.processes() if p[0] != pid] == []
        os.kill(pid, signal.SIGTERM)
    finally:
        u.remove()
        restore_tun()


def test_own_paths_and_pull(user, images):
    r = user("images", "--format", "{{.Repository}}:{{.Tag}}")
    assert images.busybox in r.stdout
    assert os.path.exists(os.path.join(user.data_root, "meta.db"))
    assert os.path.isdir(user.run_root)
    # every file of the user's state is the user's or in its subordinate range: nothing of real root
    for root, dirs, files in os.walk(user.home):
        for n in dirs + files:
            st = os.lstat(os.path.join(root, n))
            assert st.st_uid != 0, os.path.join(root, n)
    assert not os.path.exists("/var/lib/nerdpy/" + user.name)


def test_run_exit_codes(user, images):
    r = user("run", "--rm", "--network", "none", images.busybox, "sh", "-c", "id -u; exit 3")
    assert r.returncode == 3, r.stderr
    assert r.stdout.strip() == "0"
    r = user("run", "--rm", "--network", "none", images.busybox, "no-such-command")
    assert r.returncode == 127
    r = user("run", "--rm", "--network", "none", images.busybox, "sh", "-c", "ls -ln /bin/busybox")
    assert r.returncode == 0 and " 0 " in r.stdout  # owned by root inside, as in the image


def test_volumes(user, images):
    d = os.path.join(user.home, "share")
    user.sh(f"mkdir -p {d} && echo from-host > {d}/f")
    r = user("run", "--rm", "--network", "none", "-v", f"{d}:/b", "-v", "rlvol:/data", images.busybox,
             "sh", "-c", "cat /b/f; echo kept > /data/x; echo new > /b/g")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "from-host"
    assert os.stat(os.path.join(d, "g")).st_uid == user.uid  # container root is the user outside
    r = user("run", "--rm", "--network", "none", "-v", "rlvol:/data", images.busybox, "cat", "/data/x")
    assert r.stdout.strip() == "kept", r.stderr
    assert user("volume", "rm", "rlvol").returncode == 0


def test_detached_exec_logs_ps_stop_rm(user, images):
    r = user("run", "-d", "--name", "rl1", "--network", "none", images.busybox, "sh", "-c",
             "echo hello; sleep 600")
    assert r.returncode == 0, r.stderr
    assert "rl1" in user("ps", "--format", "{{.Names}}").stdout
    r = user("exec", "rl1", "sh", "-c", "echo in; exit 5")
    assert r.returncode == 5 and r.stdout.strip() == "in"
    deadline = time.time() + 5
    while "hello" not in user("logs", "rl1").stdout and time.time() < deadline:
        time.sleep(0.1)
    assert user("logs", "rl1").stdout.strip() == "hello"
    out = os.path.join(user.home, "copied")
    r = user("cp", "rl1:/etc/hostname", out)
    assert r.returncode == 0, r.stderr
    assert os.stat(out).st_uid == user.uid
    assert user("cp", out, "rl1:/tmp/back").returncode == 0
    assert user("exec", "rl1", "cat", "/tmp/back").stdout == open(out).read()
    t = time.time()
    assert user("stop", "-t", "1", "rl1").returncode == 0
    assert time.time() - t < 10
    assert "Exited (137)" in user("ps", "-a", "--format", "{{.Status}}").stdout
    assert user("rm", "rl1").returncode == 0
    assert user("ps", "-a", "-q").stdout.strip() == ""


def test_default_network_and_published_port(user, images):
    from world import free_port

    r = user("run", "--rm", images.busybox, "ip", "-4", "addr", "show", "tap0")
    assert r.returncode == 0 and "10.0.2.100" in r.stdout, r.stderr
    r = user("run", "--rm", images.busybox, "cat", "/etc/resolv.conf")
    assert "nameserver 10.0.2.3" in r.stdout  # slirp4netns's DNS forwarder
    port = free_port()
    r = user("run", "-d", "--name", "rlweb", "-p", f"{port}:80", images.busybox,
             "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
    assert r.returncode == 0, r.stderr
    try:
        assert f"0.0.0.0:{port}->80/tcp" in user("ps", "--format", "{{.Ports}}").stdout
        body = ""
        for _ in range(50):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/hostname", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert body.strip()
    finally:
        assert user("rm", "-f", "rlweb").returncode == 0
    time.sleep(0.3)
    assert not [p for p in user.processes() if "slirp4netns" in p[1]]


COMPOSE = """\
name: hello
services:
  web:
    image: {image}
    command: ["busybox", "httpd", "-f", "-p", "80", "-h", "/www"]
    volumes:
      - ./www:/www:ro
    ports:
      - "{port}:80"
    healthcheck:
      test: ["CMD", "busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
      interval: 1s
      retries: 30
  client:
    image: {image}
    command: ["busybox", "wget", "-q", "-O", "-", "http://web/"]
    depends_on:
      web:
        condition: service_healthy
"""


def test_user_network_names(user, images):
    assert user("network", "create", "rlnet").returncode == 0
    try:
        r = user("run", "-d", "--name", "rlpeer", "--network", "rlnet", images.busybox, "sleep", "600")
        assert r.returncode == 0, r.stderr
        r = user("run", "--rm", "--network", "rlnet", images.busybox, "ping", "-c", "1", "-W", "5", "rlpeer")
        assert r.returncode == 0, r.stdout + r.stderr
        assert user("rm", "-f", "rlpeer").returncode == 0
    finally:
        user("rm", "-f", "rlpeer")
        assert user("network", "rm", "rlnet").returncode == 0


def test_compose_health_gated_app(user, images):
    from world import free_port

    port = free_port()
    d = os.path.join(user.home, "hello")
    user.sh(f"mkdir -p {d}/www && echo 'hello from a nerdpy compose app' > {d}/www/index.html")
    with open(os.path.join(d, "compose.yaml"), "w") as f:
        f.write(COMPOSE.format(image=images.busybox, port=port))
    os.chown(os.path.join(d, "compose.yaml"), user.uid, user.gid)
    f = os.path.join(d, "compose.yaml")
    try:
        r = user("compose", "-f", f, "up", "-d", timeout=180)
        assert r.returncode == 0, r.stderr
        deadline = time.time() + 20
        logs = ""
        while "hello from" not in logs and time.time() < deadline:
            logs = user("compose", "-f", f, "logs", "client").stdout
            time.sleep(0.3)
        assert "hello from a nerdpy compose app" in logs
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
        assert "hello from a nerdpy compose app" in body
    finally:
        r = user("compose", "-f", f, "down")
    assert r.returncode == 0, r.stderr
    assert user("ps", "-a", "-q").stdout.strip() == ""
    assert "hello_default" not in user("network", "ls").stdout


def test_host_network(user, images):
    r = user("run", "--rm", "--network", "host", images.busybox, "sh", "-c", "ip -o link show lo")
    assert r.returncode == 0, r.stderr


def test_resource_flags_refused(user, images):
    for flag in (["--memory", "64m"], ["--cpus", "1"], ["--pids-limit", "10"]):
        r = user("run", "--rm", *flag, images.busybox, "true")
        assert r.returncode == 125
        assert len(r.stderr.strip().splitlines()) == 1 and "cgroup" in r.stderr
    assert user("ps", "-a", "-q").stdout.strip() == ""


def test_doctor_as_user(user):
    r = user("doctor")
    assert "subuid" in r.stdout and "snapshotter" in r.stdout and "/dev/net/tun" in r.stdout
    assert "kernel overlayfs inside the user namespace works" in r.stdout
    assert r.returncode == 0, r.stdout


def test_user_without_setup_gets_one_line(images):
    u = User(f"nprn{os.getpid() % 100000}", subids=False)
    try:
        r = u("images")
        assert r.returncode == 125
        assert r.stderr.strip().count("\n") == 0
        assert "subuid" in r.stderr and "install.sh --rootless" in r.stderr
        assert "SQLite" not in r.stderr and "database" not in r.stderr
    finally:
        u.remove()


# -- malicious layers, pulled by the user (the crafted images of test_malicious) -------------------
from test_malicious import E, REFUSED, _plain, crafted, sentinel, write_custom  # noqa: E402,F401

import world  # noqa: E402


@pytest.mark.parametrize("case", ["hardlink-absolute-out", "dotdot-name", "symlink-loop", "overlay-xattr-smuggled"])
def test_crafted_layers_refused_for_a_user(user, crafted, sentinel, case):
    r = user("pull", crafted[case])
    assert r.returncode == 125, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert crafted[case] not in user("images").stdout
    sentinel.assert_untouched()


def test_user_overlay_xattr_is_refused(user, registry, tmp_path):
    layout = str(tmp_path / "layout")
    write_custom(layout, "userxattr", [_plain([E("d", "dir", pax={"SCHILY.xattr.user.overlay.opaque": "y"})])])
    ref = f"{registry.host}/evil/userxattr:latest"
    world.push_layout(layout, "userxattr", ref)
    r = user("pull", ref)
    assert r.returncode == 125 and "overlay" in r.stderr, r.stderr


def test_crafted_layers_contained_for_a_user(user, crafted, sentinel):
    ref = crafted["contained"]
    r = user("pull", ref)
    assert r.returncode == 0, r.stderr
    s, tag = sentinel.path, sentinel.tag
    r = user("run", "--rm", "--network", "none", ref, "sh", "-c",
             f"cat {s}/through-absolute.txt {s}/through-relative.txt /tmp/{tag}-chain.txt /etc/{tag}-etc.txt")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["pwned"] * 4
    sentinel.assert_untouched()
    assert not os.path.exists(f"/tmp/{tag}-chain.txt") and not os.path.exists(f"/etc/{tag}-etc.txt")
    for root, dirs, files in os.walk(user.home):  # nothing of real root landed in the user's state
        for n in dirs + files:
            assert os.lstat(os.path.join(root, n)).st_uid != 0, os.path.join(root, n)
    assert user("rmi", ref).returncode == 0


def test_restart_policy_and_health_check(user, images):
    r = user("run", "-d", "--name", "rlrestart", "--network", "none", "--restart", "on-failure:2",
             images.busybox, "sh", "-c", "sleep 0.2; exit 1")
    assert r.returncode == 0, r.stderr
    r = user("run", "-d", "--name", "rlhealth", "--network", "none", "--health-cmd", "true",
             "--health-interval", "1s", images.busybox, "sleep", "600")
    assert r.returncode == 0, r.stderr
    try:
        deadline = time.time() + 30
        count = health = ""
        while time.time() < deadline and (count != "2" or health != "healthy"):
            count = user("inspect", "-f", "{{.RestartCount}}", "rlrestart").stdout.strip()
            health = user("inspect", "-f", "{{.State.Health.Status}}", "rlhealth").stdout.strip()
            time.sleep(0.5)
        assert (count, health) == ("2", "healthy")
    finally:
        user("rm", "-f", "rlrestart", "rlhealth")


def test_fuse_overlayfs_snapshotter(user, images):
    """The fallback snapshotter (for kernels without overlayfs in user namespaces), chosen by
    configuration; its own data root. /dev/fuse opened up for the test as /dev/net/tun is."""
    if shutil.which("fuse-overlayfs") is None or not os.path.exists("/dev/fuse"):
        pytest.skip("fuse-overlayfs tests need fuse-overlayfs (apt-get install fuse-overlayfs) and /dev/fuse")
    mode = stat.S_IMODE(os.stat("/dev/fuse").st_mode)
    os.chmod("/dev/fuse", 0o666)
    env = ["NERDPY_SNAPSHOTTER=fuse-overlayfs", f"XDG_DATA_HOME={user.home}/fuse-data"]
    try:
        assert user("pull", "-q", images.busybox, env=env).returncode == 0
        assert "fuse-overlayfs" in user("system", "info", env=env).stdout
        r = user("run", "-d", "--name", "rlfuse", "--network", "none", images.busybox, "sh", "-c",
                 "rm /bin/ls; rm -rf /etc; mkdir /etc; echo only > /etc/only; sleep 600", env=env)
        assert r.returncode == 0, r.stderr
        time.sleep(0.5)
        r = user("exec", "rlfuse", "sh", "-c", "grep ' / ' /proc/mounts; ls /etc", env=env)
        assert "fuse-overlayfs" in r.stdout and "only" in r.stdout, r.stdout + r.stderr
        assert user("commit", "rlfuse", "rlfuse:1", env=env).returncode == 0
        assert user("rm", "-f", "rlfuse", env=env).returncode == 0
        r = user("run", "--rm", "--network", "none", "rlfuse:1", "sh", "-c", "ls /etc; ls /bin/ls", env=env)
        # opaque /etc (only the runtime's mount points beside it), /bin/ls deleted
        assert set(r.stdout.split()) == {"only", "hostname", "hosts", "resolv.conf"}, r.stdout
        assert r.returncode != 0
        assert user("rmi", "rlfuse:1", env=env).returncode == 0
        time.sleep(0.5)
        assert not [p for p in user.processes() if "fuse-overlayfs" in p[1]]
        with open(f"/proc/{user.pause_pid()}/mountinfo") as f:  # no fuse mount left: by type
            assert not [ln for ln in f if ln.partition(" - ")[2].startswith("fuse")]
    finally:
        os.chmod("/dev/fuse", mode)


def test_devices_bound_and_access_modes_refused(user, images):
    r = user("run", "--rm", "--network", "none", "--device", "/dev/null:/dev/xnull", images.busybox, "sh", "-c",
             "stat -c '%t,%T' /dev/xnull; echo hi > /dev/xnull && echo null-ok; mknod /dev/x c 1 3 || echo no-mknod")
    assert r.stdout.split() == ["1,3", "null-ok", "no-mknod"], r.stdout + r.stderr
    r = user("run", "--rm", "--network", "none", "--device", "/dev/null:/dev/xnull:r", images.busybox, "true")
    assert r.returncode == 125 and len(r.stderr.strip().splitlines()) == 1 and "device cgroup" in r.stderr
    r = user("run", "--rm", "--network", "none", "--pid", "host", images.busybox, "cat", "/proc/1/comm")
    assert r.returncode == 0 and r.stdout.strip() not in ("cat", "sh"), r.stdout + r.stderr
    assert user("ps", "-a", "-q").stdout.strip() == ""
