"""Pure parts of issue 15's commands: prune filters, stats arithmetic, diff over synthetic
layers, update's parsing and runc flags, and the version document's shape."""
from __future__ import annotations

import os
import stat

import pytest

from nerdpy.engine.errors import InvalidArgument


def test_prune_filter_parse_and_match():
    from nerdpy.engine.system.prunefilter import parse_prune_filters

    f = parse_prune_filters(["label=a", "label=b=2", "label!=c", "until=1000"], "container")
    assert f.match({"a": "", "b": "2"}, 999)
    assert not f.match({"a": "", "b": "3"}, 999)
    assert not f.match({"a": "", "b": "2", "c": "x"}, 999)
    assert not f.match({"a": "", "b": "2"}, 1000)
    with pytest.raises(InvalidArgument, match="invalid filter 'dangling'"):
        parse_prune_filters(["dangling=true"], "container")
    assert parse_prune_filters(["dangling=false"], "image").dangling is False
    assert parse_prune_filters(["all=1"], "volume").all is True
    with pytest.raises(InvalidArgument, match="invalid filter 'until'"):
        parse_prune_filters(["until=1h"], "volume")
    with pytest.raises(InvalidArgument):
        parse_prune_filters(["label"], "image")
    assert parse_prune_filters(["until=10m"], "network").until is not None


def test_stats_arithmetic():
    from nerdpy.engine.containers.stats import Sample, cpu_percent, memory_used, parse_net_dev, system_cpu_ns
    from nerdpy.engine.runtime.cgroups import Stats

    text = ("Inter-|   Receive                            |  Transmit\n"
            " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets\n"
            "    lo:  100 1 0 0 0 0 0 0  100 1 0 0 0 0 0 0\n"
            "  eth0: 1500 10 0 0 0 0 0 0  700 5 0 0 0 0 0 0\n")
    assert parse_net_dev(text) == (1500, 700)
    from nerdpy.engine.containers.stats import parse_net_dev_interfaces

    assert parse_net_dev_interfaces(text) == {"eth0": {
        "rx_bytes": 1500, "rx_packets": 10, "rx_errors": 0, "rx_dropped": 0,
        "tx_bytes": 700, "tx_packets": 5, "tx_errors": 0, "tx_dropped": 0}}
    assert memory_used(Stats(memory_usage=1000, memory_inactive_file=300)) == 700
    assert memory_used(Stats(memory_usage=1000, memory_inactive_file=None)) == 1000
    a = Sample(True, cpu_ns=0, system_ns=0)
    b = Sample(True, cpu_ns=500, system_ns=2000)
    assert cpu_percent(a, b, ncpu=2) == 50.0
    assert cpu_percent(a, Sample(True), ncpu=2) == 0.0
    assert system_cpu_ns("cpu  100 0 0 0 0 0 0 0 0 0\n") == 100 * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts and trusted xattrs need root")
def test_diff_over_layers(tmp_path):
    from nerdpy.engine.containers.diff import changes
    from nerdpy.engine.snapshots.snapshotter import OPAQUE_XATTR, make_whiteout

    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in ("etc/conf.d", "bin", "var/cache"):
        (lower / d).mkdir(parents=True)
    for f in ("etc/passwd", "etc/conf.d/a", "etc/conf.d/b", "bin/ls", "var/cache/x"):
        (lower / f).write_text("x")
    (upper / "etc").mkdir(parents=True)
    (upper / "etc/passwd").write_text("y")              # changed
    (upper / "etc/new").write_text("n")                 # added
    (upper / "bin").mkdir()
    make_whiteout(str(upper / "bin/ls"))                # deleted
    (upper / "etc/conf.d").mkdir()
    os.setxattr(str(upper / "etc/conf.d"), OPAQUE_XATTR, b"y")
    (upper / "etc/conf.d/b").write_text("z")            # opaque: a is gone, b is new
    (upper / "opt/sub").mkdir(parents=True)
    (upper / "opt/sub/f").write_text("f")
    got = [(c.kind, c.path) for c in changes(str(upper), [str(lower)])]
    assert got == [("C", "/bin"), ("D", "/bin/ls"), ("C", "/etc"), ("C", "/etc/conf.d"), ("D", "/etc/conf.d/a"),
                   ("A", "/etc/conf.d/b"), ("A", "/etc/new"), ("C", "/etc/passwd"), ("A", "/opt"),
                   ("A", "/opt/sub"), ("A", "/opt/sub/f")]
    assert stat.S_ISCHR(os.lstat(upper / "bin/ls").st_mode)


def test_update_parse_and_runc_flags():
    from nerdpy.engine.containers.records import StoredSpec
    from nerdpy.engine.containers.update import parse_update, runc_update_args, updated_spec

    req = parse_update({"memory": "96m", "pids_limit": "-1", "cpus": "0.5", "restart": "always"})
    assert req.memory == 96 << 20 and req.pids_limit == -1 and req.cpus == 0.5
    new = updated_spec(StoredSpec(image="x", memory=64 << 20), req)
    assert new.memory == 96 << 20 and new.pids_limit is None and new.restart == "always"
    args = runc_update_args(new, req, swap_accounting=True)
    assert args[:4] == ["--memory", str(96 << 20), "--memory-swap", str(192 << 20)]
    assert "--cpu-quota" in args and args[args.index("--cpu-quota") + 1] == "50000"
    assert args[-2:] == ["--pids-limit", "-1"]
    with pytest.raises(InvalidArgument, match="one or more flags"):
        parse_update({})
    with pytest.raises(InvalidArgument):
        parse_update({"restart": "sometimes"})
    with pytest.raises(InvalidArgument, match="6MB"):
        updated_spec(StoredSpec(image="x"), parse_update({"memory": "1m"}))
    with pytest.raises(InvalidArgument, match="memoryswap"):
        updated_spec(StoredSpec(image="x", memory=64 << 20, memory_swap=128 << 20), parse_update({"memory": "256m"}))
    with pytest.raises(InvalidArgument, match="AutoRemove"):
        updated_spec(StoredSpec(image="x", auto_remove=True), parse_update({"restart": "always"}))


def test_version_document_shape():
    from types import SimpleNamespace

    from nerdpy.commands.version import version_doc
    from nerdpy.engine.system.info import API_VERSION, MIN_API_VERSION

    doc = version_doc(SimpleNamespace(runc="runc"))
    assert doc["Client"]["ApiVersion"] == API_VERSION == "1.44"
    assert doc["Server"]["MinAPIVersion"] == MIN_API_VERSION == "1.24"
    assert doc["Server"]["Components"][0]["Name"] == "Engine"
