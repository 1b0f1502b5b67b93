"""run/create flags for namespaces (--ipc, --uts, --cgroupns), cgroup resources (--cpuset-*,
--cpu-period/--cpu-quota, --memory-swappiness, --oom-kill-disable, --blkio-weight, device rate
limits), --volumes-from, --runtime, CDI devices (--device vendor/class=name, --gpus) and
exec --env-file: each checked on a real container, in the namespace links, the cgroup files or
inside the container, as a user would look.
"""
from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

T = 60


def run(nerdpy, *args, rc: int | None = 0, env=None):
    r = nerdpy("run", "--rm", "-q", *args, timeout=T, env=env)
    if rc is not None:
        assert r.returncode == rc, f"exit {r.returncode}: {r.stderr}\n{r.stdout}"
    return r


def out(nerdpy, *args, env=None) -> str:
    return run(nerdpy, *args, env=env).stdout


def refused(nerdpy, *args, message: str, env=None) -> None:
    r = nerdpy("run", "--rm", "-q", *args, timeout=T, env=env)
    assert r.returncode == 125, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert nerdpy("ps", "-aq").stdout.strip() == ""


def inspect(nerdpy, name: str) -> dict:
    r = nerdpy("inspect", name, check=True)
    return json.loads(r.stdout)[0]


def cgroup_file(cid: str, controller: str, name: str) -> str:
    from nerdpy.engine.runtime import cgroups

    version = cgroups.layout()
    d = cgroups.controller_dir(cgroups.container_path("default", cid), controller, version)
    with open(os.path.join(d, name)) as f:
        return f.read().strip()


def v1(controller: str) -> bool:
    return os.path.ismount(f"/sys/fs/cgroup/{controller}")


# -- namespaces -----------------------------------------------------------------------------------
def test_ipc_modes(nerdpy, images):
    host_ipc = os.readlink("/proc/self/ns/ipc")
    assert out(nerdpy, "--ipc", "host", images.busybox, "readlink", "/proc/self/ns/ipc").strip() == host_ipc
    assert out(nerdpy, images.busybox, "readlink", "/proc/self/ns/ipc").strip() != host_ipc
    # none: a namespace of its own, and no /dev/shm
    got = out(nerdpy, "--ipc", "none", images.busybox, "sh", "-c", "grep -c ' /dev/shm ' /proc/mounts; true")
    assert got.strip() == "0"
    # shareable donor: another container joins its namespace and sees its /dev/shm
    nerdpy("run", "-d", "--name", "donor", "--ipc", "shareable", images.busybox,
           "sh", "-c", "echo hi > /dev/shm/x; sleep 300", check=True)
    donor_ns = nerdpy("exec", "donor", "readlink", "/proc/self/ns/ipc", check=True).stdout.strip()
    got = out(nerdpy, "--ipc", "container:donor", images.busybox, "sh", "-c",
              "readlink /proc/self/ns/ipc; cat /dev/shm/x")
    assert got.split() == [donor_ns, "hi"]
    assert inspect(nerdpy, "donor")["HostConfig"]["IpcMode"] == "shareable"
    # a private container is not joinable (docker's rule); a bad mode is refused
    nerdpy("run", "-d", "--name", "priv", images.busybox, "sleep", "300", check=True)
    r = nerdpy("run", "--rm", "--ipc", "container:priv", images.busybox, "true", timeout=T)
    assert r.returncode != 0 and "non-shareable" in r.stderr
    nerdpy("rm", "-f", "donor", "priv", check=True)
    refused(nerdpy, "--ipc", "bogus", images.busybox, "true", message="invalid IPC mode")


def test_uts_host(nerdpy, images):
    assert out(nerdpy, "--uts", "host", images.busybox, "hostname").strip() == os.uname().nodename
    assert out(nerdpy, "--uts", "host", images.busybox, "readlink", "/proc/self/ns/uts").strip() == \
        os.readlink("/proc/self/ns/uts")
    refused(nerdpy, "--uts", "host", "-h", "other", images.busybox, "true", message="UTS mode")
    refused(nerdpy, "--uts", "bogus", images.busybox, "true", message="invalid UTS mode")


def test_cgroupns(nerdpy, images):
    private = out(nerdpy, "--cgroupns", "private", images.busybox, "cat", "/proc/self/cgroup")
    assert all(line.endswith(":/") for line in private.split()), private
    assert os.readlink("/proc/self/ns/cgroup") != \
        out(nerdpy, "--cgroupns", "private", images.busybox, "readlink", "/proc/self/ns/cgroup").strip()
    host = out(nerdpy, "--cgroupns", "host", images.busybox, "readlink", "/proc/self/ns/cgroup").strip()
    assert host == os.readlink("/proc/self/ns/cgroup")
    refused(nerdpy, "--cgroupns", "bogus", images.busybox, "true", message="cgroup namespace")


