"""docker-py (PyPI `docker`) against a real `nerdpy system service` on a temp socket: the Engine
API as Python programs use it (containers, exec, archives, images, networks, volumes, events)."""
from __future__ import annotations

import io
import json
import socket
import tarfile
import time

import pytest

docker = pytest.importorskip("docker")

from apiservice import module_service  # noqa: E402


svc = module_service("api")


@pytest.fixture(scope="module")
def client(svc, images):
    c = docker.DockerClient(base_url=svc.url, timeout=120)
    c.images.pull(images.busybox)
    yield c
    c.close()


def test_ping_version_info(client):
    assert client.ping() is True
    v = client.version()
    assert v["ApiVersion"] == "1.44" and v["MinAPIVersion"] == "1.24" and v["Os"] == "linux"
    info = client.info()
    assert info["Driver"] == "overlayfs" and info["OSType"] == "linux"
    assert info["Images"] >= 1


def test_run_output_and_exit_codes(client, images, svc):
    assert client.containers.run(images.busybox, ["echo", "hello"], remove=True) == b"hello\n"
    with pytest.raises(docker.errors.ContainerError) as e:
        client.containers.run(images.busybox, ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
    assert e.value.exit_status == 3 and b"bad" in e.value.stderr
    # removed, as asked
    assert svc.cli("ps", "-a", "-q").stdout.strip() == ""


def test_detached_logs_exec_archive_stop(client, images, svc):
    c = client.containers.run(images.busybox, ["sh", "-c", "echo out; echo err >&2; sleep 300"],
                              detach=True, name="dp-box", labels={"suite": "api"})
    try:
        c.reload()
        assert c.status == "running" and c.labels["suite"] == "api"
        # an ordinary nerdpy container: the CLI sees it
        assert "dp-box" in svc.cli("ps", "--format", "{{.Names}}").stdout
        deadline = time.monotonic() + 10
        while c.logs() != b"out\nerr\n" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.logs(stderr=False) == b"out\n"
        assert c.logs(stdout=False) == b"err\n"
        assert [x.name for x in client.containers.list(filters={"label": "suite=api"})] == ["dp-box"]
        # two pipes: their order is only defined once the first is read (docker's too), so wait between
        code, out = c.exec_run(["sh", "-c", "echo exec-out; sleep 0.3; echo exec-err >&2; exit 3"])
        assert code == 3 and out == b"exec-out\nexec-err\n"
        code, (o, e) = c.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
        assert (code, o, e) == (0, b"o\n", b"e\n")
        code, out = c.exec_run(["env"], environment={"GREETING": "hi"}, workdir="/tmp")
        assert b"GREETING=hi" in out
        code, out = c.exec_run(["no-such-command"])
        assert code == 127 and b"not found" in out
        # archives
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            data = b"hi there\n"
            ti = tarfile.TarInfo("f.txt")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        assert c.put_archive("/tmp", buf.getvalue()) is True
        bits, stat = c.get_archive("/tmp/f.txt")
        assert stat["name"] == "f.txt" and stat["size"] == 9
        with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as tf:
            assert tf.extractfile("f.txt").read() == b"hi there\n"
        assert c.exec_run(["cat", "/tmp/f.txt"]).output == b"hi there\n"
        with pytest.raises(docker.errors.NotFound):
            c.get_archive("/no/such/path")
        top = c.top()
        assert "PID" in top["Titles"] and any("sleep" in " ".join(p) for p in top["Processes"])
        c.stop(timeout=1)
        assert c.wait()["StatusCode"] == 137
        c.reload()
        assert c.status == "exited"
    finally:
        c.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("dp-box")


def test_create_start_attach_wait(client, images):
    c = client.containers.create(images.busybox, ["sh", "-c", "sleep 0.3; echo attached; exit 5"])
    try:
        stream = c.attach(stream=True, logs=False)
        c.start()
        assert b"".join(stream) == b"attached\n"
        assert c.wait()["StatusCode"] == 5
        # the events docker reports: the attach, before the start
        evs = client.events(since=0, until=int(time.time()) + 1, decode=True, filters={"container": c.id})
        actions = [e["Action"] for e in evs]
        assert actions[:3] == ["create", "attach", "start"], actions
    finally:
        c.remove(force=True)


def test_ports_env_volumes_restart(client, images, tmp_path):
    host = tmp_path / "bind"
    host.mkdir()
    (host / "in.txt").write_text("from host\n")
    client.volumes.create("dp-vol", labels={"k": "v"})
    c = client.containers.run(
        images.busybox, ["sh", "-c", "cat /b/in.txt > /v/copy.txt; echo ok | nc -l -p 80"],
        detach=True, ports={"80/tcp": None}, environment={"A": "1"}, volumes={str(host): {"bind": "/b", "mode": "ro"},
                                                                              "dp-vol": {"bind": "/v", "mode": "rw"}},
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 2}, mem_limit="64m", working_dir="/tmp")
    try:
        c.reload()
        attrs = c.attrs
        assert attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
        assert attrs["HostConfig"]["Memory"] == 64 << 20
        assert "A=1" in attrs["Config"]["Env"]
        port = int(c.ports["80/tcp"][0]["HostPort"])
        deadline = time.monotonic() + 10
        got = b""
        while time.monotonic() < deadline and not got:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    got = s.recv(16)
            except OSError:
                time.sleep(0.1)
        assert got == b"ok\n"
    finally:
        c.remove(force=True)
    vol = client.volumes.get("dp-vol")
    assert vol.attrs["Labels"] == {"k": "v"}
    with open(vol.attrs["Mountpoint"] + "/copy.txt") as f:
        assert f.read() == "from host\n"
    vol.remove()
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get("dp-vol")


