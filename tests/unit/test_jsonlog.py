"""The monitor's json-file writer (engine/runtime/monitor/jsonlog.py): records encoded a chunk at a
time are docker's records, one per line, whatever the bytes; rotation cuts between records."""
from __future__ import annotations

import json
import os

from nerdpy.engine.runtime.monitor.jsonlog import LINE_MAX, STDERR, STDOUT, JsonLog, encode_lines


def _decode(out: bytes) -> list[dict]:
    assert out.endswith(b"\n")
    return [json.loads(line) for line in out.decode().split("\n")[:-1]]


def test_plain_and_escaped_chunks_give_one_record_per_line():
    for chunk in (b"y\n" * 5, b"\n", b'a "q" \\ \t\x01\n\xff\xfe bad\n\xc3\xa9t\xc3\xa9\n\n', b"x" * 70000 + b"\n"):
        recs = _decode(encode_lines(STDOUT, chunk, "2026-01-01T00:00:00.000000000Z"))
        assert len(recs) == chunk.count(b"\n")
        assert "".join(r["log"] for r in recs) == chunk.decode("utf-8", "replace")
        assert all(r["log"].endswith("\n") and r["stream"] == "stdout" for r in recs)
        assert all(set(r) == {"log", "stream", "time"} for r in recs)
    assert _decode(encode_lines(STDERR, b"e\n", "T"))[0]["stream"] == "stderr"
    # docker's compact form
    assert encode_lines(STDOUT, b"y\n", "T") == b'{"log":"y\\n","stream":"stdout","time":"T"}\n'


def test_partial_lines_wait_for_their_end_and_long_ones_are_split(tmp_path):
    path = str(tmp_path / "log")
    log = JsonLog(path)
    for piece in (b"hel", b"lo\nwor", b"ld\n", b"z" * (LINE_MAX + 10)):
        log.write(STDOUT, piece)
    log.write(STDERR, b"tail")
    log.flush_partial()
    recs = [json.loads(line) for line in open(path)]
    assert [r["log"] for r in recs] == ["hello\n", "world\n", "z" * LINE_MAX, "z" * 10, "tail"]
    assert recs[-1]["stream"] == "stderr"


def test_rotation_cuts_between_records(tmp_path):
    path = str(tmp_path / "log")
    log = JsonLog(path, max_size=1000, max_file=3)
    data = b"".join(b"line %d\n" % i for i in range(400))
    for i in range(0, len(data), 777):
        log.write(STDOUT, data[i:i + 777])
    got = []
    for f in (path + ".2", path + ".1", path):
        assert os.path.getsize(f) <= 1000
        got += [json.loads(line)["log"] for line in open(f)]
    assert not os.path.exists(path + ".3")
    assert got == [f"line {i}\n" for i in range(400 - len(got), 400)]
