"""Loading a project: files, environment, project name, profiles, and the normalised model."""
import io
import os
import subprocess
import sys
import textwrap

import pytest

from compose import model as m
from compose.errors import ComposeError, CycleError, FileNotFound, ModelError, ProjectNameError
from compose.loader import load_project, normalize_project_name
from compose.render import config_hash, project_to_dict


@pytest.fixture(autouse=True)
def _no_validation_cache(monkeypatch):
    monkeypatch.setenv("NERDPY_COMPOSE_CACHE", "")


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def load(tmp_path, text, **kw):
    write(tmp_path / "compose.yaml", text)
    kw.setdefault("environ", {})
    return load_project(cwd=str(tmp_path), **kw)


SIMPLE = "services:\n  web:\n    image: nginx\n"

# -- files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"])
def test_default_file_names(tmp_path, name):
    write(tmp_path / name, SIMPLE)
    p = load_project(cwd=str(tmp_path), environ={})
    assert p.files == [str(tmp_path / name)]
    assert list(p.services) == ["web"]


def test_default_file_preference_and_warning(tmp_path):
    write(tmp_path / "compose.yaml", SIMPLE)
    write(tmp_path / "docker-compose.yml", "services:\n  other:\n    image: x\n")
    p = load_project(cwd=str(tmp_path), environ={})
    assert list(p.services) == ["web"]
    assert any("multiple config files" in w for w in p.warnings)


@pytest.mark.parametrize("main,override", [("compose.yaml", "compose.override.yaml"),
                                           ("compose.yml", "compose.override.yml"),
                                           ("docker-compose.yml", "docker-compose.override.yml")])
def test_override_file_is_merged(tmp_path, main, override):
    write(tmp_path / main, SIMPLE)
    write(tmp_path / override, "services:\n  web:\n    environment: {A: '1'}\n")
    p = load_project(cwd=str(tmp_path), environ={})
    assert p.services["web"].environment == {"A": "1"}
    assert len(p.files) == 2


def test_found_in_parent_directory(tmp_path):
    write(tmp_path / "compose.yaml", SIMPLE)
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    p = load_project(cwd=str(sub), environ={})
    assert p.working_dir == str(tmp_path)


def test_no_file(tmp_path):
    with pytest.raises(FileNotFound) as e:
        load_project(cwd=str(tmp_path), environ={})
    assert "no configuration file provided" in str(e.value)


def test_missing_dash_f_file(tmp_path):
    with pytest.raises(FileNotFound) as e:
        load_project(["nope.yml"], cwd=str(tmp_path), environ={})
    assert "nope.yml" in str(e.value)


def test_dash_f_repeatable_and_relative_to_first_file(tmp_path):
    write(tmp_path / "conf" / "base.yml", "services:\n  web:\n    image: a\n    volumes: ['./data:/data']\n")
    write(tmp_path / "other" / "extra.yml", "services:\n  web:\n    image: b\n")
    p = load_project(["conf/base.yml", "other/extra.yml"], cwd=str(tmp_path), environ={})
    assert p.services["web"].image == "b"
    assert p.working_dir == str(tmp_path / "conf")
    assert p.services["web"].volumes[0].source == str(tmp_path / "conf" / "data")
    assert p.name == "conf"


def test_stdin(tmp_path):
    p = load_project(["-"], cwd=str(tmp_path), environ={}, stdin=io.StringIO(SIMPLE))
    assert p.services["web"].image == "nginx"
    assert p.files == ["-"]
    assert p.working_dir == str(tmp_path)


def test_stdin_error_names_stdin(tmp_path):
    with pytest.raises(ComposeError) as e:
        load_project(["-"], cwd=str(tmp_path), environ={}, stdin=io.StringIO("services:\n  web:\n    imag: x\n"))
    assert str(e.value).startswith("<stdin>:3:")


def test_project_directory(tmp_path):
    write(tmp_path / "files" / "compose.yaml", "services:\n  web:\n    image: x\n    volumes: ['./d:/d']\n")
    (tmp_path / "proj").mkdir()
    write(tmp_path / "proj" / ".env", "COMPOSE_PROJECT_NAME=fromenv\n")
    p = load_project(["files/compose.yaml"], project_directory="proj", cwd=str(tmp_path), environ={})
    assert p.working_dir == str(tmp_path / "proj")
    assert p.services["web"].volumes[0].source == str(tmp_path / "proj" / "d")
    assert p.name == "fromenv"


def test_compose_file_variable(tmp_path):
    write(tmp_path / "a.yml", "services:\n  a:\n    image: a\n")
    write(tmp_path / "b.yml", "services:\n  b:\n    image: b\n")
    p = load_project(cwd=str(tmp_path), environ={"COMPOSE_FILE": "a.yml:b.yml"})
    assert list(p.services) == ["a", "b"]
    p = load_project(cwd=str(tmp_path), environ={"COMPOSE_FILE": "a.yml;b.yml", "COMPOSE_PATH_SEPARATOR": ";"})
    assert list(p.services) == ["a", "b"]


def test_compose_file_from_dotenv(tmp_path):
    write(tmp_path / "a.yml", "services:\n  a:\n    image: a\n")
    write(tmp_path / ".env", "COMPOSE_FILE=a.yml\n")
    assert list(load_project(cwd=str(tmp_path), environ={}).services) == ["a"]


# -- project name --------------------------------------------------------------------------------

def test_name_precedence(tmp_path):
    d = tmp_path / "My_Dir.v2"
    write(d / "compose.yaml", "name: fromfile\n" + SIMPLE)
    kw = dict(cwd=str(d))
    assert load_project(project_name="fromflag", environ={"COMPOSE_PROJECT_NAME": "fromenv"}, **kw).name == "fromflag"
    assert load_project(environ={"COMPOSE_PROJECT_NAME": "fromenv"}, **kw).name == "fromenv"
    assert load_project(environ={}, **kw).name == "fromfile"
    write(d / "compose.yaml", SIMPLE)
    assert load_project(environ={}, **kw).name == "my_dirv2"
    write(d / ".env", "COMPOSE_PROJECT_NAME=dotenv\n")
    assert load_project(environ={}, **kw).name == "dotenv"


def test_name_from_file_is_interpolated(tmp_path):
    assert load(tmp_path, "name: app-${STAGE:-dev}\n" + SIMPLE).name == "app-dev"


@pytest.mark.parametrize("raw,norm", [("MyApp", "myapp"), ("my app", "myapp"), ("_x-Y.z", "x-yz"),
                                      ("a_b-c", "a_b-c"), ("日本", "")])
