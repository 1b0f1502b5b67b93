"""Pure parts of the namespace, resource, runtime and CDI options: the OCI spec build_spec makes
of them, docker's checks and messages, --gpus parsing, CDI edits applied to a spec."""
from __future__ import annotations

import json

import pytest

from nerdpy.engine.config import Settings, load_settings
from nerdpy.engine.containers.cdi import apply_edits, is_cdi_name, resolve_devices
from nerdpy.engine.containers.oci import SpecOptions, build_spec
from nerdpy.engine.containers.options import check_spec
from nerdpy.engine.containers.records import ContainerSpec
from nerdpy.engine.containers.resources import parse_cpuset, parse_gpus
from nerdpy.engine.runtime.runc import runtime_binary
from nerdpy.engine.errors import InvalidArgument


def spec_of(**kw) -> dict:
    return build_spec(SpecOptions(rootfs="/r", args=["sh"], hostname="h", **kw))


def ns_types(spec: dict) -> dict:
    return {n["type"]: n.get("path") for n in spec["linux"]["namespaces"]}


def test_ipc_and_uts_namespaces_in_the_spec():
    assert "ipc" in ns_types(spec_of()) and "uts" in ns_types(spec_of())
    assert "ipc" not in ns_types(spec_of(ipcns="host"))
    assert ns_types(spec_of(ipcns="/proc/7/ns/ipc"))["ipc"] == "/proc/7/ns/ipc"
    host_uts = spec_of(utsns_host=True, domainname="d")
    assert "uts" not in ns_types(host_uts) and host_uts["hostname"] == "" and "domainname" not in host_uts
    assert "kernel.domainname" not in host_uts["linux"].get("sysctl", {})
    shm = [m for m in spec_of(shm="/host/shm")["mounts"] if m["destination"] == "/dev/shm"]
    assert shm == [{"destination": "/dev/shm", "type": "bind", "source": "/host/shm",
                    "options": ["rbind", "nosuid", "noexec", "nodev"]}]
    assert not [m for m in spec_of(shm="")["mounts"] if m["destination"] == "/dev/shm"]
    assert "cgroup" in ns_types(spec_of(cgroupns="private"))
    assert "cgroup" not in ns_types(spec_of(cgroupns="host"))


def test_resources_in_the_spec():
    r = spec_of(cpuset_cpus="0-1", cpuset_mems="0", cpu_period=50000, cpu_quota=25000, memory=64 << 20,
                memory_swappiness=10, oom_kill_disable=True,
                block_io={"weight": 300, "throttleReadBpsDevice": [{"major": 7, "minor": 0, "rate": 1}]}
                )["linux"]["resources"]
    assert r["cpu"] == {"period": 50000, "quota": 25000, "cpus": "0-1", "mems": "0"}
    assert r["memory"]["swappiness"] == 10 and r["memory"]["disableOOMKiller"] is True
    assert r["blockIO"]["weight"] == 300
    assert "swappiness" not in (spec_of(memory_swappiness=-1)["linux"]["resources"].get("memory") or {})


@pytest.mark.parametrize("kw, message", [
    ({"ipc": "bogus"}, "invalid IPC mode"),
    ({"uts": "host", "hostname": "x"}, "UTS mode"),
    ({"cgroupns": "x"}, "cgroup namespace"),
    ({"cpuset_cpus": "a"}, "invalid value"),
    ({"cpuset_cpus": "4096"}, "not available"),
    ({"cpu_period": 10}, "CPU cfs period"),
    ({"cpu_quota": 10}, "CPU cfs quota"),
    ({"cpus": 0.5, "cpu_period": 100000}, "conflicting options"),
    ({"memory_swappiness": 200}, "swappiness"),
    ({"blkio_weight": 2000}, "blkio weight"),
    ({"device_read_bps": ["/dev/sda"]}, "PATH:RATE"),
    ({"device_write_iops": ["/dev/sda:1k"]}, "invalid rate"),
    ({"volumes_from": ["a:x"]}, "--volumes-from"),
    ({"gpus": "count=x"}, "invalid count"),
    ({"devices": ["vendor/class=na me"]}, "invalid CDI device name"),
])
def test_checks(kw, message):
    with pytest.raises(InvalidArgument, match=message):
        check_spec(ContainerSpec(image="x", **kw))


def test_cpuset_and_gpus_parsing():
    assert parse_cpuset("0-2,5") == [0, 1, 2, 5]
    assert parse_gpus("all")["count"] == -1
    assert parse_gpus("2")["count"] == 2
    assert parse_gpus("device=0,1")["devices"] == ["0", "1"]
    assert parse_gpus('"capabilities=compute,utility",count=2') == {
        "count": 2, "devices": [], "capabilities": ["compute", "utility"], "driver": ""}
    with pytest.raises(InvalidArgument):
        parse_gpus("count=1,device=0")


