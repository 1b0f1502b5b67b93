"""python-on-whales' compose wrapper driving nerdpy (`DockerClient(client_call=[... nerdpy ...],
compose_files=[...])`), with and without `compose_compatibility=True`: up, ps, logs, exec, run,
config, cp, wait, events, stats, down, as a user of that library would call them."""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest

from test_compose import LOOP, write

pow_ = pytest.importorskip("python_on_whales", reason="python-on-whales is in the test extra")


def _client(nerdpy, monkeypatch, f, compat: bool):
    # python-on-whales runs the client with the process environment: nerdpy's test settings there
    for k, v in nerdpy.env.items():
        if os.environ.get(k) != v:
            monkeypatch.setenv(k, v)
    return pow_.DockerClient(client_call=[sys.executable, "-m", "nerdpy", "--data-root", nerdpy.data_root],
                             compose_files=[f], compose_compatibility=compat or None)


def _kill_children_running(*words: str) -> None:
    """End the `compose events` process python-on-whales left streaming (started by this test)."""
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                ppid = fh.read().rsplit(")", 1)[1].split()[1]
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if ppid == me and all(w in cmd for w in words):
            os.kill(int(pid), signal.SIGTERM)


@pytest.mark.parametrize("compat", [False, True], ids=["v2-names", "compatibility"])
def test_python_on_whales_compose(nerdpy, images, tmp_path, monkeypatch, compat):
    f = write(tmp_path / "compose.yaml", f"""
        name: pow
        services:
          web:
            image: {images.busybox}
            command: ["sh", "-c", "echo web-says-hi; {LOOP}"]
            environment:
              GREETING: hello
          job:
            image: {images.busybox}
            command: ["sh", "-c", "exit 0"]
            profiles: [jobs]
        """)
    docker = _client(nerdpy, monkeypatch, f, compat)
    sep = "_" if compat else "-"
    assert docker.compose.is_installed()
    assert docker.compose.version().startswith("Docker Compose version v2.")

    # events: streamed from before `up`
    seen = []

    def collect():
        for ev in docker.compose.events():
            seen.append(ev)
            if ev.action == "start":
                return

    t = threading.Thread(target=collect, daemon=True)
    t.start()
    time.sleep(0.5)
    try:
        docker.compose.up(detach=True)
        t.join(timeout=30)
    finally:
        _kill_children_running("events", "--json")
    assert seen and seen[0].action == "create" and seen[0].service == "web"
    assert seen[-1].action == "start" and seen[0].time is not None

    cs = docker.compose.ps()
    assert [c.name for c in cs] == [f"pow{sep}web{sep}1"]
    assert cs[0].state.running

    assert "web-says-hi" in docker.compose.logs()
    assert docker.compose.execute("web", ["sh", "-c", "echo $GREETING"], tty=False).strip() == "hello"
    out = docker.compose.run("web", ["echo", "one-off"], tty=False, remove=True)
    assert out.strip() == "one-off"

    cfg = docker.compose.config()
    assert cfg.services["web"].image == images.busybox
    assert docker.compose.config(return_json=True)["services"]["web"]["environment"]["GREETING"] == "hello"

    # cp: python-on-whales has no compose cp; its container copy works on the compose container
    src = tmp_path / "in.txt"
    src.write_text("copied\n")
    docker.copy(str(src), (cs[0], "/tmp/in.txt"))
    assert docker.compose.execute("web", ["cat", "/tmp/in.txt"], tty=False) == "copied"

    # wait: the library has no compose wait; its container wait on a compose container
    docker.compose.execute("web", ["sh", "-c", "kill 1"], tty=False, detach=True)
    assert docker.container.wait(cs[0]) == 0

    # stats: the library's stats call is the top-level `stats` command
    docker.compose.start()
    stats_error = rows = None
    try:
        rows = docker.stats(containers=[cs[0]])
    except pow_.exceptions.DockerException as e:
        stats_error = e
    docker.compose.down(timeout=1)
    assert docker.compose.ps(all=True) == []
    if stats_error is not None and "No such command 'stats'" in str(stats_error):
        pytest.skip("python-on-whales' stats calls the top-level `stats` command, which another change "
                    "adds (compose stats itself is tested in test_compose_cmds)")
    if stats_error is not None:
        raise stats_error
    assert rows and rows[0].container_name == f"pow{sep}web{sep}1"