def test_networks(client, images):
    net = client.networks.create("dp-net", labels={"x": "y"})
    try:
        assert client.networks.get("dp-net").attrs["Labels"] == {"x": "y"}
        assert "dp-net" in [n.name for n in client.networks.list()]
        server = client.containers.run(images.busybox, ["sh", "-c", "while true; do echo pong | nc -l -p 7000; done"],
                                       detach=True,
                                       name="dp-server", network="dp-net")
        try:
            out = client.containers.run(images.busybox, ["sh", "-c", "sleep 0.5; nc dp-server 7000"],
                                        network="dp-net", remove=True)
            assert out == b"pong\n"
            net.reload()
            assert server.id in net.attrs["Containers"]
            # the CLI's ps filters: by network (name or ID), by the container port it listens on
            for value in ("dp-net", net.id[:10]):
                assert [c.id for c in client.containers.list(filters={"network": value})] == [server.id]
            assert client.containers.list(filters={"network": "bridge", "name": "dp-server"}) == []
            assert client.containers.list(filters={"expose": "80", "name": "dp-server"})[0].id == server.id
            with pytest.raises(docker.errors.APIError) as e:
                net.remove()
            assert e.value.status_code == 409
        finally:
            server.remove(force=True)
    finally:
        net.remove()
    with pytest.raises(docker.errors.NotFound):
        client.networks.get("dp-net")


def test_images_tag_remove_save_load(client, images):
    img = client.images.get(images.busybox)
    assert images.busybox in img.tags
    assert img.tag("dp/copy", "v1") is True
    assert "dp/copy:v1" in client.images.get("dp/copy:v1").tags
    assert any("dp/copy:v1" in i.tags for i in client.images.list())
    assert [i.id for i in client.images.list(name="dp/copy")] == [img.id]
    data = b"".join(client.images.get("dp/copy:v1").save(named=True))
    client.images.remove("dp/copy:v1")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("dp/copy:v1")
    loaded = client.images.load(data)
    assert loaded and loaded[0].id == img.id
    client.images.remove("dp/copy:v1")
    assert img.history()[0]["Id"] == img.id


