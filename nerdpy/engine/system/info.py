"""`info` and `version`: docker's `info` fields for the store, the runtime and the host, docker's
`version` document (Server part), and the Engine API versions nerdpy speaks (one place for the CLI
and the API service)."""
from __future__ import annotations

import os
import platform
import time

from nerdpy.engine.errors import NerdpyError
from nerdpy.engine.store import Store

# The Engine API versions nerdpy reports (`version`) and serves: the newest and the oldest.
API_VERSION = "1.44"
MIN_API_VERSION = "1.24"
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
           "s390x": "s390x", "riscv64": "riscv64"}


def go_arch() -> str:
    """The host's architecture in Go's (docker's) spelling: amd64, arm64..."""
    return GO_ARCH.get(platform.machine(), platform.machine())


def runtime_version() -> str:
    """The interpreter standing in for docker's GoVersion."""
    return "python" + platform.python_version()


def server_version(runc_binary: str) -> dict:
    """docker's `version` document for the Server (the embedded engine), as GET /version returns it."""
    from nerdpy import __version__

    _path, runc_version, runc_commit = _runc_version(runc_binary)
    kernel = platform.release()
    return {
        "Platform": {"Name": "nerdpy (daemonless engine)"},
        "Components": [
            {"Name": "Engine", "Version": __version__,
             "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": "",
                         "GoVersion": runtime_version(), "Os": "linux", "Arch": go_arch(),
                         "KernelVersion": kernel, "Experimental": "false", "BuildTime": ""}},
            {"Name": "runc", "Version": runc_version, "Details": {"GitCommit": runc_commit}},
        ],
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": runtime_version(),
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": kernel,
        "Experimental": False,
        "BuildTime": "",
    }


def runc_release(binary: str = "runc") -> tuple[int, ...]:
    """runc's version as numbers, (1, 1, 5) for "1.1.5+ds1"; () when it cannot be told."""
    import re

    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", _runc_version(binary)[1])
    return tuple(int(x) for x in m.groups() if x is not None) if m else ()


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
    from nerdpy.engine.runtime.cgroups import swap_accounting

    cg = "/sys/fs/cgroup" if layout == "v2" else None
    memory = os.path.exists(cg + "/cgroup.controllers") if cg else os.path.isdir("/sys/fs/cgroup/memory")
    swap = swap_accounting()
    cpu = bool(cg) or os.path.isdir("/sys/fs/cgroup/cpu")
    cpuset = bool(cg) or os.path.isdir("/sys/fs/cgroup/cpuset")
    pids = bool(cg) or os.path.isdir("/sys/fs/cgroup/pids")
    warnings = []
    if not swap:
        warnings.append("WARNING: No swap limit support")
    if layout == "v1":
        warnings.append("WARNING: cgroup v1 is deprecated; consider cgroup v2")
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
        "Warnings": warnings,
        # the rest of docker's fields, with the values that hold for nerdpy
        "MemoryLimit": memory, "SwapLimit": swap, "KernelMemory": False, "KernelMemoryTCP": False,
        "CpuCfsPeriod": cpu, "CpuCfsQuota": cpu, "CPUShares": cpu, "CPUSet": cpuset, "PidsLimit": pids,
        "IPv4Forwarding": _read_flag("/proc/sys/net/ipv4/ip_forward"),
        "BridgeNfIptables": _read_flag("/proc/sys/net/bridge/bridge-nf-call-iptables"),
        "BridgeNfIp6tables": _read_flag("/proc/sys/net/bridge/bridge-nf-call-ip6tables"),
        "OomKillDisable": layout != "v2", "NFd": _count_fds(), "NGoroutines": 0, "NEventsListener": 0,
        "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime()) + _tz_offset(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": None, "AllowNondistributableArtifactsHostnames": None,
            "InsecureRegistryCIDRs": ["127.0.0.0/8", "::1/128"],
            "IndexConfigs": {
                "docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": True, "Official": True},
                **{r: {"Name": r, "Mirrors": [], "Secure": False, "Official": False}
                   for r in store.settings.insecure_registries},
            },
            "Mirrors": None,
        },
        "HttpProxy": os.environ.get("HTTP_PROXY", os.environ.get("http_proxy", "")),
        "HttpsProxy": os.environ.get("HTTPS_PROXY", os.environ.get("https_proxy", "")),
        "NoProxy": os.environ.get("NO_PROXY", os.environ.get("no_proxy", "")),
        "Labels": [], "ExperimentalBuild": False, "LiveRestoreEnabled": True, "Isolation": "",
        "InitBinary": "", "ContainerdCommit": {"ID": ""}, "InitCommit": {"ID": ""},
        "ProductLicense": "", "DefaultAddressPools": None, "CDISpecDirs": ["/etc/cdi", "/var/run/cdi"],
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                  "Error": "", "RemoteManagers": None},
        "GenericResources": None,
    }


def _read_flag(path: str) -> bool:
    try:
        with open(path) as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def _count_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def _tz_offset() -> str:
    off = -time.altzone if time.daylight and time.localtime().tm_isdst else -time.timezone
    sign = "+" if off >= 0 else "-"
    off = abs(off)
    return f".000000000{sign}{off // 3600:02d}:{off % 3600 // 60:02d}"
