"""The CNI invocation protocol, against fake plugins that record what they were given: the
environment, prevResult chaining, runtimeConfig only for declared capabilities, DEL in reverse
order with the cached result, and error results turned into CniError."""
from __future__ import annotations

import json
import os
import sys

import pytest

from nerdpy.engine.network import CniError, NetworkError
from nerdpy.engine.network.cni import (RuntimeConf, add_network_list, check_network_list, del_network_list,
                                       find_plugin, parse_result)

FAKE = r'''#!PYTHON
import json, os, sys, time
conf = json.load(sys.stdin)
log = os.path.join(LOGDIR, "%s-%s-%d" % (os.environ["CNI_COMMAND"], conf["type"], time.monotonic_ns()))
keys = ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH")
with open(log, "w") as f:
    json.dump({"conf": conf, "env": {k: os.environ.get(k) for k in keys}}, f)
if conf.get("fail"):
    print(json.dumps({"cniVersion": "1.0.0", "code": 11, "msg": "it failed", "details": "on purpose"}))
    sys.exit(1)
if conf.get("garbage"):
    print("not json"); sys.exit(0)
if conf.get("crash"):
    sys.stderr.write("panic: oops\n"); sys.exit(2)
if os.environ["CNI_COMMAND"] != "ADD":
    sys.exit(0)
prev = conf.get("prevResult") or {"cniVersion": "1.0.0", "interfaces": [], "ips": []}
if conf["type"] == "fakebridge":
    prev = {"cniVersion": "1.0.0",
            "interfaces": [{"name": "br0"}, {"name": "veth1"}, {"name": os.environ["CNI_IFNAME"], "mac": "aa:bb:cc:dd:ee:01", "sandbox": os.environ["CNI_NETNS"]}],
            "ips": [{"address": "10.9.0.5/24", "gateway": "10.9.0.1", "interface": 2}]}
else:
    prev = dict(prev, seen=prev.get("seen", []) + [conf["type"]])
print(json.dumps(prev))
'''


@pytest.fixture
def plugins(tmp_path):
    bindir = tmp_path / "bin"
    logdir = tmp_path / "log"
    bindir.mkdir()
    logdir.mkdir()
    for name in ("fakebridge", "fakeportmap", "fakefirewall"):
        p = bindir / name
        p.write_text(FAKE.replace("PYTHON", sys.executable).replace("LOGDIR", repr(str(logdir))))
        p.chmod(0o755)
    return str(bindir), logdir


def _calls(logdir) -> list[dict]:
    entries = sorted(os.listdir(logdir), key=lambda n: int(n.rsplit("-", 1)[1]))
    return [json.loads((logdir / n).read_text()) for n in entries]


NETLIST = {"cniVersion": "1.0.0", "name": "testnet", "plugins": [
    {"type": "fakebridge", "bridge": "br0", "capabilities": {"ips": True}},
    {"type": "fakeportmap", "capabilities": {"portMappings": True}},
    {"type": "fakefirewall"},
]}


def test_add_chains_prev_result_and_passes_declared_capabilities(plugins):
    bindir, logdir = plugins
    rt = RuntimeConf("cid1", "/run/netns/x", "eth0", args=[("IgnoreUnknown", "1"), ("K", "v")],
                     capability_args={"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
                                      "ips": ["10.9.0.5/24"], "mac": "aa:aa:aa:aa:aa:aa"})
    seen = []
    result = add_network_list(NETLIST, rt, [str(logdir), bindir], progress=lambda i, r: seen.append(i))
    assert result["seen"] == ["fakeportmap", "fakefirewall"]
    assert seen == [0, 1, 2, 2]
    calls = _calls(logdir)
    assert [c["conf"]["type"] for c in calls] == ["fakebridge", "fakeportmap", "fakefirewall"]
    for c in calls:
        assert c["env"] == {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "cid1", "CNI_NETNS": "/run/netns/x",
                            "CNI_IFNAME": "eth0", "CNI_ARGS": "IgnoreUnknown=1;K=v",
                            "CNI_PATH": f"{logdir}:{bindir}"}
        assert c["conf"]["name"] == "testnet" and c["conf"]["cniVersion"] == "1.0.0"
    assert "prevResult" not in calls[0]["conf"]
    assert calls[0]["conf"]["runtimeConfig"] == {"ips": ["10.9.0.5/24"]}
    assert calls[1]["conf"]["runtimeConfig"] == {"portMappings": rt.capability_args["portMappings"]}
    assert "runtimeConfig" not in calls[2]["conf"]
    assert calls[1]["conf"]["prevResult"]["ips"][0]["address"] == "10.9.0.5/24"
    assert calls[2]["conf"]["prevResult"]["seen"] == ["fakeportmap"]
    itf = parse_result(result, "eth0")
    assert (itf.address, itf.prefix_len, itf.gateway, itf.mac) == ("10.9.0.5", 24, "10.9.0.1", "aa:bb:cc:dd:ee:01")


