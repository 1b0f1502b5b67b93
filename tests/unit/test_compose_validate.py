"""Malformed compose files: each gives one error naming the right thing, file and line."""
import textwrap

import pytest

from compose.errors import (ComposeError, CycleError, ExtendsError, InterpolationError, ModelError,
                            SchemaError, YAMLSyntaxError)
from compose.loader import load_project


@pytest.fixture(autouse=True)
def _no_validation_cache(monkeypatch):
    monkeypatch.setenv("NERDPY_COMPOSE_CACHE", "")


# (id, file text, error class, fragments the message must contain, line)
CASES = [
    ("ports-not-a-list", """
services:
  web:
    image: nginx
    ports: 80
""", SchemaError, ["services.web.ports", "must be a list"], 4),
    ("unknown-service-key", """
services:
  web:
    image: nginx
    port: ["80"]
""", SchemaError, ["services.web", "'port'", "not allowed"], 4),
    ("image-not-a-string", """
services:
  web:
    image: [nginx]
""", SchemaError, ["services.web.image", "must be a string"], 3),
    ("bad-depends-condition", """
services:
  web:
    image: nginx
    depends_on:
      db:
        condition: service_ready
  db:
    image: x
""", SchemaError, ["services.web.depends_on.db.condition", "service_healthy", "service_ready"], 6),
    ("depends-without-condition", """
services:
  db: {image: x}
  web:
    image: nginx
    depends_on:
      db: {required: true}
""", SchemaError, ["services.web.depends_on.db", "'condition' is required"], 6),
    ("environment-value-list", """
services:
  web:
    image: nginx
    environment:
      A: [1, 2]
""", SchemaError, ["services.web.environment.A", "not a list"], 5),
    ("volume-type-unknown", """
services:
  web:
    image: nginx
    volumes:
      - type: bogus
        target: /x
""", SchemaError, ["services.web.volumes[0].type", "bind", "bogus"], 5),
    ("volume-long-without-type", """
services:
  web:
    image: nginx
    volumes:
      - source: a
        target: /x
""", SchemaError, ["services.web.volumes[0]", "'type' is required"], 5),
    ("healthcheck-test-number", """
services:
  web:
    image: nginx
    healthcheck:
      test: 5
""", SchemaError, ["services.web.healthcheck.test", "a string or a list"], 5),
    ("healthcheck-interval-number", """
services:
  web:
    image: nginx
    healthcheck:
      interval: 10
""", SchemaError, ["services.web.healthcheck.interval", "must be a string"], 5),
    ("network-alias-typo", """
services:
  web:
    image: nginx
    networks:
      front:
        aliasses: [a]
networks:
  front:
""", SchemaError, ["services.web.networks.front", "'aliasses'"], 6),
    ("top-level-typo", """
service:
  web:
    image: x
""", SchemaError, ["top-level", "'service'"], 1),
    ("service-name-with-space", """
services:
  ok: {image: x}
  "we b":
    image: x
""", SchemaError, ["invalid name 'we b'"], 3),
    ("command-mapping", """
services:
  web:
    image: nginx
    command: {a: b}
""", SchemaError, ["services.web.command", "not a mapping"], 4),
    ("ulimit-without-hard", """
services:
  web:
    image: nginx
    ulimits:
      nofile: {soft: 1}
""", SchemaError, ["services.web.ulimits.nofile", "'hard' is required"], 5),
    ("pull-policy-unknown", """
services:
  web:
    image: nginx
    pull_policy: sometimes
""", SchemaError, ["services.web.pull_policy", "sometimes"], 4),
    ("cap-add-duplicates", """
services:
  web:
    image: nginx
    cap_add: [NET_ADMIN, NET_ADMIN]
""", SchemaError, ["services.web.cap_add", "duplicate"], 4),
    ("ipam-typo", """
networks:
  n:
    ipam:
      config:
        - subnet: 10.0.0.0/24
          gw: 10.0.0.1
services:
  web: {image: x}
""", SchemaError, ["networks.n.ipam.config[0]", "'gw'"], 6),
    ("volume-top-level-typo", """
services:
  web: {image: x}
volumes:
  v:
    external: true
    bogus: 1
""", SchemaError, ["volumes.v", "'bogus'"], 6),
    ("extends-without-service", """
services:
  web:
    image: x
    extends: {file: a.yml}
""", SchemaError, ["services.web.extends", "'service' is required"], 4),
    ("secret-long-typo", """
services:
  web:
    image: x
    secrets:
      - source: s
        bogus: 1
""", SchemaError, ["services.web.secrets[0]", "'bogus'"], 6),
    ("port-long-typo", """
services:
  web:
    image: x
    ports:
      - target: 80
        published: 8080
        protocl: tcp
""", SchemaError, ["services.web.ports[0]", "'protocl'"], 7),
    ("tmpfs-mapping", """
services:
  web:
    image: x
    tmpfs: {a: b}
""", SchemaError, ["services.web.tmpfs", "not a mapping"], 4),
    ("restart-policy-typo", """
services:
  web:
    image: x
    deploy:
      restart_policy:
        max_attempt: 3
""", SchemaError, ["services.web.deploy.restart_policy", "'max_attempt'"], 6),
    ("deploy-gpus-limit", """
services:
  web:
    image: x
    deploy:
      resources:
        limits:
          gpus: 1
""", SchemaError, ["services.web.deploy.resources.limits", "'gpus'"], 7),
    # YAML itself
    ("yaml-syntax", """
services:
  web:
    image: x
   ports: []
""", YAMLSyntaxError, ["yaml:"], 4),
    ("yaml-duplicate-key", """
services:
  web:
    image: x
    image: y
""", YAMLSyntaxError, ["'image' already defined at line 3"], 4),
    ("yaml-top-level-list", """
- services
""", YAMLSyntaxError, ["top-level object must be a mapping"], 1),
    ("yaml-unclosed-quote", """
services:
  web:
    image: "x
""", YAMLSyntaxError, ["yaml:"], None),
    ("yaml-unknown-tag", """
services:
  web:
    image: !custom x
""", YAMLSyntaxError, ["!custom"], 3),
    # interpolation
    ("missing-required-variable", """
services:
  web:
    image: "nginx:${TAG:?TAG must be set}"
""", InterpolationError, ["services.web.image", "TAG", "TAG must be set"], 3),
    ("invalid-interpolation", """
services:
  web:
    image: x
    command: "echo ${FOO"
""", InterpolationError, ["invalid interpolation format for services.web.command"], 4),
    # the model
    ("build-without-image", """
services:
  web:
    build: .
""", ModelError, ["nerdpy does not build images", "web"], 3),
    ("no-image", """
services:
  web:
    command: ["true"]
""", ModelError, ["neither an image nor a build"], 2),
    ("undefined-dependency", """
services:
  web:
    image: x
    depends_on: [db]
""", ModelError, ["depends on undefined service 'db'"], 4),
    ("dependency-cycle", """
services:
  a:
    image: x
    depends_on: [b]
  b:
    image: x
    depends_on: [a]
""", CycleError, ["dependency cycle", "a -> b -> a"], 4),
    ("self-dependency", """
services:
  a:
    image: x
    depends_on: [a]
""", CycleError, ["a -> a"], 4),
    ("undefined-network", """
services:
  web:
    image: x
    networks: [front]
""", ModelError, ["undefined network 'front'"], 4),
    ("undefined-volume", """
services:
  web:
    image: x
    volumes:
      - data:/data
""", ModelError, ["undefined volume 'data'"], 5),
    ("undefined-secret", """
services:
  web:
    image: x
    secrets: [pw]
""", ModelError, ["undefined secret 'pw'"], 4),
    ("bad-short-port", """
services:
  web:
    image: x
    ports:
      - "80"
      - "eighty:80"
""", ModelError, ["services.web.ports[1]", "eighty"], 6),
    ("port-out-of-range", """
services:
  web:
    image: x
    ports: ["70000:80"]
""", ModelError, ["services.web.ports[0]", "65535"], 4),
    ("relative-volume-target", """
services:
  web:
    image: x
    volumes: ["./a:data"]
""", ModelError, ["services.web.volumes[0]", "absolute"], 4),
    ("bad-duration", """
services:
  web:
    image: x
    stop_grace_period: 10
""", SchemaError, ["services.web.stop_grace_period", "must be a string"], 4),
    ("duration-without-unit", """
services:
  web:
    image: x
    healthcheck:
      interval: "10"
""", ModelError, ["services.web.healthcheck.interval", "missing unit"], 5),
    ("bad-size", """
services:
  web:
    image: x
    mem_limit: lots
""", ModelError, ["services.web.mem_limit", "invalid size"], 4),
    ("bad-restart", """
services:
  web:
    image: x
    restart: sometimes
""", ModelError, ["services.web.restart", "sometimes"], 4),
    ("network-mode-and-networks", """
services:
  web:
    image: x
    network_mode: host
    networks: [default]
""", ModelError, ["mutually exclusive"], 4),
    ("scale-and-replicas", """
services:
  web:
    image: x
    scale: 2
    deploy: {replicas: 3}
""", ModelError, ["'scale' and 'deploy.replicas'"], 4),
    ("mem-limit-conflict", """
services:
  web:
    image: x
    mem_limit: 1g
    deploy: {resources: {limits: {memory: 2g}}}
""", ModelError, ["'mem_limit' and 'deploy.resources.limits.memory'"], 4),
    ("healthcheck-bad-test", """
services:
  web:
    image: x
    healthcheck:
      test: [curl, localhost]
""", ModelError, ["CMD-SHELL", "curl"], 5),
    ("container-name-with-scale", """
services:
  web:
    image: x
    container_name: fixed
    scale: 2
""", ModelError, ["container_name", "scale"], 4),
    ("bad-boolean", """
services:
  web:
    image: x
    privileged: "maybe"
""", ModelError, ["services.web.privileged", "maybe"], 4),
    ("invalid-project-name", """
name: My Project
services:
  web: {image: x}
""", ComposeError, ["invalid project name 'My Project'"], 1),
    ("secret-file-missing", """
services:
  web: {image: x, secrets: [s]}
secrets:
  s:
    file: ./nothere.txt
""", ModelError, ["secret file ./nothere.txt not found"], 5),
    ("env-file-missing", """
services:
  web:
    image: x
    env_file: missing.env
""", ModelError, ["env file", "missing.env", "not found"], 4),
    ("extends-unknown", """
services:
  web:
    image: x
    extends: base
""", ExtendsError, ['cannot extend service "base"', "not found"], 4),
]


