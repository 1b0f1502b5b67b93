"""The same bad run/create input is refused by every front end: the CLI (exit 125, one line), the
Python API (the engine's InvalidArgument) and compose (an error naming the service), all through
engine/containers/options.py. None of these cases needs an image: the checks come first."""
import os
import subprocess
import sys
import textwrap

import pytest

from nerdpy.engine.errors import InvalidArgument

# (CLI flags, Client options, compose service keys (YAML), what the error says)
CASES = {
    "memory": (["-m", "4m"], {"memory": "4m"}, "mem_limit: 4m", "minimum memory limit allowed is 6MB"),
    "memory-bytes": (["-m", "1000"], {"memory": 1000}, "mem_limit: 1000", "minimum memory limit allowed is 6MB"),
    "hostname": (["-h", "bad host"], {"hostname": "bad host"}, "hostname: 'bad host'", "invalid hostname format"),
    "user": (["-u", "a:b:c"], {"user": "a:b:c"}, "user: 'a:b:c'", "invalid user"),
    "mount": (["-v", "bad!name:/data"], {"volumes": ["bad!name:/data"]}, "volumes: ['/srv:/']",
              None),
    "restart": (["--restart", "sometimes"], {"restart": "sometimes"}, "restart: sometimes",
                "invalid restart policy"),
    "port": (["-p", "99999:80"], {"ports": ["99999:80"]}, "ports: ['99999:80']", None),
    "ulimit": (["--ulimit", "nofile=20:10"], {"ulimits": [("nofile", 20, 10)]},
               "ulimits: {nofile: {soft: 20, hard: 10}}", None),  # compose's loader refuses it first
    "sysctl": (["--sysctl", "kernel.hostname=x"], {"sysctls": {"kernel.hostname": "x"}},
               "sysctls: {kernel.hostname: x}", "is not allowed"),
    "stop-signal": (["--stop-signal", "SIGBOGUS"], {"stop_signal": "SIGBOGUS"}, "stop_signal: SIGBOGUS", None),
}


def _env():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    e = dict(os.environ, NERDPY_CONFIG="/nonexistent", NERDPY_COMPOSE_CACHE="",
             PYTHONPATH=os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    for k in ("COMPOSE_PROJECT_NAME", "COMPOSE_FILE", "COMPOSE_PROFILES"):
        e.pop(k, None)
    return e


def _nerdpy(*args, data_root, cwd=None):
    return subprocess.run([sys.executable, "-m", "nerdpy", "--data-root", str(data_root), *args], cwd=cwd,
                          capture_output=True, text=True, env=_env(), timeout=60)


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_refuses(case, tmp_path):
    flags, _, _, message = CASES[case]
    r = _nerdpy("create", *flags, "busybox", data_root=tmp_path / "root")
    assert r.returncode == 125, r.stderr
    assert r.stderr.startswith("nerdpy: ") and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    if message:
        assert message in r.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_client_refuses(case, tmp_path):
    from nerdpy.client import Client

    _, options, _, message = CASES[case]
    with Client(data_root=str(tmp_path / "root")) as client:
        with pytest.raises(InvalidArgument) as e:
            client.create("busybox", ["true"], **options)
        assert client.containers() == []
    if message:
        assert message in str(e.value)


@pytest.mark.parametrize("case", sorted(CASES))
def test_compose_refuses(case, tmp_path):
    _, _, keys, message = CASES[case]
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(f"""\
        services:
          web:
            image: busybox
            {keys}
        """))
    r = _nerdpy("compose", "-p", "demo", "up", "-d", data_root=tmp_path / "root", cwd=tmp_path)
    assert r.returncode != 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "web" in r.stderr, r.stderr
    if message:
        assert message in r.stderr, r.stderr
    ps = _nerdpy("ps", "-a", "-q", data_root=tmp_path / "root")
    assert ps.stdout == ""


