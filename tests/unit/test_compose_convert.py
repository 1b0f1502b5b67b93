"""A compose service -> the engine's ContainerSpec, and the log prefixes (no containers)."""
import textwrap

import pytest

from compose import model as m
from compose.convert import (Overrides, container_spec, depends_on_label, healthcheck_spec, publish_spec,
                             tmpfs_mount)
from compose.errors import ModelError
from compose.loader import load_project
from compose.logs import Formatter, display_name
from compose.render import config_hash


@pytest.fixture(autouse=True)
def _no_validation_cache(monkeypatch):
    monkeypatch.setenv("NERDPY_COMPOSE_CACHE", "")


def project(tmp_path, text):
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(text).lstrip("\n"))
    return load_project(cwd=str(tmp_path), environ={"HOSTVAR": "from-host"}, project_name="demo")


@pytest.mark.parametrize("port, expected", [
    (m.Port(80), "80/tcp"),
    (m.Port(80, "8080"), "8080:80/tcp"),
    (m.Port(53, "53", protocol="udp"), "53:53/udp"),
    (m.Port(80, "8000-8010"), "8000-8010:80/tcp"),
    (m.Port(80, None, host_ip="127.0.0.1"), "127.0.0.1::80/tcp"),
    (m.Port(80, "8080", host_ip="127.0.0.1"), "127.0.0.1:8080:80/tcp"),
    (m.Port(80, "8080", host_ip="::1"), "[::1]:8080:80/tcp"),
    (m.Port(80, "0"), "80/tcp"),
])
def test_publish_spec(port, expected):
    assert publish_spec(port) == expected


def test_healthcheck_spec():
    assert healthcheck_spec(None) == (None, False)
    assert healthcheck_spec(m.Healthcheck(disable=True)) == (None, True)
    assert healthcheck_spec(m.Healthcheck(test=["NONE"])) == (None, True)
    hc, off = healthcheck_spec(m.Healthcheck(test=["CMD-SHELL", "true"], interval=0.5, timeout=2, retries=4,
                                             start_period=1.5))
    assert not off
    assert hc == {"Test": ["CMD-SHELL", "true"], "Interval": 500_000_000, "Timeout": 2_000_000_000,
                  "StartPeriod": 1_500_000_000, "Retries": 4}
    assert healthcheck_spec(m.Healthcheck(interval=1))[0] == {"Interval": 1_000_000_000}


def test_tmpfs_mount():
    t = tmpfs_mount("/run:size=64m,mode=1777,exec")
    assert (t.type, t.target, t.options) == ("tmpfs", "/run", {"size": str(64 << 20), "mode": "1777",
                                                                 "data": ["exec"]})
    with pytest.raises(ModelError):
        tmpfs_mount("run")


