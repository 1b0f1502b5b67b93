"""A container's network, from its spec to the OCI spec's network namespace and back.

The bridge between the lifecycle and `engine/network`: `check_network_spec` refuses bad input
at create (before anything exists), `setup_network` runs before `runc create` and returns
what goes into the spec's network namespace, `teardown_network` runs whenever the container
stops for good (the monitor's last step, `rm`, a failed start).

Modes, as docker's `--network`:
- `bridge` (default) and user networks: a netns of ours, attached with the CNI plugins;
- `none`: a new netns with only `lo`, made by runc itself (no CNI at all);
- `host`: the host's;
- `container:<name|id>`: the netns of another running container.
"""
from __future__ import annotations

import os

from nerdpy.engine.containers.records import Container, ContainerSpec, container_state, find_container
from nerdpy.engine.errors import Conflict, InvalidArgument, NotFound
from nerdpy.engine.store import Store

NO_CNI = ("none", "host")


def network_mode(spec: ContainerSpec) -> str:
    return spec.network or "none"   # records from before networking say none


def uses_cni(spec: ContainerSpec) -> bool:
    mode = network_mode(spec)
    return mode not in NO_CNI and not mode.startswith("container:") and not uses_slirp(spec)


def uses_slirp(spec: ContainerSpec) -> bool:
    """A rootless user's default network: slirp4netns (engine/network/slirp.py), no CNI."""
    from nerdpy.engine.config import rootless_uid

    return network_mode(spec) == "bridge" and rootless_uid() is not None


def _attachments(spec: ContainerSpec) -> list[dict]:
    return list(spec.networks or []) or [{"name": network_mode(spec)}]


def _port_mappings(spec: ContainerSpec, image_config: dict) -> list:
    if not spec.publish and not spec.publish_all:
        return []
    from nerdpy.engine.network.ports import exposed_mappings, parse_publish

    ports = [m for p in spec.publish or [] for m in parse_publish(p)]
    if spec.publish_all:
        ports = ports + exposed_mappings(list((image_config.get("ExposedPorts") or {}).keys()), ports)
    return ports


def check_network_spec(store: Store, spec: ContainerSpec, image_config: dict) -> None:
    """Refuse what cannot work, before the container exists (docker's messages)."""
    from nerdpy.engine.network.hosts import parse_add_host

    mode = network_mode(spec)
    for h in spec.extra_hosts or []:
        parse_add_host(h)
    if mode.startswith("container:"):
        if spec.publish or spec.publish_all:
            raise InvalidArgument("conflicting options: port publishing and the container type network mode")
        if spec.hostname:
            raise InvalidArgument("conflicting options: hostname and the network mode")
        find_container(store, mode.partition(":")[2])
        return
    if mode in NO_CNI or uses_slirp(spec):
        if spec.networks and len(spec.networks) > 1:
            raise InvalidArgument(f"container cannot be disconnected from host network or connected to "
                                  f"host network" if mode == "host" else
                                  "container cannot be connected to multiple networks with one of the "
                                  "networks in private (none) mode")
        _port_mappings(spec, image_config)  # parsed even if unused: a typo is still an error
        return
    from nerdpy.engine.network import NetworkNotFound
    from nerdpy.engine.network.networks import find_network

    for a in _attachments(spec):
        if a["name"] in NO_CNI or a["name"].startswith("container:"):
            raise InvalidArgument(f"network {a['name']} cannot be combined with other networks")
        try:
            find_network(store, a["name"])
        except NetworkNotFound as e:  # for run/create an error of ours: 125, as docker
            raise NotFound(str(e)) from None
    _port_mappings(spec, image_config)


