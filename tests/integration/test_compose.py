"""`nerdpy compose` with real containers: dependency conditions that really wait, recreation
on change, volumes, scale, run, exec, logs, profiles, merges, attached `up`, errors."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time



def write(path, text: str) -> str:
    path = str(path)
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))
    return path


def ids(nerdpy, f, *args, env=None) -> dict[str, str]:
    """container name -> id of the project's containers (all states)."""
    r = nerdpy("compose", "-f", f, "ps", "-a", "--format", "{{.Name}} {{.ID}}", *args, env=env, check=True)
    return dict(line.split() for line in r.stdout.splitlines())


def labels(nerdpy, name: str) -> dict:
    r = nerdpy("inspect", "--format", "{{json .Config.Labels}}", name, check=True)
    return json.loads(r.stdout)


def state(nerdpy, name: str) -> dict:
    r = nerdpy("inspect", "--format", "{{json .State}}", name, check=True)
    return json.loads(r.stdout)


# a process that ends at once on SIGTERM (a shell as PID 1 ignores it), so stops are quick
LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"


def test_health_gated_dependency_volumes_idempotent_recreate_down(nerdpy, images, tmp_path):
    f = write(tmp_path / "compose.yaml", f"""
        name: gated
        services:
          db:
            image: {images.busybox}
            command: ["sh", "-c", "rm -f /data/db-ready; sleep 1.5; touch /data/db-ready; {LOOP}"]
            healthcheck:
              test: ["CMD", "test", "-f", "/data/db-ready"]
              interval: 300ms
              retries: 50
            volumes: [data:/data]
          web:
            image: {images.busybox}
            environment:
              GREETING: hello
            command: ["sh", "-c", "if test -f /data/db-ready; then echo after > /data/web-saw; else echo before > /data/web-saw; fi; echo $$GREETING; {LOOP}"]
            depends_on:
              db:
                condition: service_healthy
            volumes: [data:/data]
        volumes:
          data:
        """)
    t0 = time.monotonic()
    r = nerdpy("compose", "-f", f, "up", "-d")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 >= 1.5          # it waited for the healthcheck
    assert "Container gated-db-1  Healthy" in r.stderr
    first = ids(nerdpy, f)
    assert set(first) == {"gated-db-1", "gated-web-1"}
    # the dependent started only once the dependency was healthy
    out = nerdpy("compose", "-f", f, "exec", "-T", "web", "cat", "/data/web-saw", check=True).stdout
    assert out == "after\n"
    assert state(nerdpy, "gated-db-1")["Health"]["Status"] == "healthy"
    lb = labels(nerdpy, "gated-web-1")
    assert lb["com.docker.compose.project"] == "gated"
    assert lb["com.docker.compose.service"] == "web"
    assert lb["com.docker.compose.container-number"] == "1"
    assert lb["com.docker.compose.oneoff"] == "False"
    assert lb["com.docker.compose.depends_on"] == "db:service_healthy:false"
    assert len(lb["com.docker.compose.config-hash"]) == 64
    vols = nerdpy("volume", "ls", "-q", check=True).stdout.split()
    assert "gated_data" in vols
    nets = nerdpy("network", "ls", "--format", "{{.Name}}", check=True).stdout.split()
    assert "gated_default" in nets

    # idempotent: nothing recreated
    r = nerdpy("compose", "-f", f, "up", "-d", check=True)
    assert ids(nerdpy, f) == first
    assert "Recreate" not in r.stderr

    # a changed service is recreated, its dependency is not
    with open(f) as fh:
        text = fh.read()
    with open(f, "w") as fh:
        fh.write(text.replace("GREETING: hello", "GREETING: changed"))
    r = nerdpy("compose", "-f", f, "up", "-d", check=True)
    second = ids(nerdpy, f)
    assert second["gated-db-1"] == first["gated-db-1"]
    assert second["gated-web-1"] != first["gated-web-1"]
    assert "Container gated-web-1  Recreate" in r.stderr
    logs = nerdpy("compose", "-f", f, "logs", "web", check=True).stdout
    assert logs == "web-1  | changed\n"

    # down keeps named volumes; down -v removes them
    r = nerdpy("compose", "-f", f, "down", check=True)
    assert ids(nerdpy, f) == {}
    assert "gated_data" in nerdpy("volume", "ls", "-q", check=True).stdout.split()
    assert "gated_default" not in nerdpy("network", "ls", "--format", "{{.Name}}", check=True).stdout.split()
    nerdpy("compose", "-f", f, "down", "-v", check=True)
    assert "gated_data" not in nerdpy("volume", "ls", "-q", check=True).stdout.split()


