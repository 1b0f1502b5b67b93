"""The json-file log as the monitor writes it a read at a time (issue 17's log throughput): every
line is there, in order, on its own stream, whole, across rotations, and `logs -f` sees them all
as the files rotate under it."""
from __future__ import annotations

import glob
import json

import pytest


@pytest.fixture
def bb(nerdpy, images):
    nerdpy("pull", "-q", images.busybox, check=True)
    return images.busybox


def _records(path: str) -> list[dict]:
    files = sorted(glob.glob(path + ".*"), key=lambda f: -int(f.rsplit(".", 1)[1])) + [path]
    out = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            out += [json.loads(line) for line in fh]
    return out


def test_every_line_in_order_on_its_stream_across_rotations(nerdpy, bb):
    script = ("seq 1 30000; seq 1 5000 | sed 's/^/err-/' >&2; yes $(printf '%0999d' 7) | head -n 1500; "
              "printf 'quote\" back\\\\ tab\\t bell\\a \\303\\251t\\303\\251 \\377\\n'; printf 'no newline'")
    nerdpy("run", "-d", "--name", "lr", "--log-opt", "max-size=256k", "--log-opt", "max-file=40", bb,
           "sh", "-c", script, check=True)
    assert nerdpy("wait", "lr", timeout=120).stdout.strip() == "0"
    long = "0" * 998 + "7"
    want_out = [str(i) for i in range(1, 30001)] + [long] * 1500 + ["quote\" back\\ tab\t bell\a été \ufffd",
                                                                      "no newline"]
    r = nerdpy("logs", "lr")
    assert r.returncode == 0
    assert r.stdout.split("\n") == want_out, r.stdout[-300:]
    assert r.stderr.splitlines() == [f"err-{i}" for i in range(1, 5001)]
    path = nerdpy("inspect", "-f", "{{.LogPath}}", "lr").stdout.strip()
    recs = _records(path)
    assert len(glob.glob(path + ".*")) >= 10  # it did rotate
    assert [x["log"] for x in recs if x["stream"] == "stdout"] == [x + "\n" for x in want_out[:-1]] + ["no newline"]
    assert all(set(x) == {"log", "stream", "time"} for x in recs)
    for f in glob.glob(path + "*"):
        with open(f, "rb") as fh:
            assert len(fh.read()) <= 256 * 1024


def test_logs_follow_across_rotations(nerdpy, bb):
    nerdpy("run", "-d", "--name", "lf", "--log-opt", "max-size=8k", "--log-opt", "max-file=5", bb, "sh", "-c",
           "sleep 1; i=0; while [ $i -lt 40 ]; do seq $((i*100+1)) $((i*100+100)); i=$((i+1)); sleep 0.05; done",
           check=True)
    r = nerdpy("logs", "-f", "lf", timeout=120)
    assert r.returncode == 0
    assert r.stdout.split() == [str(i) for i in range(1, 4001)]
