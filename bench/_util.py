"""Helpers the benchmarks share."""
from __future__ import annotations

import shutil
import subprocess


def remove_work_dir(work: str) -> None:
    """Unmount everything under a benchmark's scratch dir (rootfs overlays, the netns root that
    nerdpy binds onto itself like `ip netns`), deepest first, then delete it."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for p in sorted((p for p in points if p == work or p.startswith(work + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", p], capture_output=True)
    shutil.rmtree(work, ignore_errors=True)