def test_normalize_project_name(raw, norm):
    assert normalize_project_name(raw) == norm


@pytest.mark.parametrize("bad", ["MyApp", "-x", "a b", "a.b"])
def test_explicit_names_must_be_valid(tmp_path, bad):
    write(tmp_path / "compose.yaml", SIMPLE)
    with pytest.raises(ProjectNameError):
        load_project(project_name=bad, cwd=str(tmp_path), environ={})
    with pytest.raises(ProjectNameError):
        load_project(cwd=str(tmp_path), environ={"COMPOSE_PROJECT_NAME": bad})


def test_resource_names_use_project_name(tmp_path):
    p = load(tmp_path, """
        services:
          web:
            image: x
            networks: [front, ext]
            volumes: [data:/data, ext:/ext, named:/named]
        networks:
          front:
          ext: {external: true}
        volumes:
          data:
          ext: {external: true, name: real-ext}
          named: {name: custom}
        """, project_name="proj")
    assert p.networks["front"].name == "proj_front"
    assert p.networks["ext"].name == "ext" and p.networks["ext"].external
    assert "default" not in p.networks  # not used
    assert p.volumes["data"].name == "proj_data"
    assert p.volumes["ext"].name == "real-ext"
    assert p.volumes["named"].name == "custom"
    assert p.services["web"].container_names("proj") == ["proj-web-1"]


def test_default_network_added_when_used(tmp_path):
    p = load(tmp_path, SIMPLE, project_name="proj")
    assert p.networks["default"].name == "proj_default"
    assert p.services["web"].networks == {"default": m.ServiceNetwork()}


# -- environment ---------------------------------------------------------------------------------

def test_dotenv_and_shell_precedence(tmp_path):
    write(tmp_path / ".env", "TAG=fromdotenv\nOTHER=o\n")
    p = load(tmp_path, "services:\n  web:\n    image: nginx:${TAG}-${OTHER}\n", environ={"TAG": "shell"})
    assert p.services["web"].image == "nginx:shell-o"


def test_env_file_option_replaces_dotenv(tmp_path):
    write(tmp_path / ".env", "TAG=fromdotenv\n")
    write(tmp_path / "one.env", "TAG=one\nX=1\n")
    write(tmp_path / "two.env", "TAG=two\n")
    p = load(tmp_path, "services:\n  web:\n    image: nginx:${TAG}-${X}\n", env_files=["one.env", "two.env"])
    assert p.services["web"].image == "nginx:two-1"


def test_missing_env_file_option(tmp_path):
    with pytest.raises(FileNotFound) as e:
        load(tmp_path, SIMPLE, env_files=["missing.env"])
    assert "missing.env" in str(e.value)


def test_dotenv_syntax(tmp_path):
    write(tmp_path / ".env", textwrap.dedent('''
        # comment
        export A=plain
        B="double ${A} \\n quoted"
        C='single ${A}'
        D=unquoted # comment
        E=
        F="multi
        line"
        G=${A:-x}-$$
        '''))
    p = load(tmp_path, """
        services:
          web:
            image: x
            environment: [A, B, C, D, E, F, G, H]
        """)
    env = p.services["web"].environment
    assert env == {"A": "plain", "B": "double plain \n quoted", "C": "single ${A}", "D": "unquoted",
                   "E": "", "F": "multi\nline", "G": "plain-$", "H": None}


def test_unset_variable_warns_and_is_empty(tmp_path):
    p = load(tmp_path, "services:\n  web:\n    image: nginx${UNSET}\n    user: ${UNSET}\n")
    assert p.services["web"].image == "nginx"
    assert [w for w in p.warnings if "UNSET" in w] == \
        ['the "UNSET" variable is not set, defaulting to a blank string']


def test_service_env_file_and_environment(tmp_path):
    write(tmp_path / "a.env", "A=1\nB=from-a\nREF=${SHELLVAR}\n")
    write(tmp_path / "b.env", "B=from-b\n")
    p = load(tmp_path, """
        services:
          web:
            image: x
            env_file: [a.env, {path: b.env}, {path: gone.env, required: false}]
            environment:
              B: over
              NUM: 3
              BOOL: true
              FROM_SHELL:
        """, environ={"SHELLVAR": "s", "FROM_SHELL": "yes"})
    web = p.services["web"]
    assert web.environment == {"A": "1", "B": "over", "REF": "s", "NUM": "3", "BOOL": "true", "FROM_SHELL": "yes"}
    assert web.env_files == [str(tmp_path / "a.env"), str(tmp_path / "b.env")]


def test_env_file_string_form(tmp_path):
    write(tmp_path / "a.env", "A=1\n")
    assert load(tmp_path, "services:\n  web:\n    image: x\n    env_file: a.env\n").services["web"].environment == {"A": "1"}


# -- profiles ------------------------------------------------------------------------------------

PROFILES = """
services:
  foo: {image: foo}
  bar: {image: bar, profiles: [test]}
  baz: {image: baz, depends_on: [bar], profiles: [test]}
  zot: {image: zot, depends_on: [bar], profiles: [debug]}
"""


def test_profiles_none_active(tmp_path):
    p = load(tmp_path, PROFILES)
    assert list(p.services) == ["foo"]
    assert sorted(p.disabled_services) == ["bar", "baz", "zot"]
    assert p.all_profiles() == ["debug", "test"]


def test_profile_flag(tmp_path):
    p = load(tmp_path, PROFILES, profiles=["test"])
    assert list(p.services) == ["foo", "bar", "baz"]


def test_compose_profiles_variable(tmp_path):
    p = load(tmp_path, PROFILES, environ={"COMPOSE_PROFILES": "test,debug"})
    assert list(p.services) == ["foo", "bar", "baz", "zot"]


def test_profile_flag_wins_over_variable(tmp_path):
    p = load(tmp_path, PROFILES, profiles=["test"], environ={"COMPOSE_PROFILES": "debug"})
    assert "zot" not in p.services


def test_all_profiles_star(tmp_path):
    assert len(load(tmp_path, PROFILES, profiles=["*"]).services) == 4


def test_dependency_in_disabled_profile_is_an_error(tmp_path):
    with pytest.raises(ModelError) as e:
        load(tmp_path, PROFILES, profiles=["debug"])
    assert "'bar' is required by 'zot' but is disabled" in str(e.value)
    assert e.value.line == 5


