"""content.reserve.Room: what a bulk writer may still take before the last megabyte."""
from __future__ import annotations

import errno

import pytest

from nerdpy.engine.content import reserve
from nerdpy.engine.content.reserve import LOW_WATER, Room


def _disk(monkeypatch, free: list[int]) -> list[int]:
    """A file system whose free bytes are free[0] (the test changes it); returns the statvfs log."""
    calls: list[int] = []

    def free_bytes(path):
        calls.append(free[0])
        return free[0]

    monkeypatch.setattr(reserve, "free_bytes", free_bytes)
    return calls


def test_a_write_that_would_leave_less_than_the_low_water_mark_is_refused(monkeypatch):
    free = [LOW_WATER + 10_000]
    _disk(monkeypatch, free)
    room = Room("/x")
    room.take(10_000)
    free[0] -= 10_000
    with pytest.raises(OSError) as e:
        room.take(1)
    assert e.value.errno == errno.ENOSPC and e.value.filename == "/x"


def test_a_large_disk_is_asked_rarely_a_nearly_full_one_every_time(monkeypatch):
    free = [100 << 30]
    calls = _disk(monkeypatch, free)
    room = Room("/x")
    for _ in range(10_000):          # 10 GiB in 1 MiB writes on 100 GiB free
        room.take(1 << 20)
        free[0] -= 1 << 20
    assert 1 <= len(calls) <= 3, len(calls)
    free[0] = 32 << 20
    calls.clear()
    room = Room("/x")
    for _ in range(10):
        room.take(1 << 20)
        free[0] -= 1 << 20
    assert len(calls) == 10


def test_writers_side_by_side_cannot_together_overshoot(monkeypatch):
    """Four writers that each saw the same free space write at most half of it, together, before
    each asks again (and would learn what the others took)."""
    free = [1 << 30]
    calls = _disk(monkeypatch, free)
    unasked = 0
    for _ in range(4):
        room = Room("/x")
        room.take(1 << 20)
        unasked += 1 << 20
        asked = len(calls)
        while True:
            room.take(1 << 20)
            if len(calls) > asked:
                break
            unasked += 1 << 20
    assert unasked <= free[0] // 2, unasked