# -- cgroup resources -----------------------------------------------------------------------------
def test_cpu_and_memory_resources(nerdpy, images):
    cid = nerdpy("run", "-d", "--cpuset-cpus", "0", "--cpuset-mems", "0", "--cpu-period", "50000",
                 "--cpu-quota", "25000", "--memory", "64m", "--memory-swappiness", "10",
                 "--oom-kill-disable", images.busybox, "sleep", "300", check=True).stdout.strip()
    try:
        assert cgroup_file(cid, "cpuset", "cpuset.cpus") == "0"
        assert cgroup_file(cid, "cpuset", "cpuset.mems") == "0"
        if v1("cpu"):
            assert cgroup_file(cid, "cpu", "cpu.cfs_period_us") == "50000"
            assert cgroup_file(cid, "cpu", "cpu.cfs_quota_us") == "25000"
        else:
            assert cgroup_file(cid, "cpu", "cpu.max") == "25000 50000"
        if v1("memory"):
            assert cgroup_file(cid, "memory", "memory.swappiness") == "10"
            assert "oom_kill_disable 1" in cgroup_file(cid, "memory", "memory.oom_control")
        host = inspect(nerdpy, cid)["HostConfig"]
        assert (host["CpusetCpus"], host["CpuPeriod"], host["CpuQuota"], host["MemorySwappiness"],
                host["OomKillDisable"]) == ("0", 50000, 25000, 10, True)
    finally:
        nerdpy("rm", "-f", cid, check=True)
    refused(nerdpy, "--cpuset-cpus", "999", images.busybox, "true", message="not available")
    refused(nerdpy, "--cpu-period", "10", images.busybox, "true", message="CPU cfs period")
    refused(nerdpy, "--cpus", "1", "--cpu-quota", "50000", images.busybox, "true", message="conflicting options")
    refused(nerdpy, "--memory-swappiness", "101", images.busybox, "true", message="swappiness")
    refused(nerdpy, "--blkio-weight", "5", images.busybox, "true", message="blkio weight")


def test_blkio_weight_and_device_rates(nerdpy, images):
    from nerdpy.engine.containers.resources import blkio_weight_supported

    dev = "/dev/loop0"
    if not os.path.exists(dev):
        pytest.skip("no /dev/loop0 block device on this host")
    st = os.stat(dev)
    mm = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    cid = nerdpy("run", "-d", "--device-read-bps", f"{dev}:1mb", "--device-write-iops", f"{dev}:50",
                 images.busybox, "sleep", "300", check=True).stdout.strip()
    try:
        if v1("blkio"):
            assert cgroup_file(cid, "blkio", "blkio.throttle.read_bps_device") == f"{mm} 1048576"
            assert cgroup_file(cid, "blkio", "blkio.throttle.write_iops_device") == f"{mm} 50"
        else:
            assert "rbps=1048576" in cgroup_file(cid, "io", "io.max")
        host = inspect(nerdpy, cid)["HostConfig"]
        assert host["BlkioDeviceReadBps"] == [{"Path": dev, "Rate": 1048576}]
    finally:
        nerdpy("rm", "-f", cid, check=True)
    refused(nerdpy, "--device-read-bps", "/dev/null:1mb", images.busybox, "true", message="not a block device")
    refused(nerdpy, "--device-read-iops", f"{dev}:fast", images.busybox, "true", message="invalid rate")
    if blkio_weight_supported():
        assert out(nerdpy, "--blkio-weight", "300", images.busybox, "true") == ""
    else:  # this kernel has no block I/O weight: refused, never accepted and ignored
        refused(nerdpy, "--blkio-weight", "300", images.busybox, "true", message="Block I/O weight")


# -- volumes-from, runtime, exec --env-file ---------------------------------------------------------
def test_volumes_from(nerdpy, images, tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "f").write_text("bound\n")
    nerdpy("create", "--name", "src", "-v", "vf-data:/data", "-v", f"{tmp_path / 'b'}:/b",
           "--tmpfs", "/t", images.busybox, "true", check=True)
    run(nerdpy, "-v", "vf-data:/data", images.busybox, "sh", "-c", "echo kept > /data/x")
    got = out(nerdpy, "--volumes-from", "src", images.busybox, "sh", "-c",
              "cat /data/x /b/f; echo w > /data/y && echo wrote; grep -c ' /t ' /proc/mounts; true")
    assert got.split() == ["kept", "bound", "wrote", "0"]
    r = run(nerdpy, "--volumes-from", "src:ro", images.busybox, "sh", "-c", "echo w > /data/z", rc=None)
    assert r.returncode != 0 and "Read-only" in r.stderr
    nerdpy("rm", "-v", "src", check=True)
    assert "vf-data" in nerdpy("volume", "ls", "-q", check=True).stdout.split()
    refused(nerdpy, "--volumes-from", "nosuch", images.busybox, "true", message="nosuch")
    refused(nerdpy, "--volumes-from", "src:rx", images.busybox, "true", message="--volumes-from")