def test_import_from_the_body_and_refusals(client, tmp_path):
    # a root filesystem of one static busybox and a file, imported as docker-py sends it
    tar_path = tmp_path / "rootfs.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add("/bin/busybox", arcname="bin/busybox")
        data = b"imported through the API\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    out = client.api.import_image(src=str(tar_path), repository="dp/imported", tag="v1",
                                  changes=['CMD ["/bin/busybox", "cat", "/hello.txt"]', "ENV WHO=api"])
    image_id = json.loads(out.splitlines()[-1])["status"]
    img = client.images.get("dp/imported:v1")
    assert img.id == image_id and img.attrs["Config"]["Cmd"] == ["/bin/busybox", "cat", "/hello.txt"]
    assert "WHO=api" in img.attrs["Config"]["Env"]
    assert client.containers.run("dp/imported:v1", remove=True, network_mode="none") == b"imported through the API\n"
    client.images.remove("dp/imported:v1")
    # a path on the service's host is not a source (docker takes it for a host name)
    with pytest.raises(docker.errors.APIError):
        client.api.import_image_from_url("file:///etc/passwd", repository="dp/nope")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("dp/nope")


def test_pull_errors(client, images, registry):
    with pytest.raises(docker.errors.NotFound):
        client.images.pull(f"{registry.host}/test/no-such-image", tag="latest")
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.create(f"{registry.host}/test/no-such-image:latest")


def test_bad_input_refused_as_the_cli_refuses_it(client, images, svc):
    api = client.api
    for host_config, words in (({"Memory": 1024}, "minimum memory"),
                               ({"Binds": ["relative:dir:/x"]}, "must be an absolute path"),
                               ({"RestartPolicy": {"Name": "sometimes"}}, "restart"),
                               ({"UTSMode": "host"}, "UTSMode"),
                               ({"MaskedPaths": ["/proc/kcore", "/etc/secret"]}, "MaskedPaths"),
                               ({"ReadonlyPaths": ["/data"]}, "ReadonlyPaths")):
        with pytest.raises(docker.errors.APIError) as e:
            api.create_container(images.busybox, ["true"], host_config=host_config)
        assert e.value.status_code == 400, host_config
        assert words.lower() in str(e.value.explanation).lower(), (host_config, e.value.explanation)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("no-such-container")
    # nothing half-made
    assert svc.cli("ps", "-a", "-q").stdout.strip() == ""
    # docker's own masked and read-only paths (as a copy of an inspected container sends them): fine
    from nerdpy.engine.containers.oci import MASKED_PATHS, READONLY_PATHS

    cid = api.create_container(images.busybox, ["true"], host_config={
        "MaskedPaths": list(MASKED_PATHS), "ReadonlyPaths": list(READONLY_PATHS)})["Id"]
    api.remove_container(cid)


def test_events_and_df(client, images):
    since = time.time() - 1
    c = client.containers.run(images.busybox, ["true"], detach=True, name="dp-ev")
    c.wait()
    c.remove()
    evs = client.events(since=since, until=time.time() + 1, decode=True, filters={"container": "dp-ev"})
    actions = [e["Action"] for e in evs]
    assert "create" in actions and "start" in actions
    df = client.df()
    assert df["LayersSize"] > 0 and df["Images"]


