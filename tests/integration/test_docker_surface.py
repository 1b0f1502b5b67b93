"""The docker surface that tools and scripts probe (issue 15): `version`, `info`, `events`,
`stats`, `update`, `diff`, the `container X`/`image X` forms and prune filters, checked as a user
sees them (JSON shapes, cgroup files, inspect)."""
from __future__ import annotations

import json
import os
import time

import pytest


@pytest.fixture
def bb(nerdpy, images):
    nerdpy("pull", "-q", images.busybox, check=True)
    return images.busybox


def test_version_shapes(nerdpy):
    doc = json.loads(nerdpy("version", "-f", "{{json .}}", check=True).stdout)
    client, server = doc["Client"], doc["Server"]
    assert client["ApiVersion"] == "1.44" and client["Os"] == "linux" and client["Version"]
    assert server["ApiVersion"] == "1.44" and server["MinAPIVersion"] == "1.24"
    for key in ("Version", "GitCommit", "GoVersion", "Os", "Arch", "KernelVersion", "BuildTime"):
        assert key in server, key
    names = [c["Name"] for c in server["Components"]]
    assert names[0] == "Engine" and "runc" in names
    assert all({"Name", "Version", "Details"} <= set(c) for c in server["Components"])
    assert nerdpy("version", "--format", "{{.Server.ApiVersion}}").stdout == "1.44\n"
    text = nerdpy("version", check=True).stdout
    assert text.startswith("Client:") and "\nServer: " in text and "minimum version 1.24" in text
    assert nerdpy("--version").stdout.startswith("nerdpy version ")


def test_info_top_level(nerdpy, bb):
    nerdpy("run", "--name", "stopped", bb, "true", check=True)
    data = json.loads(nerdpy("info", "--format", "{{json .}}", check=True).stdout)
    for key in ("ServerVersion", "Driver", "DriverStatus", "CgroupDriver", "CgroupVersion", "OperatingSystem",
                "OSType", "Architecture", "KernelVersion", "NCPU", "MemTotal", "DockerRootDir", "Name", "ID",
                "SecurityOptions", "Runtimes", "DefaultRuntime", "RegistryConfig", "Warnings"):
        assert key in data, key
    assert data["Containers"] == 1 and data["ContainersStopped"] == 1 and data["Images"] == 1
    assert data["DefaultRuntime"] in data["Runtimes"]
    assert "docker.io" in data["RegistryConfig"]["IndexConfigs"]
    assert nerdpy("info", "-f", "{{.Containers}} {{.Driver}}").stdout == "1 overlayfs\n"
    r = nerdpy("info")
    assert r.returncode == 0 and "Storage Driver: overlayfs" in r.stdout


def _events(nerdpy, *args):
    r = nerdpy("events", "--since", "0", "--until", "0s", "--format", "{{json .}}", *args, check=True)
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_events_container_actions(nerdpy, bb):
    nerdpy("run", "-d", "--name", "ev", "--label", "team=a", bb, "sleep", "60", check=True)
    nerdpy("exec", "ev", "true", check=True)
    nerdpy("pause", "ev", check=True)
    nerdpy("unpause", "ev", check=True)
    nerdpy("rename", "ev", "ev2", check=True)
    nerdpy("restart", "-t", "0", "ev2", check=True)
    nerdpy("rm", "-f", "ev2", check=True)
    evs = _events(nerdpy, "--filter", "type=container")
    actions = [e["Action"] for e in evs]
    for want in ("create", "start", "exec_create: true", "exec_start: true", "exec_die", "pause", "unpause",
                 "rename", "restart", "kill", "die", "destroy"):
        assert want in actions, (want, actions)
    e = next(e for e in evs if e["Action"] == "create")
    assert set(e) >= {"Type", "Action", "Actor", "scope", "time", "timeNano"}
    assert e["Actor"]["Attributes"]["name"] == "ev" and e["Actor"]["Attributes"]["team"] == "a"
    assert e["Actor"]["Attributes"]["image"] == bb
    die = next(e for e in evs if e["Action"] == "exec_die")
    assert die["Actor"]["Attributes"]["exitCode"] == "0" and die["Actor"]["Attributes"]["execID"]
    ren = next(e for e in evs if e["Action"] == "rename")
    assert ren["Actor"]["Attributes"]["oldName"] == "/ev" and ren["Actor"]["Attributes"]["name"] == "ev2"
    # filters: label, event; an unknown filter is an error
    assert {e["Action"] for e in _events(nerdpy, "--filter", "label=team=a", "--filter", "event=pause")} == {"pause"}
    assert _events(nerdpy, "--filter", "label=team=b") == []
    r = nerdpy("events", "--since", "0", "--until", "0s", "--filter", "bogus=1")
    assert r.returncode == 1 and "invalid filter" in r.stderr
    # --until in the past, relative --since
    assert _events(nerdpy, "--since", "1h") != []
    assert nerdpy("events", "--since", "0", "--until", "1s", "--format", "{{.Type}} {{.Action}}").stdout


