"""Progress and output as users see them: compose's state lines (plain when stderr is not a
terminal, a live view on one), pull progress of `compose pull` and of `run`'s implicit pull on
stderr, NO_COLOR on a pseudo-terminal, and `--format json` for every list command."""
from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import textwrap
import time

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"
LAYER = re.compile(r"^ [0-9a-f]{12} ")


def write(path, text: str) -> str:
    path = str(path)
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))
    return path


def project(tmp_path, image: str, name: str = "prog") -> str:
    return write(tmp_path / "compose.yaml", f"""
        name: {name}
        services:
          db:
            image: {image}
            command: ["sh", "-c", "{LOOP}"]
            healthcheck:
              test: ["CMD", "true"]
              interval: 200ms
              retries: 20
          web:
            image: {image}
            command: ["sh", "-c", "{LOOP}"]
            depends_on:
              db:
                condition: service_healthy
        """)


def index(lines: list[str], line: str) -> int:
    assert line in lines, f"{line!r} not in {lines}"
    return lines.index(line)


def run_in_pty(nerdpy, *args, env=None, timeout=120) -> tuple[int, str]:
    """nerdpy with stdin, stdout and stderr on a pseudo-terminal: (exit code, all it wrote)."""
    import pty

    master, slave = pty.openpty()
    e = dict(nerdpy.env, TERM="xterm-256color", COLUMNS="120", LINES="40")
    e.pop("NO_COLOR", None)
    e.update(env or {})
    p = subprocess.Popen([sys.executable, "-m", "nerdpy", "--data-root", nerdpy.data_root, *args],
                         stdin=slave, stdout=slave, stderr=slave, env=e, close_fds=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the other side is closed
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        code = p.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    return code, out.decode("utf-8", "replace")


def colour_codes(text: str) -> list[str]:
    """The SGR sequences in `text` that set a colour (30-37, 39, 40-47, 49, 90-97, 100-107, 38/48)."""
    found = []
    for m in re.finditer(r"\x1b\[([0-9;]*)m", text):
        params = [int(p) for p in m.group(1).split(";") if p.isdigit()]
        if any(30 <= p <= 49 or 90 <= p <= 107 for p in params):
            found.append(m.group(0))
    return found


def test_compose_up_plain_lines_in_order_then_down(nerdpy, images, tmp_path):
    f = project(tmp_path, images.busybox)
    r = nerdpy("compose", "-f", f, "up", "-d")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert "\x1b[" not in r.stderr  # stderr is not a terminal: no escape codes at all
    # the one image is pulled once, for the first service, with its layers' lines in between
    pulling, pulled = index(lines, " db Pulling"), index(lines, " db Pulled")
    layer_lines = [i for i, line in enumerate(lines) if LAYER.match(line)]
    assert layer_lines and all(pulling < i < pulled for i in layer_lines)
    assert any(line.endswith(" Pull complete") for line in lines[pulling:pulled])
    created = index(lines, " Network prog_default  Created")
    # images first, then networks, as docker compose does (nothing is made for an image that is missing)
    assert pulled < index(lines, " Network prog_default  Creating") < created
    db = [index(lines, f" Container prog-db-1  {s}") for s in ("Creating", "Created", "Starting", "Started")]
    web = [index(lines, f" Container prog-web-1  {s}") for s in ("Creating", "Created", "Starting", "Started")]
    assert pulled < db[0] and db == sorted(db) and web == sorted(web)
    # web waits for db to be healthy: Waiting, then Healthy, then web starts
    waiting, healthy = index(lines, " Container prog-db-1  Waiting"), index(lines, " Container prog-db-1  Healthy")
    assert db[3] < waiting < healthy < web[2]
    # one line per change of state: nothing repeated
    assert len(lines) == len(set(lines)), lines

    again = nerdpy("compose", "-f", f, "up", "-d", check=True)
    assert " Container prog-web-1  Running" in again.stderr.splitlines()
    assert "Pulling" not in again.stderr and "Creating" not in again.stderr

    down = nerdpy("compose", "-f", f, "down", "-t", "1", check=True).stderr.splitlines()
    for name in ("prog-db-1", "prog-web-1"):
        assert index(down, f" Container {name}  Stopping") < index(down, f" Container {name}  Stopped") \
            < index(down, f" Container {name}  Removing") < index(down, f" Container {name}  Removed")
    # dependents stop before their dependencies
    assert index(down, " Container prog-web-1  Stopped") < index(down, " Container prog-db-1  Stopping")
    assert index(down, " Network prog_default  Removed") == len(down) - 1


def test_compose_quiet_options(nerdpy, images, tmp_path):
    f = project(tmp_path, images.busybox, name="quiet")
    r = nerdpy("compose", "-f", f, "up", "-d", "--quiet-pull")
    assert r.returncode == 0, r.stderr
    assert "Pull" not in r.stderr and not any(LAYER.match(line) for line in r.stderr.splitlines())
    assert " Container quiet-web-1  Started" in r.stderr.splitlines()
    r = nerdpy("compose", "--progress", "quiet", "-f", f, "down", "-t", "1")
    assert r.returncode == 0 and r.stderr == "" and r.stdout == ""
    assert nerdpy("compose", "-f", f, "ps", "-a", "-q", check=True).stdout == ""
    r = nerdpy("compose", "--progress", "bogus", "-f", f, "ps")
    assert r.returncode != 0 and "bogus" in r.stderr


def test_compose_pull_plain_and_quiet(nerdpy, images, tmp_path):
    f = write(tmp_path / "compose.yaml", f"""
        name: pl
        services:
          app:
            image: {images.busybox}
          other:
            image: {images.busybox_v2s2}
        """)
    r = nerdpy("compose", "-f", f, "pull")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    for svc in ("app", "other"):
        assert index(lines, f" {svc} Pulling") < index(lines, f" {svc} Pulled")
    assert any(LAYER.match(line) and line.endswith(" Pull complete") for line in lines)
    assert all(line.startswith(" ") for line in lines), lines
    # pulled again: the layers exist, the lines say so
    r = nerdpy("compose", "-f", f, "pull", "app", check=True)
    assert " app Pulled" in r.stderr.splitlines() and " other Pulling" not in r.stderr
    r = nerdpy("compose", "-f", f, "pull", "-q")
    assert r.returncode == 0 and r.stderr == "" and r.stdout == ""
    # two services, one image: pulled once, the other says why it is skipped
    (tmp_path / "two").mkdir()
    f2 = project(tmp_path / "two", images.busybox, name="pl2")
    lines = nerdpy("compose", "-f", f2, "pull", check=True).stderr.splitlines()
    assert lines[0] == " web Skipped - Image is already being pulled by db"
    assert index(lines, " db Pulling") < index(lines, " db Pulled")
    r = nerdpy("compose", "--progress", "plain", "-f", f, "pull", "other", check=True)
    assert r.stderr.splitlines()[0] == " other Pulling"


def test_run_implicit_pull_progress_goes_to_stderr(nerdpy, images):
    r = nerdpy("run", "--rm", images.busybox, "echo", "hello")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\n"
    lines = r.stderr.splitlines()
    name = images.busybox.split("/", 1)[1].rsplit(":", 1)[0]
    assert lines[0] == f"Unable to find image '{images.busybox}' locally"
    assert lines[1] == f"latest: Pulling from {name}"
    assert any(re.fullmatch(r"[0-9a-f]{12}: Pull complete", line) for line in lines), lines
    assert lines[-2].startswith("Digest: sha256:")
    assert lines[-1] == f"Status: Downloaded newer image for {images.busybox}"
    # -q: nothing but the container's output; present image: no pull lines at all
    nerdpy("rmi", images.busybox, check=True)
    r = nerdpy("create", "-q", images.busybox, check=True)
    assert re.fullmatch(r"[0-9a-f]{64}\n", r.stdout) and r.stderr == ""
    r = nerdpy("run", "--rm", images.busybox, "true", check=True)
    assert r.stdout == "" and r.stderr == ""


def test_pty_views_honour_no_color(nerdpy, images, tmp_path):
    f = project(tmp_path, images.busybox, name="tty")
    code, out = run_in_pty(nerdpy, "compose", "-f", f, "up", "-d", env={"NO_COLOR": "1"})
    assert code == 0, out
    assert colour_codes(out) == [], out
    # the live view: a header, ticks, the final states (drawn in place, so the text repeats)
    assert "[+] Running" in out and "✔" in out
    assert re.search(r"Container tty-web-1 +Started", out)
    assert re.search(r"Container tty-db-1 +Healthy", out)
    # without NO_COLOR the same view is coloured (so the check above can fail)
    code, out = run_in_pty(nerdpy, "compose", "-f", f, "down", "-t", "1")
    assert code == 0, out
    assert colour_codes(out) and re.search(r"Container tty-web-1 +Removed", re.sub(r"\x1b\[[0-9;]*m", "", out))
    # --progress plain on a terminal: the plain lines
    code, out = run_in_pty(nerdpy, "compose", "--progress", "plain", "-f", f, "up", "-d")
    assert code == 0 and " Container tty-web-1  Started\r\n" in out and "[+]" not in out, out
    nerdpy("compose", "-f", f, "down", "-t", "1", check=True)
    # compose pull on a terminal: the live view, one line per service
    nerdpy("rmi", images.busybox, check=True)
    code, out = run_in_pty(nerdpy, "compose", "-f", f, "pull", env={"NO_COLOR": "1"})
    assert code == 0, out
    assert colour_codes(out) == [] and "[+] Pulling 2/2" in out
    assert re.search(r"✔ db +Pulled", out) and not re.search(r"^ db Pulling", out, re.M)
    assert re.search(r"✔ web +Skipped - Image is already being pulled by db", out)
    # pull on a terminal: rich bars, no colour with NO_COLOR, then docker's closing lines
    nerdpy("rmi", images.busybox, check=True)
    code, out = run_in_pty(nerdpy, "pull", images.busybox, env={"NO_COLOR": "1"})
    assert code == 0, out
    assert colour_codes(out) == [] and "Pull complete" in out
    assert f"Status: Downloaded newer image for {images.busybox}" in out
    # run's implicit pull on a terminal: the same view, then the command's output
    nerdpy("rmi", images.busybox, check=True)
    code, out = run_in_pty(nerdpy, "run", "--rm", images.busybox, "echo", "ran-ok", env={"NO_COLOR": "1"})
    assert code == 0, out
    assert colour_codes(out) == [] and "Pull complete" in out
    assert out.index("Status: Downloaded newer image") < out.index("ran-ok")


def test_every_list_command_formats_json(nerdpy, images, tmp_path):
    f = project(tmp_path, images.busybox, name="js")
    nerdpy("compose", "-f", f, "up", "-d", check=True)
    nerdpy("volume", "create", "jsvol", check=True)

    def lines(*args) -> list[dict]:
        r = nerdpy(*args, "--format", "json", check=True)
        docs = [json.loads(line) for line in r.stdout.splitlines()]
        assert docs and all(isinstance(d, dict) for d in docs), r.stdout
        return docs

    def array(*args) -> list[dict]:
        r = nerdpy(*args, "--format", "json", check=True)
        assert len(r.stdout.splitlines()) == 1, r.stdout
        docs = json.loads(r.stdout)
        assert isinstance(docs, list) and docs, r.stdout
        return docs

    assert {d["Names"] for d in lines("ps", "-a")} == {"js-db-1", "js-web-1"}
    assert any(d["Repository"] == images.busybox.rsplit(":", 1)[0] for d in lines("images"))
    assert "js_default" in {d["Name"] for d in lines("network", "ls")}
    assert "jsvol" in {d["Name"] for d in lines("volume", "ls")}
    assert all("CreatedBy" in d for d in lines("history", images.busybox))
    assert [d["Service"] for d in lines("compose", "-f", f, "ps")] == ["db", "web"]
    # docker compose prints arrays for ls and images
    ls = array("compose", "ls")
    assert [(d["Name"], d["Status"]) for d in ls] == [("js", "running(2)")]
    imgs = array("compose", "-f", f, "images")
    assert sorted(d["ContainerName"] for d in imgs) == ["js-db-1", "js-web-1"]
    assert all(d["ID"].startswith("sha256:") and isinstance(d["Size"], int) and d["Size"] > 0 for d in imgs)
    assert all(d["Tag"] == "latest" and d["Platform"].startswith("linux/") for d in imgs)
    nerdpy("compose", "-f", f, "down", "-t", "1", check=True)
    assert nerdpy("compose", "ls", "-a", "--format", "json", check=True).stdout == "[]\n"


def test_push_and_load_on_a_terminal(nerdpy, images, tmp_path):
    nerdpy("pull", "-q", images.busybox, check=True)
    host = images.busybox.split("/", 1)[0]
    target = f"{host}/test/progress-push:1"
    nerdpy("tag", images.busybox, target, check=True)
    code, out = run_in_pty(nerdpy, "push", target, env={"NO_COLOR": "1"})
    assert code == 0, out
    assert colour_codes(out) == [] and re.search(r"(Pushed|Layer already exists|Mounted from)", out)
    assert re.search(r"1: digest: sha256:[0-9a-f]{64} size: \d+", out)
    # not a terminal: docker's plain lines, one per change of state
    r = nerdpy("push", target, check=True)
    assert "\x1b[" not in r.stdout and re.search(r"(?m)^[0-9a-f]{12}: Layer already exists$", r.stdout)
    # load: bars on a terminal, only the result otherwise
    archive = str(tmp_path / "bb.tar")
    nerdpy("save", "-o", archive, target, check=True)
    nerdpy("rmi", target, images.busybox, check=True)
    code, out = run_in_pty(nerdpy, "load", "-i", archive, env={"NO_COLOR": "1"})
    assert code == 0, out
    assert colour_codes(out) == [] and "Loading layer" in out and f"Loaded image: {target}" in out
    nerdpy("rmi", target, check=True)
    r = nerdpy("load", "-i", archive, check=True)
    assert r.stdout == f"Loaded image: {target}\n" and r.stderr == ""