@pytest.mark.parametrize("text,cls,fragments,line", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed(tmp_path, text, cls, fragments, line):
    f = tmp_path / "compose.yaml"
    f.write_text(textwrap.dedent(text).lstrip("\n"))
    with pytest.raises(cls) as e:
        load_project([str(f)], environ={}, cwd=str(tmp_path))
    msg = str(e.value)
    for frag in fragments:
        assert frag in msg, msg
    assert e.value.file == "compose.yaml", msg
    if line is not None:
        assert e.value.line == line, msg
        assert msg.startswith(f"compose.yaml:{line}: ")


def test_at_least_thirty_cases():
    assert len(CASES) >= 30


def test_error_in_second_file_names_that_file(tmp_path):
    (tmp_path / "a.yml").write_text("services:\n  web:\n    image: x\n")
    (tmp_path / "b.yml").write_text("services:\n  web:\n    ports:\n      - target: 80\n        bogus: 1\n")
    with pytest.raises(SchemaError) as e:
        load_project(["a.yml", "b.yml"], environ={}, cwd=str(tmp_path))
    assert str(e.value).startswith("b.yml:5: services.web.ports[0]")


def test_model_error_located_in_override_file(tmp_path):
    (tmp_path / "a.yml").write_text("services:\n  web:\n    image: x\n")
    (tmp_path / "b.yml").write_text("services:\n  web:\n\n    depends_on: [ghost]\n")
    with pytest.raises(ModelError) as e:
        load_project(["a.yml", "b.yml"], environ={}, cwd=str(tmp_path))
    assert (e.value.file, e.value.line) == ("b.yml", 4)


def test_x_keys_are_allowed_everywhere(tmp_path):
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""
        x-top: {anything: [1, 2]}
        services:
          web:
            image: x
            x-mine: 1
            healthcheck: {test: [NONE], x-note: hi}
            deploy: {x-d: 1, resources: {limits: {cpus: 1, x-l: 2}}}
            ports: [{target: 80, x-p: 1}]
        networks:
          n: {x-n: 1}
        """))
    p = load_project(cwd=str(tmp_path), environ={})
    assert p.extensions == {"x-top": {"anything": [1, 2]}}
    assert p.services["web"].extensions == {"x-mine": 1}
    assert not [w for w in p.warnings if "ignores" in w]


def test_unimplemented_keys_give_one_warning(tmp_path):
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""
        services:
          web:
            image: x
            storage_opt: {size: 1G}
            cgroup_parent: mine
            deploy:
              placement: {constraints: []}
              resources: {reservations: {memory: 10m, cpus: "0.5"}}
          db:
            image: y
            blkio_config: {weight: 10}
        """))
    seen = []
    p = load_project(cwd=str(tmp_path), environ={}, on_warning=seen.append)
    ignored = [w for w in seen if "does not implement" in w]
    assert len(ignored) == 1
    for key in ("services.web.storage_opt", "services.web.cgroup_parent", "services.web.deploy.placement",
                "services.web.deploy.resources.reservations.cpus", "services.db.blkio_config"):
        assert key in ignored[0]
    assert "reservations.memory" not in ignored[0]
    assert seen == p.warnings


def test_schema_checked_before_merge_per_file(tmp_path):
    # an override file need not be a complete project: no image is fine
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: x\n")
    (tmp_path / "compose.override.yaml").write_text("services:\n  web:\n    environment: [A=1]\n")
    p = load_project(cwd=str(tmp_path), environ={})
    assert p.services["web"].environment == {"A": "1"}


def test_valid_files_are_not_validated_twice(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: x\n")
    code = ("import sys; from compose.loader import load_project\n"
            f"load_project(cwd={str(tmp_path)!r}, environ={{}})\n"
            "print('JSONSCHEMA', 'jsonschema' in sys.modules)\n")
    env = dict(os.environ, NERDPY_COMPOSE_CACHE=str(tmp_path / "cache"))
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert "JSONSCHEMA True" in first.stdout, first.stderr
    assert "JSONSCHEMA False" in second.stdout, second.stderr
    # an invalid file is never cached
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: [x]\n")
    for _ in range(2):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
        assert "services.web.image must be a string" in r.stderr