def test_events_of_copies_exports_networks_and_image_transfers(nerdpy, bb, registry, tmp_path):
    nerdpy("network", "create", "evnet", check=True)
    nerdpy("run", "-d", "--name", "evx", bb, "sleep", "60", check=True)
    (tmp_path / "f").write_text("x")
    nerdpy("cp", str(tmp_path / "f"), "evx:/tmp/f", check=True)
    nerdpy("cp", "evx:/tmp/f", str(tmp_path / "back"), check=True)
    nerdpy("top", "evx", check=True)
    nerdpy("export", "-o", str(tmp_path / "fs.tar"), "evx", check=True)
    nerdpy("network", "connect", "evnet", "evx", check=True)
    nerdpy("network", "disconnect", "evnet", "evx", check=True)
    actions = [e["Action"] for e in _events(nerdpy, "--filter", "container=evx")]
    for want in ("extract-to-dir", "archive-path", "top", "export"):
        assert want in actions, (want, actions)
    net = [(e["Action"], e["Actor"]["Attributes"]["name"]) for e in _events(nerdpy, "--filter", "type=network")]
    assert ("connect", "evnet") in net and ("disconnect", "evnet") in net, net
    cid = _cid(nerdpy, "evx")
    conn = next(e for e in _events(nerdpy, "--filter", "type=network", "--filter", "event=connect"))
    assert conn["Actor"]["Attributes"]["container"] == cid
    nerdpy("rm", "-f", "evx", check=True)
    nerdpy("network", "rm", "evnet", check=True)
    # push, save and load are image events
    target = f"{registry.host}/test/evpush:1"
    nerdpy("tag", bb, target, check=True)
    nerdpy("push", "-q", target, check=True)
    nerdpy("save", "-o", str(tmp_path / "img.tar"), target, check=True)
    nerdpy("rmi", target, check=True)
    nerdpy("load", "-q", "-i", str(tmp_path / "img.tar"), check=True)
    img = [(e["Action"], e["Actor"]["Attributes"].get("name")) for e in _events(nerdpy, "--filter", "type=image")]
    for want in ("push", "save", "load"):
        assert any(a == want and n and "evpush" in n for a, n in img), (want, img)
    nerdpy("rmi", target, check=True)


def test_events_of_networks_and_volumes_at_each_start_and_stop(nerdpy, bb):
    """As docker: `network connect` and `volume mount` before each `start`, `network disconnect`
    and `volume unmount` after each stop, once however many commands clean up."""
    nerdpy("network", "create", "evn", check=True)
    nerdpy("run", "-d", "--name", "nv", "--network", "evn", "-v", "evvol:/data", "-v", "evro:/ro:ro", bb,
           "sleep", "60", check=True)
    cid = _cid(nerdpy, "nv")
    nerdpy("stop", "-t", "0", "nv", check=True)
    nerdpy("start", "nv", check=True)
    nerdpy("rm", "-f", "nv", check=True)
    evs = [e for e in _events(nerdpy) if e["Actor"]["Attributes"].get("container") == cid or e["Actor"]["ID"] == cid]
    seq = [(e["Type"], e["Action"]) for e in evs if e["Type"] != "container" or e["Action"] in ("start", "die")]
    start_cycle = [("network", "connect"), ("volume", "mount"), ("volume", "mount"), ("container", "start")]
    stop_cycle = [("container", "die"), ("network", "disconnect"), ("volume", "unmount"), ("volume", "unmount")]
    assert seq == start_cycle + stop_cycle + start_cycle + stop_cycle, seq
    net_id = json.loads(nerdpy("network", "inspect", "evn", check=True).stdout)[0]["Id"]
    conn = next(e for e in evs if e["Action"] == "connect")
    assert conn["Actor"]["ID"] == net_id and conn["Actor"]["Attributes"] == {"container": cid, "name": "evn",
                                                                              "type": "bridge"}
    mounts = {e["Actor"]["ID"]: e["Actor"]["Attributes"] for e in evs if e["Action"] == "mount"}
    assert mounts["evvol"] == {"container": cid, "destination": "/data", "driver": "local", "propagation": "",
                               "read/write": "true"}, mounts
    assert mounts["evro"]["read/write"] == "false"
    assert next(e for e in evs if e["Action"] == "unmount")["Actor"]["Attributes"] == {"container": cid,
                                                                                     "driver": "local"}
    assert {e["Actor"]["ID"] for e in _events(nerdpy, "--filter", "volume=evvol")} == {"evvol"}
    nerdpy("volume", "rm", "evvol", "evro", check=True)
    nerdpy("network", "rm", "evn", check=True)