def test_runtimes_from_settings(tmp_path):
    conf = tmp_path / "n.toml"
    conf.write_text('[runtimes.crun]\npath = "/bin/sh"\nruntimeArgs = ["--x"]\n')
    s = load_settings(env={"NERDPY_CONFIG": str(conf)})
    assert runtime_binary(s, "crun") == ("/bin/sh", ["--x"])
    assert runtime_binary(s, "")[0] == "runc" and runtime_binary(s, "io.containerd.runc.v2")[0] == "runc"
    with pytest.raises(InvalidArgument, match="unknown or invalid runtime name: youki"):
        runtime_binary(s, "youki")
    conf.write_text('[runtimes.crun]\nargs = []\n')
    with pytest.raises(InvalidArgument, match="needs a path"):
        load_settings(env={"NERDPY_CONFIG": str(conf)})


def test_cdi_edits(tmp_path):
    assert is_cdi_name("nvidia.com/gpu=0") and not is_cdi_name("/dev/sda:/dev/x")
    (tmp_path / "a.json").write_text(json.dumps({
        "cdiVersion": "0.6.0", "kind": "example.com/dev", "containerEdits": {"env": ["K=1"]},
        "devices": [{"name": "x", "containerEdits": {
            "env": ["A=1", "K=2"], "deviceNodes": [{"path": "/dev/x", "hostPath": "/dev/null", "permissions": "rw"}],
            "mounts": [{"hostPath": "/h", "containerPath": "/c", "options": ["ro"]}],
            "hooks": [{"hookName": "createContainer", "path": "/bin/true", "args": ["true"]}],
            "additionalGids": [44]}}]}))
    (tmp_path / "broken.yaml").write_text("kind: [")
    settings = Settings(cdi_spec_dirs=[str(tmp_path)])
    edits = resolve_devices(settings, ["example.com/dev=x"])
    spec = apply_edits(spec_of(env=["K=0", "P=1"]), edits)
    assert spec["process"]["env"] == ["P=1", "A=1", "K=2"]
    node = [d for d in spec["linux"]["devices"] if d["path"] == "/dev/x"][0]
    assert (node["type"], node["major"], node["minor"]) == ("c", 1, 3)
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"} in spec["linux"]["resources"]["devices"]
    assert spec["mounts"][-1] == {"destination": "/c", "type": "bind", "source": "/h", "options": ["rbind", "ro"]}
    assert spec["hooks"]["createContainer"] == [{"path": "/bin/true", "args": ["true"]}]
    assert 44 in spec["process"]["user"]["additionalGids"]
    with pytest.raises(InvalidArgument, match="unresolvable CDI devices example.com/dev=y.*broken.yaml"):
        resolve_devices(settings, ["example.com/dev=y"])


def test_client_options_take_the_same_fields_and_checks():
    from nerdpy.client import _spec

    spec, _, _ = _spec("busybox", "true", {"ipc": "host", "cpuset_cpus": "0", "runtime": "runc",
                                           "devices": ["nvidia.com/gpu=0"], "gpus": "all",
                                           "volumes_from": ["db:ro"]})
    assert (spec.ipc, spec.cpuset_cpus, spec.gpus, spec.volumes_from) == ("host", "0", "all", ["db:ro"])
    for bad, message in (({"dns": ["notanip"]}, "not an ip address"),
                         ({"extra_hosts": ["x\nevil:1.1.1.1"]}, "bad format for add-host"),
                         ({"dns_search": ["a\nnameserver 6.6.6.6"]}, "not a valid domain"),
                         ({"healthcheck": {"Test": ["CMD"], "Interval": -1}}, "no command"),
                         ({"healthcheck": {"Test": ["CMD", "true"], "Interval": -1}}, "less than 1ms"),
                         ({"healthcheck": {"Test": ["CMD", "true"], "Retries": -5}}, "negative"),
                         ({"ipc": "container:"}, "invalid IPC mode")):
        with pytest.raises(InvalidArgument, match=message):
            _spec("busybox", "true", bad)


def test_effective_healthcheck_replaces_an_images_bad_values():
    from nerdpy.engine.containers.lifecycle import effective_healthcheck
    from nerdpy.engine.containers.records import StoredSpec

    def eff(hc):
        return effective_healthcheck(StoredSpec(image="x", image_config={"Healthcheck": hc}))

    assert eff({"Test": ["CMD"], "Interval": -1, "Retries": -5}) is None
    assert eff({"Test": ["CMD-SHELL", " "]}) is None
    assert eff({"Test": ["CMD", "true"], "Interval": -1, "Timeout": 5, "Retries": -5}) == {
        "test": ["CMD", "true"], "interval": 30.0, "timeout": 30.0, "start_period": 0.0, "retries": 3}
    assert eff({"Test": ["CMD", "true"], "Interval": 2_000_000_000, "Retries": 2})["interval"] == 2.0
