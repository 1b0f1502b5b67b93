"""Merging compose files (specification section 13), !reset / !override, and extends."""
import textwrap

import pytest

from compose.errors import ExtendsError
from compose.loader import load_project
from compose.merge import merge, merge_files
from compose.yamlsrc import parse


@pytest.fixture(autouse=True)
def _no_validation_cache(monkeypatch):
    monkeypatch.setenv("NERDPY_COMPOSE_CACHE", "")


def src(text, name="f.yaml", directory="/p"):
    return parse(textwrap.dedent(text), name, f"{directory}/{name}", directory)


def merged(*texts):
    return merge_files([src(t, f"f{i}.yaml") for i, t in enumerate(texts)])


def svc(*texts, name="foo"):
    return merged(*texts)["services"][name]


def test_mappings_merge_by_key():
    s = svc("""
        services:
          foo: {key1: value1, key2: value2}
        """, """
        services:
          foo: {key2: VALUE, key3: value3}
        """)
    assert s == {"key1": "value1", "key2": "VALUE", "key3": "value3"}


def test_new_services_are_added():
    m = merged("services: {a: {image: a}}", "services: {b: {image: b}}")
    assert list(m["services"]) == ["a", "b"]


def test_sequences_are_appended():
    s = svc("services: {foo: {security_opt: [a]}}", "services: {foo: {security_opt: [b]}}")
    assert s["security_opt"] == ["a", "b"]
    s = svc("services: {foo: {devices: ['/dev/a']}}", "services: {foo: {devices: ['/dev/b']}}")
    assert s["devices"] == ["/dev/a", "/dev/b"]


def test_dns_string_or_list_appended_and_deduplicated():
    s = svc("services: {foo: {dns: 1.1.1.1}}", "services: {foo: {dns: [8.8.8.8, 1.1.1.1]}}")
    assert s["dns"] == ["1.1.1.1", "8.8.8.8"]


@pytest.mark.parametrize("key", ["expose", "cap_add", "cap_drop", "dns_search", "profiles"])
def test_set_like_sequences_deduplicated(key):
    s = svc(f"services: {{foo: {{{key}: ['a', 'b']}}}}", f"services: {{foo: {{{key}: ['b', 'c']}}}}")
    assert s[key] == ["a", "b", "c"]


@pytest.mark.parametrize("key", ["command", "entrypoint"])
def test_shell_commands_replaced(key):
    s = svc(f"services: {{foo: {{{key}: [echo, foo]}}}}", f"services: {{foo: {{{key}: [echo, bar]}}}}")
    assert s[key] == ["echo", "bar"]
    s = svc(f"services: {{foo: {{{key}: [echo, foo]}}}}", f"services: {{foo: {{{key}: echo bar}}}}")
    assert s[key] == "echo bar"


def test_healthcheck_test_replaced_other_keys_merged():
    s = svc("""
        services:
          foo:
            healthcheck: {test: [CMD, a], interval: 5s}
        """, """
        services:
          foo:
            healthcheck: {test: [CMD, b], retries: 2}
        """)
    assert s["healthcheck"] == {"test": ["CMD", "b"], "interval": "5s", "retries": 2}


def test_volumes_unique_by_target():
    s = svc("services: {foo: {volumes: ['foo:/work', '/data']}}", "services: {foo: {volumes: ['bar:/work']}}")
    assert s["volumes"] == ["bar:/work", "/data"]


def test_volumes_long_and_short_share_target():
    s = svc("services: {foo: {volumes: ['./a:/work']}}",
            "services: {foo: {volumes: [{type: volume, source: v, target: /work}, '/other']}}")
    assert s["volumes"] == [{"type": "volume", "source": "v", "target": "/work"}, "/other"]


def test_ports_unique_by_ip_target_published_protocol():
    s = svc("services: {foo: {ports: ['8080:80', '53:53/udp']}}",
            "services: {foo: {ports: ['8080:80', '53:53/tcp', '127.0.0.1:8080:80']}}")
    keys = [(p.get("host_ip"), p["target"], p.get("published"), p["protocol"]) for p in s["ports"]]
    assert keys == [(None, 80, "8080", "tcp"), (None, 53, "53", "udp"), (None, 53, "53", "tcp"),
                    ("127.0.0.1", 80, "8080", "tcp")]


def test_secrets_and_configs_unique_by_target():
    s = svc("""
        services:
          foo:
            secrets: [a, {source: b, target: /x}]
            configs: [c]
        """, """
        services:
          foo:
            secrets: [{source: a, mode: 0400}, {source: z, target: /x}]
            configs: [{source: c, target: /c}, d]
        """)
    assert s["secrets"] == [{"source": "a", "mode": 0o400}, {"source": "z", "target": "/x"}]
    assert s["configs"] == [{"source": "c", "target": "/c"}, "d"]