def test_events_attach(nerdpy, bb):
    nerdpy("run", "--name", "att", bb, "true", check=True)
    actions = [e["Action"] for e in _events(nerdpy, "--filter", "container=att")]
    assert actions == ["create", "attach", "start", "die"], actions  # `die` after `start`, however quick
    # each restart by the policy is a `start` after the `die`, as docker reports it
    nerdpy("run", "-d", "--name", "again", "--restart", "on-failure:1", "--network", "none", bb, "false", check=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        actions = [e["Action"] for e in _events(nerdpy, "--filter", "container=again")]
        if actions.count("die") == 2:
            break
        time.sleep(0.2)
    assert actions == ["create", "start", "die", "start", "die"], actions


def _cgroup_file(cid: str, controller: str, name: str) -> str:
    from nerdpy.engine.runtime import cgroups

    version = cgroups.layout()
    path = cgroups.controller_dir(cgroups.container_path("default", cid), controller, version)
    with open(os.path.join(path, name)) as f:
        return f.read().strip()


def _cid(nerdpy, name):
    return nerdpy("inspect", "-f", "{{.Id}}", name, check=True).stdout.strip()


def test_stats_no_stream_against_cgroup(nerdpy, bb):
    from nerdpy.engine.runtime import cgroups

    nerdpy("run", "-d", "--name", "st", "-m", "64m", bb, "sh", "-c",
           "dd if=/dev/zero of=/dev/shm/f bs=1M count=8 2>/dev/null; sleep 60", check=True)
    nerdpy("create", "--name", "idle", bb, "true", check=True)
    cid = _cid(nerdpy, "st")
    time.sleep(0.5)
    r = nerdpy("stats", "--no-stream", "--format", "{{json .}}", check=True)
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 1 and "\x1b" not in r.stdout
    row = rows[0]
    assert row["Name"] == "st" and row["ID"] == cid[:12] and row["Container"] == cid[:12]
    assert set(row) >= {"CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs"}
    assert row["MemUsage"].endswith(" / 64MiB") and row["PIDs"] == _cgroup_file(cid, "pids", "pids.current")
    # memory as docker computes it: usage - inactive_file, within what the cgroup says now
    st = cgroups.read_stats(cgroups.container_path("default", cid))
    used = st.memory_usage - (st.memory_inactive_file or 0)
    value, unit = row["MemUsage"].split(" / ")[0][:-3], row["MemUsage"].split(" / ")[0][-3:]
    shown = float(value) * {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[unit]
    assert abs(shown - used) < 4 << 20, (row, used)  # /dev/shm's 8 MiB count
    assert shown > 7 << 20
    assert row["NetIO"].split(" / ")[0] != ""
    # the interface's counters from the container's namespace: traffic shows
    gw = nerdpy("inspect", "-f", "{{.NetworkSettings.Gateway}}", "st", check=True).stdout.strip()
    nerdpy("exec", "st", "ping", "-c", "2", "-W", "2", gw, check=True)
    net = nerdpy("stats", "--no-stream", "--format", "{{.NetIO}}", "st", check=True).stdout.strip()
    assert "0B" not in net.split(" / "), net
    # -a includes the created container, with zeroes; a table by default; --no-trunc
    table = nerdpy("container", "stats", "-a", "--no-stream", check=True).stdout.splitlines()
    assert table[0].split()[:3] == ["CONTAINER", "ID", "NAME"] and len(table) == 3
    idle = next(line for line in table if " idle " in line)
    assert "0B / 0B" in idle
    full = nerdpy("stats", "--no-stream", "--no-trunc", "--format", "{{.ID}} {{.PIDs}}", "st", check=True).stdout
    assert full == f"{cid} 1\n"
    r = nerdpy("stats", "--no-stream", "nosuch")
    assert r.returncode != 0 and "No such container: nosuch" in r.stderr


def test_update_running_and_stopped(nerdpy, bb):
    from nerdpy.engine.runtime import cgroups

    nerdpy("run", "-d", "--name", "up", "-m", "64m", bb, "sleep", "60", check=True)
    cid = _cid(nerdpy, "up")
    assert nerdpy("update", "-m", "96m", "--memory-swap", "192m", "--pids-limit", "50", "--cpus", "0.5",
                  "--cpu-shares", "512", "--restart", "on-failure:3", "up", check=True).stdout == "up\n"
    v2 = cgroups.layout() == "v2"
    mem_file = "memory.max" if v2 else "memory.limit_in_bytes"
    assert _cgroup_file(cid, "memory", mem_file) == str(96 << 20)
    assert _cgroup_file(cid, "pids", "pids.max") == "50"
    if v2:
        assert _cgroup_file(cid, "cpu", "cpu.max") == "50000 100000"
    else:
        assert _cgroup_file(cid, "cpu", "cpu.cfs_quota_us") == "50000"
        assert _cgroup_file(cid, "cpu", "cpu.shares") == "512"
    hc = json.loads(nerdpy("inspect", "-f", "{{json .HostConfig}}", "up", check=True).stdout)
    assert hc["Memory"] == 96 << 20 and hc["MemorySwap"] == 192 << 20 and hc["PidsLimit"] == 50
    assert hc["NanoCpus"] == 500_000_000 and hc["CpuShares"] == 512
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    # survives stop/start
    nerdpy("stop", "-t", "0", "up", check=True)
    nerdpy("update", "--pids-limit", "40", "up", check=True)
    nerdpy("start", "up", check=True)
    assert _cgroup_file(cid, "memory", mem_file) == str(96 << 20)
    assert _cgroup_file(cid, "pids", "pids.max") == "40"
    # checks as run's; nothing changed on error
    r = nerdpy("update", "-m", "2m", "up")
    assert r.returncode == 1 and "Minimum memory limit allowed is 6MB".lower() in r.stderr.lower()
    r = nerdpy("update", "up")
    assert r.returncode != 0 and "one or more flags" in r.stderr
    r = nerdpy("update", "--restart", "sometimes", "up")
    assert r.returncode == 1 and "sometimes" in r.stderr
    assert nerdpy("inspect", "-f", "{{.HostConfig.PidsLimit}}", "up").stdout == "40\n"
    r = nerdpy("update", "-m", "64m", "nosuch")
    assert r.returncode == 1 and "No such container: nosuch" in r.stderr
    assert nerdpy("container", "update", "--pids-limit", "-1", "up", check=True).stdout == "up\n"
    assert _cgroup_file(cid, "pids", "pids.max") == "max"


def test_diff(nerdpy, bb):
    nerdpy("run", "--name", "df", bb, "sh", "-c",
           "mkdir -p /new/sub && echo x > /new/sub/f && echo y > /etc/added && rm /bin/ls "
           "&& rm -rf /etc/opq && mkdir /etc/opq && echo z > /etc/opq/keep || true", check=True)
    lines = nerdpy("diff", "df", check=True).stdout.splitlines()
    assert "A /new" in lines and "A /new/sub" in lines and "A /new/sub/f" in lines
    assert "C /etc" in lines and "A /etc/added" in lines
    assert "C /bin" in lines and "D /bin/ls" in lines
    assert lines == sorted(lines, key=lambda line: line[2:])
    assert nerdpy("container", "diff", "df", check=True).stdout.splitlines() == lines
    r = nerdpy("diff", "nosuch")
    assert r.returncode == 1 and "No such container: nosuch" in r.stderr


def test_prune_filters(nerdpy, bb):
    nerdpy("create", "--name", "keep", "--label", "keep=yes", bb, "true", check=True)
    nerdpy("create", "--name", "old", "--label", "tier=x", bb, "true", check=True)
    nerdpy("create", "--name", "plain", bb, "true", check=True)
    # an unknown filter is an error, never ignored; nothing removed
    for group in ("container", "image", "volume", "network", "system"):
        r = nerdpy(group, "prune", "-f", "--filter", "bogus=1")
        assert r.returncode == 1 and "invalid filter 'bogus'" in r.stderr, (group, r.stderr)
    r = nerdpy("image", "prune", "-f", "--filter", "name=x")
    assert r.returncode == 1
    assert len(nerdpy("ps", "-aq").stdout.split()) == 3
    # until: nothing created before an hour ago
    r = nerdpy("container", "prune", "-f", "--filter", "until=1h", check=True)
    assert "Deleted Containers" not in r.stdout and len(nerdpy("ps", "-aq").stdout.split()) == 3
    r = nerdpy("container", "prune", "-f", "--filter", "label=tier=x", check=True)
    assert r.stdout.startswith("Deleted Containers:\n")
    assert sorted(nerdpy("ps", "-a", "--format", "{{.Names}}").stdout.split()) == ["keep", "plain"]
    nerdpy("container", "prune", "-f", "--filter", "label!=keep", check=True)
    assert nerdpy("ps", "-a", "--format", "{{.Names}}").stdout.split() == ["keep"]
    # images: a filter keeps the ones not matching (the test image has org.nerdpy.test=busybox)
    nerdpy("rm", "keep", check=True)
    r = nerdpy("image", "prune", "-a", "-f", "--filter", "label=org.nerdpy.test=other", check=True)
    assert nerdpy("images", "-q").stdout.strip()
    # until compares the image's creation time (2024-01-02T03:04:05Z for the test images)
    r = nerdpy("image", "prune", "-a", "-f", "--filter", "until=2024-01-01T00:00:00Z", check=True)
    assert nerdpy("images", "-q").stdout.strip()
    # volumes: label and label!
    nerdpy("volume", "create", "--label", "a=1", "va", check=True)
    nerdpy("volume", "create", "vb", check=True)
    nerdpy("volume", "prune", "-f", "--filter", "all=true", "--filter", "label!=a", check=True)
    assert nerdpy("volume", "ls", "-q").stdout.split() == ["va"]
    r = nerdpy("system", "prune", "-f", "--volumes", "--filter", "until=1h")
    assert r.returncode == 1 and "until" in r.stderr
    nerdpy("system", "prune", "-a", "-f", "--filter", "label=org.nerdpy.test=busybox", check=True)
    assert nerdpy("images", "-q").stdout.strip() == ""


def test_container_and_image_forms(nerdpy, bb, tmp_path):
    for sub in ("attach", "commit", "cp", "create", "diff", "exec", "export", "inspect", "kill", "logs", "ls",
                "pause", "port", "prune", "rename", "restart", "rm", "run", "start", "stats", "stop", "top",
                "unpause", "update", "wait"):
        assert nerdpy("container", sub, "--help").returncode == 0, sub
    for sub in ("history", "import", "inspect", "load", "ls", "prune", "pull", "push", "rm", "save", "tag"):
        assert nerdpy("image", sub, "--help").returncode == 0, sub
    nerdpy("container", "run", "--name", "f", "-p", "127.0.0.1::80", bb, "true", check=True)
    assert nerdpy("container", "export", "-o", str(tmp_path / "f.tar"), "f", check=True).returncode == 0
    nerdpy("container", "commit", "f", "local/f:1", check=True)
    nerdpy("image", "save", "-o", str(tmp_path / "i.tar"), "local/f:1", check=True)
    nerdpy("image", "rm", "local/f:1", check=True)
    assert "local/f:1" in nerdpy("image", "load", "-i", str(tmp_path / "i.tar"), check=True).stdout
    nerdpy("image", "import", str(tmp_path / "f.tar"), "local/imp:2", check=True)
    assert nerdpy("image", "ls", "local/imp", "--format", "{{.Repository}}:{{.Tag}}").stdout == "local/imp:2\n"
    assert nerdpy("image", "ls", "local/imp:3", "-q").stdout == ""
    # docker's texts and exit codes for missing objects
    r = nerdpy("image", "tag", "nothere", "x:1")
    assert r.returncode == 1 and "No such image: nothere" in r.stderr
    r = nerdpy("container", "port", "nothere")
    assert r.returncode == 1 and "No such container: nothere" in r.stderr
    r = nerdpy("run", "--pull", "never", "nothere:1")
    assert r.returncode == 125 and "No such image" in r.stderr


def test_volume_local_driver_options(nerdpy, bb, tmp_path):
    nerdpy("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=64m", "tv", check=True)
    opts = json.loads(nerdpy("volume", "inspect", "-f", "{{json .Options}}", "tv", check=True).stdout)
    assert opts == {"type": "tmpfs", "device": "tmpfs", "o": "size=64m"}
    out = nerdpy("run", "--rm", "-v", "tv:/data", bb, "sh", "-c", "grep ' /data ' /proc/mounts", check=True).stdout
    assert out.split()[2] == "tmpfs" and "size=65536k" in out
    host = tmp_path / "hostdir"
    host.mkdir()
    nerdpy("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", f"device={host}", "bv", check=True)
    nerdpy("run", "--rm", "-v", "bv:/data", bb, "sh", "-c", "echo hi > /data/f", check=True)
    assert (host / "f").read_text() == "hi\n"
    r = nerdpy("volume", "create", "-o", "type=nfs", "-o", "device=:/x", "nv")
    assert r.returncode == 1 and "not supported" in r.stderr
    assert nerdpy("volume", "ls", "-q").stdout.split() == ["bv", "tv"]


def test_port_bindings_and_ps_size(nerdpy, bb):
    nerdpy("create", "--name", "pb", "-p", "127.0.0.1::80", "-p", "8080:81/udp", bb, "true", check=True)
    hc = json.loads(nerdpy("inspect", "-f", "{{json .HostConfig}}", "pb", check=True).stdout)
    assert hc["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
                                  "81/udp": [{"HostIp": "", "HostPort": "8080"}]}
    assert hc["PublishAllPorts"] is False
    nerdpy("run", "--name", "sz", bb, "sh", "-c", "echo hello > /f", check=True)
    size = nerdpy("ps", "-a", "-s", "--filter", "name=sz", "--format", "{{.Size}}", check=True).stdout.strip()
    import re

    assert re.fullmatch(r"\d+(\.\d+)?[kMG]?B \(virtual \d+(\.\d+)?[kMG]?B\)", size), size


def test_events_images_volumes_networks(nerdpy, bb):
    nerdpy("tag", bb, "local/t:1", check=True)
    nerdpy("rmi", "local/t:1", check=True)
    nerdpy("volume", "create", "v1", check=True)
    nerdpy("volume", "rm", "v1", check=True)
    nerdpy("network", "create", "n1", check=True)
    nerdpy("network", "rm", "n1", check=True)
    got = [(e["Type"], e["Action"]) for e in _events(nerdpy) if e["Type"] != "container"]
    for want in (("image", "pull"), ("image", "tag"), ("image", "untag"), ("volume", "create"),
                 ("volume", "destroy"), ("network", "create"), ("network", "destroy")):
        assert want in got, (want, got)
    assert {e["Actor"]["Attributes"]["name"] for e in _events(nerdpy, "--filter", "network=n1")} == {"n1"}


def test_events_health_status(nerdpy, bb):
    nerdpy("run", "-d", "--name", "hc", "--health-cmd", "true", "--health-interval", "1s", bb, "sleep", "60",
           check=True)
    deadline = time.time() + 20
    while time.time() < deadline:
        evs = _events(nerdpy, "--filter", "event=health_status")
        if evs:
            break
        time.sleep(0.5)
    assert [e["Action"] for e in evs] == ["health_status: healthy"], evs
    assert evs[0]["Actor"]["Attributes"]["name"] == "hc"


def test_update_restart_policy_reaches_running_monitor(nerdpy, bb):
    nerdpy("run", "-d", "--name", "rp", bb, "sh", "-c", "sleep 2; exit 3", check=True)
    nerdpy("update", "--restart", "on-failure:1", "rp", check=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        st = json.loads(nerdpy("inspect", "-f", "{{json .}}", "rp", check=True).stdout)
        if st["RestartCount"] == 1 and st["State"]["Status"] == "exited":
            break
        time.sleep(0.5)
    assert st["RestartCount"] == 1 and st["State"]["ExitCode"] == 3, st["State"]
