"""Bad compose files given to `nerdpy compose up -d` (issue 8): every malformed file of the unit
suite (tests/unit/test_compose_validate.py: YAML errors, schema errors, wrong types, cycles,
missing required variables, unknown services in depends_on, ...) and a few only the command line
sees, each exits 1 with one line that names the file and the line, and changes nothing: an
existing project of the same name keeps running untouched, and no container, network, volume or
image is created."""
from __future__ import annotations

import importlib.util
import os
import sqlite3
import subprocess
import sys
import textwrap


import hostleaks

HERE = os.path.dirname(os.path.abspath(__file__))


_no_leaks = hostleaks.module_unchanged()  # the host as before this module's tests


def _unit_cases() -> list[tuple]:
    spec = importlib.util.spec_from_file_location(
        "compose_validate_cases", os.path.join(HERE, "..", "unit", "test_compose_validate.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return [(c[0], textwrap.dedent(c[1]).lstrip("\n"), c[3], c[4]) for c in mod.CASES]


# only the command line sees these: (id, file bytes, fragments, line)
CLI_CASES = [
    ("empty-file", b"", ["compose.yaml"], None),
    ("not-utf8", b"services:\n  web:\n    image: \xff\xfe\n", [], None),
    ("a-scalar", b"just a string\n", [], 1),
    ("services-a-list", b"services:\n  - web\n", ["services must be a mapping"], 1),
]


def state(nerdpy) -> dict:
    db = sqlite3.connect(f"file:{nerdpy.data_root}/meta.db?mode=ro", uri=True)
    try:
        return {
            "containers": sorted(db.execute("SELECT id, name, config FROM containers").fetchall()),
            "networks": sorted(db.execute("SELECT name, id FROM networks").fetchall()),
            "volumes": sorted(db.execute("SELECT name FROM volumes").fetchall()),
            "images": sorted(db.execute("SELECT name, target FROM images").fetchall()),
        }
    finally:
        db.close()


def test_bad_compose_files_exit_1_with_file_and_line_and_change_nothing(nerdpy, images, tmp_path):
    proj = tmp_path / "steady"
    proj.mkdir()
    good = textwrap.dedent(f"""
        services:
          web:
            image: {images.busybox}
            command: ["sleep", "600"]
            volumes: ["data:/data"]
        volumes:
          data:
        """)
    (proj / "compose.yaml").write_text(good)

    def compose(*args, env=None):
        e = dict(nerdpy.env)
        e.pop("IMG", None)
        e.pop("TAG", None)
        e.update(env or {})
        return subprocess.run([sys.executable, "-m", "nerdpy", "--data-root", nerdpy.data_root, "compose", *args],
                              cwd=str(proj), env=e, capture_output=True, text=True, timeout=60)

    r = compose("up", "-d")
    assert r.returncode == 0, r.stderr
    before = state(nerdpy)
    started = nerdpy("inspect", "-f", "{{.Id}} {{.State.StartedAt}} {{.State.Status}}", "steady-web-1",
                     check=True).stdout
    assert started.split()[2] == "running"

    cases = [(c, text.encode(), frags, line) for c, text, frags, line in _unit_cases()] + CLI_CASES
    assert len(cases) >= 30
    failures = []
    for case, data, fragments, line in cases:
        for p in proj.iterdir():
            if p.name != "compose.yaml":
                p.unlink()
        (proj / "compose.yaml").write_bytes(data)
        r = compose("up", "-d")
        err = [x for x in r.stderr.splitlines() if x.strip()]
        problems = []
        if r.returncode != 1:
            problems.append(f"exit {r.returncode}")
        if len(err) != 1 or not err[0].startswith("nerdpy: ") or "compose.yaml" not in err[0]:
            problems.append("not one line naming compose.yaml")
        elif line is not None and not err[0].startswith(f"nerdpy: compose.yaml:{line}: "):
            problems.append(f"line {line} not named")
        if "Traceback" in r.stderr:
            problems.append("traceback")
        problems += [f"no {f!r}" for f in fragments if f not in r.stderr]
        if state(nerdpy) != before:
            problems.append("the store changed")
        if problems:
            failures.append(f"{case}: {', '.join(problems)}: {r.stderr.strip()[:300]}")
    assert not failures, "\n".join(failures)

    # the project that was up is as it was, and a missing file is one clear line too
    assert nerdpy("inspect", "-f", "{{.Id}} {{.State.StartedAt}} {{.State.Status}}", "steady-web-1",
                  check=True).stdout == started
    (proj / "compose.yaml").unlink()
    r = compose("-f", "nothere.yaml", "up", "-d")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "nothere.yaml" in r.stderr, r.stderr
    # an error in the second file names that file
    (proj / "compose.yaml").write_text(good)
    (proj / "override.yaml").write_text("services:\n  web:\n    ports: 12\n")
    r = compose("-f", "compose.yaml", "-f", "override.yaml", "up", "-d")
    assert r.returncode == 1 and r.stderr.startswith("nerdpy: override.yaml:3: "), r.stderr
    assert state(nerdpy) == before
    r = compose("down", "-v", "-t", "0")
    assert r.returncode == 0, r.stderr
    assert nerdpy("ps", "-a", "-q").stdout == ""
    hostleaks.assert_nothing_left(nerdpy)
