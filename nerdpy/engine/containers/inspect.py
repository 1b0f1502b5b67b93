"""docker-compatible JSON for `inspect` of containers."""
from __future__ import annotations

import datetime as dt
import os

from nerdpy.engine.containers.records import Container, container_dir, container_state, log_path
from nerdpy.engine.store import Store
from nerdpy.engine.errors import NerdpyError

ZERO_TIME = "0001-01-01T00:00:00Z"


def _rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def container_json(store: Store, c: Container) -> dict:
    s = c.spec
    st = container_state(store, c)
    args = s.args or []
    img = s.image_config or {}
    mounts = []
    for m in s.mounts or []:
        entry = {"Type": m.type, "Source": m.source, "Destination": m.target,
                 "Mode": "", "RW": not m.readonly, "Propagation": ""}
        if m.type == "volume":
            from nerdpy.engine.containers.volumes import volume_path

            entry["Name"] = m.source
            entry["Source"] = volume_path(store, m.source) if m.source else ""
            entry["Driver"] = "local"
        elif m.type == "bind":
            entry["Propagation"] = (m.options or {}).get("propagation", "rprivate")
        mounts.append(entry)
    state = {
        "Status": st.status,
        "Running": st.status in ("running", "paused", "restarting"),
        "Paused": st.status == "paused",
        "Restarting": st.status == "restarting",
        "OOMKilled": st.oom_killed,
        "Dead": st.status == "dead",
        "Pid": st.pid,
        "ExitCode": st.exit_code,
        "Error": st.error,
        "StartedAt": st.started_at or ZERO_TIME,
        "FinishedAt": st.finished_at or ZERO_TIME,
    }
    if st.health is not None:
        state["Health"] = st.health
    restart = s.restart or "no"
    rname, _, rmax = restart.partition(":")
    env = list(img.get("Env") or []) + list(s.env or [])
    labels = dict(img.get("Labels") or {})
    labels.update(s.labels or {})
    hc = s.healthcheck or img.get("Healthcheck")
    cfg = {
        "Hostname": s.hostname or c.id[:12],
        "Domainname": s.domainname or "",
        "User": s.user or img.get("User") or "",
        "AttachStdin": bool(s.stdin_open),
        "AttachStdout": True,
        "AttachStderr": True,
        "ExposedPorts": img.get("ExposedPorts"),
        "Tty": bool(s.tty),
        "OpenStdin": bool(s.stdin_open),
        "StdinOnce": bool(s.stdin_once),
        "Env": env,
        "Cmd": s.cmd or (img.get("Cmd") if s.entrypoint is None else None),
        "Image": c.image,
        "Volumes": img.get("Volumes"),
        "WorkingDir": s.resolved_workdir or "",
        "Entrypoint": s.entrypoint if s.entrypoint is not None else img.get("Entrypoint"),
        "Labels": labels,
        "StopSignal": s.stop_signal or img.get("StopSignal") or "SIGTERM",
    }
    if hc:
        cfg["Healthcheck"] = hc
    if s.stop_timeout is not None:
        cfg["StopTimeout"] = s.stop_timeout
    host = {
        "Binds": [f"{m.source}:{m.target}" + (":ro" if m.readonly else "")
                  for m in s.mounts or [] if m.type == "bind"],
        "LogConfig": {"Type": "json-file", "Config": s.log_opts or {}},
        "NetworkMode": s.network or "none",
        "PortBindings": _port_bindings(s.publish),
        "PublishAllPorts": bool(s.publish_all),
        "RestartPolicy": {"Name": rname, "MaximumRetryCount": int(rmax or 0)},
        "AutoRemove": bool(s.auto_remove),
        "CapAdd": s.cap_add or None,
        "CapDrop": s.cap_drop or None,
        "Privileged": bool(s.privileged),
        "ReadonlyRootfs": bool(s.read_only),
        "SecurityOpt": s.security_opt or None,
        "Tmpfs": {m.target: "" for m in s.mounts or [] if m.type == "tmpfs"} or None,
        "ShmSize": s.shm_size or 67108864,
        "Memory": s.memory or 0,
        "MemorySwap": s.memory_swap or 0,
        "MemoryReservation": s.memory_reservation or 0,
        "NanoCpus": int((s.cpus or 0) * 1e9),
        "CpuShares": s.cpu_shares or 0,
        "PidsLimit": s.pids_limit,
        "Ulimits": [{"Name": n, "Soft": a, "Hard": b} for n, a, b in s.ulimits or []] or None,
        "Init": bool(s.init),
        "Sysctls": s.sysctls or None,
        "GroupAdd": s.group_add or None,
        "Devices": s.devices or None,
        "OomScoreAdj": s.oom_score_adj or 0,
        "IpcMode": s.ipc or "private",
        "UTSMode": s.uts or "",
        "CgroupnsMode": s.cgroupns or ("private" if _v2() else "host"),
        "CpusetCpus": s.cpuset_cpus or "",
        "CpusetMems": s.cpuset_mems or "",
        "CpuPeriod": s.cpu_period or 0,
        "CpuQuota": s.cpu_quota or 0,
        "MemorySwappiness": s.memory_swappiness,
        "OomKillDisable": bool(s.oom_kill_disable),
        "BlkioWeight": s.blkio_weight or 0,
        "BlkioDeviceReadBps": _rates(s.device_read_bps),
        "BlkioDeviceWriteBps": _rates(s.device_write_bps),
        "BlkioDeviceReadIOps": _rates(s.device_read_iops),
        "BlkioDeviceWriteIOps": _rates(s.device_write_iops),
        "VolumesFrom": s.volumes_from or None,
        "Runtime": s.runtime or "runc",
        "DeviceRequests": _device_requests(s.gpus),
    }
    cdir = container_dir(store, c.id)
    return {
        "Id": c.id,
        "Created": _rfc3339(c.created_at),
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": state,
        "Image": c.image_id,
        "ResolvConfPath": os.path.join(cdir, "resolv.conf"),
        "HostnamePath": os.path.join(cdir, "hostname"),
        "HostsPath": os.path.join(cdir, "hosts"),
        "LogPath": log_path(store, c.id),
        "Name": "/" + c.name,
        "RestartCount": st.restart_count,
        "Driver": store.snapshots.driver,
        "Platform": "linux",
        "HostConfig": host,
        "Mounts": mounts,
        "Config": cfg,
        "NetworkSettings": _network_settings(store, c, st),
    }


