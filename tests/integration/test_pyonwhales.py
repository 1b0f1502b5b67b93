"""nerdpy driven by a real docker client library: python-on-whales calls the CLI it is given
(`client_call`) and parses its JSON into its pydantic models, so these tests fail when nerdpy's
output leaves docker's shape (issue 15)."""
from __future__ import annotations

import datetime
import os
import shlex
import stat

import pytest
import rootless_user

pow_ = pytest.importorskip("python_on_whales")


@pytest.fixture
def docker(nerdpy, tmp_path):
    """A DockerClient whose `docker` is nerdpy on the test's data root."""
    wrapper = tmp_path / "docker"
    env = "".join(f"export {k}='{v}'\n" for k, v in nerdpy.env.items()
                  if k.startswith("NERDPY_") or k == "HOME")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    wrapper.write_text(f"#!/bin/sh\n{env}export PYTHONPATH='{root}'\n"
                       f"exec {shlex.join(nerdpy.argv())} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return pow_.DockerClient(client_call=[str(wrapper)])


@pytest.fixture
def bb(nerdpy, images):
    nerdpy("pull", "-q", images.busybox, check=True)
    return images.busybox


def test_version_and_info(docker):
    v = docker.version()
    assert v.client.api_version == "1.44" and v.server.api_version == "1.44"
    assert v.server.min_api_version == "1.24"
    assert {c.name for c in v.server.components} >= {"Engine", "runc"}
    info = docker.system.info()
    assert info.driver == "overlayfs" and info.n_cpu >= 1 and info.mem_total > 0
    assert info.default_runtime == "runc" and "runc" in info.runtimes


@pytest.mark.needs_root(rootless_user.CGROUP)
def test_containers_through_the_models(docker, bb, tmp_path):
    c = docker.run(bb, ["sleep", "60"], detach=True, name="pow", labels={"t": "1"}, publish=[("127.0.0.1:", 80)],
                   envs={"A": "b"})
    assert c.name == "pow" and c.state.running and c.config.labels["t"] == "1"
    assert "A=b" in c.config.env and c.host_config.port_bindings["80/tcp"][0].host_ip == "127.0.0.1"
    assert docker.container.execute("pow", ["echo", "hi"]) == "hi"
    src = tmp_path / "f"
    src.write_text("x")
    docker.container.copy(str(src), ("pow", "/f"))
    assert docker.container.execute("pow", ["cat", "/f"]) == "x"
    assert {ch for ch in docker.container.diff("pow")} >= {"/f"}
    stats = docker.container.stats(all=False)
    assert [s.container_name for s in stats] == ["pow"] and stats[0].memory_used > 0
    docker.container.update("pow", memory="64m", pids_limit=50)
    c.reload()
    assert c.host_config.memory == 64 << 20 and c.host_config.pids_limit == 50
    assert [x.name for x in docker.container.list()] == ["pow"]
    docker.container.stop("pow", time=0)
    assert docker.container.inspect("pow").state.status == "exited"
    assert "hi" not in docker.container.logs("pow")
    docker.container.prune(filters={"label": "t=2"})
    assert docker.container.exists("pow")
    docker.container.prune(filters={"label": "t=1"})
    assert not docker.container.exists("pow")


def test_images_volumes_networks_events(docker, bb):
    img = docker.image.inspect(bb)
    assert img.id.startswith("sha256:") and img.config.cmd == ["sh"]
    assert bb in [t for i in docker.image.list() for t in i.repo_tags]
    docker.image.tag(bb, "local/pow:1")
    assert docker.image.exists("local/pow:1")
    vol = docker.volume.create("powvol", labels={"k": "v"})
    assert vol.name == "powvol" and vol.labels == {"k": "v"} and docker.volume.inspect("powvol").driver == "local"
    net = docker.network.create("pownet", labels={"k": "v"})
    assert docker.network.inspect("pownet").id == net.id
    docker.volume.prune(filters=[("label", "k=v")], all=True)
    assert not docker.volume.exists("powvol")
    docker.network.prune(filters=[("label", "k=v")])
    assert not docker.network.exists("pownet")
    start = datetime.datetime.now() - datetime.timedelta(seconds=5)
    docker.container.create(bb, ["true"], name="evc")
    evs = list(docker.system.events(since=start, until=datetime.datetime.now() + datetime.timedelta(seconds=1),
                                    filters={"type": "container"}))
    assert any(e.action == "create" and e.actor.attributes["name"] == "evc" for e in evs)
    docker.container.remove("evc")
