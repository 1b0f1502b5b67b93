"""`run`/`create` flags that shape the OCI runtime spec, each checked by running a real container
and looking at what a user would see: output of a command inside, exit codes, `inspect`.

One container per test (a few tests need two), `--rm` where possible, no network.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import rootless_user  # noqa: E402
import world  # noqa: E402

T = 60  # per command


def run(nerdpy, *args, rc: int | None = 0, env=None):
    r = nerdpy("run", "--rm", "-q", *args, timeout=T, env=env)
    if rc is not None:
        assert r.returncode == rc, f"exit {r.returncode}: {r.stderr}\n{r.stdout}"
    return r


def out(nerdpy, *args, env=None) -> str:
    return run(nerdpy, *args, env=env).stdout


def status_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            fields[k.strip()] = v.strip()
    return fields


def host_cap_eff() -> int:
    with open("/proc/self/status") as f:
        return int(status_fields(f.read())["CapEff"], 16)


def mounts_under(root: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(root)]


def assert_nothing_left(nerdpy) -> None:
    ps = nerdpy("ps", "-a", "-q", timeout=T)
    assert ps.returncode == 0, ps.stderr
    assert ps.stdout.strip() == ""
    assert mounts_under(nerdpy.data_root) == []


def cgroup_v2() -> bool:
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


# -- environment, working directory, entrypoint --------------------------------------------------
def test_default_environment(nerdpy, images):
    env = out(nerdpy, images.busybox, "env").splitlines()
    assert env[0] == world.PATH_ENV
    assert re.fullmatch(r"HOSTNAME=[0-9a-f]{12}", env[1])
    assert env[2:] == ["HOME=/root"]


def test_env_flags_and_env_file(nerdpy, images, tmp_path):
    envfile = tmp_path / "env"
    envfile.write_text("# a comment\n\nA=1\n  B=two words \nFROM_HOST\nNOT_SET_ANYWHERE\nC=from-file\n")
    env = out(nerdpy, "--env-file", str(envfile), "-e", "C=from-flag", "-e", "PATH=/bin",
              "-e", "HOME=/h", "-e", "ALSO_FROM_HOST", "-e", "ALSO_NOT_SET", images.busybox, "env",
              env={"FROM_HOST": "x y", "ALSO_FROM_HOST": "z"}).splitlines()
    assert env[0] == "PATH=/bin"
    assert re.fullmatch(r"HOSTNAME=[0-9a-f]{12}", env[1])
    assert env[2:] == ["A=1", "B=two words ", "FROM_HOST=x y", "C=from-flag", "HOME=/h", "ALSO_FROM_HOST=z"]


def test_workdir_is_created(nerdpy, images):
    assert out(nerdpy, "-w", "/srv/new/dir", images.busybox, "pwd") == "/srv/new/dir\n"


@pytest.mark.parametrize("args, expected", [
    (["--entrypoint", "echo", "IMAGE", "hi", "there"], "hi there\n"),
    (["--entrypoint", "", "IMAGE", "echo", "reset"], "reset\n"),
    (["--entrypoint", "/bin/sh", "IMAGE", "-c", "echo $0"], "/bin/sh\n"),
])
def test_entrypoint(nerdpy, images, args, expected):
    args = [images.busybox if a == "IMAGE" else a for a in args]
    assert out(nerdpy, *args) == expected


def test_empty_entrypoint_without_command_is_refused(nerdpy, images):
    r = nerdpy("run", "-q", "--entrypoint", "", images.busybox, timeout=T)
    assert r.returncode == 125
    assert r.stderr.strip() == "nerdpy: no command specified"
    assert_nothing_left(nerdpy)


# -- users and groups ----------------------------------------------------------------------------
@pytest.mark.parametrize("user, expected", [
    ("app", "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra) /home/app"),
    ("1000", "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra) /home/app"),
    ("app:extra", "uid=1000(app) gid=2000(extra) groups=2000(extra) /home/app"),
    ("nobody", "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup) /nonexistent"),
    ("1234:5678", "uid=1234 gid=5678 groups=5678 /"),
])
def test_user(nerdpy, images, user, expected):
    got = out(nerdpy, "-u", user, images.busybox, "sh", "-c", 'echo "$(id) $HOME"')
    assert got.strip() == expected


def test_group_add(nerdpy, images):
    got = out(nerdpy, "-u", "app", "--group-add", "root", "--group-add", "4321", images.busybox, "id")
    assert got.strip() == "uid=1000(app) gid=1000(app) groups=0(root),1000(app),2000(extra),4321"


# -- hostname and the /etc files -----------------------------------------------------------------
@pytest.mark.needs_root(rootless_user.DOMAINNAME)
def test_hostname_and_etc_files(nerdpy, images):
    got = out(nerdpy, "--network", "none", "-h", "myhost", "--domainname", "example.com", images.busybox, "sh", "-c",
              "hostname; cat /etc/hostname; echo $HOSTNAME; cat /proc/sys/kernel/domainname; echo ---;"
              " cat /etc/hosts; echo ---; test -s /etc/resolv.conf && echo resolv")
    names, hosts, resolv = got.split("---\n")
    assert names.split() == ["myhost", "myhost", "myhost", "example.com"]
    assert hosts.splitlines()[:2] == ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    assert "myhost" not in hosts  # docker: no address, no line for the name (--network none)
    assert resolv == "resolv\n"
    # on the default bridge the name has the container's address, fully qualified first (docker)
    hosts = out(nerdpy, "-h", "myhost", "--domainname", "example.com", images.busybox, "cat", "/etc/hosts")
    assert re.search(r"^\d+\.\d+\.\d+\.\d+\tmyhost\.example\.com myhost$", hosts, re.M), hosts


# -- volumes, binds, tmpfs, read-only root -------------------------------------------------------
def test_bind_mounts_ro_rw_z(nerdpy, images, tmp_path):
    d = tmp_path / "shared"
    d.mkdir()
    (d / "f").write_text("from host\n")
    nerdpy.give(d)
    got = out(nerdpy, "-v", f"{d}:/ro:ro", "-v", f"{d}:/rw:rw,z", "-v", f"{d}:/z:z", images.busybox, "sh", "-c",
              "cat /ro/f; touch /ro/x 2>/dev/null && echo ro-writable; echo a > /rw/a && echo b > /z/b && echo wrote")
    assert got == "from host\nwrote\n"
    assert (d / "a").read_text() == "a\n" and (d / "b").read_text() == "b\n"
    assert not (d / "x").exists()


def test_named_volume_persists(nerdpy, images):
    assert out(nerdpy, "-v", "data1:/data", images.busybox, "sh", "-c", "echo persisted > /data/f") == ""
    assert out(nerdpy, "-v", "data1:/data:ro", images.busybox, "sh", "-c",
               "cat /data/f; touch /data/g 2>/dev/null || echo read-only") == "persisted\nread-only\n"


def test_anonymous_volume_removed_with_rm(nerdpy, images):
    got = out(nerdpy, "-v", "/anon", images.busybox, "sh", "-c",
              "echo x > /anon/f && grep -c ' /anon ' /proc/mounts")
    assert got == "1\n"
    vroot = os.path.join(nerdpy.data_root, "volumes", "default")
    assert not os.path.isdir(vroot) or os.listdir(vroot) == []


def test_mount_flag_bind_volume_tmpfs(nerdpy, images, tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    (d / "f").write_text("bound\n")
    got = out(nerdpy,
              "--mount", f"type=bind,source={d},target=/b,readonly",
              "--mount", "type=volume,source=vol2,target=/v",
              "--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770",
              images.busybox, "sh", "-c",
              "cat /b/f; touch /b/x 2>/dev/null || echo b-ro; echo v > /v/f && echo v-rw;"
              " grep ' /t ' /proc/mounts; stat -c %a /t")
    lines = got.splitlines()
    assert lines[:3] == ["bound", "b-ro", "v-rw"]
    opts = lines[3].split()[3].split(",")
    assert {"size=1024k", "mode=1770", "noexec", "nosuid", "nodev"} <= set(opts)
    assert lines[4] == "1770"


def test_tmpfs_flag(nerdpy, images):
    got = out(nerdpy, "--tmpfs", "/x:size=2m,mode=1777", "--tmpfs", "/y:exec,uid=1000", images.busybox, "sh", "-c",
              "grep ' /x ' /proc/mounts; grep ' /y ' /proc/mounts; stat -c '%a %u' /x /y")
    x, y, xs, ys = got.splitlines()
    xo, yo = set(x.split()[3].split(",")), set(y.split()[3].split(","))
    assert {"size=2048k", "noexec", "nosuid", "nodev"} <= xo
    assert "noexec" not in yo and f"uid={nerdpy.host_id(1000)}" in yo
    assert xs == "1777 0" and ys.split()[1] == "1000"


def test_read_only_root(nerdpy, images):
    got = out(nerdpy, "--read-only", images.busybox, "sh", "-c",
              "touch /x 2>/dev/null || echo root-ro; touch /tmp/x 2>/dev/null || echo tmp-ro;"
              " echo > /etc/hosts 2>/dev/null || echo hosts-ro; touch /dev/shm/x && echo shm-rw")
    assert got.split() == ["root-ro", "tmp-ro", "hosts-ro", "shm-rw"]


# -- labels --------------------------------------------------------------------------------------
def test_labels_and_label_file(nerdpy, images, tmp_path):
    lf = tmp_path / "labels"
    lf.write_text("# labels\nfile.a=1\nfile.b=two words\n")
    r = nerdpy("create", "-q", "-l", "x=y", "--label", "flag.only", "--label-file", str(lf), images.busybox, "true",
               timeout=T)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    labels = json.loads(nerdpy("inspect", "-f", "{{json .Config.Labels}}", cid, check=True, timeout=T).stdout)
    assert labels == {"org.nerdpy.test": "busybox", "file.a": "1", "file.b": "two words", "x": "y",
                      "flag.only": ""}
    nerdpy("rm", cid, check=True, timeout=T)


# -- resources -----------------------------------------------------------------------------------
@pytest.mark.needs_root(rootless_user.CGROUP)
def test_cgroup_limits(nerdpy, images):
    args = ["-m", "64m", "--memory-swap", "128m", "--cpus", "0.5", "--cpu-shares", "512", "--pids-limit", "50"]
    if cgroup_v2():
        script = ("cd /sys/fs/cgroup; cat memory.max memory.swap.max cpu.max pids.max cpu.weight")
        got = out(nerdpy, *args, images.busybox, "sh", "-c", script).split("\n")
        assert got[:4] == [str(64 << 20), str(64 << 20), "50000 100000", "50"]
    else:
        script = ("cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes"
                  " cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpu/cpu.shares pids/pids.max")
        got = out(nerdpy, *args, images.busybox, "sh", "-c", script).split()
        assert got == [str(64 << 20), str(128 << 20), "50000", "100000", "512", "50"]


@pytest.mark.needs_root(rootless_user.CGROUP)
def test_memory_swap_defaults_to_twice_memory(nerdpy, images):
    if cgroup_v2():
        got = out(nerdpy, "-m", "32m", images.busybox, "cat", "/sys/fs/cgroup/memory.swap.max")
        assert got.strip() == str(32 << 20)
    else:
        got = out(nerdpy, "-m", "32m", images.busybox, "cat", "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
        assert got.strip() == str(64 << 20)


def test_ulimit(nerdpy, images):
    got = out(nerdpy, "--ulimit", "nofile=1024:2048", "--ulimit", "nproc=500", images.busybox, "sh", "-c",
              "ulimit -n; ulimit -Hn; ulimit -u")
    assert got.split() == ["1024", "2048", "500"]


# -- init and stopping ---------------------------------------------------------------------------
def test_init_is_pid_one(nerdpy, images):
    got = out(nerdpy, "--init", images.busybox, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$")
    cmdline, mypid = got.splitlines()
    assert cmdline.split()[:2] == ["/sbin/docker-init", "--"]
    assert int(mypid) != 1


def test_stop_signal_and_timeout(nerdpy, images):
    r = nerdpy("run", "-d", "-q", "--stop-signal", "SIGUSR1", "--stop-timeout", "2", images.busybox, "sh", "-c",
               "trap 'exit 42' USR1; echo ready; while true; do sleep 0.1; done", timeout=T)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    got = nerdpy("inspect", "-f", "{{.Config.StopSignal}} {{.Config.StopTimeout}}", cid, check=True, timeout=T)
    assert got.stdout.split() == ["SIGUSR1", "2"]
    for _ in range(100):
        if "ready" in nerdpy("logs", cid, timeout=T).stdout:
            break
        time.sleep(0.05)
    nerdpy("stop", cid, check=True, timeout=T)
    code = nerdpy("inspect", "-f", "{{.State.ExitCode}}", cid, check=True, timeout=T).stdout.strip()
    assert code == "42"  # the trap ran: stop sent SIGUSR1, not SIGTERM
    nerdpy("rm", cid, check=True, timeout=T)
    # a process that ignores the stop signal is killed after --stop-timeout, not docker's 10 s
    r = nerdpy("run", "-d", "-q", "--stop-timeout", "1", images.busybox, "sleep", "60", timeout=T)
    cid = r.stdout.strip()
    start = time.monotonic()
    nerdpy("stop", cid, check=True, timeout=T)
    assert time.monotonic() - start < 8
    assert nerdpy("inspect", "-f", "{{.State.ExitCode}}", cid, check=True, timeout=T).stdout.strip() == "137"
    nerdpy("rm", cid, check=True, timeout=T)


# -- privileges and security ---------------------------------------------------------------------
def test_docker_hardening_defaults(nerdpy, images):
    r = nerdpy("run", "-q", "--name", "hard", images.busybox, "sh", "-c",
               "grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status;"
               " for p in kcore keys timer_list; do printf '%s=%s ' $p $(cat /proc/$p 2>/dev/null | wc -c); done;"
               " echo firmware=$(ls /sys/firmware | wc -l);"
               " cat /proc/sys/kernel/hostname > /proc/sys/kernel/hostname 2>/dev/null && echo sys-writable;"
               " echo > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable;"
               " df -k /dev/shm | tail -1; test -s /etc/resolv.conf && echo resolv", timeout=T)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    st = status_fields("\n".join(lines[:3]))
    assert st == {"CapEff": "00000000a80425fb", "NoNewPrivs": "0", "Seccomp": "2"}
    assert lines[3] == "kcore=0 keys=0 timer_list=0 firmware=0"  # masked (or absent on this kernel)
    assert lines[4].split()[:2] == ["shm", "65536"]
    assert lines[5:] == ["resolv"]
    cid = nerdpy("inspect", "-f", "{{.Id}}", "hard", check=True, timeout=T).stdout.strip()
    with open(os.path.join(nerdpy.data_root, "containers", "default", cid, "config.json")) as f:
        spec = json.load(f)
    seccomp = spec["linux"]["seccomp"]
    assert seccomp["defaultAction"] == "SCMP_ACT_ERRNO"
    clone3 = [s for s in seccomp["syscalls"] if "clone3" in s["names"]]
    assert clone3 == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    assert set(spec["linux"]["maskedPaths"]) >= {"/proc/kcore", "/proc/keys", "/sys/firmware", "/proc/timer_list"}
    assert set(spec["linux"]["readonlyPaths"]) == {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                                   "/proc/sysrq-trigger"}
    assert len(spec["process"]["capabilities"]["bounding"]) == 14
    nerdpy("rm", "hard", check=True, timeout=T)


@pytest.mark.needs_root(rootless_user.PROC_SYS)
def test_privileged(nerdpy, images):
    host_devs = sorted(n for n in os.listdir("/dev")
                       if n not in ("console",) and os.path.exists(f"/dev/{n}")
                       and (os.stat(f"/dev/{n}").st_mode & 0o170000) in (0o020000, 0o060000))
    got = out(nerdpy, "--privileged", images.busybox, "sh", "-c",
              "grep -E '^(CapEff|Seccomp):' /proc/self/status; ls /dev;"
              " cat /proc/sys/kernel/hostname > /proc/sys/kernel/hostname && echo sys-writable")
    st = status_fields(got)
    assert int(st["CapEff"], 16) == host_cap_eff()
    assert st["Seccomp"] == "0"
    assert set(host_devs) <= set(got.split())
    assert got.splitlines()[-1] == "sys-writable"


DEFAULT_CAPS = 0xA80425FB  # docker's 14
CAP_KILL, CAP_NET_RAW, CAP_SYS_ADMIN = 5, 13, 21


@pytest.mark.parametrize("args, expected", [
    (["--cap-drop", "ALL"], 0),
    (["--cap-drop", "all", "--cap-add", "chown"], 1 << 0),
    (["--cap-add", "SYS_ADMIN", "--cap-drop", "CAP_NET_RAW"], (DEFAULT_CAPS | 1 << CAP_SYS_ADMIN) & ~(1 << CAP_NET_RAW)),
    (["--cap-add", "ALL", "--cap-drop", "KILL"], "host minus KILL"),
])
def test_cap_add_drop(nerdpy, images, args, expected):
    got = status_fields(out(nerdpy, *args, images.busybox, "grep", "CapEff", "/proc/self/status"))
    if expected == "host minus KILL":
        expected = nerdpy.cap_ceiling() & ~(1 << CAP_KILL)
    assert int(got["CapEff"], 16) == expected


@pytest.mark.parametrize("opt, expected", [
    ("seccomp=unconfined", "NoNewPrivs:0 Seccomp:0 mkdir-ok"),
    ("no-new-privileges", "NoNewPrivs:1 Seccomp:2 mkdir-ok"),
    ("no-new-privileges:true", "NoNewPrivs:1 Seccomp:2 mkdir-ok"),
    ("seccomp=PROFILE", "NoNewPrivs:0 Seccomp:2 mkdir-denied"),
])
def test_security_opt(nerdpy, images, tmp_path, opt, expected):
    if "PROFILE" in opt:
        # docker's profile format: includes/excludes are applied, not passed through to runc
        profile = {"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO",
                                 "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}
        path = tmp_path / "profile.json"
        path.write_text(json.dumps(profile))
        opt = opt.replace("PROFILE", str(path))
    got = out(nerdpy, "--security-opt", opt, images.busybox, "sh", "-c",
              "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status | tr -d '\\t' | tr '\\n' ' ';"
              " mkdir /newdir 2>/dev/null && echo mkdir-ok || echo mkdir-denied")
    assert " ".join(got.split()) == expected


@pytest.mark.needs_root(rootless_user.DEVICE_ACCESS)
def test_device(nerdpy, images):
    # /dev/kmsg (1:11) is not in docker's default allow-list, so ":r" really restricts it
    got = out(nerdpy, "--device", "/dev/null:/dev/xnull", "--device", "/dev/kmsg:/dev/xkmsg:r", images.busybox,
              "sh", "-c", "stat -c '%t,%T' /dev/xnull /dev/xkmsg; echo hi > /dev/xnull && echo null-ok;"
              " echo x > /dev/xkmsg 2>/dev/null || echo kmsg-not-writable")
    assert got.split() == ["1,3", "1,b", "null-ok", "kmsg-not-writable"]


def test_shm_size(nerdpy, images):
    got = out(nerdpy, "--shm-size", "8m", images.busybox, "df", "-k", "/dev/shm")
    assert got.splitlines()[-1].split()[:2] == ["shm", "8192"]


def test_sysctl(nerdpy, images):
    got = out(nerdpy, "--sysctl", "kernel.msgmax=4096", "--sysctl", "net.ipv4.ip_forward=1", images.busybox,
              "cat", "/proc/sys/kernel/msgmax", "/proc/sys/net/ipv4/ip_forward")
    assert got.split() == ["4096", "1"]


# -- platform and network ------------------------------------------------------------------------
def test_platform(nerdpy, images):
    r = nerdpy("run", "--rm", "-q", "--platform", "linux/arm64", images.busybox, "true", timeout=T)
    assert r.returncode == 125
    assert "does not match the specified platform: wanted linux/arm64, actual: linux/amd64" in r.stderr
    assert_nothing_left(nerdpy)
    if os.uname().machine == "x86_64":
        assert out(nerdpy, "--platform", "linux/amd64", images.busybox, "echo", "ok") == "ok\n"


@pytest.mark.parametrize("mode", ["none", "host"])
def test_network_none_and_host(nerdpy, images, mode):
    got = out(nerdpy, "--network", mode, images.busybox, "sh", "-c", "hostname; ls /sys/class/net | sort")
    lines = got.splitlines()
    if mode == "none":
        assert lines[1:] == ["lo"]
        assert re.fullmatch(r"[0-9a-f]{12}", lines[0])
    else:
        assert lines[0] == socket.gethostname()
        assert lines[1:] == sorted(os.listdir("/sys/class/net"))


def test_unknown_network_fails_clearly(nerdpy, images):
    r = nerdpy("run", "--rm", "-q", "--network", "mynet", images.busybox, "true", timeout=T)
    assert r.returncode == 125
    assert r.stderr == "nerdpy: network mynet not found\n"
    assert_nothing_left(nerdpy)


# -- refusals: one line, exit 125, nothing left behind ---------------------------------------------
def test_workdir_under_proc_refused(nerdpy, images, registry, tmp_path):
    r = nerdpy("run", "-q", "-w", "/proc/self", images.busybox, "true", timeout=T)
    assert r.returncode == 125 and "/proc" in r.stderr
    # an image whose WorkingDir is under /proc (the CVE-2024-21626 pattern)
    layout = str(tmp_path / "layout")
    layer = world._tar(world.busybox_entries())
    world.write_image(layout, "procwd", [layer], dict(world.BUSYBOX_CONFIG, WorkingDir="/proc/self/fd/8"))
    ref = f"{registry.host}/test/procwd:latest"
    world.push_layout(layout, "procwd", ref)
    r = nerdpy("run", "-q", ref, "true", timeout=T)
    assert r.returncode == 125, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "/proc" in r.stderr
    assert_nothing_left(nerdpy)


BAD_FLAGS = [
    (["-m", "lots"], "invalid size"),
    (["-m", "1k"], "minimum memory limit"),
    (["--memory-swap", "1g"], "memory limit"),
    (["-m", "64m", "--memory-swap", "32m"], "memoryswap"),
    (["--ulimit", "nofile=many"], "invalid ulimit"),
    (["--ulimit", "bogus=1"], "invalid ulimit type"),
    (["--ulimit", "nofile=10:5"], "soft limit"),
    (["--cpus", "lots"], "--cpus"),
    (["--cpus", "1000"], "range of CPUs"),
    (["--mount", "type=bogus,target=/x"], "unknown type"),
    (["--mount", "type=bind,source=/nonexistent-nerdpy,target=/x"], "does not exist"),
    (["--mount", "type=volume,target=relative"], "absolute"),
    (["--mount", "target=/x,colour=blue"], "unexpected key"),
    (["-v", "bad@name:/x"], "invalid characters"),
    (["-u", "nosuchuser"], "unable to find user nosuchuser"),
    (["-u", "app:nosuchgroup"], "unable to find group nosuchgroup"),
    (["--group-add", "nosuchgroup"], "unable to find group nosuchgroup"),
    (["--cap-add", "bogus"], "unknown capability"),
    (["--security-opt", "seccomp=/nonexistent-profile.json"], "seccomp profile"),
    (["--security-opt", "bogus"], "security-opt"),
    (["--device", "/dev/nonexistent-nerdpy"], "device"),
    (["--sysctl", "kernel.hostname=x"], "not allowed"),
    (["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"], "host network namespace"),
    (["--stop-signal", "SIGBOGUS"], "invalid signal"),
    (["--pids-limit", "many"], "--pids-limit"),
    (["--shm-size", "big"], "invalid size"),
    (["-w", "relative/dir"], "absolute path"),
    (["--platform", "linux/arm64/v8/x"], "invalid platform"),
]


@pytest.mark.parametrize("args, message", BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_invalid_flag_values(nerdpy, images, args, message):
    r = nerdpy("run", "-q", *args, images.busybox, "true", timeout=T)
    assert r.returncode == 125, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nerdpy: "), r.stderr
    assert message in lines[0]
    assert_nothing_left(nerdpy)


def test_pid_host_container_and_expose(nerdpy, images):
    # --pid host: the host's processes are visible (pid 1 is the host's init, not our command)
    got = out(nerdpy, "--pid", "host", images.busybox, "sh", "-c", "cat /proc/1/comm")
    assert got.strip() not in ("sh", "cat")
    nerdpy("run", "-d", "--name", "pidowner", images.busybox, "sleep", "300", check=True)
    got = out(nerdpy, "--pid", "container:pidowner", images.busybox, "cat", "/proc/1/cmdline")
    assert got.replace("\0", " ").strip() == "sleep 300"
    r = nerdpy("run", "--rm", "--pid", "bogus", images.busybox, "true", timeout=T)
    assert r.returncode == 125 and "PID mode" in r.stderr
    # --expose adds to what -P publishes
    nerdpy("run", "-d", "--name", "exp", "--expose", "9000", "-P", images.busybox, "sleep", "300", check=True)
    ports = nerdpy("port", "exp").stdout
    assert "9000/tcp -> 0.0.0.0:" in ports and "80/tcp -> 0.0.0.0:" in ports
    nerdpy("rm", "-f", "pidowner", "exp", check=True)
