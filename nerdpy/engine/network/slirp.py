"""The default network of a rootless user: slirp4netns, user-mode networking for a netns of ours.

A rootless container on the default network (`bridge`) gets a network namespace made inside the
user's namespaces (`create_netns`) and one slirp4netns process that gives it `tap0` with
10.0.2.100/24, the gateway 10.0.2.2 and DNS at 10.0.2.3, and carries its traffic through the
host's sockets. `-p` ports are slirp4netns port forwards, added through its API socket
(`add_hostfwd`). The process's pid, its socket and the ports are kept in `<run dir>/slirp.json`;
`stop` ends it and removes the namespace. slirp4netns needs /dev/net/tun to be usable by the user
(`doctor` explains when it is not). User networks (bridge + CNI) are not available rootless.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess

from nerdpy.engine.errors import NerdpyError

GUEST_ADDR = "10.0.2.100"


def _state_path(run_dir: str) -> str:
    return os.path.join(run_dir, "slirp.json")


def tun_usable() -> str | None:
    """None when /dev/net/tun can be opened, else why not."""
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return f"/dev/net/tun: {e.strerror}"
    os.close(fd)
    return None


def start(netns: str, run_dir: str, ports: list) -> list:
    """Start slirp4netns for `netns` and publish `ports`; the ports with host ports chosen."""
    binary = shutil.which("slirp4netns")
    if binary is None:
        raise NerdpyError("the rootless default network needs slirp4netns: sudo apt-get install slirp4netns "
                          "(or use --network none or host)")
    why = tun_usable()
    if why is not None:
        raise NerdpyError(f"the rootless default network needs /dev/net/tun ({why}): "
                          "sudo chmod 0666 /dev/net/tun (or use --network none or host)")
    os.makedirs(run_dir, mode=0o700, exist_ok=True)
    sock = os.path.join(run_dir, "slirp.sock")
    try:
        os.unlink(sock)
    except FileNotFoundError:
        pass
    ready_r, ready_w = os.pipe()
    try:
        p = subprocess.Popen([binary, "--configure", "--mtu=65520", "--disable-host-loopback",
                              # relative to its cwd: a socket path is limited to 108 bytes
                              "--api-socket", "slirp.sock", "--ready-fd", str(ready_w),
                              "--netns-type=path", netns, "tap0"],
                             pass_fds=[ready_w], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, start_new_session=True, close_fds=True, cwd=run_dir)
    finally:
        os.close(ready_w)
    with os.fdopen(ready_r, "rb") as ready:
        ok = ready.read(1)
    if ok != b"1":
        p.kill()
        err = p.stderr.read().decode(errors="replace").strip().splitlines()
        p.wait()
        detail = "; ".join(ln for ln in err[-3:] if ln and ln != "parent failed") or "exited"
        raise NerdpyError(f"slirp4netns failed: {detail}")
    p.stderr.close()
    p.returncode = 0  # it outlives this command: `stop` ends it
    state = {"pid": p.pid, "socket": sock, "ports": []}
    _save(run_dir, state)
    try:
        chosen = [_forward(sock, m) for m in ports]
    except BaseException:
        stop(run_dir)
        raise
    state["ports"] = [m.as_dict() for m in chosen]
    _save(run_dir, state)
    return chosen


def _save(run_dir: str, state: dict) -> None:
    from nerdpy.engine.util.fs import write_atomic

    write_atomic(_state_path(run_dir), json.dumps(state))


def _forward(sock: str, m):
    from dataclasses import replace

    host_port = m.host_port or _free_port(m.protocol)
    req = {"execute": "add_hostfwd",
           "arguments": {"proto": m.protocol, "host_addr": m.host_ip or "0.0.0.0", "host_port": host_port,
                         "guest_addr": GUEST_ADDR, "guest_port": m.container_port}}
    reply = api(sock, req)
    if "error" in reply and host_port < _unprivileged_port_start():
        raise NerdpyError(f"cannot publish port {host_port}: a user may not bind ports below "
                          f"{_unprivileged_port_start()} (sysctl net.ipv4.ip_unprivileged_port_start)")
    if "error" in reply:
        desc = reply["error"].get("desc", reply["error"]) if isinstance(reply["error"], dict) else reply["error"]
        raise NerdpyError(f"cannot publish port {host_port}: {desc}")
    return replace(m, host_port=host_port, host_port_end=0)


def api(sock: str, req: dict) -> dict:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dfd = os.open(os.path.dirname(sock), os.O_PATH | os.O_CLOEXEC)
    try:
        s.settimeout(10)
        s.connect(f"/proc/self/fd/{dfd}/{os.path.basename(sock)}")  # short, whatever the run root's length
        s.sendall(json.dumps(req).encode())
        s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
        os.close(dfd)
    try:
        return json.loads(data or b"{}")
    except ValueError:
        return {"error": {"desc": data.decode(errors="replace")}}


def _unprivileged_port_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 1024


def _free_port(proto: str) -> int:
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def ports(run_dir: str) -> list:
    from nerdpy.engine.network.ports import PortMapping

    try:
        with open(_state_path(run_dir)) as f:
            return [PortMapping.from_dict(d) for d in json.load(f).get("ports", [])]
    except (OSError, ValueError):
        return []


def stop(run_dir: str) -> None:
    """End the container's slirp4netns (idempotent)."""
    import signal

    try:
        with open(_state_path(run_dir)) as f:
            pid = int(json.load(f)["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    try:
        with open(f"/proc/{pid}/comm") as f:
            if f.read().strip() == "slirp4netns":
                os.kill(pid, signal.SIGTERM)
    except OSError:
        pass
    for path in (_state_path(run_dir), os.path.join(run_dir, "slirp.sock")):
        try:
            os.unlink(path)
        except OSError:
            pass