def test_stats(client, images):
    c = client.containers.run(images.busybox, ["sleep", "300"], detach=True, mem_limit="64m")
    try:
        s = c.stats(stream=False)
        assert s["id"] == c.id and s["memory_stats"]["limit"] == 64 << 20
        assert s["memory_stats"]["usage"] > 0 and s["pids_stats"]["current"] == 1
        assert s["cpu_stats"]["system_cpu_usage"] > s["precpu_stats"]["system_cpu_usage"] > 0
        # the interface's counters, as the kernel keeps them in the container's namespace
        gw = client.api.inspect_container(c.id)["NetworkSettings"]["Gateway"]
        assert c.exec_run(["ping", "-c", "2", "-W", "2", gw]).exit_code == 0
        eth0 = c.stats(stream=False)["networks"]["eth0"]
        pid = client.api.inspect_container(c.id)["State"]["Pid"]
        with open(f"/proc/{pid}/net/dev") as f:
            kernel = next(line.split(":")[1].split() for line in f if line.strip().startswith("eth0:"))
        assert eth0["tx_packets"] >= 2 and eth0["rx_packets"] >= 2
        assert 0 < eth0["tx_bytes"] <= int(kernel[8]) and 0 < eth0["rx_bytes"] <= int(kernel[0])
        stream = c.stats(decode=True)
        first, second = next(stream), next(stream)
        assert second["read"] > first["read"]
        stream.close()
    finally:
        c.remove(force=True)


def test_pause_rename_restart_prune(client, images):
    c = client.containers.run(images.busybox, ["sleep", "300"], detach=True, name="dp-life", network_mode="none")
    try:
        c.pause()
        c.reload()
        assert c.status == "paused"
        c.unpause()
        c.rename("dp-renamed")
        c.reload()
        assert c.name == "dp-renamed" and c.status == "running"
        started = c.attrs["State"]["StartedAt"]
        c.restart(timeout=0)
        c.reload()
        assert c.status == "running" and c.attrs["State"]["StartedAt"] != started
        c.kill()
        c.wait()
        with pytest.raises(docker.errors.APIError) as e:
            c.kill()
        assert e.value.status_code == 409
        pruned = client.containers.prune()
        assert c.id in pruned["ContainersDeleted"]
    finally:
        try:
            c.remove(force=True)
        except docker.errors.NotFound:
            pass


def test_swappiness_and_stdin_once_are_honoured(client, images):
    """Two fields clients send that were accepted and dropped: MemorySwappiness (docker-py's
    mem_swappiness; -1 is docker's "unset") and StdinOnce (docker run -i)."""
    api = client.api
    cid = api.create_container(images.busybox, ["cat"], stdin_open=True,  # docker-py sends StdinOnce with it
                               host_config=api.create_host_config(mem_swappiness=10))["Id"]
    try:
        doc = api.inspect_container(cid)
        assert doc["HostConfig"]["MemorySwappiness"] == 10
        assert doc["Config"]["StdinOnce"] is True and doc["Config"]["OpenStdin"] is True
    finally:
        api.remove_container(cid)
    cid = api.create_container(images.busybox, ["true"], host_config={"MemorySwappiness": -1})["Id"]
    try:
        assert api.inspect_container(cid)["HostConfig"].get("MemorySwappiness") in (None, -1)
        assert api.inspect_container(cid)["Config"]["StdinOnce"] is False
    finally:
        api.remove_container(cid)