def test_cli_and_client_say_the_same():
    """One module, one message: the Client's error is the CLI's (for values both spell alike)."""
    from nerdpy.client import _spec

    for _, options, _, message in CASES.values():
        if message:
            with pytest.raises(InvalidArgument, match=message.split("(")[0]):
                _spec("busybox", ["true"], options)


# units -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,size", [("64m", 64 << 20), ("1g", 1 << 30), ("1.5g", 3 << 29), ("512", 512),
                                       ("2GiB", 2 << 30), ("100k", 100 << 10), ("64 M", 64 << 20),
                                       ("128mb", 128 << 20), (4096, 4096)])
def test_parse_size(text, size):
    from nerdpy.engine.util.units import parse_size

    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["lots", "1x", "-1m", "m", "", "1i", True, -5, "99999999999p"])
def test_parse_size_errors(bad):
    from nerdpy.engine.util.units import parse_size

    with pytest.raises(ValueError):
        parse_size(bad)


@pytest.mark.parametrize("text,ns", [("1m30s", 90 * 10**9), ("1.5s", 1_500_000_000), ("500ms", 500_000_000),
                                     ("2h", 7200 * 10**9), ("10us", 10_000), ("0", 0), ("-1s", -10**9), (3, 3 * 10**9)])
def test_parse_duration(text, ns):
    from nerdpy.engine.util.units import parse_duration_ns

    assert parse_duration_ns(text) == ns


def test_duration_forms():
    from nerdpy.engine.util.units import parse_duration, parse_duration_ns

    with pytest.raises(ValueError, match="missing unit"):
        parse_duration_ns("10")
    assert parse_duration_ns("10", bare_seconds=True) == 10 * 10**9
    with pytest.raises(ValueError):
        parse_duration_ns("1d")
    assert parse_duration("1d", days=True) == 86400.0
    for bad in ("abc", "1x", "s", "", "-"):
        with pytest.raises(ValueError):
            parse_duration_ns(bad)


def test_one_size_parser_everywhere():
    """The CLI, compose and the engine's log max-size agree on what a size is."""
    from compose.units import parse_size as compose_size
    from nerdpy.engine.containers.lifecycle import parse_size as engine_size
    from nerdpy.engine.containers.options import _ram_in_bytes

    for text in ("64m", "1.5g", "2GiB", "100"):
        assert compose_size(text) == engine_size(text) == _ram_in_bytes(text, "-m")
    for bad in ("lots", "1x"):
        with pytest.raises(InvalidArgument):
            engine_size(bad)
        with pytest.raises(InvalidArgument):
            _ram_in_bytes(bad, "-m")
        with pytest.raises(ValueError):
            compose_size(bad)


# the stored spec ------------------------------------------------------------------------------
def test_stored_spec_round_trips_and_reads_old_records():
    from nerdpy.engine.containers.records import ContainerSpec, MountSpec, StoredSpec

    spec = ContainerSpec(image="busybox", memory=64 << 20, ulimits=[("nofile", 10, 20)],
                         mounts=[MountSpec("volume", "/data", "v1", True, {"nocopy": True})])
    stored = StoredSpec.of(spec, args=["sh"], resolved_workdir="/w", image_config={"Env": ["A=1"]}, image_name="b")
    data = stored.to_json()
    assert data["_args"] == ["sh"] and data["_workdir"] == "/w" and data["_image_config"] == {"Env": ["A=1"]}
    back = StoredSpec.from_json(data)
    assert back == stored and back.mounts[0].readonly and back.ulimits == [("nofile", 10, 20)]
    # a record from an older version: unknown keys ignored, missing ones defaulted (no network: none)
    old = StoredSpec.from_json({"image": "x", "_args": ["true"], "some_future_key": 1, "memory": None,
                                "mounts": [{"type": "bind", "target": "/a", "source": "/b", "extra": 1}]})
    assert old.network == "none" and old.args == ["true"] and old.memory is None and old.restart == "no"
    assert old.mounts == [MountSpec("bind", "/a", "/b")]