def test_scale_logs_exec_run(nerdpy, images, tmp_path):
    f = write(tmp_path / "compose.yaml", f"""
        services:
          web:
            image: {images.busybox}
            command: ["sh", "-c", "echo hello from $$(hostname); {LOOP}"]
            environment: [ROLE=web]
        """)
    env = {"COMPOSE_PROJECT_NAME": "sc"}
    r = nerdpy("compose", "-f", f, "up", "-d", "--scale", "web=3", env=env)
    assert r.returncode == 0, r.stderr
    names = ids(nerdpy, f, env=env)
    assert sorted(names) == ["sc-web-1", "sc-web-2", "sc-web-3"]
    assert nerdpy("compose", "-f", f, "ps", "--services", env=env, check=True).stdout == "web\n"
    time.sleep(0.3)
    logs = nerdpy("compose", "-f", f, "logs", "--no-color", env=env, check=True).stdout.splitlines()
    assert sorted(line.split(" | ")[0] for line in logs) == ["web-1 ", "web-2 ", "web-3 "]
    assert all(" | hello from " in line for line in logs)
    plain = nerdpy("compose", "-f", f, "logs", "--no-log-prefix", "--tail", "1", "web", env=env, check=True).stdout
    assert plain.count("hello from") == 3 and "|" not in plain

    r = nerdpy("compose", "-f", f, "exec", "-T", "-e", "X=42", "--index", "2", "web", "sh", "-c", "echo $X $ROLE",
               env=env)
    assert (r.returncode, r.stdout) == (0, "42 web\n"), r.stderr
    r = nerdpy("compose", "-f", f, "exec", "-T", "web", "sh", "-c", "exit 5", env=env)
    assert r.returncode == 5

    r = nerdpy("compose", "-f", f, "run", "--rm", "-T", "-e", "ROLE=oneoff", "web", "sh", "-c", "echo run $ROLE",
               env=env)
    assert (r.returncode, r.stdout) == (0, "run oneoff\n"), r.stderr
    r = nerdpy("compose", "-f", f, "run", "--rm", "-T", "web", "sh", "-c", "exit 7", env=env)
    assert r.returncode == 7
    all_names = nerdpy("ps", "-a", "--format", "{{.Names}}", check=True).stdout.split()
    assert not [n for n in all_names if "-run-" in n]       # --rm: gone

    # scale down removes the extra replicas, highest numbers first
    nerdpy("compose", "-f", f, "up", "-d", "--scale", "web=1", "-t", "1", env=env, check=True)
    assert sorted(ids(nerdpy, f, env=env)) == ["sc-web-1"]
    nerdpy("compose", "-f", f, "down", "-t", "1", env=env, check=True)


