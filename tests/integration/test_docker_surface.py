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
    assert r.returncode == 125 and "invalid filter" in r.stderr
    # --until in the past, relative --since
    assert _events(nerdpy, "--since", "1h") != []
    assert nerdpy("events", "--since", "0", "--until", "1s", "--format", "{{.Type}} {{.Action}}").stdout


def test_events_attach(nerdpy, bb):
    nerdpy("run", "--name", "att", bb, "true", check=True)
    actions = [e["Action"] for e in _events(nerdpy, "--filter", "container=att")]
    assert actions[:3] == ["create", "attach", "start"], actions
