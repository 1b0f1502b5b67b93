"""CDI, the Container Device Interface (as nerdctl 2, podman and containerd use it): devices named
`vendor.com/class=name` are described by spec files (JSON or YAML) in the settings'
`cdi_spec_dirs` (default /etc/cdi, then /var/run/cdi, the later directory winning), and injected
into a container by applying their `containerEdits` (env, deviceNodes, mounts, hooks,
additionalGids) to the OCI spec.

`--device vendor.com/class=name` names CDI devices; `--gpus` (docker's GPU request) means the
`nvidia.com/gpu` devices: all, the first N, or those named by device=. `resolve_devices` finds
the edits (an InvalidArgument naming what is missing), `apply_edits` applies them to a built
spec (pure).
"""
from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from nerdpy.engine.errors import InvalidArgument

if TYPE_CHECKING:
    from nerdpy.engine.config import Settings

_NAME = re.compile(r"^([a-zA-Z0-9][a-zA-Z0-9.-]*\.[a-zA-Z0-9-]+|[a-zA-Z0-9][a-zA-Z0-9-]*)/"
                   r"([a-zA-Z0-9][a-zA-Z0-9_.-]*)=([a-zA-Z0-9][a-zA-Z0-9_.:-]*)$")
GPU_KIND = "nvidia.com/gpu"
_HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def is_cdi_name(text: str) -> bool:
    """A fully qualified CDI device name (vendor.com/class=name), not a host device path."""
    return not str(text).startswith("/") and "=" in str(text) and "/" in str(text).partition("=")[0]


def check_name(text: str) -> None:
    if not _NAME.match(text):
        raise InvalidArgument(f"invalid CDI device name {text!r}: expected vendor.com/class=name")


def load_specs(dirs: list[str]) -> tuple[dict[str, dict], list[str]]:
    """{kind: {"edits": spec-level containerEdits, "devices": {name: containerEdits}}} from the
    spec files of `dirs` (a later directory's device replaces an earlier one), and the files that
    could not be read (path: reason)."""
    kinds: dict[str, dict] = {}
    broken: list[str] = []
    for d in dirs:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for fn in names:
            if not fn.endswith((".json", ".yaml", ".yml")):
                continue
            path = os.path.join(d, fn)
            try:
                doc = _read(path)
                kind = doc.get("kind")
                if not isinstance(kind, str) or "/" not in kind or not isinstance(doc.get("devices"), list):
                    raise ValueError("needs kind (vendor.com/class) and devices")
            except (OSError, ValueError) as e:
                broken.append(f"{path}: {e}")
                continue
            entry = kinds.setdefault(kind, {"edits": [], "devices": {}})
            if doc.get("containerEdits"):
                entry["edits"].append(doc["containerEdits"])
            for dev in doc["devices"]:
                if isinstance(dev, dict) and isinstance(dev.get("name"), str):
                    entry["devices"][dev["name"]] = dev.get("containerEdits") or {}
    return kinds, broken


def _read(path: str) -> dict:
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".json"):
        import json

        doc = json.loads(data)
    else:
        import yaml

        try:
            doc = yaml.safe_load(data)
        except yaml.YAMLError as e:
            raise ValueError(str(e).splitlines()[0]) from None
    if not isinstance(doc, dict):
        raise ValueError("not a CDI spec")
    return doc


def gpu_device_names(kinds: dict, gpus: str) -> list[str]:
    """docker's --gpus request -> the nvidia.com/gpu CDI device names it means."""
    from nerdpy.engine.containers.resources import parse_gpus

    req = parse_gpus(gpus)
    devs = (kinds.get(GPU_KIND) or {}).get("devices") or {}
    if not devs:
        raise InvalidArgument('could not select device driver "" with capabilities: [[gpu]] '
                              f"(no {GPU_KIND} CDI devices: generate a spec with `nvidia-ctk cdi generate`)")
    if req["devices"]:
        return [f"{GPU_KIND}={d}" for d in req["devices"]]
    if req["count"] == -1:
        if "all" in devs:
            return [f"{GPU_KIND}=all"]
        return [f"{GPU_KIND}={n}" for n in sorted(devs)]
    singles = sorted((n for n in devs if n != "all"), key=lambda n: (not n.isdigit(), int(n) if n.isdigit() else 0, n))
    if len(singles) < req["count"]:
        raise InvalidArgument(f"--gpus {gpus}: only {len(singles)} {GPU_KIND} CDI device(s) available")
    return [f"{GPU_KIND}={n}" for n in singles[:req["count"]]]


