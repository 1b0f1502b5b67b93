"""What nerdpy leaves on the host, counted only for what this test session made (other sessions
and other tools may run beside it on the same machine, so nothing global is diffed blindly).

`HostState.take(base)` looks at:
- mounts whose mount point is under `base` (overlay rootfs, netns bind mounts, volumes...);
- network namespace files under `base/**/netns/` (nerdpy's are `<run-root>/netns/<ns>/<id>`);
- runc state directories under `base/**/runc/<ns>/<id>` and nerdpy processes (monitors,
  commands) whose command line names a path under `base`;
- veth links enslaved to this session's bridge or to a bridge recorded by a data root under `base`;
- iptables rules of this session's containers: rules that name one of their container IDs (taken
  from the event journals of the data roots under `base`) or an address in their subnets, and
  every rule of the per-container chains (CNI-..., CNI-DN-...) those rules jump to.

Rules and links already on the host when the session began (`baseline()`) are never this
session's: an earlier run on the same machine may have left a rule for an address, or a bridge
of a network name, that this session uses again.
"""
from __future__ import annotations

import glob
import ipaddress
import json
import os
import re
import sqlite3
import subprocess
import time

import conftest

_ID = re.compile(r'id: \\?"([0-9a-f]{64})\\?"')
_CHAIN = re.compile(r"\b(CNI-(?:DN-)?[0-9a-f]{12,})\b")
_ADDR = re.compile(r"(\d+\.\d+\.\d+\.\d+)(?:/32)?\b")
_EARLIER: dict[str, frozenset[str]] = {"rules": frozenset(), "links": frozenset()}


def _rule_lines() -> list[str]:
    text = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    return [line for line in text.splitlines() if line.startswith("-A ")]


def _link_names() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {m.group(1) for m in (re.match(r"^\d+: ([^@:]+)[@:]", line) for line in out.splitlines()) if m}


def baseline() -> None:
    """Note the rules and links on the host before the session's first test: never counted."""
    _EARLIER["rules"] = frozenset(_rule_lines())
    _EARLIER["links"] = frozenset(_link_names())


def _meta_dbs(base: str) -> list[str]:
    out = []
    for depth in range(0, 5):
        out += glob.glob(os.path.join(base, *["*"] * depth, "meta.db"))
    return out


def _journals(base: str) -> list[str]:
    out = []
    for depth in range(0, 5):
        out += glob.glob(os.path.join(base, *["*"] * depth, "events.jsonl*"))
    return out


def our_networks(base: str) -> tuple[set[str], list]:
    """(bridge names, subnets) of this session: its default bridge and every network recorded
    by a data root under `base`."""
    bridges = {conftest.BRIDGE_NAME}
    subnets = [ipaddress.ip_network(conftest.BRIDGE_SUBNET)]
    for path in _meta_dbs(base):
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
            try:
                rows = db.execute("SELECT link, subnet, driver FROM networks").fetchall()
            finally:
                db.close()
        except sqlite3.Error:
            continue
        for link, subnet, driver in rows:
            # nerdpy0, the default bridge of stores that set none, is shared with other sessions
            if driver == "bridge" and link and link != "nerdpy0":
                bridges.add(link)
            try:
                if subnet:
                    net = ipaddress.ip_network(subnet, strict=False)
                    if link in bridges:
                        subnets.append(net)
            except ValueError:
                pass
    return bridges, subnets


def our_container_ids(base: str) -> set[str]:
    ids = set()
    for path in _journals(base):
        try:
            with open(path, errors="replace") as f:
                for line in f:
                    if '"Type":"container"' not in line and '"Type": "container"' not in line:
                        continue
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue
                    cid = ev.get("id") or (ev.get("Actor") or {}).get("ID")
                    if isinstance(cid, str) and len(cid) == 64:
                        ids.add(cid)
        except OSError:
            pass
    return ids