def test_targeted_service_enables_its_profiles(tmp_path):
    p = load(tmp_path, PROFILES, services=["baz"])
    assert set(p.services) == {"foo", "bar", "baz"}
    assert p.profiles == ["test"]
    with pytest.raises(ModelError):
        load(tmp_path, PROFILES, services=["zot"])
    with pytest.raises(ModelError):
        load(tmp_path, PROFILES, services=["nothere"])


def test_optional_dependency_on_disabled_service_dropped(tmp_path):
    p = load(tmp_path, """
        services:
          web: {image: x, depends_on: {db: {condition: service_started, required: false}}}
          db: {image: y, profiles: [db]}
        """)
    assert p.services["web"].depends_on == {}


# -- normalisation of service keys -----------------------------------------------------------------

def test_command_and_entrypoint_forms(tmp_path):
    p = load(tmp_path, """
        services:
          a: {image: x, command: echo "hello world" 'x y', entrypoint: /bin/sh -c}
          b: {image: x, command: [echo, "1"], entrypoint: []}
          c: {image: x, command: null}
          d: {image: x}
        """)
    s = p.services
    assert s["a"].command == ["echo", "hello world", "x y"] and s["a"].entrypoint == ["/bin/sh", "-c"]
    assert s["b"].command == ["echo", "1"] and s["b"].entrypoint == []
    assert s["c"].command is None and s["d"].command is None and s["d"].entrypoint is None


def test_simple_string_keys(tmp_path):
    s = load(tmp_path, """
        services:
          web:
            image: x
            container_name: c1
            hostname: h
            domainname: example.com
            user: "1000:1000"
            working_dir: /app
            stop_signal: SIGINT
            platform: linux/amd64
            pid: host
            stop_grace_period: 1m30s
        """).services["web"]
    assert (s.container_name, s.hostname, s.domainname, s.user, s.working_dir, s.stop_signal, s.platform,
            s.pid, s.stop_grace_period) == ("c1", "h", "example.com", "1000:1000", "/app", "SIGINT",
                                            "linux/amd64", "host", 90.0)
    assert s.container_names("p") == ["c1"]


def test_labels_forms(tmp_path):
    p = load(tmp_path, """
        services:
          a: {image: x, labels: {com.x: 1, flag: true}}
          b: {image: x, labels: [com.x=1, empty]}
        """)
    assert p.services["a"].labels == {"com.x": "1", "flag": "true"}
    assert p.services["b"].labels == {"com.x": "1", "empty": ""}


def test_ports_short_syntax(tmp_path):
    s = load(tmp_path, """
        services:
          web:
            image: x
            ports:
              - 3000
              - "3001-3002"
              - "8000:8000"
              - "9090-9091:8080-8081"
              - "49100:22"
              - "127.0.0.1:8001:8001"
              - "127.0.0.1:5000-5010:5000"
              - "127.0.0.1::5001"
              - "6060:6060/udp"
              - "[::1]:6001:6001"
        """).services["web"]
    got = [(p.host_ip, p.published, p.target, p.protocol) for p in s.ports]
    assert got == [
        (None, None, 3000, "tcp"),
        (None, None, 3001, "tcp"), (None, None, 3002, "tcp"),
        (None, "8000", 8000, "tcp"),
        (None, "9090", 8080, "tcp"), (None, "9091", 8081, "tcp"),
        (None, "49100", 22, "tcp"),
        ("127.0.0.1", "8001", 8001, "tcp"),
        ("127.0.0.1", "5000-5010", 5000, "tcp"),
        ("127.0.0.1", None, 5001, "tcp"),
        (None, "6060", 6060, "udp"),
        ("::1", "6001", 6001, "tcp"),
    ]
    assert s.ports[8].published_range == (5000, 5010)
    assert s.ports[0].published_range is None
    assert all(p.mode == "ingress" for p in s.ports)


def test_ports_long_syntax(tmp_path):
    s = load(tmp_path, """
        services:
          web:
            image: x
            ports:
              - target: 80
                host_ip: 127.0.0.1
                published: "8080"
                protocol: TCP
                mode: host
                name: web
                app_protocol: http
              - target: "443"
                published: 8443
              - target: 53
                protocol: udp
        """).services["web"]
    assert s.ports == [m.Port(target=80, published="8080", host_ip="127.0.0.1", protocol="tcp", mode="host",
                              name="web", app_protocol="http"),
                       m.Port(target=443, published="8443"), m.Port(target=53, protocol="udp")]


def test_expose(tmp_path):
    s = load(tmp_path, "services:\n  web:\n    image: x\n    expose: [80, '53/udp', '3000-3005']\n").services["web"]
    assert s.expose == ["80", "53/udp", "3000-3005"]