def test_container_spec(tmp_path):
    p = project(tmp_path, """
        services:
          db:
            image: busybox
          web:
            image: busybox
            command: ["sh", "-c", "echo hi"]
            entrypoint: []
            environment:
              A: "1"
              HOSTVAR:
              UNSET:
            labels: {team: x}
            ports: ["127.0.0.1:8080:80"]
            volumes: ["data:/data", "./src:/src:ro", "/anon"]
            tmpfs: ["/run"]
            networks:
              front:
                aliases: [www]
              default: {}
            depends_on:
              db: {condition: service_healthy}
            restart: unless-stopped
            stop_grace_period: 3s
            mem_limit: 64m
            ulimits: {nofile: {soft: 100, hard: 200}}
            extra_hosts: ["h:1.2.3.4"]
        networks:
          front: {}
        volumes:
          data: {}
        """)
    s = p.services["web"]
    spec = container_spec(p, s, "demo-web-1", 1, image_id="sha256:abc", state_dir=str(tmp_path / "state"))
    assert spec.name == "demo-web-1"
    assert spec.cmd == ["sh", "-c", "echo hi"] and spec.entrypoint == []
    assert spec.env == ["A=1", "HOSTVAR=from-host"]
    lb = spec.labels
    assert lb["team"] == "x"
    assert lb[m.LABEL_PROJECT] == "demo" and lb[m.LABEL_SERVICE] == "web" and lb[m.LABEL_NUMBER] == "1"
    assert lb[m.LABEL_ONEOFF] == "False" and lb[m.LABEL_CONFIG_HASH] == config_hash(s, p)
    assert lb[m.LABEL_DEPENDS_ON] == "db:service_healthy:false" == depends_on_label(s)
    assert lb["com.docker.compose.image"] == "sha256:abc"
    assert spec.publish == ["127.0.0.1:8080:80/tcp"]
    kinds = [(mt.type, mt.target, mt.source, mt.readonly) for mt in spec.mounts]
    assert kinds == [("volume", "/data", "demo_data", False), ("bind", "/src", str(tmp_path / "src"), True),
                     ("volume", "/anon", "", False), ("tmpfs", "/run", "", False)]
    assert spec.network == "demo_front"
    assert spec.networks == [{"name": "demo_front", "aliases": ["web", "www"], "ip": None, "mac": None},
                             {"name": "demo_default", "aliases": ["web"], "ip": None, "mac": None}]
    assert spec.restart == "unless-stopped" and spec.stop_timeout == 3
    assert spec.memory == 64 << 20 and spec.ulimits == [("nofile", 100, 200)]
    assert spec.extra_hosts == ["h:1.2.3.4"]

    # a one-off container (compose run): no aliases, no published ports, the command replaced
    o = Overrides(command=["true"], env=["A=2"], publish=False, auto_remove=True, use_aliases=False)
    run = container_spec(p, s, "demo-web-run-1", 1, oneoff=True, overrides=o, state_dir=str(tmp_path))
    assert run.cmd == ["true"] and run.env == ["HOSTVAR=from-host", "A=2"]
    assert run.publish == [] and run.restart == "no" and run.auto_remove
    assert all(n["aliases"] == [] for n in run.networks)
    assert run.labels[m.LABEL_ONEOFF] == "True"

    # anonymous volumes of a replaced container are reused
    again = container_spec(p, s, "demo-web-1", 1, anon_sources={"/anon": "f" * 64}, state_dir=str(tmp_path))
    assert [mt.source for mt in again.mounts if mt.target == "/anon"] == ["f" * 64]
    # ... and those of the image's VOLUMEs (no `volumes:` entry) are carried over as anonymous volumes
    again = container_spec(p, s, "demo-web-1", 1, anon_sources={"/var/lib/db": "e" * 64}, state_dir=str(tmp_path))
    assert [(mt.type, mt.source, mt.options) for mt in again.mounts if mt.target == "/var/lib/db"] == \
        [("volume", "e" * 64, {"anonymous": True})]


def test_network_mode_and_secrets(tmp_path):
    (tmp_path / "pw.txt").write_text("pw")
    p = project(tmp_path, """
        services:
          a:
            image: busybox
            network_mode: host
            secrets: [pw, env]
            configs:
              - source: inline
                target: /etc/app.conf
        secrets:
          pw: {file: ./pw.txt}
          env: {environment: HOSTVAR}
        configs:
          inline: {content: "key=value"}
        """)
    spec = container_spec(p, p.services["a"], "demo-a-1", 1, state_dir=str(tmp_path / "state"))
    assert (spec.network, spec.networks) == ("host", [])
    binds = {mt.target: mt.source for mt in spec.mounts}
    assert binds["/run/secrets/pw"] == str(tmp_path / "pw.txt")
    assert open(binds["/run/secrets/env"]).read() == "from-host"
    assert open(binds["/etc/app.conf"]).read() == "key=value"
    assert all(mt.readonly for mt in spec.mounts)


