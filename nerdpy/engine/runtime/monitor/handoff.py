"""Taking a container's final cleanup over from its monitor.

When a container stops for good, its monitor must unmount the rootfs (and, for `--rm`, remove the
container) before it records the final state. The monitor is a small interpreter that would
have to import the engine first, which costs more than the cleanup itself. So a client attached
to the monitor's socket with `"cleanup": true` (the `run` CLI waiting in the foreground, `stop`,
`rm -f`), which has the engine loaded already, is handed the cleanup instead:

    monitor -> client   EXIT frame {"exit_code": N, "cleanup": true, "remove": bool}
    client              does the cleanup
    client -> monitor   CLEANED frame
    monitor             records the final state, then closes the connection

A client that goes away before it says CLEANED leaves the cleanup to the monitor, which is safe
to run twice. The framing and the frame kinds are in wire.py.
"""
from __future__ import annotations

import json
import os
import socket
import time
from typing import Callable

from nerdpy.engine.runtime.monitor.wire import C_CLEANED, EXIT, frame, read_line, split_frames


def connect_monitor(sock_path: str, hello: dict, timeout: float | None = None) -> socket.socket:
    """Connect to a monitor's attach socket and say hello; raises OSError when it does not answer."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        if len(sock_path.encode()) < 100:
            s.connect(sock_path)
        else:  # too long for sun_path: go through a descriptor of its directory
            dfd = os.open(os.path.dirname(sock_path), os.O_PATH | os.O_DIRECTORY)
            try:
                s.connect(f"/proc/self/fd/{dfd}/{os.path.basename(sock_path)}")
            finally:
                os.close(dfd)
        s.sendall(json.dumps(hello).encode() + b"\n")
        if not read_line(s).endswith(b"\n"):
            raise ConnectionError("the container's monitor closed the connection")
        s.settimeout(None)
        return s
    except BaseException:
        s.close()
        raise


def clean_for_monitor(sock: socket.socket, cleanup: Callable[[bool], None] | None, remove: bool) -> None:
    """After an EXIT frame that hands the cleanup over: do it, say so, and wait until the
    monitor has recorded the final state (it closes the connection then). Whatever goes wrong,
    the monitor finishes the job."""
    try:
        if cleanup is None:
            return
        cleanup(remove)
        sock.sendall(frame(C_CLEANED))
        sock.settimeout(30)
        while sock.recv(4096):
            pass
    except Exception:  # noqa: BLE001 (the monitor does it itself when we close without CLEANED)
        pass
    finally:
        sock.close()


class ExitWatch:
    """A connection to a container's monitor that only waits for the exit (no output) and takes
    the final cleanup on; `stop` and `rm -f` use it instead of polling the state."""

    def __init__(self, sock: socket.socket, cleanup: Callable[[bool], None]):
        self.sock = sock
        self.cleanup = cleanup
        self.buf = b""
        self.closed = False

    @classmethod
    def open(cls, sock_path: str, cleanup: Callable[[bool], None]) -> "ExitWatch | None":
        try:
            sock = connect_monitor(sock_path, {"stdin": False, "stdout": False, "stderr": False,
                                               "cleanup": True}, timeout=5)
        except OSError:
            return None
        return cls(sock, cleanup)

    def wait(self, timeout: float | None) -> tuple[bool, int | None]:
        """(True, exit code) once the container exited and its final state is recorded;
        (True, None) when the monitor went away without a word; (False, None) on timeout."""
        if self.closed:
            return True, None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False, None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False, None
            except OSError:
                chunk = b""
            if not chunk:
                self.close()
                return True, None
            frames, self.buf = split_frames(self.buf + chunk)
            for kind, payload in frames:
                if kind != EXIT:
                    continue
                try:
                    msg = json.loads(payload)
                    code = msg["exit_code"]
                except (ValueError, KeyError, TypeError):
                    msg, code = {}, None
                if msg.get("cleanup"):
                    clean_for_monitor(self.sock, self.cleanup, bool(msg.get("remove")))
                self.close()
                return True, code

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass
