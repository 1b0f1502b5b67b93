"""Compose keys that map to run's namespace, volumes_from, runtime and CDI flags, on real
containers: a service joining another's IPC namespace and /dev/shm, volumes_from, uts: host,
cgroup: private, cpuset, and a CDI device from `devices:`."""
from __future__ import annotations

import json
import os
import textwrap

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"


def test_compose_host_options(nerdpy, images, tmp_path):
    cdi = tmp_path / "cdi"
    cdi.mkdir()
    (cdi / "t.json").write_text(json.dumps({
        "cdiVersion": "0.6.0", "kind": "nerdpy.test/dev",
        "devices": [{"name": "null", "containerEdits": {
            "env": ["NERDPY_CDI=null"], "deviceNodes": [{"path": "/dev/nerdpy-test", "hostPath": "/dev/null"}]}}]}))
    env = {"NERDPY_CDI_SPEC_DIRS": str(cdi)}
    f = tmp_path / "compose.yaml"
    f.write_text(textwrap.dedent(f"""
        name: hostopts
        services:
          db:
            image: {images.busybox}
            ipc: shareable
            volumes: [data:/data]
            command: ["sh", "-c", "echo shm > /dev/shm/s; echo vol > /data/v; {LOOP}"]
          app:
            image: {images.busybox}
            ipc: service:db
            volumes_from: ["db:ro"]
            uts: host
            cgroup: private
            cpuset: "0"
            userns_mode: host
            devices: [nerdpy.test/dev=null]
            command: ["sh", "-c", "{LOOP}"]
        volumes:
          data:
        """))
    r = nerdpy("compose", "-f", str(f), "up", "-d", env=env)
    assert r.returncode == 0, r.stderr
    assert "ignores" not in r.stderr
    try:
        show = ("cat /dev/shm/s /data/v; hostname; test -c /dev/nerdpy-test && echo $NERDPY_CDI; "
                "grep -c :/$ /proc/self/cgroup >/dev/null && echo cgns; touch /data/w 2>/dev/null || echo ro")
        got = nerdpy("compose", "-f", str(f), "exec", "-T", "app", "sh", "-c", show, env=env, check=True).stdout
        assert got.split() == ["shm", "vol", os.uname().nodename, "null", "cgns", "ro"]
        host = json.loads(nerdpy("inspect", "hostopts-app-1", check=True).stdout)[0]["HostConfig"]
        assert (host["IpcMode"], host["UTSMode"], host["CgroupnsMode"], host["CpusetCpus"]) == \
            ("container:hostopts-db-1", "host", "private", "0")
    finally:
        nerdpy("compose", "-f", str(f), "down", "-v", env=env)
