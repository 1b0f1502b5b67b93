"""Hostile input (issue 17): --cidfile in a missing directory, --dns/--dns-search/--dns-option/
--add-host with non-addresses, newlines or control characters, bad healthcheck values from the
flags, compose and an image: refused up front with one line (nothing left behind), or replaced
by docker's defaults, and the monitor never spins."""
from __future__ import annotations

import json
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import world  # noqa: E402

T = 60


def refused(nerdpy, *args, message: str) -> None:
    r = nerdpy("run", "-q", *args, timeout=T)
    assert r.returncode == 125, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert nerdpy("ps", "-aq").stdout.strip() == ""


def test_cidfile_in_missing_directory(nerdpy, images, tmp_path):
    path = str(tmp_path / "missing-dir" / "x")
    refused(nerdpy, "--cidfile", path, images.busybox, "true",
            message=f"failed to create the container ID file: open {path}: no such file or directory")
    assert not os.path.exists(path)
    mounts = open("/proc/self/mountinfo").read()
    assert nerdpy.data_root not in mounts
    # a create that fails later removes the ID file it made
    ok = tmp_path / "cid"
    r = nerdpy("run", "-q", "--cidfile", str(ok), "--user", "nosuchuser", images.busybox, "true", timeout=T)
    assert r.returncode == 125 and not ok.exists()


BAD = [
    (["--dns", "notanip"], "notanip is not an ip address"),
    (["--dns-search", "a\nnameserver 6.6.6.6"], "is not a valid domain"),
    (["--dns-search", "bad domain"], "is not a valid domain"),
    (["--dns-option", "ndots:1\nnameserver 6.6.6.6"], "DNS option"),
    (["--add-host", "x\n1.2.3.4 evil:1.1.1.1"], "bad format for add-host"),
    (["--add-host", "x\tevil:1.1.1.1"], "bad format for add-host"),
    (["--add-host", "x:notanip"], "invalid IP address"),
    (["--health-cmd", "true", "--health-interval", "-1s"], "invalid duration"),
    (["--health-cmd", "true", "--health-interval", "1us"], "Interval in Healthcheck cannot be less than 1ms"),
    (["--health-cmd", "true", "--health-retries", "-5"], "Retries in Healthcheck cannot be negative"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[repr(a) for a, _ in BAD])
def test_refused_flags(nerdpy, images, args, message):
    refused(nerdpy, *args, images.busybox, "true", message=message)


def test_valid_dns_values_still_work(nerdpy, images):
    r = nerdpy("run", "--rm", "-q", "--dns", "1.1.1.1", "--dns-search", "example.com", "--dns-option", "ndots:2",
               "--add-host", "h:10.0.0.1", images.busybox, "sh", "-c", "cat /etc/resolv.conf /etc/hosts",
               timeout=T)
    assert r.returncode == 0, r.stderr
    assert "nameserver 1.1.1.1" in r.stdout and "search example.com" in r.stdout
    assert "options ndots:2" in r.stdout and "10.0.0.1\th" in r.stdout.replace(" ", "\t")


def test_compose_hostile_values_refused(nerdpy, images, tmp_path):
    f = tmp_path / "compose.yaml"
    for key, value, message in (("dns_search", ["a\nnameserver 6.6.6.6"], "not a valid domain"),
                                ("dns", ["notanip"], "not an ip address"),
                                ("healthcheck", {"test": ["CMD", "true"], "retries": -5}, "negative")):
        f.write_text(json.dumps({"services": {"s": {"image": images.busybox, key: value}}}))
        r = nerdpy("compose", "-f", str(f), "up", "-d", timeout=T)
        assert r.returncode != 0 and message in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert nerdpy("ps", "-aq").stdout.strip() == ""


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def test_image_with_bad_healthcheck_does_not_spin(nerdpy, registry, tmp_path):
    layout = str(tmp_path / "layout")
    config = dict(world.BUSYBOX_CONFIG, Healthcheck={"Test": ["CMD"], "Interval": -1, "Retries": -5})
    world.write_image(layout, "badhc", [world._tar(world.busybox_entries())], config)
    ref = f"{registry.host}/test/badhc:latest"
    world.push_layout(layout, "badhc", ref)
    nerdpy("run", "-d", "-q", "--name", "hc", ref, "sleep", "300", check=True, timeout=T)
    # and one whose command exists but whose durations are negative: docker's defaults apply
    world.write_image(layout, "neghc", [world._tar(world.busybox_entries())],
                      dict(world.BUSYBOX_CONFIG, Healthcheck={"Test": ["CMD", "true"], "Interval": -1,
                                                              "Timeout": -1, "Retries": -5}))
    ref2 = f"{registry.host}/test/neghc:latest"
    world.push_layout(layout, "neghc", ref2)
    nerdpy("run", "-d", "-q", "--name", "hc2", ref2, "sleep", "300", check=True, timeout=T)
    try:
        monitors = []
        for name in ("hc", "hc2"):
            cid = nerdpy("inspect", "--format", "{{.Id}}", name, check=True).stdout.strip()
            with open(os.path.join(nerdpy.data_root, "containers", "default", cid, "state.json")) as f:
                monitors.append(json.load(f)["monitor_pid"])
        before = [_cpu_ticks(p) for p in monitors]
        time.sleep(2)
        after = [_cpu_ticks(p) for p in monitors]
        hz = os.sysconf("SC_CLK_TCK")
        for b, a in zip(before, after):
            assert (a - b) / hz < 0.1, f"monitor used {(a - b) / hz:.2f}s of CPU in 2s"
        st = json.loads(nerdpy("inspect", "--format", "{{json .State}}", "hc", check=True).stdout)
        assert st["Running"] and "Health" not in st  # ["CMD"]: nothing to run, no healthcheck
        st2 = json.loads(nerdpy("inspect", "--format", "{{json .State}}", "hc2", check=True).stdout)
        assert st2["Health"]["Status"] == "starting"  # the 30s default interval: no result yet
    finally:
        nerdpy("rm", "-f", "hc", "hc2")