def test_update_and_changes(client, images, svc):
    """container.update and container.diff: the same engine as `nerdpy update` and `nerdpy diff`."""
    c = client.containers.run(images.busybox, ["sh", "-c", "touch /made; rm /bin/true; sleep 600"],
                              detach=True, name="dp-upd")
    try:
        c.update(mem_limit="64m", restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
        c.reload()
        assert c.attrs["HostConfig"]["Memory"] == 64 << 20
        assert c.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
        inspect = json.loads(svc.cli("inspect", "dp-upd").stdout)[0]
        assert inspect["HostConfig"]["Memory"] == 64 << 20
        with pytest.raises(docker.errors.APIError) as e:  # the CLI's check: docker's 6 MB minimum
            c.update(mem_limit="1m")
        assert e.value.status_code == 400 and "minimum memory limit" in str(e.value).lower()
        deadline = time.monotonic() + 10
        changes = []
        while time.monotonic() < deadline:
            changes = c.diff() or []
            if {"Path": "/made", "Kind": 1} in changes:
                break
            time.sleep(0.2)
        assert {"Path": "/made", "Kind": 1} in changes
        assert {"Path": "/bin/true", "Kind": 2} in changes
        assert {"Path": "/bin", "Kind": 0} in changes
    finally:
        c.remove(force=True)


def test_commit(client, images):
    """container.commit: the engine's commit (changes, message, author), and a container config
    in the body, which nerdpy does not merge, refused rather than ignored."""
    c = client.containers.run(images.busybox, ["sh", "-c", "echo kept > /made; sleep 600"], detach=True,
                              name="dp-commit", network_mode="none")
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and c.exec_run(["cat", "/made"]).output != b"kept\n":
            time.sleep(0.1)
        img = c.commit("dp/committed", "v1", message="by docker-py", author="tester",
                       changes=["ENV FROM_COMMIT=yes", 'CMD ["cat", "/made"]'])
        assert img.id.startswith("sha256:")
        img = client.images.get("dp/committed:v1")
        assert img.attrs["Comment"] == "by docker-py" and img.attrs["Author"] == "tester"
        assert "FROM_COMMIT=yes" in img.attrs["Config"]["Env"]
        assert client.containers.run("dp/committed:v1", remove=True, network_mode="none") == b"kept\n"
        with pytest.raises(docker.errors.APIError) as e:
            c.commit("dp/committed", "v2", conf={"Env": ["X=1"]})
        assert e.value.status_code == 400 and "not supported" in str(e.value)
        with pytest.raises(docker.errors.NotFound):
            client.images.get("dp/committed:v2")
    finally:
        c.remove(force=True)
        for ref in ("dp/committed:v1", "dp/committed:v2"):
            try:
                client.images.remove(ref)
            except docker.errors.ImageNotFound:
                pass


def test_prune_filters_are_the_clis(client, svc):
    """The API's prunes take the CLI's filters through the same parser: `until` is honoured (a
    network made now survives until=1h), and a filter nerdpy does not know is a 400, never ignored."""
    net = client.networks.create("dp-young", labels={"keep": "no"})
    try:
        assert client.networks.prune(filters={"until": "1h"})["NetworksDeleted"] is None
        assert client.networks.prune(filters={"label": ["keep=yes"]})["NetworksDeleted"] is None
        client.networks.get(net.id)
        for prune, bad in ((client.networks.prune, {"bogus": "1"}), (client.containers.prune, {"bogus": "1"}),
                           (client.images.prune, {"until": "soon"}), (client.volumes.prune, {"until": "1h"})):
            with pytest.raises(docker.errors.APIError) as e:
                prune(filters=bad)
            assert e.value.status_code == 400, (prune, bad)
            assert svc.cli("network", "ls", "-q", "--filter", "name=dp-young").stdout.strip(), (prune, bad)
        assert client.networks.prune(filters={"label": ["keep=no"]})["NetworksDeleted"] == ["dp-young"]
    finally:
        try:
            net.remove()
        except docker.errors.NotFound:
            pass


def test_wait_and_attach_see_a_start_made_outside_the_service(client, images, svc):
    """A client waiting for a created container (wait next-exit, attach) is served when the
    container is started by `nerdpy start` rather than through the API."""
    import threading

    c = client.containers.create(images.busybox, ["sh", "-c", "sleep 1; echo from-cli-start; exit 3"],
                                 name="dp-outside", network_mode="none")
    try:
        got: dict = {}
        stream = c.attach(stream=True, logs=False)

        def wait():
            got["wait"] = c.wait(condition="next-exit", timeout=30)

        def read():
            got["out"] = b"".join(stream)

        threads = [threading.Thread(target=wait), threading.Thread(target=read)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        svc.cli("start", "dp-outside", check=True)
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads), got
        assert got["wait"]["StatusCode"] == 3, got
        assert got["out"] == b"from-cli-start\n", got
    finally:
        c.remove(force=True)