def test_profiles_and_merged_files(nerdpy, images, tmp_path):
    base = write(tmp_path / "compose.yaml", f"""
        name: prof
        services:
          app:
            image: {images.busybox}
            command: ["sh", "-c", "echo base; {LOOP}"]
          debug:
            image: {images.busybox}
            profiles: [debug]
            command: ["sh", "-c", "{LOOP}"]
        """)
    over = write(tmp_path / "override.yaml", """
        services:
          app:
            command: ["sh", "-c", "echo override $$MODE; trap 'exit 0' TERM; while true; do sleep 0.1; done"]
            environment:
              MODE: merged
        """)
    nerdpy("compose", "-f", base, "-f", over, "up", "-d", check=True)
    assert set(ids(nerdpy, base)) == {"prof-app-1"}
    time.sleep(0.3)
    assert nerdpy("compose", "-f", base, "logs", "app", check=True).stdout == "app-1  | override merged\n"
    nerdpy("compose", "-f", base, "-f", over, "--profile", "debug", "up", "-d", check=True)
    assert set(ids(nerdpy, base)) == {"prof-app-1", "prof-debug-1"}
    ls = nerdpy("compose", "ls", "--format", "json", check=True).stdout
    assert json.loads(ls)[0]["Name"] == "prof"  # a JSON array, as docker compose prints
    nerdpy("compose", "-f", base, "--profile", "debug", "down", "-t", "1", check=True)
    assert ids(nerdpy, base) == {}


def test_completed_successfully_and_errors(nerdpy, images, tmp_path):
    ok = write(tmp_path / "ok.yaml", f"""
        name: oneshot
        services:
          init:
            image: {images.busybox}
            command: ["sh", "-c", "sleep 0.5; echo seeded > /shared/seed"]
            volumes: [shared:/shared]
          app:
            image: {images.busybox}
            command: ["sh", "-c", "cat /shared/seed; {LOOP}"]
            volumes: [shared:/shared]
            depends_on:
              init:
                condition: service_completed_successfully
        volumes:
          shared:
        """)
    nerdpy("compose", "-f", ok, "up", "-d", check=True)
    time.sleep(0.3)
    assert nerdpy("compose", "-f", ok, "logs", "app", check=True).stdout == "app-1  | seeded\n"
    nerdpy("compose", "-f", ok, "down", "-v", "-t", "1", check=True)

    bad = write(tmp_path / "bad.yaml", f"""
        name: failing
        services:
          init:
            image: {images.busybox}
            command: ["sh", "-c", "exit 3"]
          app:
            image: {images.busybox}
            command: ["true"]
            depends_on:
              init:
                condition: service_completed_successfully
        """)
    r = nerdpy("compose", "-f", bad, "up", "-d")
    assert r.returncode == 1
    err = [line for line in r.stderr.splitlines() if line.startswith("nerdpy:")]
    assert err == ['nerdpy: service "init" didn\'t complete successfully: exit 3']
    assert state(nerdpy, "failing-app-1")["Status"] == "created"     # never started
    nerdpy("compose", "-f", bad, "down", check=True)

    cycle = write(tmp_path / "cycle.yaml", f"""
        services:
          a:
            image: {images.busybox}
            depends_on: [b]
          b:
            image: {images.busybox}
            depends_on: [a]
        """)
    r = nerdpy("compose", "-f", cycle, "-p", "cyc", "up", "-d")
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "cycle" in r.stderr
    assert nerdpy("ps", "-a", "-q", check=True).stdout == ""
    assert "cyc_default" not in nerdpy("network", "ls", "--format", "{{.Name}}", check=True).stdout

    unhealthy = write(tmp_path / "unhealthy.yaml", f"""
        name: sick
        services:
          db:
            image: {images.busybox}
            command: ["sh", "-c", "{LOOP}"]
            healthcheck:
              test: ["CMD", "false"]
              interval: 200ms
              retries: 2
          web:
            image: {images.busybox}
            command: ["true"]
            depends_on:
              db: {{condition: service_healthy}}
        """)
    r = nerdpy("compose", "-f", unhealthy, "up", "-d")
    assert r.returncode == 1
    assert "nerdpy: dependency failed to start: container sick-db-1 is unhealthy" in r.stderr
    nerdpy("compose", "-f", unhealthy, "down", "-t", "1", check=True)


