"""Engine settings: where state lives and how registries are reached.

Values come, lowest precedence first, from built-in defaults, `/etc/nerdpy/nerdpy.toml`
(or `$NERDPY_CONFIG`), `NERDPY_*` environment variables, and finally command-line flags,
which the CLI passes in as overrides.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

from nerdpy.engine.errors import InvalidArgument

DEFAULT_CONFIG_PATH = "/etc/nerdpy/nerdpy.toml"
DEFAULT_CDI_DIRS = ("/etc/cdi", "/var/run/cdi")
DEFAULT_HOSTS_DIRS = ("/etc/nerdpy/certs.d", "/etc/containerd/certs.d", "/etc/docker/certs.d")


@dataclass
class Settings:
    data_root: str = "/var/lib/nerdpy"
    run_root: str = "/run/nerdpy"
    namespace: str = "default"
    debug: bool = False
    insecure_registries: list[str] = field(default_factory=list)
    hosts_dirs: list[str] = field(default_factory=lambda: list(DEFAULT_HOSTS_DIRS))
    cni_path: list[str] = field(default_factory=lambda: ["/usr/lib/cni", "/opt/cni/bin"])
    cni_netconfpath: str = "/etc/cni/net.d"
    runc: str = "runc"
    bridge_name: str = ""      # the default network's Linux bridge ("" = nerdpy0)
    bridge_subnet: str = ""    # and its subnet ("" = 10.89.0.0/24)
    # OCI runtimes besides runc, for `run --runtime NAME`: [runtimes.NAME] path = "/usr/bin/crun"
    runtimes: dict = field(default_factory=dict)
    # where CDI (Container Device Interface) specs are read from, for --device vendor/class=name
    cdi_spec_dirs: list[str] = field(default_factory=lambda: list(DEFAULT_CDI_DIRS))
    lock_timeout: float = 300.0  # seconds to wait for a lock another process holds, then give up


# toml key / env suffix -> Settings attribute
_KEYS = {
    "data_root": "data_root",
    "run_root": "run_root",
    "namespace": "namespace",
    "debug": "debug",
    "insecure_registry": "insecure_registries",
    "insecure_registries": "insecure_registries",
    "hosts_dir": "hosts_dirs",
    "cni_path": "cni_path",
    "cni_netconfpath": "cni_netconfpath",
    "runc": "runc",
    "bridge_name": "bridge_name",
    "bridge_subnet": "bridge_subnet",
    "runtimes": "runtimes",
    "cdi_spec_dirs": "cdi_spec_dirs",
    "lock_timeout": "lock_timeout",
}


def _coerce(attr: str, value: object, source: str) -> object:
    kind = {f.name: f.type for f in fields(Settings)}[attr]
    if kind == "dict":
        return _runtimes(value, source)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in ("1", "true", "yes", "on")
    if kind == "float":
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            number = -1.0
        if not number > 0 or number == float("inf"):
            raise InvalidArgument(f"{source}: {attr} must be a positive number of seconds, not {value!r}")
        return number
    if kind.startswith("list"):
        if isinstance(value, str):
            sep = "," if attr == "insecure_registries" else ":"
            return [v for v in value.replace(",", sep).split(sep) if v]
        if isinstance(value, list):
            return [str(v) for v in value]
        raise InvalidArgument(f"{source}: {attr} must be a string or a list")
    if not isinstance(value, str):
        raise InvalidArgument(f"{source}: {attr} must be a string")
    return value


def _runtimes(value: object, source: str) -> dict:
    """[runtimes.NAME] tables (path, and optional runtimeArgs/args) -> {NAME: {"path", "args"}}."""
    if isinstance(value, str):  # NERDPY_RUNTIMES=name=/path,name2=/path2
        value = {k: {"path": v} for k, _, v in (p.partition("=") for p in value.split(",") if p)}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{source}: runtimes must be a table of [runtimes.NAME] tables")
    out = {}
    for name, table in value.items():
        if not isinstance(table, dict) or not isinstance(table.get("path"), str) or not table["path"]:
            raise InvalidArgument(f"{source}: runtimes.{name} needs a path (the runtime's binary)")
        args = table.get("runtimeArgs", table.get("args", []))
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise InvalidArgument(f"{source}: runtimes.{name}.runtimeArgs must be a list of strings")
        out[str(name)] = {"path": table["path"], "args": list(args)}
    return out


def load_settings(overrides: dict | None = None, env: dict | None = None) -> Settings:
    """Build the settings from the config file, the environment and explicit overrides."""
    env = os.environ if env is None else env
    settings = Settings()
    path = env.get("NERDPY_CONFIG", DEFAULT_CONFIG_PATH)
    if os.path.exists(path):
        import tomllib

        try:
            with open(path, "rb") as f:
                doc = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise InvalidArgument(f"cannot read {path}: {e}") from None
        for key, value in doc.items():
            attr = _KEYS.get(key.replace("-", "_"))
            if attr is not None:
                setattr(settings, attr, _coerce(attr, value, path))
    for key, attr in _KEYS.items():
        value = env.get("NERDPY_" + key.upper())
        if value is not None and value != "":
            setattr(settings, attr, _coerce(attr, value, "NERDPY_" + key.upper()))
    for attr, value in (overrides or {}).items():
        if value is None or value == () or value == []:
            continue
        setattr(settings, attr, value)
    if not _valid_namespace(settings.namespace):
        raise InvalidArgument(f"invalid namespace {settings.namespace!r}: use [a-z0-9][a-z0-9_.-]*")
    return settings


def _valid_namespace(ns: str) -> bool:
    import re

    return re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,75}", ns) is not None
