"""The event journal: one line per event, rotation, time values, filters, docker's line format."""
import json
import os
import threading
import time

import pytest

from nerdpy.engine.system import events as ev
from nerdpy.engine.system import journal
from nerdpy.engine.errors import InvalidArgument


class FakeStore:
    def __init__(self, root, namespace="default"):
        self.data_root = str(root)
        self.namespace = namespace


def test_record_and_read(tmp_path):
    s = FakeStore(tmp_path)
    e = journal.record_event(s, "container", "create", "abc123", {"image": "busybox", "name": "x"})
    assert e["status"] == "create" and e["from"] == "busybox" and e["scope"] == "local"
    journal.record_event(FakeStore(tmp_path, "other"), "image", "pull", "busybox:latest", {"name": "busybox:latest"})
    got = ev.read_events(s)
    assert [x["Action"] for x in got] == ["create"]
    assert len(ev.read_events(s, all_namespaces=True)) == 2
    line = open(os.path.join(tmp_path, journal.EVENTS_FILE), "rb").read()
    assert line.count(b"\n") == 2 and json.loads(line.split(b"\n")[0])["Actor"]["ID"] == "abc123"


def test_several_events_in_one_write_keep_their_order(tmp_path):
    s = FakeStore(tmp_path)
    journal.record_events(s, "container", ["exec_create: true", "exec_start: true"], "abc", {"execID": "e1"})
    journal.record_events(s, "container", ["long1", "long2"], "abc", {"x": "y" * 3000})  # too long for one write
    got = ev.read_events(s)
    assert [x["Action"] for x in got] == ["exec_create: true", "exec_start: true", "long1", "long2"]
    assert got[0]["timeNano"] < got[1]["timeNano"] and got[0]["Actor"]["Attributes"]["execID"] == "e1"


def test_long_attributes_stay_one_atomic_line(tmp_path):
    s = FakeStore(tmp_path)
    journal.record_event(s, "container", "exec_start: sh", "id", {"execID": "e" * 10_000, "name": "n"})
    data = open(os.path.join(tmp_path, journal.EVENTS_FILE), "rb").read()
    assert len(data) <= journal.MAX_LINE and data.endswith(b"\n")
    assert json.loads(data)["Actor"]["Attributes"]["name"] == "n"


def test_concurrent_writers_never_interleave(tmp_path):
    s = FakeStore(tmp_path)

    def writer(n):
        for i in range(200):
            journal.record_event(s, "container", "start", f"{n}-{i}", {"name": "x" * 500})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ev.read_events(s)) == 800


def test_rotation_keeps_the_previous_file(tmp_path):
    s = FakeStore(tmp_path)
    for i in range(50):
        journal.append_event(s.data_root, journal.make_event("default", "container", "start", str(i)), max_bytes=4000)
    assert os.path.exists(os.path.join(tmp_path, journal.EVENTS_FILE + ".1"))
    got = [int(x["Actor"]["ID"]) for x in ev.read_events(s)]
    assert got == sorted(got) and got[-1] == 49 and len(got) < 50


def test_parse_time_arg():
    now = 1_700_000_000.0
    assert ev.parse_time_arg("1700000000", now) == 1700000000.0
    assert ev.parse_time_arg("1700000000.5", now) == 1700000000.5
    assert ev.parse_time_arg("10m", now) == now - 600
    assert ev.parse_time_arg("1h30m", now) == now - 5400
    assert ev.parse_time_arg("0s", now) == now
    assert ev.parse_time_arg("2023-11-14T22:13:20Z", now) == 1_700_000_000.0
    assert ev.parse_time_arg("2023-11-14T22:13:20.123456789Z", now) == pytest.approx(1_700_000_000.123456)
    assert ev.parse_time_arg("2023-11-14T23:13:20+01:00", now) == 1_700_000_000.0
    for bad in ("", "yesterday", "10x"):
        with pytest.raises(InvalidArgument):
            ev.parse_time_arg(bad, now)


def test_filters():
    c = journal.make_event("default", "container", "die", "a" * 64, {"image": "docker.io/library/busybox:latest",
                                                               "name": "web", "exitCode": "0", "com.x": "y"})
    i = journal.make_event("default", "image", "pull", "docker.io/library/busybox:latest",
                      {"name": "docker.io/library/busybox:latest"})
    v = journal.make_event("default", "volume", "create", "data", {"driver": "local"})

    def match(items, e):
        return ev.EventFilter.parse(items).match(e)

    assert match(["type=container"], c) and not match(["type=container"], i)
    assert match(["type=image", "type=volume"], v)
    assert match(["container=web"], c) and match(["container=aaaaaa"], c) and not match(["container=db"], c)
    assert match(["image=busybox"], c) and match(["image=busybox"], i) and not match(["image=alpine"], c)
    assert match(["event=die"], c) and not match(["event=start"], c)
    assert match(["label=com.x=y"], c) and match(["label=com.x"], c) and not match(["label=com.x=z"], c)
    assert match(["volume=data"], v) and not match(["volume=data"], c)
    with pytest.raises(InvalidArgument):
        ev.EventFilter.parse(["bogus=1"])
    with pytest.raises(InvalidArgument):
        ev.EventFilter.parse(["type"])


def test_event_line(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        e = journal.make_event("default", "container", "create", "abc", {"name": "x", "image": "busybox"},
                          now_ns=1_700_000_000_123_456_789)
        assert ev.event_line(e) == "2023-11-14T22:13:20.123456789Z container create abc (image=busybox, name=x)"
        assert "namespace" not in ev.public_event(e)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_follow_sees_new_events_and_stops(tmp_path):
    s = FakeStore(tmp_path)
    journal.record_event(s, "container", "create", "old")
    stop = threading.Event()
    seen = []

    def follow():
        for e in ev.follow_events(s, since=None, poll=0.02, stop=stop.is_set):
            seen.append(e["Actor"]["ID"])
            if len(seen) == 2:
                stop.set()

    t = threading.Thread(target=follow)
    t.start()
    time.sleep(0.2)
    journal.record_event(s, "container", "start", "new1")
    journal.record_event(s, "container", "die", "new2")
    t.join(5)
    assert seen == ["new1", "new2"]
