"""The compose commands and options that tools drive: cp, wait, events --json, stats, scale,
start --wait, up --wait-timeout's message, --abort-on-container-failure, --attach/--no-attach,
exec -d returning at once, config --hash/--variables/--no-interpolate, --compatibility names,
and a version string that docker compose parsers accept."""
from __future__ import annotations

import json
import subprocess
import sys
import time

from test_compose import LOOP, ids, write


def test_cp_wait_events_stats_scale_exec_detach(nerdpy, images, tmp_path):
    f = write(tmp_path / "compose.yaml", f"""
        name: cmds
        services:
          web:
            image: {images.busybox}
            command: ["sh", "-c", "{LOOP}"]
          job:
            image: {images.busybox}
            command: ["sh", "-c", "sleep 1; exit 3"]
            profiles: [jobs]
        """)
    # events, followed from before `up`
    ev = subprocess.Popen([sys.executable, "-m", "nerdpy", "--data-root", nerdpy.data_root, "compose", "-f", f,
                           "events", "--json"], env=nerdpy.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    try:
        time.sleep(0.5)  # let it open the journal (it streams from now on)
        nerdpy("compose", "-f", f, "up", "-d", check=True)
        line = ev.stdout.readline()
        got = [json.loads(line)]
        while got[-1]["action"] != "start":
            got.append(json.loads(ev.stdout.readline()))
    finally:
        ev.terminate()
        ev.communicate(timeout=10)
    assert got[0]["action"] == "create" and got[0]["service"] == "web" and got[0]["type"] == "container"
    assert got[0]["attributes"]["name"] == "cmds-web-1"
    assert got[-1]["id"] == ids(nerdpy, f)["cmds-web-1"]
    assert got[0]["time"].startswith("20") and "T" in got[0]["time"]

    # cp in and out
    src = tmp_path / "hello.txt"
    src.write_text("hi there\n")
    nerdpy("compose", "-f", f, "cp", str(src), "web:/tmp/hello.txt", check=True)
    out = tmp_path / "back.txt"
    nerdpy("compose", "-f", f, "cp", "web:/tmp/hello.txt", str(out), check=True)
    assert out.read_text() == "hi there\n"
    r = nerdpy("compose", "-f", f, "cp", str(src), "nope:/tmp/")
    assert r.returncode != 0 and "nope" in r.stderr

    # exec -d returns at once
    t0 = time.monotonic()
    nerdpy("compose", "-f", f, "exec", "-d", "web", "sh", "-c", "sleep 5; touch /tmp/late", check=True)
    assert time.monotonic() - t0 < 4

    # stats
    r = nerdpy("compose", "-f", f, "stats", "--no-stream", "--format", "json", check=True)
    row = json.loads(r.stdout.splitlines()[0])
    assert row["Name"] == "cmds-web-1" and row["CPUPerc"].endswith("%") and "/" in row["MemUsage"]
    assert int(row["PIDs"]) >= 1
    r = nerdpy("compose", "-f", f, "stats", "--no-stream", check=True)
    assert r.stdout.splitlines()[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
    st = subprocess.Popen([sys.executable, "-m", "nerdpy", "--data-root", nerdpy.data_root, "compose", "-f", f,
                           "stats", "--format", "{{.Name}} {{.CPUPerc}}"], env=nerdpy.env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        streamed = [st.stdout.readline(), st.stdout.readline()]   # two refreshes
    finally:
        st.terminate()
        st.communicate(timeout=10)
    assert all(line.startswith("cmds-web-1 ") and line.strip().endswith("%") for line in streamed), streamed

    # scale up without recreating the first
    first = ids(nerdpy, f)["cmds-web-1"]
    nerdpy("compose", "-f", f, "scale", "web=2", check=True)
    now = ids(nerdpy, f)
    assert now["cmds-web-1"] == first and "cmds-web-2" in now

    # wait: the exit code of the container
    nerdpy("compose", "-f", f, "--profile", "jobs", "up", "-d", "job", check=True)
    r = nerdpy("compose", "-f", f, "--profile", "jobs", "wait", "job")
    assert r.returncode == 3, r.stderr
    job_id = ids(nerdpy, f)["cmds-job-1"]
    assert r.stdout == f'container "{job_id}" exited with status code 3\n'
    nerdpy("compose", "-f", f, "--profile", "jobs", "down", "-t", "1", check=True)


def test_wait_timeout_start_wait_abort_on_failure_attach(nerdpy, images, tmp_path):
    f = write(tmp_path / "compose.yaml", f"""
        name: waits
        services:
          slow:
            image: {images.busybox}
            command: ["sh", "-c", "{LOOP}"]
            healthcheck:
              test: ["CMD", "test", "-f", "/tmp/never"]
              interval: 200ms
              retries: 1000
          quick:
            image: {images.busybox}
            command: ["sh", "-c", "echo quick-says; {LOOP}"]
          ticker:
            image: {images.busybox}
            command: ["sh", "-c", "sleep 2; echo attached-out; exit 7"]
            profiles: [tick]
        """)
    # attach: the service container's output, its exit code ours
    nerdpy("compose", "-f", f, "--profile", "tick", "up", "-d", "ticker", check=True)
    r = nerdpy("compose", "-f", f, "--profile", "tick", "attach", "--no-stdin", "ticker")
    assert r.returncode == 7 and "attached-out" in r.stdout, r.stderr
    nerdpy("compose", "-f", f, "--profile", "tick", "rm", "-f", "ticker", check=True)
    r = nerdpy("compose", "-f", f, "up", "--wait", "--wait-timeout", "2", "slow")
    assert r.returncode == 1
    assert "application not healthy after 2s" in r.stderr
    nerdpy("compose", "-f", f, "stop", "-t", "1", check=True)
    r = nerdpy("compose", "-f", f, "start", "--wait", "--wait-timeout", "1", "slow")
    assert r.returncode == 1 and "application not healthy after 1s" in r.stderr
    r = nerdpy("compose", "-f", f, "up", "-d", "--wait", "quick", check=True)
    r = nerdpy("compose", "-f", f, "stop", "-t", "1", "quick", check=True)
    r = nerdpy("compose", "-f", f, "start", "--wait", "quick", check=True)
    assert "Container waits-quick-1  Running" in r.stderr or "Running" in r.stderr
    nerdpy("compose", "-f", f, "down", "-t", "1", check=True)

    g = write(tmp_path / "fail.yaml", f"""
        name: fails
        services:
          ok:
            image: {images.busybox}
            command: ["sh", "-c", "echo ok-done"]
          bad:
            image: {images.busybox}
            command: ["sh", "-c", "echo bad-line; sleep 1; exit 5"]
          svc:
            image: {images.busybox}
            command: ["sh", "-c", "echo svc-line; {LOOP}"]
        """)
    r = nerdpy("compose", "-f", g, "up", "--abort-on-container-failure", "--no-attach", "svc", "-t", "1")
    assert r.returncode == 5, r.stderr
    assert "bad-1  | bad-line" in r.stdout and "ok-1   | ok-done" in r.stdout
    assert "svc-line" not in r.stdout
    assert "bad-1 exited with code 5" in r.stdout
    r = nerdpy("compose", "-f", g, "up", "--abort-on-container-exit", "--abort-on-container-failure")
    assert r.returncode != 0 and "incompatible" in r.stderr
    nerdpy("compose", "-f", g, "down", "-t", "1", check=True)


def test_config_options_version_and_compatibility(nerdpy, images, tmp_path):
    f = write(tmp_path / "compose.yaml", f"""
        name: cfg
        services:
          web:
            image: ${{IMG:-{images.busybox}}}
            command: ["sh", "-c", "{LOOP}"]
            environment:
              MODE: ${{MODE:?mode is needed}}
              ALT: ${{FLAG:+on}}
        """)
    env = {"MODE": "prod"}
    r = nerdpy("compose", "-f", f, "config", "--variables", "--format", "json", env=env, check=True)
    v = json.loads(r.stdout)
    assert v["IMG"]["DefaultValue"] == images.busybox and v["MODE"]["Required"] is True
    assert v["FLAG"]["PresenceValue"] == "on"
    r = nerdpy("compose", "-f", f, "config", "--variables", check=True)   # MODE unset: still listed
    assert r.stdout.split()[:4] == ["NAME", "REQUIRED", "DEFAULT", "VALUE"]
    r = nerdpy("compose", "-f", f, "config", "--no-interpolate", "--format", "json", check=True)
    assert json.loads(r.stdout)["services"]["web"]["environment"]["MODE"] == "${MODE:?mode is needed}"
    r = nerdpy("compose", "-f", f, "config", "--hash", "*", env=env, check=True)
    name, h = r.stdout.split()
    assert name == "web" and len(h) == 64
    assert nerdpy("compose", "-f", f, "config", "--hash", "web", env=env, check=True).stdout == r.stdout
    assert nerdpy("compose", "-f", f, "config", "--images", env=env, check=True).stdout == images.busybox + "\n"

    r = nerdpy("compose", "version", check=True)
    assert r.stdout.startswith("Docker Compose version v2.")
    short = nerdpy("compose", "version", "--short", check=True).stdout.strip()
    assert short.startswith("2.") and short.count(".") == 2

    # --compatibility: v1 names (project_service_N)
    nerdpy("compose", "--compatibility", "-f", f, "up", "-d", env=env, check=True)
    assert set(ids(nerdpy, f, env=env)) == {"cfg_web_1"}
    r = nerdpy("compose", "--compatibility", "-f", f, "logs", env=env, check=True)
    nerdpy("compose", "--compatibility", "-f", f, "down", "-t", "1", env=env, check=True)
    assert ids(nerdpy, f, env=env) == {}