def mounts_under(base: str) -> list[str]:
    """Mount points under `base`, but for `<run-root>/netns` itself: like /run/netns for `ip
    netns`, it is made a shared mount once, on first use, and stays."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return sorted(p for p in points if (p == base or p.startswith(base.rstrip("/") + "/"))
                  and not p.endswith("/netns"))


def veths(bridges: set[str]) -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        m = re.match(r"^\d+: ([^@:]+)[@:].* master (\S+) ", line)
        if m and m.group(2) in bridges:
            found.append(f"{m.group(1)} (master {m.group(2)})")
    return sorted(found)


def rules(ids: set[str], subnets: list) -> list[str]:
    lines = [line for line in _rule_lines() if line not in _EARLIER["rules"]]

    def ours(line: str) -> bool:
        for cid in _ID.findall(line):
            if cid in ids:
                return True
        for addr in _ADDR.findall(line):
            try:
                ip = ipaddress.ip_address(addr)
            except ValueError:
                continue
            if f"{addr}/32" in line and any(ip in n for n in subnets):
                return True
        return False

    picked = {line for line in lines if ours(line)}
    chains = set()
    for line in picked:
        chains.update(c for c in _CHAIN.findall(line))
    for line in lines:
        parts = line.split()
        if len(parts) > 1 and any(parts[1] == c or parts[1].startswith(c) for c in chains):
            picked.add(line)
    return sorted(picked)


def processes(base: str) -> list[str]:
    out = []
    me = os.getpid()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        cmd = " ".join(a.decode(errors="replace") for a in argv if a)
        if "monitor.py" in cmd:
            # a monitor's command line names no path ("monitor.py - FD"); it works in its
            # container's run directory
            try:
                where = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            if where == base or where.startswith(base.rstrip("/") + "/"):
                out.append(f"{pid}: {cmd[:200]} (in {where})")
        elif base in cmd and ("-m nerdpy" in cmd or os.path.basename(argv[0].decode(errors="replace")) == "runc"):
            out.append(f"{pid}: {cmd[:200]}")
    return sorted(out)


def netns_files(base: str) -> list[str]:
    out = []
    for depth in range(1, 4):
        out += glob.glob(os.path.join(base, *["*"] * depth, "netns", "*", "*"))
    return sorted(p for p in out if _direct(p))


def _direct(path: str) -> bool:
    """Not reached through a symlinked directory (pytest's `<name>current` links)."""
    return os.path.realpath(os.path.dirname(path)) == os.path.dirname(path)


def runc_states(base: str) -> list[str]:
    out = []
    for depth in range(1, 4):
        out += glob.glob(os.path.join(base, *["*"] * depth, "runc", "*", "*"))
    return sorted(p for p in out if os.path.isdir(p) and _direct(p))


def _short_ids(ids: set[str]) -> set[str]:
    return {i[:12] for i in ids}


def cgroups(ids: set[str]) -> list[str]:
    """Cgroups runc made for this session's containers (`cgroupsPath` /nerdpy/<ns>-<id12>), v1
    (one per controller) or v2."""
    short = _short_ids(ids)
    out = []
    for pattern in ("/sys/fs/cgroup/nerdpy/*", "/sys/fs/cgroup/*/nerdpy/*"):
        for p in glob.glob(pattern):
            if os.path.isdir(p) and os.path.basename(p).rpartition("-")[2] in short:
                out.append(p)
    return sorted(out)


def container_processes(ids: set[str]) -> list[str]:
    """Processes in the cgroup of one of this session's containers (a container that outlived its
    records: no runc state, no monitor, but still running)."""
    short = _short_ids(ids)
    if not short:
        return []
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                text = f.read()
        except OSError:
            continue
        for m in re.finditer(r"/nerdpy/[^/\n]*-([0-9a-f]{12})\b", text):
            if m.group(1) in short:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                except OSError:
                    cmd = "?"
                out.append(f"{cmd[:120]} (container {m.group(1)})")
                break
    return sorted(out)


def links(names: set[str]) -> list[str]:
    """Which of these link names (bridges of the session's networks) exist."""
    return sorted((_link_names() & names) - _EARLIER["links"])


# places outside the data and run roots where nerdpy (or the CNI plugins it runs) could write
OUTSIDE = ("/run/netns", "/var/run/netns", "/run/nerdpy", "/var/lib/nerdpy", "/etc/nerdpy", "/var/lib/cni",
           "/run/cni")


def outside_files(ids: set[str], since: float) -> list[str]:
    """Files outside the test roots that name (or hold, for CNI's IP leases) one of this session's
    container IDs, and `nerdpy exec` logs in /tmp made during the session and never removed."""
    short = _short_ids(ids)
    out = []
    if ids:
        for top in OUTSIDE:
            for dirpath, dirnames, filenames in os.walk(top):
                if dirpath.count("/") - top.count("/") >= 4:
                    dirnames[:] = []
                for name in dirnames + filenames:
                    path = os.path.join(dirpath, name)
                    if name in ids or any(s in name for s in short):
                        out.append(path)
                    elif name in filenames and top == "/var/lib/cni":
                        try:  # host-local leases: a file per address holding the container ID
                            with open(path, errors="replace") as f:
                                if f.read(100).split("\n", 1)[0].strip() in ids:
                                    out.append(path)
                        except OSError:
                            pass
    logs = []
    for path in glob.glob("/tmp/nerdpy-exec-*"):
        try:
            if os.stat(path).st_mtime >= since:
                logs.append(path)
        except OSError:
            pass
    if logs:  # one that a running `nerdpy exec` (of this session or another) holds is not left
        held = _open_files()
        out += [p for p in logs if p not in held]
    return sorted(out)


def _open_files() -> set[str]:
    held = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                held.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                pass
    return held


class HostState(dict):
    @classmethod
    def take_session(cls, base: str, since: float) -> "HostState":
        """`take` and what only a whole session's end can judge: cgroups and processes of its
        containers, links of its networks' bridges (the session bridge aside), files outside
        the test roots."""
        s = cls.take(base)
        ids = our_container_ids(base)
        bridges, _ = our_networks(base)
        bridges.discard(conftest.BRIDGE_NAME)
        s["cgroups"] = cgroups(ids)
        s["container_procs"] = container_processes(ids)
        s["bridges"] = links(bridges)
        s["outside"] = outside_files(ids, since)
        return s

    @classmethod
    def take(cls, base: str, *, procs: bool = True) -> "HostState":
        bridges, subnets = our_networks(base)
        s = cls(
            mounts=mounts_under(base),
            netns=netns_files(base),
            runc=runc_states(base),
            veth=veths(bridges),
            rules=rules(our_container_ids(base), subnets),
        )
        if procs:
            s["procs"] = [p.split(": ", 1)[1] for p in processes(base)]
        return s

    def diff(self, other: "HostState") -> dict:
        out = {}
        for k in self:
            a, b = set(self[k]), set(other.get(k, []))
            if a != b:
                out[k] = {"new": sorted(b - a), "gone": sorted(a - b)}
        return out


def settle(check, timeout: float = 10.0, interval: float = 0.2):
    """Retry `check` (which raises AssertionError) until it passes or the time is up: a monitor
    finishing its cleanup a moment after the command that stopped its container returned."""
    end = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > end:
                raise
            time.sleep(interval)


def assert_nothing_left(nerdpy, *extra_roots: str, exclusive: bool = True) -> None:
    """After every container of `nerdpy` (and of the extra data roots' runners) was removed: no
    mount under its data/run roots, no netns file, no runc state, no monitor, no veth on our
    bridges, no rule naming one of its containers. `exclusive=False` when other stores of this
    session use the session's bridge at the same time: then only the store's own bridges and the
    rules that name its containers count (the module check sees the rest afterwards)."""
    roots = [nerdpy.data_root, nerdpy.run_root, *extra_roots]

    def check():
        left = {}
        for r in roots:
            m = mounts_under(r)
            if m:
                left.setdefault("mounts", []).extend(m)
            left.setdefault("netns", []).extend(glob.glob(os.path.join(r, "netns", "*", "*")))
            left.setdefault("runc", []).extend(p for p in glob.glob(os.path.join(r, "runc", "*", "*"))
                                               if os.path.isdir(p))
            left.setdefault("procs", []).extend(processes(r))
        ids = set()
        for r in roots:
            ids |= our_container_ids(r)
        bridges, subnets = our_networks(os.path.commonpath(roots))
        if not exclusive:
            bridges.discard(conftest.BRIDGE_NAME)
            subnets = []
        left["rules"] = rules(ids, subnets) if ids else []
        left["veth"] = veths(bridges)
        left = {k: v for k, v in left.items() if v}
        assert not left, f"left on the host: {json.dumps(left, indent=1)}"

    settle(check)


def module_unchanged():
    """A module-scoped autouse fixture (assign it to a name in the test module): the host state
    after the module's tests, once settled, equals the state before them."""
    import pytest

    @pytest.fixture(scope="module", autouse=True)
    def _unchanged(tmp_path_factory):
        base = str(tmp_path_factory.getbasetemp())
        before = HostState.take(base)
        yield

        def same():
            d = before.diff(HostState.take(base))
            assert not d, f"host state changed: {json.dumps(d, indent=1)}"

        settle(same)

    return _unchanged