def setup_network(store: Store, c: Container, hostname: str, hosts_path: str) -> str | None:
    """Set up the container's network; what the OCI spec's network namespace is: None (runc
    makes a new one), "host", or a path. For CNI modes /etc/hosts is written at `hosts_path`."""
    mode = network_mode(c.spec)
    if mode == "host":
        return "host"
    if mode == "none":
        return None
    if mode.startswith("container:"):
        return _joined_netns(store, mode.partition(":")[2])
    if uses_slirp(c.spec):
        return _slirp_setup(store, c)
    from nerdpy.engine.network.attach import NetworkRequest, attach_container
    from nerdpy.engine.network.hosts import parse_add_host

    reqs = [NetworkRequest(network=a["name"], aliases=list(a.get("aliases") or []), ip=a.get("ip") or None,
                           mac=a.get("mac") or None) for a in _attachments(c.spec)]
    ports = _port_mappings(c.spec, c.spec.image_config or {})
    extra = [parse_add_host(h) for h in c.spec.extra_hosts or []]
    rootless = store.settings.rootless_uid is not None
    if rootless:  # user networks live in the user's own network namespace (engine/network/usernet.py)
        from nerdpy.engine.network import usernet

        usernet.ensure(store.settings.run_root)
    setup = attach_container(store, c.id, reqs, ports, name=c.name, hostname=hostname,
                             domainname=c.spec.domainname or "", extra_hosts=extra, hosts_path=hosts_path)
    if rootless and setup.ports:
        from nerdpy.engine.containers.records import run_dir

        try:
            usernet.publish(store.settings.run_root, run_dir(store, c.id), list(setup.ports))
        except BaseException:
            teardown_network(store, c.id, c.spec)
            raise
    _attachment_events(store, "connect", c.id, setup.attachments)
    return setup.netns


def _slirp_setup(store: Store, c: Container) -> str:
    from nerdpy.engine.containers.records import run_dir
    from nerdpy.engine.network import slirp
    from nerdpy.engine.network.netns import create_netns, delete_netns, is_netns, netns_path

    path = netns_path(store.settings.run_root, store.namespace, c.id)
    if is_netns(path):  # a crash's leftover
        delete_netns(path)
    create_netns(path)
    try:
        slirp.start(path, run_dir(store, c.id), _port_mappings(c.spec, c.spec.image_config or {}))
    except BaseException:
        delete_netns(path)
        raise
    return path


def _slirp_teardown(store: Store, cid: str) -> None:
    from nerdpy.engine.containers.records import run_dir
    from nerdpy.engine.network import slirp
    from nerdpy.engine.network.netns import delete_netns, netns_path

    slirp.stop(run_dir(store, cid))
    try:
        delete_netns(netns_path(store.settings.run_root, store.namespace, cid))
    except Exception:
        pass


def _joined_netns(store: Store, target: str) -> str:
    from nerdpy.engine.network.attach import get_setup

    other = find_container(store, target)
    state = container_state(store, other)
    if state.status != "running" or not state.pid:
        raise Conflict(f"cannot join network of a non running container: {other.name}")
    setup = get_setup(store, other.id)
    if setup is not None and os.path.exists(setup.netns):
        return setup.netns
    return f"/proc/{state.pid}/ns/net"


def teardown_network(store: Store, cid: str, spec: ContainerSpec | None = None) -> None:
    """Undo `setup_network` (CNI DEL, netns removed, peers' hosts files updated). Idempotent;
    a failure is left for `network prune`/`system prune` to reclaim rather than raised.
    With the container's `spec` at hand, modes without CNI cost nothing."""
    if store.settings.rootless_uid is not None and (spec is None or uses_slirp(spec)):
        _slirp_teardown(store, cid)
        if spec is not None:
            return
    if spec is not None and not uses_cni(spec):
        return
    if store.settings.rootless_uid is not None:
        from nerdpy.engine.containers.records import run_dir
        from nerdpy.engine.network import usernet

        usernet.unpublish(store.settings.run_root, run_dir(store, cid))
    from nerdpy.engine.network import NetworkError
    from nerdpy.engine.network.attach import detach_container

    try:
        _attachment_events(store, "disconnect", cid, detach_container(store, cid))
    except NetworkError:
        pass
    if store.settings.rootless_uid is not None:
        from nerdpy.engine.network import usernet

        usernet.stop_if_unused(store.settings.run_root, store.db)


