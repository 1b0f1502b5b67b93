"""Detecting a damaged metadata DB before opening it, and waiting for a held lock (issue 17)."""
from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys

import pytest

from nerdpy.engine.content.damage import database_damage
from nerdpy.engine.errors import LockTimeout
from nerdpy.engine.util import locks


def _db(root) -> str:
    path = os.path.join(root, "meta.db")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    conn.commit()
    conn.close()
    return path


def test_a_new_store_is_not_damaged(tmp_path):
    assert database_damage(str(tmp_path)) is None
    open(tmp_path / "meta.db", "w").close()
    assert database_damage(str(tmp_path)) is None  # empty, and nothing else there


def test_missing_or_empty_db_beside_content_is_named(tmp_path):
    blob = tmp_path / "content" / "blobs" / "sha256"
    blob.mkdir(parents=True)
    (blob / ("a" * 64)).write_bytes(b"x")
    assert "is missing but the data root holds 1 blobs" in database_damage(str(tmp_path))
    open(tmp_path / "meta.db", "w").close()
    assert "is empty" in database_damage(str(tmp_path))


def test_truncated_or_garbled_db_is_named(tmp_path):
    path = _db(tmp_path)
    assert database_damage(str(tmp_path)) is None
    os.truncate(path, os.path.getsize(path) // 2)
    assert "truncated" in database_damage(str(tmp_path))
    with open(path, "r+b") as f:
        f.write(b"garbage" * 20)
    assert "not an SQLite database" in database_damage(str(tmp_path))


def test_a_held_lock_is_reported_once_then_given_up(tmp_path, monkeypatch):
    path = str(tmp_path / "x.lock")
    holder = subprocess.Popen([sys.executable, "-c",
                               "import fcntl, os, sys, time\n"
                               f"fd = os.open({path!r}, os.O_RDWR | os.O_CREAT)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(30)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        told: list[str] = []
        monkeypatch.setattr(locks, "NOTICE_AFTER", 0.2)
        locks.set_reporter(told.append)
        fd = os.open(path, os.O_RDWR)
        try:
            assert locks.holders(fd) == [holder.pid]
            with pytest.raises(LockTimeout, match=f"gave up after 0.6 s waiting for the x lock, held by pid {holder.pid}"):
                locks.flock_wait(fd, fcntl.LOCK_EX, "the x lock", timeout=0.6)
            assert len(told) == 1 and f"held by pid {holder.pid}" in told[0]
        finally:
            os.close(fd)
            locks.set_reporter(None)
    finally:
        holder.kill()
        holder.wait()
    fd = os.open(path, os.O_RDWR)
    locks.flock_wait(fd, fcntl.LOCK_EX, "the x lock", timeout=1)  # free now: at once
    os.close(fd)