def test_volumes_short_syntax(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    s = load(tmp_path, """
        services:
          web:
            image: x
            volumes:
              - /var/lib/anon
              - ./cache:/tmp/cache
              - ~/configs:/etc/configs:ro
              - /abs/path:/abs:rw,z
              - datavolume:/var/lib/mysql:nocopy
              - ../up:/up:ro,rshared
        volumes:
          datavolume:
        """).services["web"]
    v = s.volumes
    assert v[0] == m.ServiceVolume(type="volume", target="/var/lib/anon")
    assert v[1] == m.ServiceVolume(type="bind", source=str(tmp_path / "cache"), target="/tmp/cache",
                                   create_host_path=True)
    assert v[2].source == str(tmp_path / "home" / "configs") and v[2].read_only
    assert v[3] == m.ServiceVolume(type="bind", source="/abs/path", target="/abs", create_host_path=True,
                                   selinux="z")
    assert v[4] == m.ServiceVolume(type="volume", source="datavolume", target="/var/lib/mysql", nocopy=True)
    assert v[5].source == str(tmp_path.parent / "up") and v[5].propagation == "rshared" and v[5].read_only


def test_volumes_long_syntax(tmp_path):
    s = load(tmp_path, """
        services:
          web:
            image: x
            volumes:
              - type: bind
                source: ./static
                target: /opt/app/static
                read_only: true
                bind: {create_host_path: true, propagation: rprivate}
              - type: bind
                source: /data
                target: /data
              - type: volume
                source: mydata
                target: /mydata
                volume: {nocopy: true, subpath: sub}
              - type: volume
                target: /anon
              - type: tmpfs
                target: /scratch
                tmpfs: {size: 64m, mode: "1777"}
              - type: tmpfs
                target: /scratch2
                tmpfs: {size: 1024, mode: 0o700}
        volumes:
          mydata:
        """).services["web"]
    v = s.volumes
    assert v[0] == m.ServiceVolume(type="bind", source=str(tmp_path / "static"), target="/opt/app/static",
                                   read_only=True, create_host_path=True, propagation="rprivate")
    assert v[1] == m.ServiceVolume(type="bind", source="/data", target="/data", create_host_path=False)
    assert v[2] == m.ServiceVolume(type="volume", source="mydata", target="/mydata", nocopy=True, subpath="sub")
    assert v[3] == m.ServiceVolume(type="volume", target="/anon")
    assert v[4] == m.ServiceVolume(type="tmpfs", target="/scratch", tmpfs_size=64 * 1024 * 1024, tmpfs_mode=0o1777)
    assert v[5] == m.ServiceVolume(type="tmpfs", target="/scratch2", tmpfs_size=1024, tmpfs_mode=0o700)


def test_duplicate_mount_target(tmp_path):
    with pytest.raises(ModelError) as e:
        load(tmp_path, "services:\n  web:\n    image: x\n    volumes: ['/a:/x', '/b:/x']\n")
    assert "duplicate mount target /x" in str(e.value)


def test_tmpfs_key(tmp_path):
    p = load(tmp_path, """
        services:
          a: {image: x, tmpfs: /run}
          b: {image: x, tmpfs: [/run, "/tmp:size=64m"]}
        """)
    assert p.services["a"].tmpfs == ["/run"]
    assert p.services["b"].tmpfs == ["/run", "/tmp:size=64m"]


def test_networks_forms(tmp_path):
    p = load(tmp_path, """
        services:
          a: {image: x, networks: [front, back]}
          b:
            image: x
            networks:
              front:
                aliases: [db, database]
                ipv4_address: 172.16.238.10
              back:
        networks:
          front:
            driver: bridge
            internal: true
            labels: [a=b]
            ipam:
              config:
                - subnet: 172.16.238.0/24
                  gateway: 172.16.238.1
          back: {driver_opts: {com.docker.network.bridge.name: br1}}
        """)
    assert list(p.services["a"].networks) == ["front", "back"]
    b = p.services["b"].networks
    assert b["front"] == m.ServiceNetwork(aliases=["db", "database"], ipv4_address="172.16.238.10")
    assert b["back"] == m.ServiceNetwork()
    front = p.networks["front"]
    assert front.internal and front.driver == "bridge" and front.labels == {"a": "b"}
    assert front.ipam.config == [m.IpamPool(subnet="172.16.238.0/24", gateway="172.16.238.1")]
    assert p.networks["back"].driver_opts == {"com.docker.network.bridge.name": "br1"}


@pytest.mark.parametrize("mode", ["host", "none", "bridge", "container:other", "service:db"])
def test_network_mode(tmp_path, mode):
    p = load(tmp_path, f"services:\n  db: {{image: y}}\n  web:\n    image: x\n    network_mode: '{mode}'\n")
    web = p.services["web"]
    assert web.network_mode == mode and web.networks == {}
    if mode == "service:db":
        assert web.depends_on == {"db": m.DependsOn()}
        assert p.startup_order() == ["db", "web"]


def test_network_mode_unknown_service(tmp_path):
    with pytest.raises(ModelError) as e:
        load(tmp_path, "services:\n  web:\n    image: x\n    network_mode: service:ghost\n")
    assert "ghost" in str(e.value) and e.value.line == 4


def test_depends_on_forms(tmp_path):
    p = load(tmp_path, """
        services:
          db: {image: x}
          cache: {image: x}
          init: {image: x}
          a: {image: x, depends_on: [db, cache]}
          b:
            image: x
            depends_on:
              db: {condition: service_healthy, restart: true}
              cache: {condition: service_started, required: false}
              init: {condition: service_completed_successfully}
        """)
    assert p.services["a"].depends_on == {"db": m.DependsOn(), "cache": m.DependsOn()}
    assert p.services["b"].depends_on == {
        "db": m.DependsOn(condition="service_healthy", restart=True),
        "cache": m.DependsOn(required=False),
        "init": m.DependsOn(condition="service_completed_successfully")}


def test_optional_undefined_dependency_warns(tmp_path):
    p = load(tmp_path, "services:\n  web:\n    image: x\n    depends_on: {ghost: {condition: service_started, "
                       "required: false}}\n")
    assert p.services["web"].depends_on == {}
    assert any("ghost" in w for w in p.warnings)


def test_healthcheck_forms(tmp_path):
    p = load(tmp_path, """
        services:
          shell: {image: x, healthcheck: {test: "curl -f http://localhost", interval: 1m30s, timeout: 10s,
                                          retries: 3, start_period: 40s, start_interval: 5s}}
          cmd: {image: x, healthcheck: {test: [CMD, curl, -f, http://localhost]}}
          cmdshell: {image: x, healthcheck: {test: [CMD-SHELL, "curl -f http://localhost || exit 1"]}}
          none: {image: x, healthcheck: {test: [NONE]}}
          disabled: {image: x, healthcheck: {disable: true}}
          partial: {image: x, healthcheck: {interval: 500ms}}
          absent: {image: x}
        """)
    s = p.services
    assert s["shell"].healthcheck == m.Healthcheck(test=["CMD-SHELL", "curl -f http://localhost"], interval=90.0,
                                                   timeout=10.0, retries=3, start_period=40.0, start_interval=5.0)
    assert s["cmd"].healthcheck.test == ["CMD", "curl", "-f", "http://localhost"]
    assert s["cmdshell"].healthcheck.test == ["CMD-SHELL", "curl -f http://localhost || exit 1"]
    assert s["none"].healthcheck.disabled and not s["none"].healthcheck.disable
    assert s["disabled"].healthcheck == m.Healthcheck(test=["NONE"], disable=True)
    assert s["partial"].healthcheck == m.Healthcheck(interval=0.5)
    assert s["absent"].healthcheck is None


def test_restart_and_deploy(tmp_path):
    p = load(tmp_path, """
        services:
          a: {image: x, restart: "no"}
          b: {image: x, restart: no}
          c: {image: x, restart: on-failure:3}
          d:
            image: x
            deploy:
              replicas: 3
              resources:
                limits: {cpus: "0.5", memory: 512M, pids: 100}
                reservations: {cpus: 0.25, memory: 128m}
              restart_policy: {condition: on-failure, delay: 5s, max_attempts: 2, window: 2m}
          e: {image: x, deploy: {restart_policy: {condition: any}}}
          f: {image: x, deploy: {restart_policy: {condition: none}}}
          g: {image: x, scale: 2, mem_limit: 1g, cpus: 1.5, pids_limit: 50, deploy: {replicas: 2}}
        """)
    s = p.services
    assert s["a"].restart == "no" and s["b"].restart == "no" and s["c"].restart == "on-failure:3"
    d = s["d"]
    assert d.scale == 3 and d.restart == "on-failure:2"
    assert d.deploy.limits == m.Resources(cpus=0.5, memory=512 * 1024 ** 2, pids=100)
    assert d.deploy.reservations == m.Resources(cpus=0.25, memory=128 * 1024 ** 2)
    assert d.deploy.restart_policy == m.RestartPolicy(condition="on-failure", delay=5.0, max_attempts=2, window=120.0)
    assert (d.mem_limit, d.cpus, d.pids_limit) == (512 * 1024 ** 2, 0.5, 100)
    assert s["e"].restart == "always" and s["f"].restart == "no"
    g = s["g"]
    assert (g.scale, g.mem_limit, g.cpus, g.pids_limit) == (2, 1024 ** 3, 1.5, 50)
    assert s["a"].scale == 1 and s["a"].deploy is None
    assert d.container_names("p") == ["p-d-1", "p-d-2", "p-d-3"]


def test_scale_zero(tmp_path):
    assert load(tmp_path, "services:\n  web:\n    image: x\n    scale: 0\n").services["web"].scale == 0


def test_booleans_and_security(tmp_path):
    s = load(tmp_path, """
        services:
          web:
            image: x
            init: true
            privileged: "true"
            read_only: true
            tty: yes
            stdin_open: true
            cap_add: [NET_ADMIN]
            cap_drop: [ALL]
            security_opt: [no-new-privileges:true]
        """).services["web"]
    assert s.init is True and s.privileged and s.read_only and s.tty and s.stdin_open
    assert (s.cap_add, s.cap_drop, s.security_opt) == (["NET_ADMIN"], ["ALL"], ["no-new-privileges:true"])


def test_yes_is_a_string_not_a_boolean(tmp_path):
    # compose reads YAML like Go's yaml.v3: `yes` is the string "yes", accepted where a boolean is expected
    s = load(tmp_path, "services:\n  web:\n    image: x\n    environment: {A: yes, B: on}\n").services["web"]
    assert s.environment == {"A": "yes", "B": "on"}


def test_ulimits_sysctls_hosts_dns(tmp_path):
    p = load(tmp_path, """
        services:
          a:
            image: x
            ulimits: {nproc: 65535, nofile: {soft: 20000, hard: 40000}}
            sysctls: {net.core.somaxconn: 1024}
            extra_hosts: ["somehost:162.242.195.82", "otherhost=50.31.209.229", "v6:::1"]
            dns: 8.8.8.8
            dns_search: example.com
            shm_size: 64m
          b:
            image: x
            sysctls: [net.ipv4.tcp_syncookies=0]
            extra_hosts: {myhost: ["10.0.0.1", "10.0.0.2"]}
            dns: [1.1.1.1, 8.8.4.4]
            dns_search: [a.com, b.com]
        """)
    a, b = p.services["a"], p.services["b"]
    assert a.ulimits == {"nproc": m.Ulimit(65535, 65535), "nofile": m.Ulimit(20000, 40000)}
    assert a.sysctls == {"net.core.somaxconn": "1024"}
    assert a.extra_hosts == ["somehost:162.242.195.82", "otherhost:50.31.209.229", "v6:::1"]
    assert a.dns == ["8.8.8.8"] and a.dns_search == ["example.com"] and a.shm_size == 64 * 1024 ** 2
    assert b.sysctls == {"net.ipv4.tcp_syncookies": "0"}
    assert b.extra_hosts == ["myhost:10.0.0.1", "myhost:10.0.0.2"]
    assert b.dns == ["1.1.1.1", "8.8.4.4"] and b.dns_search == ["a.com", "b.com"]


def test_devices_logging_pull_policy(tmp_path):
    s = load(tmp_path, """
        services:
          web:
            image: x
            devices: ["/dev/ttyUSB0:/dev/ttyUSB0", "/dev/sda:/dev/xvda:rwm", "/dev/fuse", "/dev/kvm:r",
                      {source: /dev/net/tun, permissions: rw}]
            logging:
              driver: json-file
              options: {max-size: 200k, max-file: 10}
            pull_policy: if_not_present
            profiles: [p1]
        """, profiles=["p1"]).services["web"]
    assert s.devices == [m.Device("/dev/ttyUSB0", "/dev/ttyUSB0"), m.Device("/dev/sda", "/dev/xvda", "rwm"),
                         m.Device("/dev/fuse", "/dev/fuse"), m.Device("/dev/kvm", "/dev/kvm", "r"),
                         m.Device("/dev/net/tun", "/dev/net/tun", "rw")]
    assert s.logging == m.Logging(driver="json-file", options={"max-size": "200k", "max-file": "10"})
    assert s.pull_policy == "missing" and s.profiles == ["p1"]


def test_secrets_and_configs(tmp_path):
    write(tmp_path / "secret.txt", "s3cret")
    write(tmp_path / "conf" / "app.conf", "x=1")
    p = load(tmp_path, """
        services:
          web:
            image: x
            secrets:
              - db_pw
              - source: api_key
                target: api.key
                uid: "103"
                gid: "103"
                mode: 0440
              - source: db_pw
                target: /abs/pw
            configs:
              - app
              - source: inline
                target: /etc/inline.conf
                mode: "0444"
        secrets:
          db_pw: {file: ./secret.txt}
          api_key: {environment: API_KEY}
        configs:
          app: {file: conf/app.conf}
          inline: {content: "hello ${WHO}"}
        """, environ={"API_KEY": "k", "WHO": "world"}, project_name="p")
    web = p.services["web"]
    assert web.secrets == [m.ServiceSecret("db_pw", "/run/secrets/db_pw"),
                           m.ServiceSecret("api_key", "/run/secrets/api.key", uid="103", gid="103", mode=0o440),
                           m.ServiceSecret("db_pw", "/abs/pw")]
    assert web.configs == [m.ServiceConfig("app", "/app"), m.ServiceConfig("inline", "/etc/inline.conf", mode=0o444)]
    assert p.secrets["db_pw"] == m.Secret(name="p_db_pw", file=str(tmp_path / "secret.txt"))
    assert p.secrets["api_key"].environment == "API_KEY"
    assert p.configs["app"].file == str(tmp_path / "conf" / "app.conf")
    assert p.configs["inline"].content == "hello world"


def test_secret_without_source_kind(tmp_path):
    with pytest.raises(ModelError) as e:
        load(tmp_path, "services:\n  web: {image: x}\nsecrets:\n  s: {labels: [a=b]}\n")
    assert "must declare" in str(e.value) and e.value.line == 4


def test_build_with_image_kept(tmp_path):
    # issue 16: build: with an image: uses the image (`up` fails at once when it cannot be had)
    p = load(tmp_path, "services:\n  web:\n    image: me/app\n    build: ./src\n")
    assert p.services["web"].build == {"context": str(tmp_path / "src")}
    assert not any("services.web.build" in w for w in p.warnings)


def test_interpolated_types_are_converted(tmp_path):
    s = load(tmp_path, """
        services:
          web:
            image: x
            scale: ${N}
            read_only: ${RO}
            ports: ["${P}:80"]
            depends_on: {db: {condition: service_started, required: "${REQ}"}}
          db: {image: y}
        """, environ={"N": "2", "RO": "true", "P": "8080", "REQ": "false"}).services["web"]
    assert s.scale == 2 and s.read_only is True and s.ports[0].published == "8080"
    assert s.depends_on["db"].required is False


def test_yaml_anchors_and_merge_keys(tmp_path):
    p = load(tmp_path, """
        x-base: &base
          image: base
          environment: {A: "1"}
        services:
          a:
            <<: *base
          b:
            <<: *base
            image: other
        """)
    assert p.services["a"].image == "base" and p.services["b"].image == "other"
    assert p.services["b"].environment == {"A": "1"}


# -- dependency order --------------------------------------------------------------------------

ORDER = """
services:
  web: {image: x, depends_on: [api, static]}
  api: {image: x, depends_on: {db: {condition: service_healthy}, cache: {condition: service_started}}}
  static: {image: x}
  db: {image: x}
  cache: {image: x}
  worker: {image: x, depends_on: [db]}
"""


def test_startup_levels(tmp_path):
    p = load(tmp_path, ORDER)
    assert p.startup_levels() == [["static", "db", "cache"], ["api", "worker"], ["web"]]
    order = p.startup_order()
    for s in p.services.values():
        for d in s.depends_on:
            assert order.index(d) < order.index(s.name)
    assert p.shutdown_order() == list(reversed(order))


def test_startup_levels_for_some_services(tmp_path):
    p = load(tmp_path, ORDER)
    assert p.startup_levels(["api"]) == [["db", "cache"], ["api"]]
    assert p.with_dependencies(["worker"]) == ["db", "worker"]
    assert sorted(p.dependents("db")) == ["api", "worker"]


def test_cycle_detected_with_path(tmp_path):
    with pytest.raises(CycleError) as e:
        load(tmp_path, """
            services:
              a: {image: x, depends_on: [c]}
              b: {image: x, depends_on: [a]}
              c: {image: x, depends_on: [b]}
              d: {image: x}
            """)
    assert e.value.cycle in (["a", "c", "b", "a"], ["b", "a", "c", "b"], ["c", "b", "a", "c"])
    assert e.value.file == "compose.yaml" and e.value.line is not None


def test_dependency_levels_function():
    services = {n: m.Service(name=n, image="x") for n in "abc"}
    services["a"].depends_on = {"b": m.DependsOn()}
    assert m.dependency_levels(services) == [["b", "c"], ["a"]]
    services["b"].depends_on = {"a": m.DependsOn()}
    with pytest.raises(CycleError) as e:
        m.dependency_levels(services)
    assert e.value.cycle == ["a", "b", "a"]


def test_container_name_unique(tmp_path):
    with pytest.raises(ModelError) as e:
        load(tmp_path, "services:\n  a: {image: x, container_name: c}\n  b: {image: x, container_name: c}\n")
    assert "already used by service 'a'" in str(e.value)


# -- render ------------------------------------------------------------------------------------

def test_to_dict_round_trips_through_load(tmp_path):
    import yaml

    write(tmp_path / "s.txt", "x")
    p = load(tmp_path, """
        services:
          web:
            image: nginx
            ports: ["8080:80"]
            volumes: [./html:/html:ro, data:/data]
            depends_on: {db: {condition: service_healthy}}
            healthcheck: {test: curl x, interval: 1m30s}
            environment: [A=1, UNSET_ONE]
            secrets: [s]
          db: {image: pg, deploy: {resources: {limits: {memory: 1g}}}}
        volumes: {data: }
        secrets: {s: {file: s.txt}}
        """, project_name="p")
    d = project_to_dict(p)
    assert d["name"] == "p"
    assert d["services"]["web"]["ports"] == [{"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"}]
    assert d["services"]["web"]["healthcheck"] == {"test": ["CMD-SHELL", "curl x"], "interval": "1m30s"}
    assert d["services"]["web"]["environment"] == {"A": "1", "UNSET_ONE": None}
    assert d["services"]["db"]["mem_limit"] == 1024 ** 3
    (tmp_path / "again").mkdir()
    write(tmp_path / "again" / "compose.yaml", yaml.safe_dump(d))
    write(tmp_path / "again" / "s.txt", "x")
    q = load_project(cwd=str(tmp_path / "again"), environ={})
    assert q.services["web"].ports == p.services["web"].ports
    assert q.services["web"].volumes == p.services["web"].volumes
    assert q.services["web"].healthcheck == p.services["web"].healthcheck
    assert q.services["web"].depends_on == p.services["web"].depends_on
    assert q.services["db"].mem_limit == p.services["db"].mem_limit
    assert q.name == "p"


# -- the command line -----------------------------------------------------------------------------

def nerdpy(*args, cwd, input=None, env=None):
    e = dict(os.environ, NERDPY_CONFIG="/nonexistent", NERDPY_COMPOSE_CACHE="")
    e.pop("COMPOSE_PROJECT_NAME", None)
    e.pop("COMPOSE_FILE", None)
    e.pop("COMPOSE_PROFILES", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "nerdpy", *args], cwd=cwd, capture_output=True, text=True,
                          input=input, env=e, timeout=60)


