"""`ps` / `container ls`: docker's columns, filters and --format over the containers' state."""
from __future__ import annotations

import fnmatch
import sys
import time

import click

from nerdpy.commands._util import human_duration, human_size, local_time, parse_time, store_of

PS_HEADERS = {
    "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "Ports": "PORTS", "Status": "STATUS", "Names": "NAMES",
    "Labels": "LABELS", "Mounts": "MOUNTS", "Size": "SIZE", "State": "STATE", "Networks": "NETWORKS",
}


def status_text(state) -> str:
    """docker's STATUS column."""
    now = time.time()
    if state.status == "created":
        return "Created"
    if state.status in ("running", "paused"):
        started = parse_time(state.started_at) or now
        text = "Up " + human_duration(now - started)
        if state.status == "paused":
            text += " (Paused)"
        if state.health and state.health.get("Status"):
            h = state.health["Status"]
            text += " (health: starting)" if h == "starting" else f" ({h})"
        return text
    if state.status == "restarting":
        finished = parse_time(state.finished_at) or now
        return f"Restarting ({state.exit_code}) {human_duration(now - finished)} ago"
    finished = parse_time(state.finished_at)
    if finished is None:
        return f"Exited ({state.exit_code})"
    return f"Exited ({state.exit_code}) {human_duration(now - finished)} ago"


def _command_text(c, no_trunc: bool) -> str:
    args = c.spec.args or []
    text = " ".join(args)
    if not no_trunc and len(text) > 20:
        text = text[:19] + "…"
    return f'"{text}"'


def _ports_text(store, c, st) -> str:
    """docker's PORTS column: published ports of a running container (0.0.0.0:8080->80/tcp)."""
    if not st.running or not c.spec.publish and not c.spec.publish_all:
        return ""
    from nerdpy.engine.network.container import published_ports
    from nerdpy.engine.network.ports import format_ports

    return format_ports(published_ports(store, c.id))


def container_rows(store, containers, no_trunc: bool, size: bool) -> list[dict]:
    from nerdpy.engine.containers.records import container_state

    rows = []
    for c in containers:
        st = container_state(store, c)
        labels = {**((c.spec.image_config or {}).get("Labels") or {}), **(c.spec.labels or {})}
        row = {
            "ID": c.id if no_trunc else c.id[:12],
            "Image": c.image,
            "Command": _command_text(c, no_trunc),
            "CreatedAt": local_time(c.created_at),
            "RunningFor": human_duration(time.time() - c.created_at) + " ago",
            "Ports": _ports_text(store, c, st),
            "Status": status_text(st),
            "State": st.status,
            "Names": c.name,
            "Labels": ",".join(f"{k}={v}" for k, v in labels.items()),
            "Mounts": ",".join(m.source or m.target for m in c.spec.mounts or []),
            "Networks": c.spec.network or "none",
            "Size": "",
            "_labels": labels,
            "_state": st,
            "_c": c,
        }
        if size:
            from nerdpy.engine.containers.records import snapshot_key
            from nerdpy.engine.util.fs import dir_size

            key = snapshot_key(store, c.id)
            try:
                rw = dir_size(store.snapshots.upper_dir(key))
            except Exception:
                rw = 0
            try:  # docker's "rw (virtual rw+image)"
                parent = store.db.query_one("SELECT parent FROM active_snapshots WHERE key = ?", (key,))
                image = store.snapshots.usage(parent["parent"]) if parent and parent["parent"] else 0
            except Exception:
                image = 0
            row["Size"] = f"{human_size(rw)} (virtual {human_size(rw + image)})"
        rows.append(row)
    return rows


