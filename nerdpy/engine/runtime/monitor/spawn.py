"""Starting a container's monitor ahead of time: a fresh interpreter takes tens of milliseconds
to start, so `run` launches it first and lets it start while the CLI creates the container.
The monitor then waits on its sync socket for the path of its config (or for EOF: not needed).

Small on purpose (no engine imports), so that the spawn happens as early as possible.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys

MONITOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "monitor.py")


class MonitorSpawn:
    """A monitor process that has not been told its container yet."""

    def __init__(self) -> None:
        self.sock, child = socket.socketpair()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-S", "-E", MONITOR, "-", str(child.fileno())],
                pass_fds=[child.fileno()], start_new_session=True,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
            )
        finally:
            child.close()

    def close(self) -> None:
        """Not needed after all: the monitor sees EOF and exits."""
        try:
            self.sock.close()
        finally:
            self.proc.wait()


def spawn_monitor() -> MonitorSpawn:
    return MonitorSpawn()