def test_del_runs_in_reverse_with_the_cached_result(plugins):
    bindir, logdir = plugins
    cached = {"cniVersion": "1.0.0", "ips": [{"address": "10.9.0.5/24"}]}
    del_network_list(NETLIST, RuntimeConf("cid1", "/run/netns/x", "eth0"), [bindir], cached, parallel=False)
    calls = _calls(logdir)
    assert [c["conf"]["type"] for c in calls] == ["fakefirewall", "fakeportmap", "fakebridge"]
    assert all(c["conf"]["prevResult"] == cached and c["env"]["CNI_COMMAND"] == "DEL" for c in calls)
    check_network_list(NETLIST, RuntimeConf("cid1", "/run/netns/x", "eth0"), [bindir], cached)
    assert [c["env"]["CNI_COMMAND"] for c in _calls(logdir)[3:]] == ["CHECK"] * 3


def test_del_continues_after_a_failure(plugins):
    bindir, logdir = plugins
    netlist = json.loads(json.dumps(NETLIST))
    netlist["plugins"][1]["fail"] = True
    with pytest.raises(CniError) as e:
        del_network_list(netlist, RuntimeConf("cid1", "", "eth0"), [bindir], None, parallel=False)
    assert e.value.code == 11 and e.value.plugin == "fakeportmap" and e.value.command == "DEL"
    assert [c["conf"]["type"] for c in _calls(logdir)] == ["fakefirewall", "fakeportmap", "fakebridge"]


def test_errors(plugins):
    bindir, _ = plugins
    rt = RuntimeConf("cid1", "/run/netns/x", "eth0")
    netlist = json.loads(json.dumps(NETLIST))
    netlist["plugins"][1]["fail"] = True
    with pytest.raises(CniError) as e:
        add_network_list(netlist, rt, [bindir])
    assert str(e.value) == "CNI plugin fakeportmap (ADD) failed: it failed: on purpose"
    assert isinstance(e.value, NetworkError) and e.value.exit_code == 125
    netlist["plugins"][1] = {"type": "fakeportmap", "crash": True}
    with pytest.raises(CniError, match="panic: oops"):
        add_network_list(netlist, rt, [bindir])
    netlist["plugins"][1] = {"type": "fakeportmap", "garbage": True}
    with pytest.raises(CniError, match="unparsable result"):
        add_network_list(netlist, rt, [bindir])
    with pytest.raises(NetworkError, match="not found"):
        find_plugin("nosuchplugin", [bindir])
    with pytest.raises(NetworkError):
        find_plugin("../bin/sh", [bindir])


def test_a_plugin_that_outlives_its_killed_caller_keeps_the_callers_lock(tmp_path):
    """A nerdpy killed mid-ADD leaves its plugin running: the container's network lock stays held
    until the plugin exits, so the next command's DEL cannot run beside the unfinished ADD."""
    import fcntl
    import signal
    import time

    bindir = tmp_path / "bin"
    bindir.mkdir()
    started, done = tmp_path / "started", tmp_path / "done"
    slow = bindir / "slowbridge"
    slow.write_text(f"#!/bin/sh\ncat >/dev/null\ntouch {started}\nsleep 1.5\ntouch {done}\n"
                    'echo \'{"cniVersion": "1.0.0", "ips": []}\'\n')
    slow.chmod(0o755)
    lock = tmp_path / "lock"
    netlist = {"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "slowbridge"}]}
    pid = os.fork()
    if pid == 0:  # the caller: holds the lock, runs the plugin, is killed meanwhile
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
            fcntl.flock(fd, fcntl.LOCK_EX)
            add_network_list(netlist, RuntimeConf("c1", "/x", held_fds=(fd,)), [str(bindir)])
        finally:
            os._exit(0)
    deadline = time.monotonic() + 10
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    fd = os.open(lock, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the orphaned plugin holds it
        assert not done.exists()
        fcntl.flock(fd, fcntl.LOCK_EX)  # ... until it has finished
        assert done.exists()
    finally:
        os.close(fd)
