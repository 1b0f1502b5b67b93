"""A lock held by a hung process (issue 17): `run` and `pull` wait, but not silently and not for
ever. After a few seconds they say what they wait for and which pid holds it; after
NERDPY_LOCK_TIMEOUT seconds they give up with a clear error; once the holder lets go they go on."""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import time

import pytest

from conftest import Nerdpy

HOLD = ("import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n")


def _hold(path: str, seconds: float) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, path, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


@pytest.fixture
def bb(nerdpy, images):
    nerdpy("pull", "-q", images.busybox, check=True)
    return images.busybox


def test_held_gc_lock_is_named_then_given_up(nerdpy, bb):
    holder = _hold(os.path.join(nerdpy.data_root, "gc.lock"), 60)
    try:
        t = time.monotonic()
        r = nerdpy("run", "--rm", "--network", "none", bb, "true", env={"NERDPY_LOCK_TIMEOUT": "5"})
        took = time.monotonic() - t
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode == 125, r.stdout + r.stderr
    assert "waiting for the store's gc lock" in r.stderr and f"held by pid {holder.pid}" in r.stderr, r.stderr
    assert r.stderr.count("nerdpy: waiting for") == 1 and len(r.stderr.splitlines()) == 2, r.stderr
    assert "gave up after 5 s waiting for the store's gc lock" in r.stderr, r.stderr
    assert 4.5 < took < 20, took
    assert "Traceback" not in r.stderr
    assert nerdpy("ps", "-a", "-q").stdout == ""  # nothing half-made
    # a wait that ends: the holder lets go after 4 s, the command says so once and goes on
    holder = _hold(os.path.join(nerdpy.data_root, "gc.lock"), 4)
    try:
        r = nerdpy("run", "--rm", "--network", "none", bb, "echo", "ok")
    finally:
        holder.wait()
    assert r.returncode == 0 and r.stdout == "ok\n", r.stderr
    assert r.stderr.count(f"held by pid {holder.pid}") == 1, r.stderr


def test_held_blob_lock_during_pull(nerdpy, images, tmp_path):
    nerdpy("pull", "-q", images.busybox, check=True)
    layer = max(glob.glob(os.path.join(nerdpy.data_root, "content", "blobs", "sha256", "*")), key=os.path.getsize)
    other = Nerdpy(str(tmp_path / "other"), nerdpy.home, str(tmp_path / "other-run"))
    other("images", check=True)  # makes the store
    holder = _hold(os.path.join(other.data_root, "content", "locks", os.path.basename(layer)), 60)
    try:
        r = other("pull", images.busybox, env={"NERDPY_LOCK_TIMEOUT": "4"})
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode != 0, r.stdout + r.stderr
    assert f"the lock of blob sha256:{os.path.basename(layer)[:12]}" in r.stderr, r.stderr
    assert f"held by pid {holder.pid}" in r.stderr and "gave up after 4 s" in r.stderr, r.stderr
    other("pull", "-q", images.busybox, check=True)  # and with the lock free, it works


def test_lock_timeout_setting_is_checked(nerdpy):
    r = nerdpy("images", env={"NERDPY_LOCK_TIMEOUT": "soon"})
    assert r.returncode == 125 and "NERDPY_LOCK_TIMEOUT: lock_timeout must be a positive number" in r.stderr, r.stderr
