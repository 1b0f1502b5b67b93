"""cgroups: the parsers and the limit writes (pure), and reading a cgroup tree."""
import os

import pytest

from nerdpy.engine.runtime import cgroups
from nerdpy.engine.runtime.cgroups import Limits


def test_values_and_keyed_files():
    assert cgroups.parse_value("max\n") is None
    assert cgroups.parse_value("9223372036854771712\n") is None  # v1's unlimited
    assert cgroups.parse_value("33554432\n") == 33554432
    assert cgroups.parse_value(None) is None and cgroups.parse_value("") is None
    assert cgroups.parse_keyed("usage_usec 1500\nuser_usec 1000\nbad\n") == {"usage_usec": 1500, "user_usec": 1000}


def test_block_io_v1_and_v2():
    assert cgroups.parse_io_stat("8:0 rbytes=100 wbytes=20 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n") == (101, 22)
    assert cgroups.parse_blkio("8:0 Read 100\n8:0 Write 20\n8:0 Sync 5\n8:0 Total 125\nTotal 125\n") == (100, 20)


def test_limit_writes_v2():
    writes = cgroups.limit_writes(Limits(memory=64 << 20, memory_swap=128 << 20, cpu_quota=50000, cpu_period=100000,
                                         cpu_shares=1024, pids_limit=0), "v2")
    assert writes == [("memory", "memory.max", str(64 << 20)), ("memory", "memory.swap.max", str(64 << 20)),
                      ("cpu", "cpu.max", "50000 100000"), ("cpu", "cpu.weight", "39"), ("pids", "pids.max", "max")]
    assert cgroups.limit_writes(Limits(memory=-1, memory_swap=-1), "v2") == [
        ("memory", "memory.max", "max"), ("memory", "memory.swap.max", "max")]
    with pytest.raises(ValueError):
        cgroups.limit_writes(Limits(memory_swap=1 << 30), "v2")


def test_limit_writes_v1():
    writes = cgroups.limit_writes(Limits(memory=64 << 20, memory_swap=-1, cpu_quota=50000, cpu_shares=512,
                                         pids_limit=10), "v1")
    assert writes == [("memory", "memory.limit_in_bytes", str(64 << 20)), ("memory", "memory.memsw.limit_in_bytes", "-1"),
                      ("cpu", "cpu.cfs_quota_us", "50000"), ("cpu", "cpu.shares", "512"), ("pids", "pids.max", "10")]


def _tree(root, files):
    for name, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
        with open(os.path.join(root, name), "w") as f:
            f.write(text)


def test_read_and_write_a_v2_tree(tmp_path):
    root = str(tmp_path)
    path = cgroups.container_path("default", "0123456789abcdef")
    assert path == "/nerdpy/default-0123456789ab"
    d = path.strip("/")
    _tree(root, {"cgroup.controllers": "cpu memory pids io\n", f"{d}/memory.current": "1000\n",
                 f"{d}/memory.max": "max\n", f"{d}/memory.stat": "anon 10\ninactive_file 300\n",
                 f"{d}/cpu.stat": "usage_usec 7\n", f"{d}/pids.current": "3\n", f"{d}/pids.max": "100\n",
                 f"{d}/io.stat": "8:0 rbytes=5 wbytes=6\n", f"{d}/memory.swap.max": "", f"{d}/pids.max": "max\n"})
    assert cgroups.layout(root) == "v2" and cgroups.unified(root)
    st = cgroups.read_stats(path, root)
    assert st == cgroups.Stats(memory_usage=1000, memory_limit=None, memory_inactive_file=300, cpu_usage_ns=7000,
                               pids_current=3, pids_limit=None, blkio_read=5, blkio_write=6)
    cgroups.write_limits(path, Limits(memory=4096, pids_limit=20), root)
    st = cgroups.read_stats(path, root)
    assert (st.memory_limit, st.pids_limit) == (4096, 20)
    [os.unlink(os.path.join(root, d, f)) for f in os.listdir(os.path.join(root, d))]
    cgroups.remove(path, root)
    assert not os.path.exists(os.path.join(root, d))


def test_v1_paths_are_per_controller():
    assert cgroups.controller_dir("/nerdpy/x", "memory", "v1", "/r") == "/r/memory/nerdpy/x"
    assert cgroups.controller_dir("/nerdpy/x", "memory", "hybrid", "/r") == "/r/memory/nerdpy/x"
    assert cgroups.controller_dir("/nerdpy/x", "memory", "v2", "/r") == "/r/nerdpy/x"
