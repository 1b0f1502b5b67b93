"""`system info`: docker's `info` fields for the store, the runtime and the host."""
from __future__ import annotations

import os
import platform

from nerdpy.engine.errors import NerdpyError
from nerdpy.engine.store import Store


def _runc_version(binary: str) -> tuple[str, str, str]:
    """(path, version, commit) of runc; empty strings when it cannot be run."""
    import subprocess

    from nerdpy.engine.runtime.runc import runc_path

    try:
        path = runc_path(binary)
    except NerdpyError:
        return "", "", ""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return path, "", ""
    lines = out.strip().splitlines()
    version = lines[0].replace("runc version", "").strip() if lines else ""
    commit = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("commit:")), "")
    return path, version, commit


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def system_info(store: Store) -> dict:
    """docker's `info` fields (the server part), plus nerdpy's own (namespace, run root, CNI)."""
    from nerdpy import __version__
    from nerdpy.engine.containers.records import container_state, list_containers
    from nerdpy.engine.system.doctor import cgroup_layout, fs_type
    from nerdpy.engine.images.image import list_images
    from nerdpy.engine.containers.volumes import list_volumes

    states = [container_state(store, c).status for c in list_containers(store)]
    running = sum(1 for s in states if s in ("running", "restarting"))
    paused = sum(1 for s in states if s == "paused")
    layout = cgroup_layout()
    runc, runc_version, runc_commit = _runc_version(store.settings.runc)
    cni_dirs = [d for d in store.settings.cni_path if os.path.isdir(d)]
    cni_plugins = sorted({p for d in cni_dirs for p in os.listdir(d) if os.access(os.path.join(d, p), os.X_OK)})
    _magic, backing = fs_type(store.data_root)
    security = ["name=seccomp,profile=builtin"]
    if layout == "v2":
        security.append("name=cgroupns")
    if store.settings.rootless_uid is not None:
        security.append("name=rootless")  # as docker shows its rootless mode
    images = list_images(store)
    return {
        "ID": "",
        "Name": platform.node(),
        "ServerVersion": __version__,
        "Containers": len(states),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": len(states) - running - paused,
        "Images": len({i.config for i in images}),
        "Volumes": len(list_volumes(store)),
        "Driver": store.snapshots.driver,
        "DriverStatus": [["Backing Filesystem", backing]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "ipvlan", "macvlan", "null"],
                    "Authorization": None, "Log": ["json-file"]},
        "LoggingDriver": "json-file",
        "CgroupDriver": "none" if store.settings.rootless_uid is not None else "cgroupfs",
        "CgroupVersion": "2" if layout == "v2" else "1",
        "CgroupLayout": layout,
        "KernelVersion": platform.release(),
        "OperatingSystem": _os_name(),
        "OSType": "linux",
        "Architecture": platform.machine(),
        "NCPU": os.cpu_count() or 0,
        "MemTotal": _mem_total(),
        "DockerRootDir": store.data_root,
        "RunRoot": store.settings.run_root,
        "Namespace": store.namespace,
        "DefaultRuntime": "runc",
        "Runtimes": {"runc": {"path": runc}},
        "RuncPath": runc,
        "RuncVersion": runc_version,
        "RuncCommit": {"ID": runc_commit},
        "CNIPath": list(store.settings.cni_path),
        "CNIConfPath": store.settings.cni_netconfpath,
        "CNIPlugins": cni_plugins,
        "SecurityOptions": security,
        "InsecureRegistries": ["127.0.0.0/8", "localhost"] + list(store.settings.insecure_registries),
        "Debug": bool(store.settings.debug),
        "Warnings": [],
    }