def test_environment_list_and_map_merged_by_key():
    s = svc("services: {foo: {environment: [A=1, B=2, C]}}", "services: {foo: {environment: {B: 3, D: 4}}}")
    assert s["environment"] == {"A": "1", "B": 3, "C": None, "D": 4}


def test_labels_and_sysctls_merged_by_key():
    s = svc("services: {foo: {labels: {a: '1'}, sysctls: [x=1]}}",
            "services: {foo: {labels: [a=2, b=3], sysctls: {y: 2}}}")
    assert s["labels"] == {"a": "2", "b": "3"}
    assert s["sysctls"] == {"x": "1", "y": 2}


def test_depends_on_list_and_map():
    s = svc("services: {foo: {depends_on: [db, cache]}}",
            "services: {foo: {depends_on: {db: {condition: service_healthy}}}}")
    assert s["depends_on"] == {"db": {"condition": "service_healthy", "required": True},
                               "cache": {"condition": "service_started", "required": True}}


def test_service_networks_list_and_map():
    s = svc("services: {foo: {networks: [front, back]}}",
            "services: {foo: {networks: {back: {aliases: [b]}, other: }}}")
    assert s["networks"] == {"front": None, "back": {"aliases": ["b"]}, "other": None}


def test_network_aliases_appended():
    s = svc("services: {foo: {networks: {n: {aliases: [a]}}}}", "services: {foo: {networks: {n: {aliases: [b]}}}}")
    assert s["networks"]["n"]["aliases"] == ["a", "b"]


def test_ulimits_entries_replaced():
    s = svc("services: {foo: {ulimits: {nproc: 10, nofile: {soft: 1, hard: 2}}}}",
            "services: {foo: {ulimits: {nofile: 5}}}")
    assert s["ulimits"] == {"nproc": 10, "nofile": 5}


def test_logging_replaced_when_driver_changes():
    s = svc("services: {foo: {logging: {driver: syslog, options: {a: 1}}}}",
            "services: {foo: {logging: {driver: json-file, options: {max-size: 1m}}}}")
    assert s["logging"] == {"driver": "json-file", "options": {"max-size": "1m"}}
    s = svc("services: {foo: {logging: {driver: json-file, options: {a: 1}}}}",
            "services: {foo: {logging: {options: {max-size: 1m}}}}")
    assert s["logging"] == {"driver": "json-file", "options": {"a": 1, "max-size": "1m"}}


def test_extra_hosts_merged():
    s = svc("services: {foo: {extra_hosts: ['a:1.1.1.1']}}", "services: {foo: {extra_hosts: ['b:2.2.2.2', 'a:1.1.1.1']}}")
    assert s["extra_hosts"] == ["a:1.1.1.1", "b:2.2.2.2"]


def test_null_override_of_a_resource_keeps_it():
    m = merged("volumes: {data: {driver: local}}", "volumes: {data: }")
    assert m["volumes"]["data"] == {"driver": "local"}


def test_scalars_replaced_and_types_may_change():
    s = svc("services: {foo: {image: a, tty: true}}", "services: {foo: {image: b, tty: false}}")
    assert s == {"image": "b", "tty": False}


def test_three_files_in_order():
    s = svc("services: {foo: {image: a}}", "services: {foo: {image: b}}", "services: {foo: {image: c}}")
    assert s["image"] == "c"


def test_reset_tag_removes_values():
    s = svc("""
        services:
          foo:
            image: myapp
            ports: ["8080:80"]
            environment:
              FOO: BAR
              KEEP: 1
        """, """
        services:
          foo:
            ports: !reset []
            environment:
              FOO: !reset null
        """)
    assert s == {"image": "myapp", "environment": {"KEEP": 1}}


def test_reset_of_a_whole_service_key_and_in_the_same_file():
    s = svc("services: {foo: {image: a, command: x, healthcheck: {test: [NONE]}}}",
            "services: {foo: {healthcheck: !reset {}, command: !reset null, user: !reset x}}")
    assert s == {"image": "a"}


def test_override_tag_replaces_instead_of_merging():
    s = svc("""
        services:
          foo:
            image: myapp
            ports: ["8080:80"]
            environment: {A: 1, B: 2}
        """, """
        services:
          foo:
            ports: !override
              - "8443:443"
            environment: !override
              C: 3
        """)
    assert s["ports"] == ["8443:443"]
    assert s["environment"] == {"C": 3}


def test_override_tag_on_scalar():
    s = svc("services: {foo: {image: a, scale: 2}}", "services: {foo: {scale: !override 3}}")
    assert s["scale"] == 3


