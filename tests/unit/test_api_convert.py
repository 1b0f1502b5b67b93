"""The API's container create body -> the flags of `create` (nerdpy/api/convert.py): docker's
fields mapped, zero values passed over, what nerdpy does not support refused with a 400."""
from __future__ import annotations

import pytest

pytest.importorskip("aiohttp")

from nerdpy.api.common import ApiError  # noqa: E402
from nerdpy.api.convert import create_options  # noqa: E402
from nerdpy.engine.containers.options import build_spec  # noqa: E402


def spec_of(body: dict, name: str | None = None):
    image, cmd, o, extra = create_options(body, name)
    spec = build_spec(image, tuple(cmd), o)
    for k, v in extra.items():
        if not k.startswith("_"):
            setattr(spec, k, v)
    return spec


def test_docker_cli_defaults_are_passed_over():
    # what the docker CLI 20.10 sends for `docker run busybox true`
    body = {"Image": "busybox", "Cmd": ["true"], "Hostname": "", "Env": [], "AttachStdout": True,
            "Entrypoint": None, "Volumes": {}, "Labels": {}, "StopSignal": "", "OnBuild": None,
            "HostConfig": {"Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}},
                           "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name": "no",
                           "MaximumRetryCount": 0}, "AutoRemove": False, "VolumeDriver": "", "CapAdd": None,
                           "CgroupnsMode": "", "IpcMode": "", "Cgroup": "", "Links": None, "OomScoreAdj": 0,
                           "PidMode": "", "Privileged": False, "UTSMode": "", "UsernsMode": "", "ShmSize": 0,
                           "ConsoleSize": [0, 0], "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
                           "BlkioWeight": 0, "KernelMemory": 0, "MemorySwappiness": None, "OomKillDisable": False,
                           "PidsLimit": None, "Ulimits": None, "MaskedPaths": None, "ReadonlyPaths": None},
            "NetworkingConfig": {"EndpointsConfig": {}}}
    spec = spec_of(body)
    assert spec.cmd == ["true"] and spec.network == "bridge" and spec.restart == "no" and spec.memory is None


def test_fields_map_to_the_spec():
    spec = spec_of({
        "Image": "busybox", "Cmd": ["sh"], "Entrypoint": ["/bin/env", "-i"], "Env": ["A=1"], "Tty": True,
        "OpenStdin": True, "WorkingDir": "/w", "Labels": {"k": "v"}, "ExposedPorts": {"53/udp": {}},
        "Volumes": {"/anon": {}}, "StopTimeout": 3,
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1_000_000_000, "Retries": 2},
        "HostConfig": {"Binds": ["/tmp:/host:ro"], "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                                                                       "81/tcp": [{"HostPort": ""}]},
                       "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}, "Memory": 64 << 20,
                       "NanoCpus": 500_000_000, "Tmpfs": {"/run": "size=1m"}, "CapAdd": ["NET_ADMIN"],
                       "Mounts": [{"Type": "volume", "Source": "data", "Target": "/data", "ReadOnly": True}],
                       "Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}], "NetworkMode": "net1"},
        "NetworkingConfig": {"EndpointsConfig": {"net1": {"Aliases": ["web"]}}}}, name="box")
    assert spec.name == "box" and spec.entrypoint == ["/bin/env", "-i"] and spec.env == ["A=1"]
    assert spec.tty and spec.stdin_open and spec.workdir == "/w" and spec.labels == {"k": "v"}
    assert spec.publish == ["127.0.0.1:8080:80/tcp", "81/tcp"] and "53/udp" in spec.expose
    assert spec.restart == "on-failure:3" and spec.memory == 64 << 20 and spec.cpus == 0.5
    assert spec.healthcheck == {"Test": ["CMD", "true"], "Interval": 1_000_000_000, "Retries": 2}
    targets = {m.target: m for m in spec.mounts}
    assert targets["/host"].type == "bind" and targets["/host"].readonly
    assert targets["/data"].type == "volume" and targets["/data"].readonly
    assert targets["/anon"].type == "volume" and targets["/run"].type == "tmpfs"
    assert spec.network == "net1" and spec.networks[0]["aliases"] == ["web"]
    assert spec.ulimits == [("nofile", 100, 200)] and spec.stop_timeout == 3


@pytest.mark.parametrize("body", [
    {"Cmd": ["true"]},                                             # no image
    {"Image": "busybox", "HostConfig": {"UTSMode": "host"}},
    {"Image": "busybox", "HostConfig": {"VolumesFrom": ["other"]}},
    {"Image": "busybox", "HostConfig": {"IpcMode": "host"}},
    {"Image": "busybox", "HostConfig": {"DeviceRequests": [{"Count": -1}]}},
    {"Image": "busybox", "HostConfig": {"Memory": "lots"}},
    {"Image": "busybox", "Env": "A=1 B=2" * 0 + "x", "Cmd": {"a": 1}},
    {"Image": "busybox", "Healthcheck": {"Test": ["SOMETIMES"]}},
    {"Image": "busybox", "HostConfig": {"NanoCpus": 1, "CpuQuota": 2}},
    {"Image": "busybox", "SomethingNew": True},
])
def test_unsupported_or_malformed_is_a_400(body):
    with pytest.raises(ApiError) as e:
        create_options(body, None)
    assert e.value.status == 400
