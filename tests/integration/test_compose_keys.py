"""Compose keys backed by a run flag (group_add, oom_score_adj, mac_address, dns_opt, label_file,
mem_reservation, memswap_limit, cpu_shares), `links` as names on the network, and the
post_start / pre_stop hooks, seen from inside the containers and in inspect."""
from __future__ import annotations

import json
import os
import textwrap

T = 90
LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"


def test_keys_links_and_hooks(nerdpy, images, tmp_path):
    (tmp_path / "labels.txt").write_text("team=data\n")
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    f = tmp_path / "compose.yaml"
    f.write_text(textwrap.dedent(f"""
        name: keys
        services:
          db:
            image: {images.busybox}
            command: ["sh", "-c", "{LOOP}"]
            label_file: labels.txt
            group_add: ["2000"]
            oom_score_adj: 300
            mac_address: "92:d0:c6:0a:29:33"
            dns_opt: ["ndots:3"]
            mem_limit: 64m
            mem_reservation: 32m
            memswap_limit: 96m
            cpu_shares: 512
            volumes: ["{hooks}:/hooks"]
            post_start:
              - command: ["sh", "-c", "echo started-$$HOOKVAR > /hooks/post"]
                environment: {{HOOKVAR: yes}}
            pre_stop:
              - command: ["sh", "-c", "echo stopping > /hooks/pre"]
          web:
            image: {images.busybox}
            command: ["sh", "-c", "{LOOP}"]
            links: ["db:database"]
        """))
    r = nerdpy("compose", "-f", str(f), "up", "-d", timeout=T)
    assert r.returncode == 0, r.stderr
    assert open(hooks / "post").read() == "started-yes\n"      # post_start ran once db had started
    info = json.loads(nerdpy("inspect", "keys-db-1", check=True).stdout)[0]
    hc = info["HostConfig"]
    assert (hc["GroupAdd"], hc["OomScoreAdj"], hc["CpuShares"]) == (["2000"], 300, 512)
    assert (hc["Memory"], hc["MemoryReservation"], hc["MemorySwap"]) == (64 << 20, 32 << 20, 96 << 20)
    assert info["Config"]["Labels"]["team"] == "data"

    def sh(service, script):
        r = nerdpy("compose", "-f", str(f), "exec", "-T", service, "sh", "-c", script, timeout=T)
        assert r.returncode == 0, r.stderr
        return r.stdout

    out = sh("db", "id -G; cat /proc/self/oom_score_adj; cat /sys/class/net/eth0/address; "
                   "grep options /etc/resolv.conf")
    groups, oom, mac, opts = out.splitlines()
    assert "2000" in groups.split() and oom == "300" and mac == "92:d0:c6:0a:29:33" and "ndots:3" in opts
    # web reaches db by the link's alias
    db_ip = info["NetworkSettings"]["Networks"]["keys_default"]["IPAddress"]
    assert db_ip in sh("web", "ping -c1 -W2 database | head -1")

    r = nerdpy("compose", "-f", str(f), "down", "-t", "2", timeout=T)
    assert r.returncode == 0, r.stderr
    assert open(hooks / "pre").read() == "stopping\n"           # pre_stop ran before the stop
    assert not os.path.exists(hooks / "fail")


def test_failing_post_start_hook_fails_up(nerdpy, images, tmp_path):
    f = tmp_path / "compose.yaml"
    f.write_text(textwrap.dedent(f"""
        name: hookfail
        services:
          app:
            image: {images.busybox}
            command: ["sh", "-c", "{LOOP}"]
            post_start:
              - command: ["sh", "-c", "echo broken >&2; exit 3"]
        """))
    r = nerdpy("compose", "-f", str(f), "up", "-d", timeout=T)
    assert r.returncode != 0
    assert "post_start hook" in r.stderr and "exited with code 3" in r.stderr and "broken" in r.stderr, r.stderr
    nerdpy("compose", "-f", str(f), "down", "-t", "1", check=True, timeout=T)
