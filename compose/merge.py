"""Merging compose files (the specification's section 13) and resolving ``extends``.

Rules, applied to each later file over the result so far:
- mappings merge by key; a later scalar replaces an earlier one;
- sequences are appended, and for the set-like ones (dns, dns_search, dns_opt, expose, cap_add,
  cap_drop, security_opt, profiles, tmpfs, env_file, ...) duplicates are dropped;
- ``command``, ``entrypoint``, ``healthcheck.test``, ``extends`` and each ``ulimits`` entry are
  replaced, not merged;
- ``ports`` are unique by (host_ip, target, published, protocol), ``volumes``, ``secrets`` and
  ``configs`` by their target path: an entry with the key of an earlier one replaces it in place;
- ``environment``, ``labels``, ``sysctls``, ``annotations``, ``extra_hosts``, ``build.args``,
  ``depends_on`` and service ``networks`` merge by key whatever their form (list or mapping);
- ``logging`` is replaced when the driver changes;
- ``!reset`` removes the earlier value; ``!override`` replaces it without merging.
"""
from __future__ import annotations

import copy
import os
from typing import Callable

from compose.errors import ExtendsError
from compose.syntax import mount_target, parse_port, port_key, volume_target

_REPLACE = {
    ("services", "*", "command"),
    ("services", "*", "entrypoint"),
    ("services", "*", "healthcheck", "test"),
    ("services", "*", "extends"),
    ("services", "*", "ulimits", "*"),
}
_KEYED = {  # list or mapping forms, merged by key
    ("services", "*", "environment"): "=",
    ("services", "*", "labels"): "=",
    ("services", "*", "annotations"): "=",
    ("services", "*", "sysctls"): "=",
    ("services", "*", "build", "args"): "=",
    ("services", "*", "build", "labels"): "=",
    ("services", "*", "deploy", "labels"): "=",
    ("networks", "*", "labels"): "=",
    ("volumes", "*", "labels"): "=",
    ("secrets", "*", "labels"): "=",
    ("configs", "*", "labels"): "=",
}
_SETS = {
    "dns", "dns_search", "dns_opt", "expose", "cap_add", "cap_drop", "security_opt", "profiles",
    "tmpfs", "env_file", "label_file", "group_add", "links", "external_links", "volumes_from",
    "devices", "device_cgroup_rules", "extra_hosts",
}
_STRING_OR_LIST = {"dns", "dns_search", "tmpfs", "env_file", "label_file"}


def _match(path: tuple, pattern: tuple) -> bool:
    return len(path) == len(pattern) and all(p == "*" or p == k for k, p in zip(path, pattern))


def _keyed_kind(path: tuple) -> str | None:
    for pattern, sep in _KEYED.items():
        if _match(path, pattern):
            return sep
    return None


