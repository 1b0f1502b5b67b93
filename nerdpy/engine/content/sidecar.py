"""Small records on disk beside the metadata DB, from which `system check --repair` rebuilds it.

The DB is the truth while it is sound; these files are written in the same step as the rows
they mirror (atomically, temp file + rename) and only read when the DB is missing or damaged:

| record | where |
| --- | --- |
| a container's row (name, image, stored spec) | `containers/<ns>/<id>/record.json` |
| a snapshot's row (committed: chain ID, parent, diff ID, size; active: key, parent) | `snapshots/<n>/record.json` |
| a container's network sandbox and attachments | `containers/<ns>/<id>/network.json` |
| the image names of one namespace | `records/images/<ns>.json` |

Volumes need no record: their directories (`volumes/<ns>/<name>`) are enough.
"""
from __future__ import annotations

import json
import os

RECORD = "record.json"


def _write(path: str, obj) -> None:
    from nerdpy.engine.util.fs import write_json_atomic

    try:
        write_json_atomic(path, obj, 0o600)
    except OSError:
        pass  # a record is a help for a rebuild, never a reason to fail the command


def read_record(path: str) -> dict | None:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_container_record(cdir: str, row: dict) -> None:
    """`row`: the containers table's columns (namespace, id, name, image, image_id, config, created_at)."""
    _write(os.path.join(cdir, RECORD), row)


def write_snapshot_record(snap_dir: str, row: dict) -> None:
    _write(os.path.join(snap_dir, RECORD), row)


NETWORK_RECORD = "network.json"


def write_network_record(cdir: str, data: dict) -> None:
    if not os.path.isdir(cdir):
        return
    if not data.get("sandbox") and not data.get("attachments"):
        try:
            os.unlink(os.path.join(cdir, NETWORK_RECORD))
        except OSError:
            pass
        return
    _write(os.path.join(cdir, NETWORK_RECORD), data)


def image_names_path(data_root: str, namespace: str) -> str:
    return os.path.join(data_root, "records", "images", f"{namespace}.json")


def write_image_names(db, data_root: str, namespace: str) -> None:
    """Mirror every image row of `namespace` (call after a change to them)."""
    try:
        rows = [dict(r) for r in db.query("SELECT * FROM images WHERE namespace = ?", (namespace,))]
        os.makedirs(os.path.dirname(image_names_path(data_root, namespace)), mode=0o700, exist_ok=True)
    except Exception:  # noqa: BLE001 (sqlite3 errors, OSError: never fail the command for this)
        return
    _write(image_names_path(data_root, namespace), {"images": rows})