def published_ports(store: Store, cid: str) -> list:
    """The container's published ports (with the host ports chosen), for ps and port."""
    from nerdpy.engine.network.attach import get_setup

    setup = get_setup(store, cid)
    if setup is None and store.settings.rootless_uid is not None:
        from nerdpy.engine.containers.records import run_dir
        from nerdpy.engine.network import slirp

        return slirp.ports(run_dir(store, cid))
    return list(setup.ports) if setup else []


def _save_attachments(store: Store, cid: str, mode: str, attachments: list[dict]) -> None:
    import json

    with store.db.write() as cur:
        row = cur.execute("SELECT config FROM containers WHERE namespace = ? AND id = ?",
                          (store.namespace, cid)).fetchone()
        if row is None:
            return
        rec = json.loads(row["config"])
        rec["network"] = mode
        rec["networks"] = attachments
        cur.execute("UPDATE containers SET config = ? WHERE namespace = ? AND id = ?",
                    (json.dumps(rec), store.namespace, cid))
    from nerdpy.engine.containers.records import mirror_record

    mirror_record(store, cid)


def connect_network(store: Store, c: Container, network: str, aliases: list[str] = (),
                    ip: str | None = None) -> None:
    """`network connect`: attach a running container now (and on every later start); a stopped
    one only records it, as docker does."""
    from nerdpy.engine.network import NetworkNotFound
    from nerdpy.engine.network.networks import find_network

    if not uses_cni(c.spec):
        raise InvalidArgument(f"container {c.name} uses network mode {network_mode(c.spec)}: "
                              "it cannot be connected to other networks")
    try:
        net = find_network(store, network)
    except NetworkNotFound as e:
        raise NotFound(str(e)) from None
    current = _attachments(c.spec)
    if any(a["name"] == net.name for a in current):
        raise Conflict(f"endpoint with name {c.name} already exists in network {net.name}")
    entry = {"name": net.name, "aliases": list(aliases), "ip": ip or None, "mac": None}
    if container_state(store, c).status == "running":
        from nerdpy.engine.network.attach import NetworkRequest, connect_container

        connect_container(store, c.id, NetworkRequest(network=net.name, aliases=list(aliases), ip=ip or None))
    _save_attachments(store, c.id, network_mode(c.spec), current + [entry])
    _network_event(store, net, "connect", c.id)


def disconnect_network(store: Store, c: Container, network: str, force: bool = False) -> None:
    """`network disconnect`: detach now if running, and forget it for later starts."""
    from nerdpy.engine.network import NetworkNotFound
    from nerdpy.engine.network.networks import find_network

    try:
        net = find_network(store, network)
    except NetworkNotFound as e:
        raise NotFound(str(e)) from None
    name = net.name
    current = _attachments(c.spec)
    if not any(a["name"] == name for a in current):
        if force:
            return
        raise NotFound(f"container {c.name} is not connected to network {name}")
    if container_state(store, c).status == "running":
        from nerdpy.engine.network.attach import disconnect_container

        disconnect_container(store, c.id, name)
    rest = [a for a in current if a["name"] != name]
    mode = network_mode(c.spec)
    if not rest:  # docker leaves such a container with no network at all
        mode = "none"
    elif mode == name:
        mode = rest[0]["name"]
    _save_attachments(store, c.id, mode, rest)
    _network_event(store, net, "disconnect", c.id)


def _network_event(store: Store, net, action: str, cid: str) -> None:
    _network_events(store, action, cid, [(net.id, net.name, net.driver)])


def _attachment_events(store: Store, action: str, cid: str, attachments: list) -> None:
    """The `network connect`/`disconnect` events docker reports at each start and stop of a
    container, one per network (in one write)."""
    _network_events(store, action, cid, [(a.network_id, a.network, a.driver) for a in attachments])


def _network_events(store: Store, action: str, cid: str, networks: list[tuple[str, str, str]]) -> None:
    from nerdpy.engine.system.journal import record_actor_events

    record_actor_events(store, "network", action, [(net_id, {"container": cid, "name": name, "type": driver})
                                                   for net_id, name, driver in networks])
