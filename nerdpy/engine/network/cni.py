"""Running CNI plugins as the CNI 1.0.0 spec says (what libcni does for a network list).

A plugin is an executable found on the CNI path. It gets its parameters in the environment
(`CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`, `CNI_ARGS`, `CNI_PATH`) and its
network configuration as JSON on stdin, and answers with a result (ADD) or an error result
(`{"code", "msg", "details"}`) on stdout.

For a list (`.conflist`): ADD runs the plugins in order, each receiving the previous one's
result as `prevResult`; DEL runs them in reverse order and CHECK in order, each receiving the
result that ADD returned. `runtimeConfig` carries the capability arguments (portMappings, ips,
mac) to the plugins that declare them in `capabilities`, as libcni does.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from typing import Callable

from nerdpy.engine.network import CniError, NetworkError

CNI_VERSION = "1.0.0"
PLUGIN_TIMEOUT = 120.0

_found: dict[tuple[str, tuple[str, ...]], str] = {}


@dataclass
class RuntimeConf:
    """The per-invocation parameters of a network list."""

    container_id: str
    netns: str
    ifname: str = "eth0"
    args: list[tuple[str, str]] = field(default_factory=list)       # CNI_ARGS
    capability_args: dict = field(default_factory=dict)             # portMappings, ips, mac...
    # descriptors of the locks the caller holds (the container's network lock): every plugin
    # inherits them, so when the caller is killed mid-ADD the locks stay held until its orphaned
    # plugin has finished, and no DEL runs beside it (one would miss what the plugin adds later)
    held_fds: tuple[int, ...] = ()


def find_plugin(plugin_type: str, paths: list[str]) -> str:
    """The executable for plugin `plugin_type` on the CNI path."""
    key = (plugin_type, tuple(paths))
    hit = _found.get(key)
    if hit is not None:
        return hit
    if "/" in plugin_type or not plugin_type:
        raise NetworkError(f"invalid CNI plugin type {plugin_type!r}")
    for d in paths:
        candidate = os.path.join(d, plugin_type)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            _found[key] = candidate
            return candidate
    raise NetworkError(f"CNI plugin {plugin_type!r} not found in {':'.join(paths)} "
                       "(install containernetworking-plugins, or set cni_path)")


def _env(command: str, rt: RuntimeConf, paths: list[str]) -> dict[str, str]:
    path = os.environ.get("PATH") or "/usr/local/bin:/usr/bin:/bin"
    for extra in ("/usr/local/sbin", "/usr/sbin", "/sbin"):
        if extra not in path.split(":"):
            path += ":" + extra
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": rt.container_id,
        "CNI_NETNS": rt.netns,
        "CNI_IFNAME": rt.ifname,
        "CNI_PATH": ":".join(paths),
        "PATH": path,
    }
    if rt.args:
        env["CNI_ARGS"] = ";".join(f"{k}={v}" for k, v in rt.args)
    return env


def plugin_conf(netlist: dict, plugin: dict, rt: RuntimeConf, prev: dict | None) -> dict:
    """The stdin configuration of one plugin of a list (libcni's buildOneConfig)."""
    conf = dict(plugin)
    conf["cniVersion"] = netlist.get("cniVersion", CNI_VERSION)
    conf["name"] = netlist["name"]
    if prev is not None:
        conf["prevResult"] = prev
    caps = plugin.get("capabilities") or {}
    runtime = {k: v for k, v in rt.capability_args.items() if caps.get(k) and v not in (None, [], {})}
    if runtime:
        conf["runtimeConfig"] = runtime
    return conf


def exec_plugin(plugin_type: str, command: str, conf: dict, rt: RuntimeConf, paths: list[str]) -> dict | None:
    """Run one plugin; its parsed result (None when it prints nothing), or CniError."""
    exe = find_plugin(plugin_type, paths)
    try:
        from nerdpy.engine.network.usernet import wrap

        proc = subprocess.run(wrap([exe]), input=json.dumps(conf).encode(), capture_output=True,
                              env=_env(command, rt, paths), timeout=PLUGIN_TIMEOUT, pass_fds=rt.held_fds)
    except subprocess.TimeoutExpired:
        raise CniError(plugin_type, command, 999, f"timed out after {PLUGIN_TIMEOUT:.0f}s") from None
    except OSError as e:
        raise CniError(plugin_type, command, 999, f"cannot run {exe}: {e.strerror or e}") from None
    out = proc.stdout.strip()
    if proc.returncode != 0:
        code, msg, details = 999, "", ""
        try:
            err = json.loads(out)
            code = int(err.get("code", 999))
            msg = str(err.get("msg", ""))
            details = str(err.get("details", ""))
        except (ValueError, AttributeError, TypeError):
            pass
        if not msg:
            msg = (proc.stderr.decode(errors="replace").strip() or out.decode(errors="replace")
                   or f"exit status {proc.returncode}")
        raise CniError(plugin_type, command, code, msg, details)
    if not out:
        return None
    try:
        result = json.loads(out)
    except ValueError:
        raise CniError(plugin_type, command, 999, f"unparsable result: {out[:200]!r}") from None
    if not isinstance(result, dict):
        raise CniError(plugin_type, command, 999, f"unexpected result: {out[:200]!r}")
    return result


# Plugins whose ADD only adds host rules for the addresses in prevResult and passes the result
# on unchanged (portmap, firewall), or only changes the container's interface (tuning): after
# the plugin that makes the interface, they do not depend on each other, so they may run at
# once. Their DELs, and the interface plugin's, are likewise independent (each removes only
# what it made, found by container ID or by the cached result).
INDEPENDENT_AFTER_FIRST = frozenset({"portmap", "firewall", "tuning"})
INDEPENDENT_DEL = frozenset({"bridge", "macvlan", "ipvlan", "portmap", "firewall", "tuning"})


def _concurrently(calls: list[Callable[[], object]]) -> list:
    """Run calls in threads (plugins are processes: the GIL is free while they run); results in
    order, or the first exception after all have finished."""
    import threading

    results: list = [None] * len(calls)
    errors: list = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            errors[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(1, len(calls))]
    for t in threads:
        t.start()
    run(0)
    for t in threads:
        t.join()
    for e in errors:
        if e is not None:
            raise e
    return results


def add_network_list(netlist: dict, rt: RuntimeConf, paths: list[str],
                     progress: Callable[[int, dict], None] | None = None, parallel: bool = True) -> dict:
    """CNI ADD for every plugin in order, chaining prevResult; the final result. `progress`
    is called with (plugin index, result so far) after each plugin, so that a caller can keep
    the partial result (a later DEL needs the addresses to undo what was done). With
    `parallel`, the plugins after the first run at once when all are INDEPENDENT_AFTER_FIRST
    (the result is the same as running them in a chain)."""
    plugins = netlist["plugins"]
    prev: dict | None = None
    rest = plugins[1:]
    if parallel and len(rest) > 1 and all(p["type"] in INDEPENDENT_AFTER_FIRST for p in rest):
        prev = exec_plugin(plugins[0]["type"], "ADD", plugin_conf(netlist, plugins[0], rt, None), rt, paths)
        if prev is None:
            raise CniError(plugins[0]["type"], "ADD", 999, "no result")
        if progress is not None:
            progress(0, prev)
        first = prev
        calls = [lambda p=p: exec_plugin(p["type"], "ADD", plugin_conf(netlist, p, rt, first), rt, paths)
                 for p in rest]
        for p, result in zip(rest, _concurrently(calls)):
            if p["type"] == "tuning" and result is not None:
                prev = result  # the only one that changes the result (the MAC it set)
    else:
        for i, plugin in enumerate(plugins):
            result = exec_plugin(plugin["type"], "ADD", plugin_conf(netlist, plugin, rt, prev), rt, paths)
            if result is not None:
                prev = result
                if progress is not None:
                    progress(i, prev)
    if prev is None:
        raise CniError(plugins[-1]["type"], "ADD", 999, "no result")
    if progress is not None:
        progress(len(plugins) - 1, prev)
    return prev


def del_network_list(netlist: dict, rt: RuntimeConf, paths: list[str], cached: dict | None,
                     parallel: bool = True) -> None:
    """CNI DEL for every plugin in reverse order, each given the cached ADD result (at once
    with `parallel` when all are INDEPENDENT_DEL). Unlike libcni, every plugin runs even when
    another fails, so as much as possible is freed; the first error is raised at the end."""
    plugins = list(reversed(netlist["plugins"]))

    def one(plugin: dict) -> CniError | None:
        try:
            exec_plugin(plugin["type"], "DEL", plugin_conf(netlist, plugin, rt, cached), rt, paths)
        except CniError as e:
            return e
        except NetworkError as e:
            return CniError(plugin["type"], "DEL", 999, str(e))
        return None

    if parallel and len(plugins) > 1 and all(p["type"] in INDEPENDENT_DEL for p in plugins):
        errors = _concurrently([lambda p=p: one(p) for p in plugins])
    else:
        errors = [one(p) for p in plugins]
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first


def check_network_list(netlist: dict, rt: RuntimeConf, paths: list[str], cached: dict) -> None:
    """CNI CHECK for every plugin in order, given the cached ADD result; CniError on a mismatch."""
    for plugin in netlist["plugins"]:
        exec_plugin(plugin["type"], "CHECK", plugin_conf(netlist, plugin, rt, cached), rt, paths)


@dataclass
class Interface:
    """What a result says about the container's interface on one network."""

    ifname: str = ""
    mac: str = ""
    address: str = ""        # IPv4 address without prefix
    prefix_len: int = 0
    gateway: str = ""
    ipv6_address: str = ""
    ipv6_prefix_len: int = 0
    ipv6_gateway: str = ""


def parse_result(result: dict, ifname: str) -> Interface:
    """The container-side interface, its addresses and gateways, from a 1.0.0 result."""
    interfaces = result.get("interfaces") or []
    out = Interface(ifname=ifname)
    idx_of_container = None
    for i, itf in enumerate(interfaces):
        if itf.get("sandbox") and itf.get("name") == ifname:
            idx_of_container = i
            out.mac = itf.get("mac", "")
            break
    for ip in result.get("ips") or []:
        if idx_of_container is not None and ip.get("interface") not in (None, idx_of_container):
            continue
        addr, _, plen = str(ip.get("address", "")).partition("/")
        if ":" in addr:
            if not out.ipv6_address:
                out.ipv6_address, out.ipv6_prefix_len = addr, int(plen or 128)
                out.ipv6_gateway = ip.get("gateway", "")
        elif not out.address:
            out.address, out.prefix_len = addr, int(plen or 32)
            out.gateway = ip.get("gateway", "")
    return out
