"""User networks for a rootless user: bridge + CNI inside one per-user network namespace.

Root's user networks put their bridges, veths and iptables rules in the host's network
namespace, which a user cannot change. A rootless user gets one network namespace of its own
instead (`<run root>/netns/_rootless/usernet`, made inside the user's namespaces), joined to the
outside by a slirp4netns (engine/network/slirp.py): the CNI plugins, `iptables` and `ip` that
work on the "host side" of a user network run inside it (`wrap` prefixes their argv with
`nsenter --net`), so the bridge plugin, host-local IPAM, portmap, firewall and masquerading work
unchanged, and containers on one network reach each other by name (the /etc/hosts files, as for
root). A published port is a portmap DNAT inside that namespace plus a slirp4netns forward from
the host's port to the same port there (`publish`, undone by `unpublish`).

Processes know the namespace through `ENV` (set by `open_store` for a rootless user).
"""
from __future__ import annotations

import json
import os
import shutil

from nerdpy.engine.errors import NerdpyError

ENV = "_NERDPY_USERNET"


def path_of(run_root: str) -> str:
    from nerdpy.engine.network.netns import netns_path

    return netns_path(run_root, "_rootless", "usernet")


def state_dir(run_root: str) -> str:
    return os.path.join(run_root, "usernet")


def wrap(argv: list[str]) -> list[str]:
    """`argv` run in the user-network namespace (for a rootless user once it exists), else as is."""
    path = os.environ.get(ENV)
    if not path or not os.path.exists(path):
        return argv
    from nerdpy.engine.network.netns import is_netns

    if not is_netns(path):
        return argv
    return [shutil.which("nsenter") or "nsenter", f"--net={path}", "--", *argv]


def ensure(run_root: str) -> str:
    """The user-network namespace, created (with its slirp4netns) on first use."""
    from nerdpy.engine.network import slirp
    from nerdpy.engine.network.netns import create_netns, is_netns

    path = path_of(run_root)
    sdir = state_dir(run_root)
    if is_netns(path) and _alive(sdir):
        return path
    import fcntl

    os.makedirs(sdir, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(sdir, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not is_netns(path):
            create_netns(path)
        if not _alive(sdir):
            slirp.stop(sdir)
            slirp.start(path, sdir, [])
    finally:
        os.close(fd)
    return path


def _alive(sdir: str) -> bool:
    try:
        with open(os.path.join(sdir, "slirp.json")) as f:
            pid = int(json.load(f)["pid"])
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip() == "slirp4netns"
    except (OSError, ValueError, KeyError, TypeError):
        return False


def publish(run_root: str, run_dir: str, ports: list) -> None:
    """Forward each published host port from the host into the user-network namespace."""
    from nerdpy.engine.network import slirp

    sock = os.path.join(state_dir(run_root), "slirp.sock")
    ids = []
    try:
        for m in ports:
            reply = slirp.api(sock, {"execute": "add_hostfwd", "arguments": {
                "proto": m.protocol, "host_addr": m.host_ip or "0.0.0.0", "host_port": m.host_port,
                "guest_addr": slirp.GUEST_ADDR, "guest_port": m.host_port}})
            if "error" in reply:
                raise NerdpyError(f"cannot publish port {m.host_port}: {reply['error']}")
            ids.append(reply.get("return", {}).get("id"))
    finally:
        from nerdpy.engine.util.fs import write_atomic

        os.makedirs(run_dir, mode=0o700, exist_ok=True)
        write_atomic(os.path.join(run_dir, "usernet-ports.json"), json.dumps(ids))


def unpublish(run_root: str, run_dir: str) -> None:
    from nerdpy.engine.network import slirp

    path = os.path.join(run_dir, "usernet-ports.json")
    try:
        with open(path) as f:
            ids = json.load(f)
    except (OSError, ValueError):
        return
    sock = os.path.join(state_dir(run_root), "slirp.sock")
    for i in ids:
        if i is not None:
            try:
                slirp.api(sock, {"execute": "remove_hostfwd", "arguments": {"id": i}})
            except OSError:
                pass
    try:
        os.unlink(path)
    except OSError:
        pass


def stop_if_unused(run_root: str, db) -> None:
    """End the namespace once no container is attached to a user network (nothing is left
    running for a user without containers); the next attach makes it again."""
    import fcntl

    sdir = state_dir(run_root)
    if not os.path.isdir(sdir):
        return
    fd = os.open(os.path.join(sdir, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        row = db.query_one("SELECT COUNT(*) AS n FROM net_sandboxes")
        if row is not None and row["n"] == 0:
            stop(run_root)
    finally:
        os.close(fd)


def stop(run_root: str) -> None:
    """End the user-network namespace's slirp4netns and remove the namespace."""
    from nerdpy.engine.network import slirp
    from nerdpy.engine.network.netns import delete_netns

    slirp.stop(state_dir(run_root))
    try:
        delete_netns(path_of(run_root))
    except Exception:
        pass