def test_cli_config_yaml_and_json(tmp_path):
    import json

    import yaml

    f = write(tmp_path / "app.yml", """
        services:
          web:
            image: nginx:${TAG:-1.25}
            ports: ["8080:80"]
            depends_on: [db]
          db:
            image: postgres
            profiles: [db]
        volumes:
          data:
        """)
    r = nerdpy("compose", "-f", str(f), "--profile", "db", "config", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(r.stdout)
    assert doc["name"] == normalize_project_name(tmp_path.name)
    assert doc["services"]["web"]["image"] == "nginx:1.25"
    assert doc["services"]["web"]["depends_on"] == {"db": {"condition": "service_started", "required": True}}
    r = nerdpy("compose", "-f", str(f), "-p", "demo", "--profile", "db", "config", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] == "demo"
    r = nerdpy("compose", "-f", str(f), "--profile", "db", "config", "--services", cwd=tmp_path)
    assert r.stdout.split() == ["web", "db"]
    r = nerdpy("compose", "-f", str(f), "--profile", "db", "config", "--profiles", cwd=tmp_path)
    assert r.stdout.split() == ["db"]
    r = nerdpy("compose", "-f", str(f), "--profile", "db", "config", "--volumes", cwd=tmp_path)
    assert r.stdout.split() == ["data"]
    r = nerdpy("compose", "-f", str(f), "--profile", "db", "config", "-q", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == ""


def test_cli_config_errors_are_one_line_exit_1(tmp_path):
    write(tmp_path / "compose.yaml", "services:\n  web:\n    image: x\n    ports: 80\n")
    r = nerdpy("compose", "config", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip() == "nerdpy: compose.yaml:4: services.web.ports must be a list, not a number"
    r = nerdpy("compose", "-f", "-", "config", cwd=tmp_path, input="services:\n  web:\n    build: .\n")
    assert r.returncode == 1
    assert r.stderr.startswith("nerdpy: <stdin>:3:") and "nerdpy does not build images" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_env_file_and_project_directory(tmp_path):
    write(tmp_path / "proj" / "compose.yaml", "services:\n  web:\n    image: nginx:${TAG}\n")
    write(tmp_path / "tags.env", "TAG=from-env-file\n")
    r = nerdpy("compose", "--project-directory", "proj", "-f", "proj/compose.yaml", "--env-file", "tags.env",
               "config", "--images", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "nginx:from-env-file\n"


def test_cli_warnings_on_stderr(tmp_path):
    # (links is honoured since issue 16: isolation is a key nerdpy still ignores)
    write(tmp_path / "compose.yaml", "version: '3'\nservices:\n  web:\n    image: x\n    isolation: default\n")
    r = nerdpy("compose", "config", "--services", cwd=tmp_path)
    assert r.returncode == 0
    assert r.stdout == "web\n"
    assert "obsolete" in r.stderr and "services.web.isolation" in r.stderr


def test_compose_help_does_not_import_yaml():
    code = ("import sys; from nerdpy.cli import main\n"
            "try:\n    main(['compose', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('YAML', 'yaml' in sys.modules, 'jsonschema' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "YAML False False" in out
    assert "config" in out


# -- include -------------------------------------------------------------------------------------

def test_include_short_syntax(tmp_path):
    write(tmp_path / "commons" / "compose.yaml", """
        services:
          db:
            image: postgres:${PG:-15}
            volumes: [./init:/docker-entrypoint-initdb.d, dbdata:/var/lib/postgresql/data]
            env_file: db.env
        volumes:
          dbdata:
        secrets:
          pw: {file: ./pw.txt}
        """)
    write(tmp_path / "commons" / "db.env", "POSTGRES_DB=app\n")
    write(tmp_path / "commons" / ".env", "PG=16\n")
    write(tmp_path / "commons" / "pw.txt", "x")
    write(tmp_path / "app" / "compose.yaml", """
        include:
          - ../commons/compose.yaml
        services:
          web:
            image: web
            depends_on: [db]
            secrets: [pw]
        """)
    p = load_project(cwd=str(tmp_path / "app"), environ={}, project_name="app")
    assert list(p.services) == ["web", "db"]
    db = p.services["db"]
    assert db.image == "postgres:16"
    assert db.volumes[0].source == str(tmp_path / "commons" / "init")
    assert db.environment == {"POSTGRES_DB": "app"}
    assert p.volumes["dbdata"].name == "app_dbdata"
    assert p.secrets["pw"].file == str(tmp_path / "commons" / "pw.txt")
    assert p.startup_order() == ["db", "web"]
    # the including project's environment wins over the included project's .env
    p = load_project(cwd=str(tmp_path / "app"), environ={"PG": "17"}, project_name="app")
    assert p.services["db"].image == "postgres:17"


def test_include_long_syntax_and_conflicts(tmp_path):
    write(tmp_path / "sub" / "a.yml", "services:\n  a:\n    image: ${IMG}\n")
    write(tmp_path / "sub" / "a-override.yml", "services:\n  a:\n    user: nobody\n")
    write(tmp_path / "vars.env", "IMG=from-env-file\n")
    write(tmp_path / "compose.yaml", """
        include:
          - path: [sub/a.yml, sub/a-override.yml]
            env_file: vars.env
            project_directory: sub
        services:
          b: {image: b}
        """)
    p = load_project(cwd=str(tmp_path), environ={})
    assert p.services["a"].image == "from-env-file" and p.services["a"].user == "nobody"
    write(tmp_path / "compose.yaml", "include: [sub/a.yml]\nservices:\n  a: {image: other}\n")
    with pytest.raises(ModelError) as e:
        load_project(cwd=str(tmp_path), environ={"IMG": "x"})
    assert "conflicting service 'a'" in str(e.value) and e.value.line == 1


def test_include_missing_file(tmp_path):
    write(tmp_path / "compose.yaml", "include:\n  - nothere.yml\nservices:\n  a: {image: a}\n")
    with pytest.raises(FileNotFound) as e:
        load_project(cwd=str(tmp_path), environ={})
    assert "nothere.yml" in str(e.value) and e.value.line == 2


# -- dollars and parent .env ------------------------------------------------------------------------

def test_literal_dollars_survive_config_round_trip(tmp_path):
    import yaml

    p = load(tmp_path, "services:\n  web:\n    image: x\n    command: [sh, -c, 'echo $$HOME $$1']\n")
    assert p.services["web"].command == ["sh", "-c", "echo $HOME $1"]
    out = project_to_dict(p, escape=True)
    assert out["services"]["web"]["command"] == ["sh", "-c", "echo $$HOME $$1"]
    write(tmp_path / "again" / "compose.yaml", yaml.safe_dump(out))
    q = load_project(cwd=str(tmp_path / "again"), environ={"HOME": "/nope"})
    assert q.services["web"].command == ["sh", "-c", "echo $HOME $1"]


def test_dotenv_next_to_file_found_in_parent(tmp_path):
    write(tmp_path / "compose.yaml", "services:\n  web:\n    image: nginx:${TAG}\n")
    write(tmp_path / ".env", "TAG=parent\n")
    (tmp_path / "sub").mkdir()
    p = load_project(cwd=str(tmp_path / "sub"), environ={})
    assert p.services["web"].image == "nginx:parent"


# -- scalar forms -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text,seconds", [("1m30s", 90.0), ("1.5s", 1.5), ("500ms", 0.5), ("2h", 7200.0),
                                          ("1h2m3s", 3723.0), ("10us", 1e-5), ("0", 0.0), ("0s", 0.0),
                                          ("1d", 86400.0), (5, 5.0), ("-1s", -1.0)])
def test_parse_duration(text, seconds):
    from compose.units import parse_duration

    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["10", "abc", "1x", "", "s", True])
def test_parse_duration_errors(bad):
    from compose.units import parse_duration

    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("seconds,text", [(90, "1m30s"), (0.5, "500ms"), (3600, "1h0m0s"), (0, "0s"),
                                          (1.5, "1.5s"), (30, "30s"), (60, "1m0s")])
def test_format_duration(seconds, text):
    from compose.units import format_duration

    assert format_duration(seconds) == text


@pytest.mark.parametrize("text,size", [("512m", 512 * 2 ** 20), ("1g", 2 ** 30), ("1GB", 2 ** 30), ("100k", 102400),
                                       ("1.5g", int(1.5 * 2 ** 30)), ("128mb", 128 * 2 ** 20), ("1024", 1024),
                                       (2048, 2048), ("64 M", 64 * 2 ** 20), ("1KiB", 1024)])
def test_parse_size(text, size):
    from compose.units import parse_size

    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["lots", "1x", "-1m", "m", True])
def test_parse_size_errors(bad):
    from compose.units import parse_size

    with pytest.raises(ValueError):
        parse_size(bad)


def test_float_values_print_like_go(tmp_path):
    env = load(tmp_path, "services:\n  web:\n    image: x\n    environment: {A: 1e3, B: 1.5, C: 2.0}\n") \
        .services["web"].environment
    assert env == {"A": "1000", "B": "1.5", "C": "2"}


def test_profiles_from_dotenv(tmp_path):
    write(tmp_path / ".env", "COMPOSE_PROFILES=test\n")
    assert "bar" in load(tmp_path, PROFILES).services


def test_cli_compose_alone_prints_help(tmp_path):
    r = nerdpy("compose", cwd=tmp_path)
    assert r.returncode == 0 and "config" in r.stdout


def test_config_hash(tmp_path):
    base = "services:\n  web:\n    image: x\n    environment: {A: '1'}\n"
    h1 = config_hash(load(tmp_path, base).services["web"])
    assert h1 == config_hash(load(tmp_path, base).services["web"])
    assert h1 == config_hash(load(tmp_path, base + "    scale: 3\n").services["web"])
    assert h1 != config_hash(load(tmp_path, base.replace("'1'", "'2'")).services["web"])
    assert len(h1) == 64


def test_config_renders_every_key_of_the_input(tmp_path):
    # issue 16: keys nerdpy does not act on are printed as written, not dropped
    text = """
        services:
          web:
            image: nginx
            blkio_config: {weight: 300}
            storage_opt: {size: 1G}
            networks:
              front: {gw_priority: 10, interface_name: eth5, aliases: [w]}
            deploy:
              mode: replicated
              placement: {constraints: ["node.role==manager"], preferences: [{spread: node.labels.zone}]}
              update_config: {parallelism: 2}
              endpoint_mode: vip
              resources:
                limits: {memory: 64m}
                reservations: {memory: 32m, devices: [{capabilities: [gpu], count: 1}]}
            group_add: [audio]
            oom_score_adj: 10
            links: [db]
            post_start: [{command: ["true"]}]
          db: {image: x}
        networks:
          front: {enable_ipv4: true}
        secrets:
          s: {file: ./s.txt, template_driver: golang}
        """
    (tmp_path / "s.txt").write_text("x")
    p = load(tmp_path, text)
    d = project_to_dict(p)
    web = d["services"]["web"]
    assert web["blkio_config"] == {"weight": 300} and web["storage_opt"] == {"size": "1G"}
    assert web["networks"]["front"] == {"aliases": ["w"], "gw_priority": 10, "interface_name": "eth5"}
    dep = web["deploy"]
    assert dep["placement"] == {"constraints": ["node.role==manager"], "preferences": [{"spread": "node.labels.zone"}]}
    assert dep["update_config"] == {"parallelism": 2} and dep["endpoint_mode"] == "vip"
    assert dep["resources"]["reservations"] == {"memory": 32 << 20, "devices": [{"capabilities": ["gpu"], "count": 1}]}
    assert web["group_add"] == ["audio"] and web["oom_score_adj"] == 10 and web["links"] == ["db"]
    assert web["post_start"] == [{"command": ["true"]}]
    assert d["networks"]["front"]["enable_ipv4"] is True
    assert d["secrets"]["s"]["template_driver"] == "golang"
    # the rendering loads back to the same rendering
    import yaml

    again = tmp_path / "again"
    again.mkdir()
    (again / "s.txt").write_text("x")
    d2 = project_to_dict(load(again, yaml.safe_dump(d)))
    assert d2["services"] == d["services"]


def test_config_hash_covers_the_definitions_of_used_networks_and_volumes(tmp_path):
    base = "services:\n  a:\n    image: x\n    volumes: [v:/v]\n    networks: [n]\n"

    def h(extra: str) -> str:
        p = load(tmp_path, base + extra, project_name="x")
        return config_hash(p.services["a"], p)

    plain = h("volumes:\n  v: {}\nnetworks:\n  n: {}\n")
    # definitions at their defaults: the service's own hash, as before
    p = load(tmp_path, base + "volumes:\n  v: {}\nnetworks:\n  n: {}\n", project_name="x")
    assert plain == config_hash(p.services["a"])
    assert h("volumes:\n  v: {labels: {a: b}}\nnetworks:\n  n: {}\n") != plain
    assert h("volumes:\n  v: {}\nnetworks:\n  n: {internal: true}\n") != plain
    assert h("volumes:\n  v: {}\nnetworks:\n  n: {}\n  unused: {internal: true}\n") == plain
