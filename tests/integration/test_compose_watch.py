"""`compose watch` / `up --watch` on real containers: sync (with ignore patterns and deletions),
sync+restart, restart, sync+exec; rebuild refused. Every wait is a bounded poll; the sync latency
(edit on the host -> file visible in the container) is measured and printed."""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import time

from test_compose import LOOP, ids, state, write


def poll(fn, timeout: float = 20.0, interval: float = 0.01):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def rootfs(nerdpy, cid: str) -> str:
    (path,) = glob.glob(os.path.join(nerdpy.data_root, "containers", "*", cid, "rootfs"))
    return path


def read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


class Lines:
    """A process's stdout lines, read in a thread (so a wait never blocks on readline)."""

    def __init__(self, p):
        import threading

        self.lines: list[str] = []
        self.p = p
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


def test_watch_sync_ignore_restart_exec(nerdpy, images, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "keep.txt").write_text("v0\n")
    (tmp_path / "conf").mkdir()
    (tmp_path / "hooks").mkdir()
    (tmp_path / "trigger.txt").write_text("0\n")
    f = write(tmp_path / "compose.yaml", f"""
        name: watchy
        services:
          web:
            image: {images.busybox}
            command: ["sh", "-c", "{LOOP}"]
            develop:
              watch:
                - action: sync
                  path: ./src
                  target: /app
                  ignore: ["*.tmp", "build/", "**/secret*"]
                - action: sync+restart
                  path: ./conf
                  target: /etc/app
                - action: restart
                  path: ./trigger.txt
                - action: sync+exec
                  path: ./hooks
                  target: /hooks
                  exec:
                    command: ["sh", "-c", "cat /hooks/* > /tmp/exec-ran"]
        """)
    p = subprocess.Popen([sys.executable, "-m", "nerdpy", "--data-root", nerdpy.data_root, "compose", "-f", f,
                          "watch"], env=nerdpy.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = Lines(p)
    try:
        assert poll(lambda: out.has("Watch enabled"), 60), (out.lines, p.poll())
        cid = ids(nerdpy, f)["watchy-web-1"]
        root = rootfs(nerdpy, cid)

        # sync: a new file, measured
        t0 = time.monotonic()
        (src / "hello.txt").write_text("hello\n")
        assert poll(lambda: read(os.path.join(root, "app/hello.txt")) == "hello\n")
        latency = time.monotonic() - t0
        print(f"\nwatch sync latency: {latency * 1000:.0f} ms")
        assert poll(lambda: out.has('Syncing service "web" after'))
        # a nested new file, an edit, ignored files (pattern, directory, ** pattern)
        (src / "sub" / "deep.py").write_text("x = 1\n")
        (src / "keep.txt").write_text("v1\n")
        (src / "junk.tmp").write_text("no\n")
        (src / "build").mkdir()
        (src / "build" / "out.o").write_text("no\n")
        (src / "sub" / "secret.key").write_text("no\n")
        assert poll(lambda: read(os.path.join(root, "app/sub/deep.py")) == "x = 1\n")
        assert poll(lambda: read(os.path.join(root, "app/keep.txt")) == "v1\n")
        time.sleep(0.5)  # give an (unwanted) sync of the ignored files the chance to happen
        for ignored in ("app/junk.tmp", "app/build/out.o", "app/sub/secret.key", "app/build"):
            assert not os.path.lexists(os.path.join(root, ignored)), ignored
        # a deletion
        (src / "hello.txt").unlink()
        assert poll(lambda: not os.path.exists(os.path.join(root, "app/hello.txt")))

        # sync+restart
        started = state(nerdpy, "watchy-web-1")["StartedAt"]
        (tmp_path / "conf" / "app.ini").write_text("[a]\n")
        assert poll(lambda: out.has('service(s) ["web"] restarted'), 30), out.lines
        assert state(nerdpy, "watchy-web-1")["StartedAt"] != started
        root = rootfs(nerdpy, cid)
        assert read(os.path.join(root, "etc/app/app.ini")) == "[a]\n"

        # restart only
        started = state(nerdpy, "watchy-web-1")["StartedAt"]
        n = sum('restarted' in line for line in out.lines)
        (tmp_path / "trigger.txt").write_text("1\n")
        assert poll(lambda: sum('restarted' in line for line in out.lines) > n, 30), out.lines
        assert state(nerdpy, "watchy-web-1")["StartedAt"] != started

        # sync+exec
        (tmp_path / "hooks" / "h1").write_text("ran\n")
        assert poll(lambda: read(os.path.join(rootfs(nerdpy, cid), "tmp/exec-ran")) == "ran\n", 30)
    finally:
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
    assert p.returncode in (0, -15), p.stderr.read()
    nerdpy("compose", "-f", f, "down", "-t", "1", check=True)


def test_watch_rebuild_refused_and_no_rules(nerdpy, images, tmp_path):
    (tmp_path / "src").mkdir()
    f = write(tmp_path / "compose.yaml", f"""
        name: rebuildy
        services:
          web:
            image: {images.busybox}
            develop:
              watch:
                - action: rebuild
                  path: ./src
          plain:
            image: {images.busybox}
        """)
    r = nerdpy("compose", "-f", f, "watch")
    assert r.returncode == 1 and "rebuild needs an image build" in r.stderr
    r = nerdpy("compose", "-f", f, "up", "--watch", "plain")
    assert r.returncode != 0 and "configured for watch" in r.stderr
    assert ids(nerdpy, f) == {}


def test_up_watch_attached(nerdpy, images, tmp_path):
    (tmp_path / "src").mkdir()
    f = write(tmp_path / "compose.yaml", f"""
        name: upwatch
        services:
          web:
            image: {images.busybox}
            command: ["sh", "-c", "echo web-up; {LOOP}"]
            develop:
              watch:
                - action: sync
                  path: ./src
                  target: /srv
        """)
    p = subprocess.Popen([sys.executable, "-m", "nerdpy", "--data-root", nerdpy.data_root, "compose", "-f", f,
                          "up", "--watch", "-t", "1"], env=nerdpy.env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    out = Lines(p)
    try:
        assert poll(lambda: out.has("Watch enabled") and out.has("web-1  | web-up"), 60), out.lines
        root = rootfs(nerdpy, ids(nerdpy, f)["upwatch-web-1"])
        (tmp_path / "src" / "a.txt").write_text("A\n")
        assert poll(lambda: read(os.path.join(root, "srv/a.txt")) == "A\n")
        assert poll(lambda: out.has('Syncing service "web" after 1 changes were detected'))
        p.send_signal(2)  # Ctrl-C: stops the services, as an attached up does
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert state(nerdpy, "upwatch-web-1")["Status"] == "exited"
    nerdpy("compose", "-f", f, "down", "-t", "1", check=True)