def _filter(store, rows, filters):
    for f in filters:
        key, sep, value = f.partition("=")
        if not sep:
            raise click.UsageError(f"bad format of filter (expected name=value): {f}")
        key = key.lower()
        if key == "id":
            rows = [r for r in rows if r["_c"].id.startswith(value)]
        elif key == "name":
            rows = [r for r in rows if value in r["_c"].name or fnmatch.fnmatchcase(r["_c"].name, value)]
        elif key == "label":
            k, eq, v = value.partition("=")
            rows = [r for r in rows if k in r["_labels"] and (not eq or r["_labels"][k] == v)]
        elif key == "status":
            if value not in ("created", "restarting", "running", "removing", "paused", "exited", "dead"):
                raise click.UsageError(f"invalid filter 'status={value}'")
            rows = [r for r in rows if r["_state"].status == value]
        elif key == "exited":
            rows = [r for r in rows if r["_state"].status == "exited" and str(r["_state"].exit_code) == value]
        elif key == "ancestor":
            from nerdpy.engine.images.image import lookup_images

            ids = {i.config for i in lookup_images(store, value)}
            rows = [r for r in rows if r["_c"].image_id in ids or r["_c"].image == value]
        elif key == "volume":
            rows = [r for r in rows if any(m.source == value or m.target == value
                                           for m in r["_c"].spec.mounts or [])]
        elif key == "health":
            rows = [r for r in rows if (r["_state"].health or {}).get("Status", "none") == value]
        elif key == "network":
            rows = [r for r in rows if _on_network(store, r["_c"], value)]
        elif key in ("publish", "expose"):
            want = _port_filter(key, value)
            rows = [r for r in rows if want & (_published(r["_c"]) if key == "publish" else _exposed(r["_c"]))]
        elif key in ("before", "since"):
            from nerdpy.engine.containers.records import find_container

            ref = find_container(store, value)
            rows = [r for r in rows if (r["_c"].created_at < ref.created_at if key == "before"
                                        else r["_c"].created_at > ref.created_at)]
        elif key == "is-task":
            if value.lower() not in ("true", "false", "1", "0"):
                raise click.UsageError(f"invalid filter 'is-task={value}'")
            if value.lower() in ("true", "1"):  # swarm tasks: nerdpy has none
                rows = []
        else:
            raise click.UsageError(f"invalid filter '{key}'")
    return rows


def _on_network(store, c, value: str) -> bool:
    """docker's network filter: a network the container is connected to, by name or ID prefix."""
    from nerdpy.engine.network.container import _attachments

    names = {a.get("name") for a in _attachments(c.spec)}
    if value in names:
        return True
    from nerdpy.engine.errors import InvalidArgument, NetworkNotFound
    from nerdpy.engine.network.networks import find_network

    try:
        net = find_network(store, value)
    except (NetworkNotFound, InvalidArgument):  # none, or an ambiguous ID prefix: no match (docker)
        return False
    return net.name in names


def _port_filter(key: str, value: str) -> set[str]:
    """`80`, `80/udp`, `8000-8080/tcp` -> {"80/tcp", ...}, as docker's publish and expose filters."""
    from nerdpy.engine.network import InvalidPort
    from nerdpy.engine.network.ports import parse_publish

    try:
        if ":" in value:  # a container port (range), never a host part
            raise InvalidPort(value)
        return {f"{m.container_port}/{m.protocol}" for m in parse_publish(value)}
    except InvalidPort:
        raise click.UsageError(f"invalid filter '{key}={value}'") from None


def _published(c) -> set[str]:
    """The container ports it publishes (-p, and -P's exposed ports)."""
    from nerdpy.engine.network.container import _port_mappings

    try:
        return {f"{m.container_port}/{m.protocol}" for m in _port_mappings(c.spec, c.spec.image_config or {})}
    except Exception:  # noqa: BLE001 - a record from before a format change: nothing published
        return set()


def _exposed(c) -> set[str]:
    """The ports it exposes: the image's and --expose (in its config), and those it publishes."""
    exposed = set(((c.spec.image_config or {}).get("ExposedPorts") or {}).keys())
    return {p if "/" in p else p + "/tcp" for p in exposed} | _published(c)


@click.command("ps")
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running)")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs")
@click.option("-n", "--last", type=int, default=-1, help="Show n last created containers (includes all states)")
@click.option("-l", "--latest", is_flag=True, help="Show the latest created container (includes all states)")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-f", "--filter", "filters", multiple=True,
              help="Filter output based on conditions provided (id, name, label, status, exited, ancestor, volume, "
                   "health, network, publish, expose, before, since, is-task)")
@click.option("--format", "fmt", help="Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'")
@click.pass_context
def ps(ctx, all_, quiet, last, latest, size, no_trunc, filters, fmt):
    """List containers."""
    from nerdpy.engine.containers.records import list_containers
    from nerdpy.template import format_output

    store = store_of(ctx)
    containers = list_containers(store)
    if latest:
        last = 1
    if last >= 0:
        containers = containers[:last]
        all_ = True
    rows = container_rows(store, containers, no_trunc, size)
    if not all_:
        rows = [r for r in rows if r["_state"].status in ("running", "paused", "restarting")]
    rows = _filter(store, rows, filters)
    if quiet:
        sys.stdout.write("".join(r["ID"] + "\n" for r in rows))
        return
    default = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    if size:
        default += "\t{{.Size}}"
    public = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    if (fmt or "").strip() != "json":
        for p, r in zip(public, rows):
            labels = r["_labels"]
            p["Label"] = lambda key, labels=labels: labels.get(key, "")
    sys.stdout.write(format_output(fmt, public, default_table=default, headers=PS_HEADERS))
