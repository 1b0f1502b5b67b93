"""`commit`, `export` and `import` against real containers: a committed container's deletions,
additions and opaque directories show in a container of the new image; `--change`s take
effect; an exported filesystem imports back as a runnable image, from a file, stdin or a URL;
a corrupt archive is refused with nothing half-stored."""
from __future__ import annotations

import functools
import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import threading

import pytest


@pytest.fixture
def bb(nerdpy, images):
    nerdpy("pull", "-q", images.busybox, check=True)
    return images.busybox


def mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


def raw(nerdpy, *args, input: bytes | None = None) -> subprocess.CompletedProcess:
    """Run nerdpy with binary stdin/stdout."""
    return subprocess.run([sys.executable, "-m", "nerdpy", "--data-root", nerdpy.data_root, *args],
                          input=input, capture_output=True, env=nerdpy.env, timeout=120)


def blob(nerdpy, digest: str) -> bytes:
    with open(os.path.join(nerdpy.data_root, "content", "blobs", "sha256", digest[7:]), "rb") as f:
        return f.read()


def store_state(nerdpy) -> tuple:
    """What the store holds: blobs, snapshot dirs, temp files, image names."""
    root = nerdpy.data_root
    blobs = sorted(os.listdir(os.path.join(root, "content", "blobs", "sha256")))
    snaps = sorted(os.listdir(os.path.join(root, "snapshots")))
    tmp = os.path.join(root, "tmp")
    temps = sorted(os.listdir(tmp)) if os.path.isdir(tmp) else []
    names = nerdpy("images", "-a", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout
    return blobs, snaps, temps, names


CHANGES = ("rm /etc/group && echo added > /added.txt && "
           "rm -rf /home && mkdir /home && echo fresh > /home/new.txt")


def test_commit_shows_deletions_additions_and_opaque_dirs(nerdpy, bb):
    nerdpy("run", "--name", "c1", bb, "sh", "-c", CHANGES, check=True)
    r = nerdpy("commit", "c1", "committed:v1", check=True)
    image_id = r.stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71, r.stdout
    out = nerdpy("run", "--rm", "committed:v1", "sh", "-c",
                 "test ! -e /etc/group && cat /added.txt && ls -a /home && cat /etc/passwd | wc -l", check=True).stdout
    assert out.split("\n")[:5] == ["added", ".", "..", "new.txt", "3"], out
    # the layer holds docker's whiteout forms, never overlay's own
    info = json.loads(nerdpy("image", "inspect", "committed:v1", check=True).stdout)[0]
    layer = info["LayerDescriptors"][-1]
    assert layer["mediaType"].endswith("tar+gzip")
    with tarfile.open(fileobj=io.BytesIO(blob(nerdpy, layer["digest"]))) as tf:
        names = tf.getnames()
    assert "etc/.wh.group" in names and "home/.wh..wh..opq" in names and "added.txt" in names, names
    assert "home/new.txt" in names and "bin/busybox" not in names
    assert "etc/hosts" not in names and "etc/resolv.conf" not in names  # runc's mount points
    # the image's config: parent history and layers plus ours
    base = json.loads(nerdpy("image", "inspect", bb, check=True).stdout)[0]
    assert info["Id"] == image_id
    assert info["RootFS"]["Layers"][:-1] == base["RootFS"]["Layers"]
    assert len(info["RootFS"]["Layers"]) == len(base["RootFS"]["Layers"]) + 1
    config = json.loads(blob(nerdpy, image_id))
    assert len(config["history"]) == len(json.loads(blob(nerdpy, base["Id"]))["history"]) + 1
    assert config["history"][-1]["created_by"] == "sh -c " + CHANGES
    assert nerdpy("images", "committed", "--format", "{{.Repository}}:{{.Tag}}").stdout == "committed:v1\n"


def test_commit_changes_message_author_and_dangling(nerdpy, bb):
    nerdpy("run", "--name", "c2", "-e", "FROM_RUN=1", bb, "sh", "-c", "echo hi > /hi.txt", check=True)
    nerdpy("commit", "-c", 'CMD ["echo","x"]', "--change", "ENV FOO=bar BAZ=\"two words\"", "-c", "WORKDIR /tmp",
           "-c", "LABEL org.nerdpy.committed=yes", "-c", "EXPOSE 8080/udp", "-m", "my message",
           "-a", "Jane <jane@example.com>", "c2", "changed", check=True)
    assert nerdpy("run", "--rm", "changed").stdout == "x\n"
    out = nerdpy("run", "--rm", "changed", "sh", "-c", 'echo "$FOO|$BAZ|$FROM_RUN|$(pwd)"', check=True).stdout
    assert out == "bar|two words|1|/tmp\n"
    info = json.loads(nerdpy("image", "inspect", "changed", check=True).stdout)[0]
    assert info["Comment"] == "my message" and info["Author"] == "Jane <jane@example.com>"
    assert info["Config"]["Cmd"] == ["echo", "x"]
    assert info["Config"]["Labels"]["org.nerdpy.committed"] == "yes"
    assert info["Config"]["Labels"]["org.nerdpy.test"] == "busybox"  # the parent's are kept
    assert "8080/udp" in info["Config"]["ExposedPorts"] and "80/tcp" in info["Config"]["ExposedPorts"]
    hist = json.loads(blob(nerdpy, info["Id"]))["history"][-1]
    assert hist["comment"] == "my message" and hist["author"] == "Jane <jane@example.com>"
    # without a name: a dangling image, listed as <none>
    r = nerdpy("commit", "c2", check=True)
    dangling = nerdpy("images", "--filter", "dangling=true", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}").stdout
    assert dangling == f"{r.stdout.strip()[7:19]} <none>:<none>\n"
    # refused: a bad change, a digest reference, a container that does not exist
    bad = nerdpy("commit", "-c", "RUN echo no", "c2", "x")
    assert bad.returncode == 1 and "not a valid change command" in bad.stderr and bad.stderr.count("\n") == 1
    assert nerdpy("commit", "nosuch", "x").returncode == 1


def test_commit_running_container_pauses_and_resumes(nerdpy, bb):
    nerdpy("run", "-d", "--name", "live", bb, "sh", "-c", "echo live > /live.txt; exec sleep 600", check=True)
    for _ in range(100):
        if nerdpy("exec", "live", "cat", "/live.txt").stdout == "live\n":
            break
    nerdpy("commit", "live", "fromlive", check=True)
    assert nerdpy("inspect", "-f", "{{.State.Status}}", "live").stdout == "running\n"
    assert nerdpy("run", "--rm", "fromlive", "cat", "/live.txt", check=True).stdout == "live\n"
    nerdpy("commit", "--pause=false", "live", "fromlive2", check=True)
    assert nerdpy("run", "--rm", "fromlive2", "cat", "/live.txt", check=True).stdout == "live\n"
    nerdpy("rm", "-f", "live", check=True)


def test_export_import_round_trip(nerdpy, bb, tmp_path):
    nerdpy("run", "--name", "e", "-v", "/vol", bb, "sh", "-c",
           "rm /etc/group && echo exported > /exported.txt && echo in-volume > /vol/v.txt", check=True)
    out = str(tmp_path / "e.tar")
    nerdpy("export", "-o", out, "e", check=True)
    listed = subprocess.run(["tar", "-tf", out], capture_output=True, text=True, check=True).stdout.split("\n")
    assert "exported.txt" in listed and "bin/busybox" in listed and "etc/passwd" in listed
    assert "etc/group" not in listed
    assert "vol/v.txt" not in listed  # volumes are not part of the export, as with docker
    assert mounts_under(nerdpy.data_root) == []
    # to stdout as well
    r = raw(nerdpy, "export", "e")
    assert r.returncode == 0, r.stderr
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tf:
        assert "exported.txt" in tf.getnames()
    # import it back, with a change, and run it
    r = nerdpy("import", "-c", 'CMD ["cat", "/exported.txt"]', "-m", "round trip", out, "imported:1", check=True)
    image_id = r.stdout.strip()
    assert image_id.startswith("sha256:")
    assert nerdpy("run", "--rm", "imported:1", check=True).stdout == "exported\n"
    assert nerdpy("run", "--rm", "imported:1", "sh", "-c", "test ! -e /etc/group && echo ok", check=True).stdout == "ok\n"
    info = json.loads(nerdpy("image", "inspect", "imported:1", check=True).stdout)[0]
    assert len(info["RootFS"]["Layers"]) == 1 and info["Comment"] == "round trip" and info["Os"] == "linux"
    # from stdin, gzip-compressed, without a name
    import gzip

    r = raw(nerdpy, "import", "-", input=gzip.compress(open(out, "rb").read()))
    assert r.returncode == 0, r.stderr
    new_id = r.stdout.decode().strip()
    assert nerdpy("run", "--rm", new_id, "cat", "/exported.txt", check=True).stdout == "exported\n"


def test_export_running_container(nerdpy, bb):
    nerdpy("run", "-d", "--name", "up", bb, "sh", "-c", "echo up > /up.txt; exec sleep 600", check=True)
    for _ in range(100):
        if nerdpy("exec", "up", "cat", "/up.txt").stdout == "up\n":
            break
    before = mounts_under(nerdpy.data_root)
    r = raw(nerdpy, "export", "up")
    assert r.returncode == 0, r.stderr
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tf:
        names = tf.getnames()
        assert tf.extractfile("up.txt").read() == b"up\n"
    assert "bin/busybox" in names and not any(n.startswith("proc/") for n in names)
    assert mounts_under(nerdpy.data_root) == before
    nerdpy("rm", "-f", "up", check=True)


def test_import_from_url_and_platform(nerdpy, bb, tmp_path):
    nerdpy("run", "--name", "u", bb, "sh", "-c", "echo from-url > /u.txt", check=True)
    nerdpy("export", "-o", str(tmp_path / "u.tar"), "u", check=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/u.tar"
        nerdpy("import", url, "fromurl", check=True)
        assert nerdpy("run", "--rm", "fromurl", "cat", "/u.txt", check=True).stdout == "from-url\n"
        r = nerdpy("import", url + ".missing", "nope")
        assert r.returncode == 1 and "404" in r.stderr
    finally:
        server.shutdown()
    nerdpy("import", "--platform", "linux/arm64", str(tmp_path / "u.tar"), "armimg", check=True)
    assert nerdpy("image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", "armimg").stdout == "linux/arm64\n"


@pytest.mark.parametrize("payload", [
    b"this is not a tar archive at all, just some text" * 30,
    "truncated",
    b"",
    "unsafe",
], ids=["garbage", "truncated", "empty", "unsafe"])
def test_import_refuses_corrupt_archives(nerdpy, bb, tmp_path, payload):
    if payload == "truncated":
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            data = os.urandom(100_000)
            ti = tarfile.TarInfo("big.bin")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        payload = buf.getvalue()[:50_000]
    elif payload == "unsafe":
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            ti = tarfile.TarInfo("../../escape.txt")
            ti.size = 3
            tf.addfile(ti, io.BytesIO(b"bad"))
        payload = buf.getvalue()
    path = tmp_path / "bad.tar"
    path.write_bytes(payload)
    before = store_state(nerdpy)
    for args in (("import", str(path), "bad:1"), ("import", "-", "bad:1")):
        r = raw(nerdpy, *args, input=payload)
        assert r.returncode == 1, r.stderr
        err = r.stderr.decode()
        assert err.startswith("nerdpy: ") and err.count("\n") == 1 and "Traceback" not in err, err
        assert store_state(nerdpy) == before
    assert not os.path.exists(tmp_path.parent / "escape.txt")
    r = nerdpy("import", str(tmp_path / "nosuchfile.tar"))
    assert r.returncode == 1 and "no such file" in r.stderr
