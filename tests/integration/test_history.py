"""`nerdpy history` / `image history`: docker's columns, sizes from the snapshots, flags and formats."""
from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import tarfile

import world


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def snapshot_sizes(nerdpy) -> dict[str, int]:
    with sqlite3.connect(os.path.join(nerdpy.data_root, "meta.db")) as conn:
        return {diff: size for diff, size in conn.execute("SELECT diff_id, size FROM snapshots")}


def human(n: float) -> str:
    units = ["B", "kB", "MB", "GB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    return f"{n:.4g}{units[i]}"


def table(out: str) -> list[list[str]]:
    """Rows of a tab-aligned table, split on runs of 3+ spaces."""
    import re

    return [re.split(r"\s{3,}", line.rstrip()) for line in out.splitlines()]


def test_history_of_a_pulled_image(images, nerdpy):
    nerdpy("pull", "-q", images.layered, check=True)
    image_id = json.loads(images.raw_manifest(images.layered))["config"]["digest"]
    r = nerdpy("history", images.layered)
    assert r.returncode == 0, r.stderr
    rows = table(r.stdout)
    assert rows[0] == ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
    config = json.loads(world.sh("skopeo", "inspect", "--config", "--raw", "--tls-verify=false",
                                 f"docker://{images.layered}").stdout)
    sizes = snapshot_sizes(nerdpy)
    diff_ids = config["rootfs"]["diff_ids"]
    assert len(rows) == 3
    # newest first: the image ID on top, <missing> below, sizes of each layer's snapshot
    assert rows[1][0] == image_id[7:19] and rows[2][0] == "<missing>"
    assert rows[1][2] == "tests/world.py" and rows[1][3] == human(sizes[diff_ids[1]])
    assert rows[2][3] == human(sizes[diff_ids[0]])
    assert rows[1][1].endswith(" ago")
    # -q, --no-trunc
    assert nerdpy("history", "-q", images.layered).stdout == f"{image_id[7:19]}\n<missing>\n"
    assert nerdpy("image", "history", "-q", "--no-trunc", images.layered).stdout == f"{image_id}\n<missing>\n"
    # -H=false: raw bytes and RFC 3339
    for flag in ("-H=false", "--human=false", "--no-human"):
        r = nerdpy("history", flag, "--format", "{{.CreatedSince}}|{{.Size}}", images.layered)
        assert r.returncode == 0, r.stderr
        created, size = r.stdout.splitlines()[1].split("|")
        assert size == str(sizes[diff_ids[0]])
        from datetime import datetime

        assert datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp() == 1704164645, created
    # json
    docs = [json.loads(line) for line in nerdpy("history", "--format", "json", images.layered).stdout.splitlines()]
    assert sorted(docs[0]) == ["Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size"]
    assert docs[0]["ID"] == image_id[7:19]


def test_history_empty_layers_long_commands_and_comments(nerdpy, tmp_path):
    layer = world._tar(world.busybox_entries())
    long_cmd = "/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789abcdef in /\tand more"
    config = {
        "created": "2024-01-02T03:04:05Z", "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]},
        "history": [
            {"created": "2024-01-02T03:04:05Z", "created_by": long_cmd},
            {"created": "2024-01-02T03:04:06Z", "created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True,
             "comment": "buildkit.dockerfile.v0"},
        ],
    }
    cfg = json.dumps(config).encode()
    manifest = [{"Config": "c.json", "RepoTags": ["hist/test:1"], "Layers": ["l/layer.tar"]}]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (("l/layer.tar", layer), ("c.json", cfg), ("manifest.json", json.dumps(manifest).encode())):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    archive = tmp_path / "a.tar"
    archive.write_bytes(buf.getvalue())
    nerdpy("load", "-i", str(archive), check=True)
    rows = table(nerdpy("history", "hist/test:1").stdout)
    assert rows[1][0] == sha256(cfg)[7:19]
    assert rows[1][2] == '/bin/sh -c #(nop)  CMD ["sh"]' and rows[1][3] == "0B"
    assert rows[1][4] == "buildkit.dockerfile.v0"
    flat = long_cmd.replace("\t", " ")
    assert rows[2][2] == flat[:44] + "…"
    assert rows[2][3] == human(snapshot_sizes(nerdpy)[sha256(layer)])
    r = nerdpy("history", "--no-trunc", "--format", "{{.CreatedBy}}", "hist/test:1")
    assert r.stdout.splitlines() == ['/bin/sh -c #(nop)  CMD ["sh"]', flat]


def test_history_of_a_missing_image(nerdpy):
    r = nerdpy("history", "no/such:image")
    assert r.returncode != 0 and "no such image" in r.stderr.lower()
    assert "Traceback" not in r.stderr