def test_merge_function_direct():
    assert merge({"a": [1]}, {"a": [2]}) == {"a": [1, 2]}
    assert merge({"a": {"b": 1}}, {"a": {"c": 2}}) == {"a": {"b": 1, "c": 2}}
    assert merge({"a": 1}, {"a": None}) == {"a": None}


def test_override_file_through_load(tmp_path):
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n    ports: ['80:80']\n")
    (tmp_path / "compose.override.yaml").write_text("services:\n  web:\n    ports: !override ['81:80']\n")
    p = load_project(cwd=str(tmp_path), environ={})
    assert [x.published for x in p.services["web"].ports] == ["81"]


# -- extends -----------------------------------------------------------------------------------

def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_extends_same_file(tmp_path):
    f = write(tmp_path / "compose.yaml", """
        services:
          base:
            image: busybox
            environment: {A: "1"}
            command: [sleep, "1"]
          web:
            extends: base
            environment: {B: "2"}
            command: [sleep, "2"]
          worker:
            extends: {service: web}
            user: nobody
        """)
    p = load_project([str(f)], environ={})
    web, worker = p.services["web"], p.services["worker"]
    assert web.image == "busybox" and web.environment == {"A": "1", "B": "2"}
    assert web.command == ["sleep", "2"]
    assert worker.environment == {"A": "1", "B": "2"} and worker.user == "nobody"


def test_extends_other_file_with_relative_paths(tmp_path):
    write(tmp_path / "common" / "base.yml", """
        services:
          app:
            image: alpine
            env_file: app.env
            volumes:
              - ./data:/data
              - named:/named
        """)
    write(tmp_path / "common" / "app.env", "FROM_FILE=yes\n")
    f = write(tmp_path / "proj" / "compose.yaml", """
        services:
          web:
            extends:
              file: ../common/base.yml
              service: app
            volumes:
              - ./local:/local
        volumes:
          named:
        """)
    p = load_project([str(f)], environ={})
    web = p.services["web"]
    assert web.image == "alpine"
    assert web.environment == {"FROM_FILE": "yes"}
    srcs = {v.target: v.source for v in web.volumes}
    assert srcs["/data"] == str(tmp_path / "common" / "data")
    assert srcs["/local"] == str(tmp_path / "proj" / "local")
    assert srcs["/named"] == "named"


def test_extends_chain_across_files(tmp_path):
    write(tmp_path / "a.yml", "services:\n  one:\n    image: one\n    labels: {a: '1'}\n")
    write(tmp_path / "sub" / "b.yml", "services:\n  two:\n    extends: {file: ../a.yml, service: one}\n"
                                      "    labels: {b: '2'}\n")
    f = write(tmp_path / "compose.yaml", "services:\n  three:\n    extends: {file: sub/b.yml, service: two}\n")
    p = load_project([str(f)], environ={})
    assert p.services["three"].labels == {"a": "1", "b": "2"}
    assert p.services["three"].image == "one"


def test_extends_missing_service(tmp_path):
    f = write(tmp_path / "compose.yaml", "services:\n  web:\n    image: x\n    extends: nothere\n")
    with pytest.raises(ExtendsError) as e:
        load_project([str(f)], environ={})
    assert "nothere" in str(e.value) and e.value.line == 4


def test_extends_missing_file(tmp_path):
    f = write(tmp_path / "compose.yaml", "services:\n  web:\n    extends: {file: gone.yml, service: x}\n")
    with pytest.raises(Exception) as e:
        load_project([str(f)], environ={})
    assert "gone.yml" in str(e.value)


def test_extends_cycle(tmp_path):
    f = write(tmp_path / "compose.yaml", """
        services:
          a: {image: x, extends: b}
          b: {image: x, extends: a}
        """)
    with pytest.raises(ExtendsError) as e:
        load_project([str(f)], environ={})
    assert "circular" in str(e.value)


def test_extends_is_interpolated(tmp_path):
    write(tmp_path / "base.yml", "services:\n  app:\n    image: ${IMG:-fallback}\n")
    f = write(tmp_path / "compose.yaml", "services:\n  web:\n    extends: {file: base.yml, service: app}\n")
    assert load_project([str(f)], environ={"IMG": "mine"}).services["web"].image == "mine"
    assert load_project([str(f)], environ={}).services["web"].image == "fallback"


def test_reset_whole_service_and_top_level_resource():
    m = merged("services: {a: {image: a}, b: {image: b}}\nvolumes: {v: {}}",
               "services: {b: !reset null}\nvolumes: !reset {}")
    assert list(m["services"]) == ["a"] and "volumes" not in m
