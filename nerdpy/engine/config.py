"""Engine settings: where state lives and how registries are reached.

Values come, lowest precedence first, from built-in defaults, `/etc/nerdpy/nerdpy.toml`
(or `$NERDPY_CONFIG`), `NERDPY_*` environment variables, and finally command-line flags,
which the CLI passes in as overrides.

A user other than root runs rootless (engine/runtime/rootless.py) with per-user defaults
(`user_defaults`): data root `$XDG_DATA_HOME/nerdpy` (~/.local/share/nerdpy), run root
`$XDG_RUNTIME_DIR/nerdpy` (or /tmp/nerdpy-UID), config `$XDG_CONFIG_HOME/nerdpy/nerdpy.toml`
(~/.config/nerdpy), hosts.toml files under ~/.config/nerdpy/certs.d. Inside the user namespace
the process is uid 0, so the real uid travels in `ROOTLESS_ENV`.
"""
from __future__ import annotations

import os
from dataclasses import field, fields

from nerdpy.engine.errors import InvalidArgument
from nerdpy.engine.util.lean import lean_dataclass

DEFAULT_CONFIG_PATH = "/etc/nerdpy/nerdpy.toml"
DEFAULT_CDI_DIRS = ("/etc/cdi", "/var/run/cdi")
DEFAULT_HOSTS_DIRS = ("/etc/nerdpy/certs.d", "/etc/containerd/certs.d", "/etc/docker/certs.d")
ROOTLESS_ENV = "_NERDPY_ROOTLESS_UID"  # set by the user namespace join: the user's real uid


def rootless_uid() -> int | None:
    """The real uid of a rootless user (None when nerdpy runs as real root)."""
    euid = os.geteuid()
    if euid != 0:
        return euid
    marked = os.environ.get(ROOTLESS_ENV, "")
    return int(marked) if marked.isdigit() else None


def user_defaults(uid: int, env: dict) -> dict[str, object]:
    """The per-user paths of a rootless user (XDG base directories)."""
    home = env.get("HOME") or ""
    if not home:
        import pwd

        try:
            home = pwd.getpwuid(uid).pw_dir
        except KeyError:
            home = "/"
    data = env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    conf = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    xdg_run = env.get("XDG_RUNTIME_DIR") or ""
    run = os.path.join(xdg_run, "nerdpy") if xdg_run else f"/tmp/nerdpy-{uid}"
    return {
        "config": os.path.join(conf, "nerdpy", "nerdpy.toml"),
        "data_root": os.path.join(data, "nerdpy"),
        "run_root": run,
        # the user's own hosts.toml files first, then the machine's (a mirror the admin set up
        # serves users too, as nerdctl's rootless defaults read /etc/containerd/certs.d)
        "hosts_dirs": [os.path.join(conf, "nerdpy", "certs.d"), *DEFAULT_HOSTS_DIRS],
        "cni_netconfpath": os.path.join(conf, "nerdpy", "cni", "net.d"),
    }


@lean_dataclass
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
    rootless_uid: int | None = None  # the real uid of a rootless user; None for root
    snapshotter: str = ""            # overlayfs (the kernel's) or fuse-overlayfs; "" = overlayfs for root, chosen for a user


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
    "snapshotter": "snapshotter",
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
    path = DEFAULT_CONFIG_PATH
    uid = rootless_uid()
    if uid is not None:
        mine = user_defaults(uid, env)
        path = str(mine.pop("config"))
        for attr, value in mine.items():
            setattr(settings, attr, value)
        settings.rootless_uid = uid
    path = env.get("NERDPY_CONFIG", path)
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
    # [A-Za-z0-9][A-Za-z0-9_.-]{0,75}, without compiling a regex at every command's start
    return 0 < len(ns) <= 76 and ns[0] in _NS_FIRST and all(ch in _NS_CHARS for ch in ns)


_NS_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_NS_CHARS = _NS_FIRST | frozenset("_.-")