def _v2() -> bool:
    from nerdpy.engine.runtime.cgroups import unified

    return unified()


def _rates(items) -> list[dict] | None:
    from nerdpy.engine.util.units import parse_size

    out = []
    for item in items or []:
        path, _, rate = item.rpartition(":")
        try:
            n = int(rate) if rate.isdigit() else parse_size(rate)
        except ValueError:
            n = 0
        out.append({"Path": path, "Rate": n})
    return out or None


def _device_requests(gpus: str) -> list[dict] | None:
    """--gpus as docker shows it (DeviceRequests), from the request's own fields."""
    if not gpus:
        return None
    from nerdpy.engine.containers.resources import parse_gpus

    try:
        req = parse_gpus(gpus)
    except Exception:  # noqa: BLE001 (a record from elsewhere: shown as absent)
        return None
    return [{"Driver": req["driver"], "Count": req["count"], "DeviceIDs": req["devices"] or None,
             "Capabilities": [req["capabilities"]], "Options": {}}]


def _port_bindings(publish: list[str]) -> dict:
    """docker's HostConfig.PortBindings: the -p flags as given ("" for an address or port not
    given), one key per container port."""
    from nerdpy.engine.network.ports import parse_publish

    out: dict[str, list[dict]] = {}
    for raw in publish or []:
        try:
            mappings = parse_publish(raw)
        except NerdpyError:
            continue
        for m in mappings:
            port = ""
            if m.host_port:
                port = str(m.host_port)
                if m.host_port_end and m.host_port_end != m.host_port:
                    port += f"-{m.host_port_end}"
            out.setdefault(f"{m.container_port}/{m.protocol}", []).append({"HostIp": m.host_ip, "HostPort": port})
    return out


def _network_settings(store: Store, c: Container, st) -> dict:
    """docker's NetworkSettings: the CNI attachments while the container runs; for none and
    host one entry of that name, as docker shows them."""
    from nerdpy.engine.network.container import network_mode, uses_cni

    exposed = list(((c.spec.image_config or {}).get("ExposedPorts") or {}).keys())
    if uses_cni(c.spec) and st.running:
        from nerdpy.engine.network.views import network_settings

        return network_settings(store, c.id, exposed)
    out = {"Bridge": "", "SandboxID": "", "SandboxKey": "", "Ports": {p: None for p in exposed},
           "IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "MacAddress": "", "EndpointID": "",
           "Networks": {}}
    mode = network_mode(c.spec)
    if uses_cni(c.spec):
        # not running: the networks it will join, without addresses (as docker shows them; compose
        # reads them to decide what to connect)
        from nerdpy.engine.network.container import _attachments

        for a in _attachments(c.spec):
            out["Networks"][a["name"]] = {
                "IPAMConfig": {"IPv4Address": a["ip"]} if a.get("ip") else None, "Links": None,
                "Aliases": list(a.get("aliases") or []) + [c.id[:12]], "NetworkID": "", "EndpointID": "",
                "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": a.get("mac") or ""}
    if mode in ("none", "host"):
        out["Networks"][mode] = {"IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "",
                                 "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                                 "MacAddress": ""}
    return out
