"""The monitor's wire protocol, the one definition both ends use.

Standard library only, and no nerdpy imports: the monitor (`python3 -S -E monitor.py`) imports it
by its sibling name `wire`, the engine and the CLI as `nerdpy.engine.runtime.monitor.wire`.

Two channels:

The sync socket (a socketpair between the CLI that starts a container and its monitor) carries
one JSON object per line (`send_line`/`recv_line`):

    CLI -> monitor   {"config": PATH}       (a monitor spawned ahead of time learns its config)
    monitor -> CLI   {"ready": true}         (listening on attach.sock; clients may attach now)
    CLI -> monitor   {"start": true|false}   (go ahead, or give up)
    monitor -> CLI   {"started": PID} | {"error": MESSAGE}

The attach socket (`attach.sock` in the container's run dir): a client sends a hello line
(`{"stdin": bool, "stdout": bool, "stderr": bool, "resize": [rows, cols]?, "cleanup": bool?}`),
the monitor answers `HELLO_OK`, then both sides exchange frames in docker's stdcopy framing:
1 byte kind, 3 zero bytes, a 4-byte big-endian payload length, the payload (`frame`,
`split_frames`). The kinds are below; EXIT carries `{"exit_code": N}` (plus `"cleanup": true,
"remove": bool` when the monitor hands its final cleanup to the client, see handoff.py).
"""
import json
import struct

HEADER = struct.Struct(">BxxxI")
HEADER_SIZE = HEADER.size  # 8

# monitor -> client frame kinds (docker's stream numbers, plus the exit)
STDIN, STDOUT, STDERR, EXIT = 0, 1, 2, 3
# client -> monitor frame kinds
C_STDIN, C_RESIZE, C_CLOSE_STDIN, C_START, C_CLEANED = 0, 1, 2, 3, 4

HELLO_OK = b'{"ok":true}\n'
HELLO_MAX = 4096  # the longest hello line the monitor reads


def frame(kind, data=b""):
    """One frame: header and payload."""
    return HEADER.pack(kind, len(data)) + data


def split_frames(buf):
    """The complete frames at the start of `buf`: ([(kind, payload)...], the incomplete rest)."""
    frames = []
    while len(buf) >= HEADER_SIZE:
        kind, size = HEADER.unpack(buf[:HEADER_SIZE])
        if len(buf) < HEADER_SIZE + size:
            break
        frames.append((kind, buf[HEADER_SIZE:HEADER_SIZE + size]))
        buf = buf[HEADER_SIZE + size:]
    return frames, buf


def read_line(sock, limit=None):
    """Read up to and including a newline one byte at a time (so that no frame after it is
    consumed); shorter, without the newline, when the peer closed or `limit` bytes were read.
    Socket errors propagate."""
    line = b""
    while not line.endswith(b"\n") and (limit is None or len(line) < limit):
        chunk = sock.recv(1)
        if not chunk:
            break
        line += chunk
    return line


def send_line(sock, obj):
    """Send one JSON line on the sync socket; a peer that went away is not an error."""
    try:
        sock.sendall(json.dumps(obj).encode() + b"\n")
    except OSError:
        pass


def recv_line(sock, timeout=None):
    """Receive one JSON line from the sync socket (waiting at most `timeout` seconds when given);
    None when the peer closed, timed out or sent garbage."""
    buf = b""
    try:
        if timeout is not None:
            sock.settimeout(timeout)
        while not buf.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            buf += chunk
        return json.loads(buf) if buf.strip() else None
    except (OSError, ValueError):
        return None
