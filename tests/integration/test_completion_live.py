"""Bash completion against a real data root: containers created and started by nerdpy itself."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASH_SCRIPT = os.path.join(ROOT, "completions", "nerdpy.bash")


def bash_complete(nerdpy, tmp_path, words: list[str]) -> list[str]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    wrapper = bindir / "nerdpy"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m nerdpy \"$@\"\n")
    wrapper.chmod(0o755)
    env = dict(nerdpy.env, PATH=f"{bindir}:{os.environ['PATH']}", PYTHONPATH=ROOT)
    script = (f"source {shlex.quote(BASH_SCRIPT)}; COMP_WORDS=(\"$@\"); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); "
              "_nerdpy; printf '%s\\n' \"${COMPREPLY[@]}\"")
    r = subprocess.run(["bash", "-c", script, "bash", *words], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return [x for x in r.stdout.splitlines() if x]


def test_bash_completes_real_containers_and_images(nerdpy, images, tmp_path):
    nerdpy("pull", "-q", images.busybox, check=True)
    nerdpy("create", "--name", "idle-one", images.busybox, "true", check=True)
    nerdpy("run", "-d", "--name", "busy-one", images.busybox, "sleep", "300", check=True)
    try:
        dr = ["nerdpy", "--data-root", nerdpy.data_root]
        assert bash_complete(nerdpy, tmp_path, dr + ["logs", ""]) == ["busy-one", "idle-one"]
        assert bash_complete(nerdpy, tmp_path, dr + ["stop", ""]) == ["busy-one"]
        assert bash_complete(nerdpy, tmp_path, dr + ["start", ""]) == ["idle-one"]
        assert bash_complete(nerdpy, tmp_path, dr + ["exec", "bu"]) == ["busy-one"]
        assert bash_complete(nerdpy, tmp_path, dr + ["rm", "-f", "i"]) == ["idle-one"]
        # the image under the name it was pulled by (bash would split it at ':'; given whole here)
        assert images.busybox in bash_complete(nerdpy, tmp_path, dr + ["run", "--rm", images.busybox[:12]])
        assert bash_complete(nerdpy, tmp_path, ["nerdpy", "--data-root", str(tmp_path / "none"), "logs", ""]) == []
    finally:
        nerdpy("rm", "-f", "busy-one", "idle-one")
