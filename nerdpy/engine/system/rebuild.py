"""Rebuilding a missing or damaged metadata DB from what is on disk (`system check --repair`).

The damaged file is kept (`meta.db.damaged-<time>`, with its WAL); a new DB gets, in order:
the rows that can still be read from the damaged one, then what the records on disk say
(nerdpy.engine.content.sidecar: containers' records beside their directories, snapshots'
records in their directories, the image names of each namespace), then what the directories
alone say (volumes), then manifests in the content store that no recovered name points at, as
images without a name (`<none>`, as docker shows them). What cannot be recovered is named; its
files stay where they are (a repair after a rebuild removes nothing that no record claims).
`check_and_rebuild` is `system check`'s entry: the damage first, then the usual check.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass, field

from nerdpy.engine.config import Settings
from nerdpy.engine.content.damage import DB_NAME, database_damage
from nerdpy.engine.content.sidecar import NETWORK_RECORD, RECORD, image_names_path, read_record
from nerdpy.engine.system.check import CheckReport, Problem, _Checker, _Lock, check_store

_TABLES = ("images", "snapshots", "active_snapshots", "containers", "volumes", "counters", "networks",
           "net_sandboxes", "net_attachments")
_MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                   "application/vnd.docker.distribution.manifest.v2+json")


@dataclass
class RebuildReport:
    why: str
    kept: str = ""                                       # where the damaged file went
    recovered: list[str] = field(default_factory=list)   # one line per kind
    lost: list[str] = field(default_factory=list)        # one line per thing not recovered


def check_and_rebuild(settings, repair: bool = False, lock_timeout: float | None = None) -> CheckReport:
    """`system check`: `check_store` for a data root whose metadata DB may be missing or damaged: then the
    damage is the first problem, and `repair` rebuilds the DB (nerdpy.engine.system.rebuild)
    before the usual check, which then removes nothing that no record claims."""
    from nerdpy.engine.content.damage import repair_hint
    from nerdpy.engine.errors import DamagedStore
    from nerdpy.engine.store import open_store

    lock_timeout = settings.lock_timeout if lock_timeout is None else lock_timeout
    why = database_damage(settings.data_root)
    store = None
    if not why:
        try:
            store = open_store(settings)
            if [r[0] for r in store.db.query("PRAGMA quick_check")] == ["ok"]:
                return check_store(store, repair, lock_timeout)
            why = "metadata database is damaged (its integrity check fails)"
        except DamagedStore as e:
            why = str(e).split(": run `", 1)[0]
        except Exception as e:  # noqa: BLE001 (sqlite3.DatabaseError)
            why = f"metadata database is damaged ({e})"
        finally:
            if store is not None:
                store.close()
    problem = Problem("database", "meta.db", why, fix=repair_hint())
    if not repair:
        report = CheckReport(problems=[problem])
        report.counts.update(_disk_counts(settings.data_root))
        return report
    with _Lock(settings.data_root, lock_timeout):
        rb = rebuild_database(settings, why)
        store = open_store(settings)
        try:
            checker = _Checker(store, repair=True, keep_unowned=True)
            checker.run()
        finally:
            store.close()
    problem.repaired = True
    problem.action = "rebuilt" + (f" (the damaged file is kept as {os.path.basename(rb.kept)})" if rb.kept else "")
    report = checker.report
    report.problems.insert(0, problem)
    for line in rb.recovered:
        report.problems.insert(1, Problem("database", "recovered", line, severity="warning", repaired=True,
                                          action="recovered"))
    for line in rb.lost:
        report.problems.append(Problem("database", "not recovered", line, severity="warning"))
    return report


def _disk_counts(root: str) -> dict:
    from nerdpy.engine.content.damage import disk_contents

    d = disk_contents(root)
    return {"blobs": d["blobs"], "snapshots": d["snapshots"], "containers": d["containers"]}


def rebuild_database(settings: Settings, why: str | None = None) -> RebuildReport:
    """Move the damaged DB aside and build a new one from what can be read and what is on disk.
    The caller holds the exclusive gc lock."""
    root = settings.data_root
    why = why or database_damage(root) or "metadata database is damaged"
    report = RebuildReport(why)
    path = os.path.join(root, DB_NAME)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    kept = f"{path}.damaged-{stamp}"
    moved = False
    for suffix in ("", "-wal", "-shm"):
        if os.path.lexists(path + suffix):
            os.rename(path + suffix, kept + suffix)
            moved = moved or suffix == ""
    report.kept = kept if moved else ""
    salvaged = _salvage(kept, report) if moved and os.path.getsize(kept) > 0 else {}

    from nerdpy.engine.content.metadata import Metadata

    db = Metadata(path)
    try:
        _build(db, root, salvaged, report)
    finally:
        db.close()
    return report


def _salvage(path: str, report: RebuildReport) -> dict[str, list[dict]]:
    """Every row of every table that can still be read."""
    out: dict[str, list[dict]] = {}
    for uri in (f"file:{path}?mode=ro", f"file:{path}?immutable=1"):
        try:
            conn = sqlite3.connect(uri, uri=True)
            conn.row_factory = sqlite3.Row
        except sqlite3.Error:
            continue
        try:
            for t in _TABLES:
                if t in out:
                    continue
                try:
                    out[t] = [dict(r) for r in conn.execute(f"SELECT * FROM {t}")]
                except sqlite3.Error:
                    pass
        finally:
            conn.close()
    n = sum(len(v) for k, v in out.items() if k != "counters")
    if n:
        report.recovered.append(f"{n} row(s) still readable in the damaged database")
    unread = [t for t in _TABLES if t not in out and t != "counters"]
    if unread:
        report.lost.append(f"unreadable in the damaged database: {', '.join(unread)} "
                           "(rebuilt from the records on disk where there are any)")
    return out


def _insert(cur, table: str, row: dict) -> bool:
    cols = list(row)
    cur.execute(f"INSERT OR IGNORE INTO {table}({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [row[c] for c in cols])
    return cur.rowcount > 0


def _build(db, root: str, salvaged: dict[str, list[dict]], report: RebuildReport) -> None:
    with db.write() as cur:
        for t, rows in salvaged.items():
            for r in rows:
                try:
                    _insert(cur, t, r)
                except sqlite3.Error:
                    pass
        _snapshots(cur, root, report)
        _containers(cur, root, report)
        _images(cur, root, report)
        _volumes(cur, root, report)
        nets = cur.execute("SELECT COUNT(*) FROM networks").fetchone()[0]
        if not salvaged.get("networks") and not nets:
            report.lost.append("user-defined networks (if there were any): create them again with "
                               "`nerdpy network create`")


def _snapshots(cur, root: str, report: RebuildReport) -> None:
    sroot = os.path.join(root, "snapshots")
    have = {r[0] for r in cur.execute("SELECT id FROM snapshots UNION SELECT id FROM active_snapshots")}
    added = {"committed": 0, "active": 0}
    top = max(have, default=0)
    for name in sorted(os.listdir(sroot) if os.path.isdir(sroot) else [], key=lambda n: (len(n), n)):
        if not name.isdigit():
            continue
        n = int(name)
        top = max(top, n)
        if n in have:
            continue
        rec = read_record(os.path.join(sroot, name, RECORD))
        now = time.time()
        ok = False
        if rec and rec.get("kind") == "committed" and rec.get("chain_id"):
            ok = _insert(cur, "snapshots", {"chain_id": rec["chain_id"], "id": n, "parent": rec.get("parent"),
                                            "diff_id": rec.get("diff_id", ""), "size": rec.get("size", 0),
                                            "created_at": now})
        elif rec and rec.get("kind") == "active" and rec.get("key"):
            ok = _insert(cur, "active_snapshots", {"key": rec["key"], "id": n, "parent": rec.get("parent"),
                                                   "created_at": now})
        if ok:
            added[rec["kind"]] += 1
        else:
            report.lost.append(f"snapshots/{name}: no record says what it is (left on disk)")
    cur.execute("INSERT INTO counters(name, value) VALUES ('snapshot', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)", (top,))
    if any(added.values()):
        report.recovered.append(f"{added['committed']} image layer(s) and {added['active']} writable layer(s) "
                                "from their records")


def _containers(cur, root: str, report: RebuildReport) -> None:
    base = os.path.join(root, "containers")
    n = 0
    for ns in (os.listdir(base) if os.path.isdir(base) else []):
        nsdir = os.path.join(base, ns)
        if not os.path.isdir(nsdir):
            continue
        for cid in os.listdir(nsdir):
            if len(cid) != 64 or not os.path.isdir(os.path.join(nsdir, cid)):
                continue
            net = read_record(os.path.join(nsdir, cid, NETWORK_RECORD)) or {}
            if isinstance(net.get("sandbox"), dict):
                _insert(cur, "net_sandboxes", net["sandbox"])
            for a in net.get("attachments") or []:
                if isinstance(a, dict):
                    _insert(cur, "net_attachments", a)
            if cur.execute("SELECT 1 FROM containers WHERE namespace = ? AND id = ?", (ns, cid)).fetchone():
                continue
            rec = read_record(os.path.join(nsdir, cid, RECORD))
            need = ("name", "image", "image_id", "config", "created_at")
            if not rec or any(k not in rec for k in need):
                report.lost.append(f"container {ns}/{cid[:12]}: no record beside its directory "
                                   "(its files are left on disk)")
                continue
            row = {k: rec[k] for k in need}
            row.update(namespace=ns, id=cid)
            if cur.execute("SELECT 1 FROM containers WHERE namespace = ? AND name = ?", (ns, row["name"])).fetchone():
                row["name"] = f"{row['name']}_recovered_{cid[:6]}"
            _insert(cur, "containers", row)
            n += 1
    if n:
        report.recovered.append(f"{n} container(s) from the records beside their directories")


def _blob(root: str, digest: str) -> str:
    return os.path.join(root, "content", "blobs", *digest.split(":", 1))


def _images(cur, root: str, report: RebuildReport) -> None:
    named = 0
    rdir = os.path.dirname(image_names_path(root, "x"))
    for f in (os.listdir(rdir) if os.path.isdir(rdir) else []):
        rec = read_record(os.path.join(rdir, f)) or {}
        for r in rec.get("images") or []:
            if not isinstance(r, dict) or not all(os.path.exists(_blob(root, r.get(k, ""))) for k in ("manifest", "config")):
                report.lost.append(f"image {r.get('name', '?') if isinstance(r, dict) else '?'}: its content is gone "
                                   "(pull it again)")
                continue
            try:
                named += _insert(cur, "images", r)
            except sqlite3.Error:
                pass
    # manifests no name points at: images without a name, in every namespace that has containers
    # on them (or "default")
    known = {r[0] for r in cur.execute("SELECT manifest FROM images")}
    users: dict[str, set[str]] = {}
    for r in cur.execute("SELECT namespace, image_id FROM containers"):
        users.setdefault(r[1], set()).add(r[0])
    bdir = os.path.join(root, "content", "blobs", "sha256")
    unnamed = 0
    for hexd in (os.listdir(bdir) if os.path.isdir(bdir) else []):
        digest = f"sha256:{hexd}"
        p = os.path.join(bdir, hexd)
        if digest in known or len(hexd) != 64 or os.path.getsize(p) > (4 << 20):
            continue
        try:
            with open(p, "rb") as fh:
                doc = json.loads(fh.read())
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict) or "layers" not in doc:
            continue
        if doc.get("mediaType", _MANIFEST_TYPES[0]) not in _MANIFEST_TYPES:
            continue
        config = doc["config"].get("digest", "")
        if not os.path.exists(_blob(root, config)):
            continue
        now = time.time()
        for ns in sorted(users.get(config) or {"default"}):
            if cur.execute("SELECT 1 FROM images WHERE namespace = ? AND config = ?", (ns, config)).fetchone():
                continue
            unnamed += _insert(cur, "images", {
                "namespace": ns, "name": digest, "target": digest,
                "media_type": doc.get("mediaType", _MANIFEST_TYPES[0]), "size": os.path.getsize(p),
                "manifest": digest, "config": config, "created_at": now, "updated_at": now})
    if named:
        report.recovered.append(f"{named} image name(s) from their records")
    if unnamed:
        report.recovered.append(f"{unnamed} image(s) without a name from the content store "
                                "(`nerdpy tag ID NAME` names them)")


def _volumes(cur, root: str, report: RebuildReport) -> None:
    base = os.path.join(root, "volumes")
    n = 0
    for ns in (os.listdir(base) if os.path.isdir(base) else []):
        nsdir = os.path.join(base, ns)
        if not os.path.isdir(nsdir):
            continue
        for name in os.listdir(nsdir):
            if ".removing-" in name or not os.path.isdir(os.path.join(nsdir, name)):
                continue
            anon = len(name) == 64 and all(c in "0123456789abcdef" for c in name)
            n += _insert(cur, "volumes", {"namespace": ns, "name": name, "labels": "{}", "anonymous": int(anon),
                                          "created_at": time.time()})
    if n:
        report.recovered.append(f"{n} volume(s) from their directories (their labels are lost)")
