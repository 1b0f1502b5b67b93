"""Compose keys that map to run's namespace, resource, runtime and GPU flags: ipc, uts, cgroup,
cpuset, cpu_quota, cpu_period, volumes_from, runtime, devices (CDI names), gpus,
deploy.resources.reservations (memory, devices), userns_mode -> the ContainerSpec."""
import textwrap

import pytest

from compose.convert import container_spec
from compose.errors import ComposeError
from compose.loader import load_project


@pytest.fixture(autouse=True)
def _no_validation_cache(monkeypatch):
    monkeypatch.setenv("NERDPY_COMPOSE_CACHE", "")


def project(tmp_path, text, warnings=None):
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(text).lstrip("\n"))
    return load_project(cwd=str(tmp_path), environ={}, project_name="demo",
                        on_warning=(warnings.append if warnings is not None else None))


def spec(p, name):
    return container_spec(p, p.service(name), f"demo-{name}-1", 1)


def test_keys_map_to_the_run_flags(tmp_path):
    warnings = []
    p = project(tmp_path, """
        services:
          db:
            image: busybox
            ipc: shareable
            volumes: [data:/data]
          app:
            image: busybox
            ipc: service:db
            uts: host
            cgroup: private
            cpuset: "0"
            cpu_quota: 25000
            cpu_period: 50000
            volumes_from: ["db:ro", "container:other"]
            runtime: runc
            userns_mode: host
            devices: ["vendor.com/dev=x", "/dev/null:/dev/n:r"]
            deploy:
              resources:
                reservations:
                  memory: 32m
                  devices:
                    - capabilities: [gpu]
                      count: 2
        volumes:
          data:
        """, warnings)
    assert not [w for w in warnings if "ignores" in w], warnings
    s = spec(p, "app")
    assert (s.ipc, s.uts, s.cgroupns, s.cpuset_cpus, s.cpu_quota, s.cpu_period, s.runtime) == \
        ("container:demo-db-1", "host", "private", "0", 25000, 50000, "runc")
    assert s.volumes_from == ["demo-db-1:ro", "other"]
    assert s.devices == ["vendor.com/dev=x", "/dev/null:/dev/n:r"]
    assert s.gpus == "2" and s.memory_reservation == 32 << 20
    assert "db" in p.service("app").depends_on


@pytest.mark.parametrize("extra, gpus", [
    ("gpus: all", "all"),
    ("gpus: [{capabilities: [gpu], device_ids: ['0', '1']}]", "device=0,1"),
    ("deploy: {resources: {reservations: {devices: [{driver: nvidia, capabilities: [gpu]}]}}}", "all"),
])
def test_gpu_requests(tmp_path, extra, gpus):
    p = project(tmp_path, f"services:\n  s:\n    image: busybox\n    {extra}\n")
    assert spec(p, "s").gpus == gpus


@pytest.mark.parametrize("extra, message", [
    ("userns_mode: keep-id", "userns_mode"),
    ("uts: other", "uts"),
    ("deploy: {resources: {reservations: {devices: [{capabilities: [tpu]}]}}}", "only GPUs"),
])
def test_refused(tmp_path, extra, message):
    with pytest.raises(ComposeError, match=message):
        project(tmp_path, f"services:\n  s:\n    image: busybox\n    {extra}\n")


def test_config_renders_the_keys_and_the_hash_follows_them(tmp_path):
    from compose.render import config_hash, service_to_dict

    base = "services:\n  s:\n    image: busybox\n"
    p = project(tmp_path, base + "    ipc: host\n    cpuset: '0'\n    gpus: all\n    volumes_from: [t]\n"
                "  t:\n    image: busybox\n")
    d = service_to_dict(p.service("s"))
    assert (d["ipc"], d["cpuset"], d["gpus"], d["volumes_from"]) == ("host", "0", "all", ["t"])
    changed = project(tmp_path, base + "    ipc: shareable\n    cpuset: '0'\n    gpus: all\n"
                      "    volumes_from: [t]\n  t:\n    image: busybox\n")
    assert config_hash(p.service("s")) != config_hash(changed.service("s"))
