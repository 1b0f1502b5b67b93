"""The monitor's wire protocol: framing and the sync socket's JSON lines."""
import socket

from nerdpy.engine.runtime.monitor import wire


def test_frames_round_trip_and_keep_the_incomplete_rest():
    data = wire.frame(wire.STDOUT, b"hello") + wire.frame(wire.EXIT, b'{"exit_code": 3}') + wire.frame(wire.STDERR, b"par")
    frames, rest = wire.split_frames(data[:-2])
    assert frames == [(wire.STDOUT, b"hello"), (wire.EXIT, b'{"exit_code": 3}')]
    frames, rest = wire.split_frames(rest + data[-2:])
    assert frames == [(wire.STDERR, b"par")] and rest == b""
    assert wire.frame(wire.C_CLEANED) == b"\x04\x00\x00\x00\x00\x00\x00\x00"


def test_lines_on_a_socketpair():
    a, b = socket.socketpair()
    with a, b:
        wire.send_line(a, {"start": True})
        assert wire.recv_line(b, timeout=5) == {"start": True}
        a.sendall(b'{"ok":true}\n' + wire.frame(wire.C_STDIN, b"x"))
        assert wire.read_line(b) == b'{"ok":true}\n'
        assert wire.split_frames(b.recv(100)) == ([(wire.C_STDIN, b"x")], b"")
        a.close()
        assert wire.recv_line(b, timeout=5) is None