def test_runtime(nerdpy, images, tmp_path):
    import shutil

    runc = shutil.which("runc")
    conf = tmp_path / "nerdpy.toml"
    conf.write_text(f'[runtimes.alt]\npath = "{runc}"\nruntimeArgs = ["--log-format", "text"]\n'
                    '[runtimes.gone]\npath = "/nonexistent/crun"\n')
    env = {"NERDPY_CONFIG": str(conf)}
    nerdpy("run", "-d", "--name", "alt", "--runtime", "alt", images.busybox, "sleep", "300", env=env, check=True)
    assert inspect(nerdpy, "alt")["HostConfig"]["Runtime"] == "alt"
    assert nerdpy("exec", "alt", "echo", "in", env=env, check=True).stdout.strip() == "in"
    nerdpy("rm", "-f", "alt", env=env, check=True)
    assert out(nerdpy, "--runtime", "runc", images.busybox, "echo", "ok").strip() == "ok"
    refused(nerdpy, "--runtime", "nosuch", images.busybox, "true", message="unknown or invalid runtime name: nosuch")
    refused(nerdpy, "--runtime", "gone", images.busybox, "true", message="not found", env=env)


def test_exec_env_file(nerdpy, images, tmp_path):
    envfile = tmp_path / "env"
    envfile.write_text("# c\nA=from-file\nB=file\n")
    nerdpy("run", "-d", "--name", "ex", images.busybox, "sleep", "300", check=True)
    got = nerdpy("exec", "--env-file", str(envfile), "-e", "B=flag", "ex", "sh", "-c", "echo $A $B",
                 check=True).stdout
    assert got.strip() == "from-file flag"
    r = nerdpy("exec", "--env-file", str(tmp_path / "missing"), "ex", "true")
    assert r.returncode == 125 and "missing" in r.stderr
    nerdpy("rm", "-f", "ex", check=True)


# -- CDI --------------------------------------------------------------------------------------------
CDI_SPEC = {
    "cdiVersion": "0.6.0",
    "kind": "nerdpy.test/dev",
    "containerEdits": {"env": ["NERDPY_CDI_KIND=yes"]},
    "devices": [{"name": "null", "containerEdits": {
        "env": ["NERDPY_CDI=null"],
        "deviceNodes": [{"path": "/dev/nerdpy-test", "hostPath": "/dev/null"}],
    }}],
}
GPU_SPEC = """cdiVersion: 0.6.0
kind: nvidia.com/gpu
devices:
- name: "0"
  containerEdits:
    env: [GPU0=1]
    deviceNodes: [{path: /dev/nerdpy-gpu0, hostPath: /dev/zero}]
- name: "1"
  containerEdits:
    env: [GPU1=1]
    deviceNodes: [{path: /dev/nerdpy-gpu1, hostPath: /dev/zero}]
- name: all
  containerEdits:
    env: [GPU0=1, GPU1=1]
    deviceNodes: [{path: /dev/nerdpy-gpu0, hostPath: /dev/zero}, {path: /dev/nerdpy-gpu1, hostPath: /dev/zero}]
"""


def test_cdi_device(nerdpy, images, tmp_path):
    cdi = tmp_path / "cdi"
    cdi.mkdir()
    (cdi / "test.json").write_text(json.dumps(CDI_SPEC))
    env = {"NERDPY_CDI_SPEC_DIRS": str(cdi)}
    got = out(nerdpy, "--device", "nerdpy.test/dev=null", images.busybox, "sh", "-c",
              "test -c /dev/nerdpy-test && echo x > /dev/nerdpy-test && echo node; "
              "echo $NERDPY_CDI $NERDPY_CDI_KIND", env=env)
    assert got.split() == ["node", "null", "yes"]
    refused(nerdpy, "--device", "nerdpy.test/dev=missing", images.busybox, "true",
            message="unresolvable CDI devices nerdpy.test/dev=missing", env=env)


def test_gpus_through_cdi(nerdpy, images, tmp_path):
    cdi = tmp_path / "cdi"
    cdi.mkdir()
    env = {"NERDPY_CDI_SPEC_DIRS": str(cdi)}
    refused(nerdpy, "--gpus", "all", images.busybox, "true", message="could not select device driver", env=env)
    (cdi / "nvidia.yaml").write_text(GPU_SPEC)
    show = "ls /dev | grep nerdpy-gpu | tr '\\n' ' '; echo; echo $GPU0 $GPU1"
    assert out(nerdpy, "--gpus", "all", images.busybox, "sh", "-c", show, env=env).split() == \
        ["nerdpy-gpu0", "nerdpy-gpu1", "1", "1"]
    assert out(nerdpy, "--gpus", "1", images.busybox, "sh", "-c", show, env=env).split() == ["nerdpy-gpu0", "1"]
    assert out(nerdpy, "--gpus", "device=1", images.busybox, "sh", "-c", show, env=env).split() == \
        ["nerdpy-gpu1", "1"]
    refused(nerdpy, "--gpus", "3", images.busybox, "true", message="only 2", env=env)
