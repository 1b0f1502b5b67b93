"""`build:` in compose files: nerdpy does not build images, so a service with `build:` uses its
`image:` when the store or a registry has it, and otherwise fails at once, with one line naming
the service and saying how to provide the image, before anything is created."""
from __future__ import annotations

import textwrap

T = 90
LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"


def write(path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_build_with_an_available_image_uses_it(nerdpy, images, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    f = write(tmp_path / "compose.yaml", f"""
        name: built
        services:
          app:
            build: .
            image: {images.busybox}
            command: ["sh", "-c", "{LOOP}"]
        """)
    r = nerdpy("compose", "-f", f, "up", "-d", timeout=T)          # not in the store: pulled
    assert r.returncode == 0, r.stderr
    assert "does not implement" not in r.stderr
    assert nerdpy("compose", "-f", f, "ps", "-q", check=True).stdout.strip()
    nerdpy("compose", "-f", f, "down", "-t", "1", check=True, timeout=T)


def test_build_without_a_usable_image_fails_first(nerdpy, images, registry, tmp_path):
    f = write(tmp_path / "compose.yaml", f"""
        name: unbuilt
        services:
          db:
            image: {images.busybox}
            command: ["sh", "-c", "{LOOP}"]
          app:
            build: {{context: .}}
            image: {registry.host}/test/never-pushed:1
            depends_on: [db]
        """)
    r = nerdpy("compose", "-f", f, "up", "-d", timeout=T)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert "'app' has build:" in lines[-1] and "nerdpy load" in lines[-1], r.stderr
    assert nerdpy("network", "ls", "-q", "--filter", "name=unbuilt").stdout == ""
    assert nerdpy("ps", "-aq").stdout == ""
    # with pull_policy never (or build) the store alone is asked
    write(tmp_path / "compose.yaml", """
        name: unbuilt
        services:
          app:
            build: .
            image: local/app:dev
            pull_policy: build
        """)
    r = nerdpy("compose", "-f", f, "up", "-d", timeout=T)
    assert r.returncode == 1 and "'app' has build:" in r.stderr and "not in the store" in r.stderr, r.stderr
    # no image: at all: refused when the file is loaded
    write(tmp_path / "compose.yaml", """
        services:
          app:
            build: .
        """)
    r = nerdpy("compose", "-f", f, "up", "-d", timeout=T)
    assert r.returncode == 1 and "nerdpy load" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_timed_pull_policy(nerdpy, images, tmp_path):
    import json
    import os

    f = write(tmp_path / "compose.yaml", f"""
        name: timed
        services:
          app:
            image: {images.busybox}
            pull_policy: every_2h
            command: ["sh", "-c", "{LOOP}"]
        """)
    times = os.path.join(nerdpy.data_root, "compose", "default", "pull-times.json")
    r = nerdpy("compose", "-f", f, "up", "-d", timeout=T)
    assert r.returncode == 0 and "Pulled" in r.stderr, r.stderr
    first = json.load(open(times))[images.busybox]
    r = nerdpy("compose", "-f", f, "up", "-d", timeout=T)           # pulled less than 2h ago: not again
    assert r.returncode == 0 and "Pull" not in r.stderr, r.stderr
    with open(times, "w") as fh:
        json.dump({images.busybox: first - 3 * 3600}, fh)          # as if pulled 3h ago
    r = nerdpy("compose", "-f", f, "up", "-d", timeout=T)
    assert r.returncode == 0 and "Pulled" in r.stderr, r.stderr
    assert json.load(open(times))[images.busybox] >= first
    nerdpy("compose", "-f", f, "down", "-t", "1", check=True, timeout=T)