def list_or_dict_to_dict(value, sep: str = "=") -> dict:
    """["A=1", "B"] or {"A": 1} -> {"A": "1"...}; an entry without '=' maps to None."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    out = {}
    for item in value:
        k, has, v = str(item).partition(sep)
        out[k] = v if has else None
    return out


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, list):
        return list(value)
    return [value]


def _dedupe(items: list) -> list:
    out, seen = [], []
    for item in items:
        if item in seen:
            continue
        seen.append(item)
        out.append(item)
    return out


def _merge_unique(base: list, over: list, key: Callable, path: tuple, overrides: set) -> list:
    result = list(base)
    index = {}
    for i, item in enumerate(result):
        k = key(item)
        if k is not None:
            index[k] = i
    for item in over:
        k = key(item)
        if k is not None and k in index:
            i = index[k]
            old = result[i]
            if isinstance(old, dict) and isinstance(item, dict):
                result[i] = merge(old, item, path + (i,), overrides)
            else:
                result[i] = item
        else:
            if k is not None:
                index[k] = len(result)
            result.append(item)
    return result


def _expand_ports(items: list) -> list:
    out = []
    for item in items:
        if isinstance(item, dict):
            out.append(item)
            continue
        try:
            out.extend(parse_port(item))
        except ValueError:
            out.append(item)  # reported with its line when the model is built
    return out


def _depends_on_map(value) -> dict:
    if isinstance(value, dict):
        return dict(value)
    return {name: {"condition": "service_started", "required": True} for name in _as_list(value)}


def _networks_map(value) -> dict:
    if isinstance(value, dict):
        return dict(value)
    return {name: None for name in _as_list(value)}


def _build_map(value) -> dict:
    if isinstance(value, dict):
        return dict(value)
    return {"context": value}


def merge(base, over, path: tuple = (), overrides: set | frozenset = frozenset()):
    """Merge `over` onto `base` (both plain YAML data) following compose's rules; returns the
    result (the arguments may be changed)."""
    if path in overrides:
        return copy.deepcopy(over)
    if any(_match(path, p) for p in _REPLACE):
        return copy.deepcopy(over)
    sep = _keyed_kind(path)
    if sep is not None and (isinstance(base, (list, dict)) or isinstance(over, (list, dict))):
        merged = list_or_dict_to_dict(base, sep)
        merged.update(list_or_dict_to_dict(over, sep))
        return merged
    if len(path) == 3 and path[0] == "services":
        key = path[2]
        if key == "depends_on":
            return _merge_mappings(_depends_on_map(base), _depends_on_map(over), path, overrides)
        if key == "networks":
            return _merge_mappings(_networks_map(base), _networks_map(over), path, overrides)
        if key == "build" and (isinstance(base, str) or isinstance(over, str)):
            return _merge_mappings(_build_map(base), _build_map(over), path, overrides)
        if key == "ports" and isinstance(base, list) and isinstance(over, list):
            return _merge_unique(_expand_ports(base), _expand_ports(over), port_key, path, overrides)
        if key == "volumes" and isinstance(base, list) and isinstance(over, list):
            return _merge_unique(base, over, volume_target, path, overrides)
        if key in ("secrets", "configs") and isinstance(base, list) and isinstance(over, list):
            return _merge_unique(base, over, lambda e: mount_target(e, key), path, overrides)
        if key == "logging" and isinstance(base, dict) and isinstance(over, dict):
            if base.get("driver") and over.get("driver") and base["driver"] != over["driver"]:
                return copy.deepcopy(over)
        if key in _SETS:
            if key == "extra_hosts" and (isinstance(base, dict) or isinstance(over, dict)):
                merged = _extra_hosts_map(base)
                merged.update(_extra_hosts_map(over))
                return merged
            if isinstance(base, (list, str)) and isinstance(over, (list, str)) and \
                    (key in _STRING_OR_LIST or isinstance(base, list) and isinstance(over, list)):
                return _dedupe(_as_list(base) + _as_list(over))
    if _match(path, ("networks", "*", "ipam", "config")) and isinstance(base, list) and isinstance(over, list):
        return _merge_unique(base, over, lambda e: e.get("subnet") if isinstance(e, dict) else None,
                             path, overrides)
    if isinstance(base, dict) and isinstance(over, dict):
        return _merge_mappings(base, over, path, overrides)
    if isinstance(base, list) and isinstance(over, list):
        return base + copy.deepcopy(over)
    if over is None and isinstance(base, dict):
        return base  # `volumes: {data: }` in an override keeps what the base said
    return copy.deepcopy(over)


def _extra_hosts_map(value) -> dict:
    if isinstance(value, dict):
        return dict(value)
    out: dict = {}
    for item in _as_list(value):
        s = str(item)
        if "=" in s:
            host, _, ip = s.partition("=")
        else:
            host, _, ip = s.partition(":")
        out.setdefault(host, [])
        if isinstance(out[host], list):
            out[host].append(ip)
    return out


def _merge_mappings(base: dict, over: dict, path: tuple, overrides) -> dict:
    result = dict(base)
    for k, v in over.items():
        if k in result:
            result[k] = merge(result[k], v, path + (k,), overrides)
        else:
            result[k] = copy.deepcopy(v)
    return result


def apply_resets(data: dict, resets) -> None:
    """Remove the values at the given paths (a later file's ``!reset``) from `data`."""
    for path in sorted(resets, key=len):
        node = data
        for p in path[:-1]:
            if isinstance(node, dict) and p in node:
                node = node[p]
            elif isinstance(node, list) and isinstance(p, int) and p < len(node):
                node = node[p]
            else:
                node = None
                break
        last = path[-1]
        if isinstance(node, dict):
            node.pop(last, None)


def merge_files(files) -> dict:
    """Merge SourceFiles in order: the first is the base, each later one overrides it."""
    if not files:
        return {}
    result = copy.deepcopy(files[0].data)
    for f in files[1:]:
        apply_resets(result, f.resets)
        result = merge(result, copy.deepcopy(f.data), (), f.overrides)
    return result


# ---------------------------------------------------------------------------------------------
# extends

def _rebase(service: dict, from_dir: str) -> dict:
    """Make the relative paths of a service taken from a file in another directory absolute."""
    def absp(p):
        if not isinstance(p, str):
            return p
        if p.startswith("~"):
            return p
        return os.path.normpath(os.path.join(from_dir, p))

    s = copy.deepcopy(service)
    if isinstance(s.get("build"), str):
        if "://" not in s["build"]:
            s["build"] = absp(s["build"])
    elif isinstance(s.get("build"), dict) and isinstance(s["build"].get("context"), str):
        if "://" not in s["build"]["context"]:
            s["build"]["context"] = absp(s["build"]["context"])
    for key in ("env_file", "label_file"):
        v = s.get(key)
        if isinstance(v, str):
            s[key] = absp(v)
        elif isinstance(v, list):
            s[key] = [absp(e) if isinstance(e, str) else
                      ({**e, "path": absp(e["path"])} if isinstance(e, dict) and "path" in e else e)
                      for e in v]
    vols = s.get("volumes")
    if isinstance(vols, list):
        out = []
        for v in vols:
            if isinstance(v, str):
                src, sep, rest = v.partition(":")
                if sep and src.startswith("."):
                    v = absp(src) + ":" + rest
            elif isinstance(v, dict) and v.get("type") == "bind" and isinstance(v.get("source"), str) \
                    and not v["source"].startswith(("/", "~")):
                v = {**v, "source": absp(v["source"])}
            out.append(v)
        s["volumes"] = out
    return s


class ExtendsResolver:
    """Resolves ``extends`` in the services of SourceFiles.

    `load` returns the SourceFile for an absolute path (parsed, interpolated, validated) and is
    used for ``extends.file``; files are cached by path."""

    def __init__(self, load: Callable[[str], object]):
        self.load = load
        self.cache: dict[str, object] = {}
        self.done: dict[tuple, dict] = {}

    def _file(self, path: str):
        if path not in self.cache:
            self.cache[path] = self.load(path)
        return self.cache[path]

    def resolve_file(self, src) -> None:
        services = src.data.get("services")
        if not isinstance(services, dict):
            return
        for name in list(services):
            services[name] = self.service(src, name, ())

    def service(self, src, name: str, chain: tuple) -> dict:
        key = (src.path or src.name, name)
        if key in self.done:
            return copy.deepcopy(self.done[key])
        services = src.data.get("services") or {}
        svc = services.get(name)
        if not isinstance(svc, dict) or "extends" not in svc:
            return svc
        if key in chain:
            names = " -> ".join(f"{n}" for _, n in chain + (key,))
            raise ExtendsError(f"circular reference with extends: {names}", src.name,
                               src.line_of(("services", name, "extends")))
        ext = svc["extends"]
        if isinstance(ext, str):
            ext = {"service": ext}
        base_name = ext.get("service")
        line = src.line_of(("services", name, "extends"))
        if ext.get("file"):
            path = ext["file"]
            if not os.path.isabs(path):
                path = os.path.join(src.dir, path)
            path = os.path.normpath(path)
            base_src = self._file(path)
        else:
            base_src = src
        base_services = base_src.data.get("services") or {}
        if base_name not in base_services:
            where = f" in {base_src.name}" if base_src is not src else ""
            raise ExtendsError(f'services.{name}.extends: cannot extend service "{base_name}"{where}: '
                               "service not found", src.name, line)
        base = self.service(base_src, base_name, chain + (key,))
        if base is None:
            base = {}
        base = copy.deepcopy(base)
        if base_src.dir != src.dir:
            base = _rebase(base, base_src.dir)
        local = {k: v for k, v in svc.items() if k != "extends"}
        merged = merge(base, local, ("services", name), frozenset())
        merged.pop("extends", None)
        self.done[key] = merged
        return copy.deepcopy(merged)