def test_attached_up_prefixes_exit_codes_and_ctrl_c(nerdpy, images, tmp_path):
    f = write(tmp_path / "compose.yaml", f"""
        name: att
        services:
          job:
            image: {images.busybox}
            command: ["sh", "-c", "echo one; sleep 2; echo two; exit 4"]
          svc:
            image: {images.busybox}
            command: ["sh", "-c", "echo serving; {LOOP}"]
        """)
    r = nerdpy("compose", "-f", f, "up", "--exit-code-from", "job", "-t", "2")
    assert r.returncode == 4, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Attaching to job-1, svc-1"
    assert "job-1  | one" in lines and "job-1  | two" in lines and "svc-1  | serving" in lines
    assert "job-1 exited with code 4" in lines
    assert lines.index("job-1  | two") < lines.index("job-1 exited with code 4")
    assert "svc-1 exited with code 0" in lines            # stopped by the abort, its trap exits 0
    assert "Aborting on container exit..." in r.stderr

    # Ctrl-C stops everything
    p = subprocess.Popen([sys.executable, "-m", "nerdpy", "--data-root", nerdpy.data_root, "compose", "-f", f,
                          "up", "svc"], env=nerdpy.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        seen = ""
        while "svc-1  | serving" not in seen and time.monotonic() < deadline:
            seen += p.stdout.readline()
        assert "svc-1  | serving" in seen
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert "Gracefully stopping..." in err
    assert "svc-1 exited with code 0" in out
    assert state(nerdpy, "att-svc-1")["Status"] == "exited"
    nerdpy("compose", "-f", f, "down", check=True)


def test_service_names_aliases_and_published_ports(nerdpy, images, tmp_path):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from world import free_port

    port = free_port()
    f = write(tmp_path / "compose.yaml", f"""
        name: net
        services:
          db:
            image: {images.busybox}
            command: ["sh", "-c", "trap 'exit 0' TERM; while true; do echo pong | nc -l -p 5000; done & wait"]
            ports: ["127.0.0.1:{port}:5000"]
            networks:
              default:
                aliases: [database]
          client:
            image: {images.busybox}
            depends_on: [db]
            command: ["sh", "-c", "{LOOP}"]
          sidecar:
            image: {images.busybox}
            network_mode: "service:db"
            command: ["sh", "-c", "{LOOP}"]
        """)
    nerdpy("compose", "-f", f, "up", "-d", check=True)
    hosts = nerdpy("compose", "-f", f, "exec", "-T", "client", "cat", "/etc/hosts", check=True).stdout
    db_line = next(line for line in hosts.splitlines() if " db" in line)
    assert "database" in db_line.split() and "net-db-1" in db_line.split()
    for name in ("db", "database", "net-db-1"):
        r = nerdpy("compose", "-f", f, "exec", "-T", "client", "sh", "-c", f"echo | nc -w 2 {name} 5000")
        assert (r.returncode, r.stdout) == (0, "pong\n"), (name, r.stderr)
    # a container sharing db's network namespace reaches it on localhost
    r = nerdpy("compose", "-f", f, "exec", "-T", "sidecar", "sh", "-c", "echo | nc -w 2 127.0.0.1 5000")
    assert r.stdout == "pong\n", r.stderr
    # the published port, from the host
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"\n")
        assert s.recv(16) == b"pong\n"
    assert nerdpy("compose", "-f", f, "port", "db", "5000", check=True).stdout == f"127.0.0.1:{port}\n"
    ps = nerdpy("compose", "-f", f, "ps", "--format", "{{.Service}} {{.Ports}}", check=True).stdout
    assert f"db 127.0.0.1:{port}->5000/tcp" in ps.splitlines()
    # run: on the service's networks, without its aliases (db is still the service's container)
    r = nerdpy("compose", "-f", f, "run", "--rm", "-T", "--no-deps", "db", "sh", "-c",
               "echo | nc -w 2 database 5000")
    assert (r.returncode, r.stdout) == (0, "pong\n"), r.stderr
    nerdpy("compose", "-f", f, "down", "-t", "1", check=True)
    assert "net_default" not in nerdpy("network", "ls", "--format", "{{.Name}}", check=True).stdout