def test_log_prefixes():
    class C:
        def __init__(self, name):
            self.name = name

    assert display_name("demo", C("demo-web-1")) == "web-1"
    assert display_name("demo", C("custom")) == "custom"
    f = Formatter(["web-1", "db-1"], color=False)
    assert f.line("web-1", {"log": "hi\n"}) == "web-1  | hi\n"
    assert f.line("db-1", {"log": "x"}) == "db-1   | x\n"
    assert f.exited("web-1", 3) == "web-1 exited with code 3\n"
    assert Formatter(["a-1"], color=False, prefix=False).line("a-1", {"log": "x\n"}) == "x\n"
    colored = Formatter(["web-1"], color=True).line("web-1", {"log": "hi\n"})
    assert colored == "\x1b[36mweb-1  | \x1b[0mhi\n"


def test_keys_backed_by_run_flags(tmp_path):
    (tmp_path / "labels.txt").write_text("# a comment\nfrom.file=1\nshared=file\n")
    p = project(tmp_path, """
        services:
          db:
            image: busybox
          web:
            image: busybox
            label_file: ./labels.txt
            labels: {shared: explicit}
            group_add: [audio, 2000]
            oom_score_adj: -200
            mac_address: "92:d0:c6:0a:29:33"
            mem_limit: 64m
            mem_reservation: 32m
            memswap_limit: 128m
            cpu_shares: 512
            dns_opt: [ndots:2]
            links: ["db:database", db]
            post_start:
              - command: ["sh", "-c", "echo hi"]
                user: root
                environment: {A: "1"}
            pre_stop:
              - command: echo bye
        """)
    s = p.services["web"]
    assert s.labels == {"from.file": "1", "shared": "explicit"}
    assert "db" in s.depends_on                          # links imply depends_on
    assert s.post_start == [m.Hook(command=["sh", "-c", "echo hi"], user="root", environment={"A": "1"})]
    assert s.pre_stop == [m.Hook(command=["echo", "bye"])]
    assert not [w for w in p.warnings if "does not implement" in w]
    spec = container_spec(p, s, "demo-web-1", 1, state_dir=str(tmp_path / "state"))
    assert spec.group_add == ["audio", "2000"] and spec.oom_score_adj == -200
    assert spec.memory == 64 << 20 and spec.memory_reservation == 32 << 20 and spec.memory_swap == 128 << 20
    assert spec.cpu_shares == 512 and spec.dns_options == ["ndots:2"]
    assert spec.networks[0]["mac"] == "92:d0:c6:0a:29:33"
    assert spec.labels["from.file"] == "1"
    db = container_spec(p, p.services["db"], "demo-db-1", 1, state_dir=str(tmp_path / "state"))
    assert db.networks[0]["aliases"] == ["db", "database"]      # the link's alias, on the shared network
    # deploy.resources.reservations.memory is mem_reservation; distinct values are refused
    p2 = project(tmp_path, """
        services:
          a:
            image: busybox
            deploy: {resources: {reservations: {memory: 16m}}}
        """)
    assert container_spec(p2, p2.services["a"], "x", 1, state_dir=str(tmp_path)).memory_reservation == 16 << 20
    with pytest.raises(ModelError, match="distinct values"):
        project(tmp_path, """
            services:
              a:
                image: busybox
                mem_reservation: 8m
                deploy: {resources: {reservations: {memory: 16m}}}
            """)
    with pytest.raises(ModelError, match="undefined service 'nope'"):
        project(tmp_path, """
            services:
              a: {image: busybox, links: [nope]}
            """)
    with pytest.raises(ModelError, match="oom"):
        p3 = project(tmp_path, """
            services:
              a: {image: busybox, oom_score_adj: "2000"}
            """)
        container_spec(p3, p3.services["a"], "x", 1, state_dir=str(tmp_path))


def test_userns_mode_host_only(tmp_path):
    p = project(tmp_path, """
        services:
          a: {image: busybox, userns_mode: host}
        """)
    assert p.services["a"].userns_mode == "host" and not p.warnings
    with pytest.raises(ModelError, match="userns_mode 'remap' is not supported"):
        project(tmp_path, """
            services:
              a: {image: busybox, userns_mode: remap}
            """)
