"""The client side of the monitor's attach socket: stream a container's output to our stdout and
stderr, send our stdin, follow the terminal's size, and detach on ctrl-p ctrl-q.

The framing and the frame kinds are in nerdpy/engine/runtime/monitor/wire.py.
"""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys

from nerdpy.engine.runtime.monitor.wire import C_CLOSE_STDIN, C_RESIZE, C_STDIN, EXIT, STDERR, STDOUT, split_frames
from nerdpy.engine.runtime.monitor.wire import frame as _frame

DETACHED = -1


def connect(sock_path: str, stdin: bool, stdout: bool = True, stderr: bool = True,
            size: tuple[int, int] | None = None, cleanup: bool = False) -> socket.socket:
    """Attach to a container's monitor. With `cleanup`, this client offers to do the final
    cleanup when the container exits (see `pump`'s `cleanup` callback)."""
    from nerdpy.engine.runtime.monitor.handoff import connect_monitor

    hello = {"stdin": stdin, "stdout": stdout, "stderr": stderr}
    if size:
        hello["resize"] = list(size)
    if cleanup:
        hello["cleanup"] = True
    return connect_monitor(sock_path, hello)


def terminal_size(fd: int) -> tuple[int, int] | None:
    try:
        sz = os.get_terminal_size(fd)
        return sz.lines, sz.columns
    except OSError:
        return None


def parse_detach_keys(text: str | None) -> bytes:
    """docker's --detach-keys: 'ctrl-p,ctrl-q' (default), letters, 'ctrl-<x>'."""
    if text is None:
        text = "ctrl-p,ctrl-q"
    if text == "":
        return b""
    out = b""
    for key in text.split(","):
        key = key.strip().lower()
        if key.startswith("ctrl-") and len(key) == 6:
            c = key[5]
            if "a" <= c <= "z":
                out += bytes([ord(c) - ord("a") + 1])
            elif c in "@[\\]^_":
                out += bytes([{"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}[c]])
            else:
                raise ValueError(f"invalid detach key {key!r}")
        elif len(key) == 1:
            out += key.encode()
        else:
            raise ValueError(f"invalid detach key {key!r}")
    return out


def pump(sock: socket.socket, stdin_fd: int | None, tty: bool, detach_keys: bytes = b"\x10\x11",
         close_stdin_on_eof: bool = True, cleanup=None) -> int | None:
    """Copy until the container exits (returns its code) or the user detaches (DETACHED);
    None when the connection closed without an exit code.

    `cleanup(remove: bool)` runs when the monitor hands the final cleanup to this client (it
    was attached with `cleanup=True`); the monitor does it itself if this one fails."""
    out = sys.stdout.buffer
    err = sys.stderr.buffer
    buf = b""
    pending_keys = b""
    exit_code: int | None = None
    wake_r = None
    if tty and stdin_fd is not None and os.isatty(stdin_fd):
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)

        def on_winch(*_):
            os.write(wake_w, b"w")

        signal.signal(signal.SIGWINCH, on_winch)
    fds: list = [sock]
    if stdin_fd is not None:
        fds.append(stdin_fd)
    if wake_r is not None:
        fds.append(wake_r)
    while True:
        try:
            r, _, _ = select.select(fds, [], [])
        except InterruptedError:
            continue
        if wake_r is not None and wake_r in r:
            os.read(wake_r, 64)
            size = terminal_size(stdin_fd)
            if size:
                sock.sendall(_frame(C_RESIZE, json.dumps(list(size)).encode()))
        if stdin_fd is not None and stdin_fd in r:
            try:
                data = os.read(stdin_fd, 65536)
            except OSError:
                data = b""
            if not data:
                fds.remove(stdin_fd)
                if close_stdin_on_eof:
                    try:
                        sock.sendall(_frame(C_CLOSE_STDIN, b""))
                    except OSError:
                        pass
            else:
                if tty and detach_keys:
                    data, detached, pending_keys = _scan_detach(pending_keys + data, detach_keys)
                    if detached:
                        if data:
                            sock.sendall(_frame(C_STDIN, data))
                        return DETACHED
                if data:
                    try:
                        sock.sendall(_frame(C_STDIN, data))
                    except OSError:
                        pass
        if sock in r:
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                return exit_code  # None: the monitor went away without telling
            frames, buf = split_frames(buf + chunk)
            for kind, payload in frames:
                if kind == STDOUT:
                    out.write(payload)
                    out.flush()
                elif kind == STDERR:
                    err.write(payload)
                    err.flush()
                elif kind == EXIT:
                    try:
                        msg = json.loads(payload)
                        exit_code = msg["exit_code"]
                    except (ValueError, KeyError, TypeError):
                        msg, exit_code = {}, 0
                    if msg.get("cleanup"):
                        from nerdpy.engine.runtime.monitor.handoff import clean_for_monitor

                        clean_for_monitor(sock, cleanup, bool(msg.get("remove")))
                        return exit_code


def _scan_detach(data: bytes, keys: bytes) -> tuple[bytes, bool, bytes]:
    """Find the detach sequence; returns (bytes to forward, detached?, bytes held back)."""
    idx = data.find(keys)
    if idx >= 0:
        return data[:idx], True, b""
    # hold back a partial match at the end
    for n in range(min(len(keys) - 1, len(data)), 0, -1):
        if data.endswith(keys[:n]):
            return data[:-n], False, data[-n:]
    return data, False, b""


class RawTerminal:
    """Put a terminal in raw mode for `-t` sessions and restore it afterwards."""

    def __init__(self, fd: int):
        self.fd = fd
        self.saved = None

    def __enter__(self):
        import termios
        import tty

        if os.isatty(self.fd):
            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd)
        return self

    def __exit__(self, *exc):
        import termios

        if self.saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