def resolve_devices(settings: Settings, names: list[str], gpus: str = "") -> list[dict]:
    """The containerEdits to apply for the CDI devices `names` and the --gpus request: each
    kind's spec-level edits once, then each device's. InvalidArgument for an unknown device."""
    if not names and not gpus:
        return []
    for n in names:
        check_name(n)
    kinds, broken = load_specs(list(settings.cdi_spec_dirs or []))
    wanted = list(names) + (gpu_device_names(kinds, gpus) if gpus else [])
    missing = []
    edits: list[dict] = []
    used_kinds: list[str] = []
    for n in wanted:
        kind, _, dev = n.partition("=")
        entry = kinds.get(kind)
        if entry is None or dev not in entry["devices"]:
            missing.append(n)
            continue
        if kind not in used_kinds:
            used_kinds.append(kind)
            edits += entry["edits"]
        edits.append(entry["devices"][dev])
    if missing:
        where = ", ".join(settings.cdi_spec_dirs or []) or "no CDI spec directories"
        extra = f"; unreadable specs: {'; '.join(broken)}" if broken else ""
        raise InvalidArgument(f"CDI device injection failed: unresolvable CDI devices {', '.join(missing)} "
                              f"(specs read from {where}{extra})")
    for e in edits:
        _check_edits(e)
    return edits


def _check_edits(e: dict) -> None:
    if not isinstance(e, dict):
        raise InvalidArgument("invalid CDI spec: containerEdits must be a mapping")
    for env in e.get("env") or []:
        if not isinstance(env, str) or "=" not in env:
            raise InvalidArgument(f"invalid CDI spec: env entry {env!r} is not NAME=VALUE")
    for d in e.get("deviceNodes") or []:
        if not isinstance(d, dict) or not str(d.get("path", "")).startswith("/"):
            raise InvalidArgument(f"invalid CDI spec: device node {d!r} needs an absolute path")
    for m in e.get("mounts") or []:
        if not isinstance(m, dict) or not str(m.get("containerPath", "")).startswith("/") or not m.get("hostPath"):
            raise InvalidArgument(f"invalid CDI spec: mount {m!r} needs hostPath and an absolute containerPath")
    for h in e.get("hooks") or []:
        if not isinstance(h, dict) or h.get("hookName") not in _HOOKS or not h.get("path"):
            raise InvalidArgument(f"invalid CDI spec: hook {h!r} needs a hookName ({', '.join(_HOOKS)}) and a path")


def _node(d: dict) -> dict:
    """A CDI deviceNode -> nerdpy's device dict (type, major, minor from the host path when the
    spec leaves them out)."""
    host = d.get("hostPath") or d["path"]
    kind, major, minor = d.get("type"), d.get("major"), d.get("minor")
    mode, uid, gid = d.get("fileMode"), d.get("uid"), d.get("gid")
    if kind is None or major is None or (minor is None and kind != "p"):
        from nerdpy.engine.util.fs import device_kind

        try:
            st = os.stat(host)
        except OSError as e:
            raise InvalidArgument(f"CDI device node {host}: {e.strerror}") from None
        kind = device_kind(st.st_mode)
        if kind is None:
            raise InvalidArgument(f"CDI device node {host}: not a device")
        major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        mode = st.st_mode & 0o777 if mode is None else mode
        uid = st.st_uid if uid is None else uid
        gid = st.st_gid if gid is None else gid
    return {"path": d["path"], "type": kind, "major": int(major), "minor": int(minor or 0),
            "fileMode": int(mode if mode is not None else 0o666), "uid": int(uid or 0), "gid": int(gid or 0),
            "access": d.get("permissions") or "rwm"}


def apply_edits(spec: dict, edits: list[dict]) -> dict:
    """Apply CDI containerEdits to an OCI spec in place (and return it): env replaces or adds,
    device nodes are created and allowed in the device cgroup, mounts and hooks appended."""
    process = spec.setdefault("process", {})
    linux = spec.setdefault("linux", {})
    for e in edits:
        env = list(process.get("env") or [])
        for item in e.get("env") or []:
            name = item.partition("=")[0]
            env = [x for x in env if x.partition("=")[0] != name] + [item]
        process["env"] = env
        for d in e.get("deviceNodes") or []:
            node = _node(d)
            access = node.pop("access")
            devices = [x for x in linux.get("devices") or [] if x.get("path") != node["path"]]
            linux["devices"] = devices + [node]
            rules = linux.setdefault("resources", {}).setdefault("devices", [])
            rules.append({"allow": True, "type": node["type"], "major": node["major"],
                          "minor": node["minor"], "access": access})
        for m in e.get("mounts") or []:
            kind = m.get("type") or "bind"
            opts = list(m.get("options") or [])
            if kind == "bind" and not {"bind", "rbind"} & set(opts):
                opts.insert(0, "rbind")
            spec.setdefault("mounts", []).append({"destination": m["containerPath"], "type": kind,
                                                  "source": m["hostPath"], "options": opts})
        for h in e.get("hooks") or []:
            hook = {"path": h["path"]}
            for key in ("args", "env", "timeout"):
                if h.get(key) is not None:
                    hook[key] = h[key]
            spec.setdefault("hooks", {}).setdefault(h["hookName"], []).append(hook)
        gids = e.get("additionalGids") or []
        if gids:
            user = process.setdefault("user", {})
            have = list(user.get("additionalGids") or [])
            user["additionalGids"] = have + [int(g) for g in gids if int(g) not in have]
    return spec
