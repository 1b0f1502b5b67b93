"""Rootless mode's pure parts: per-user paths, /etc/subuid parsing, the OCI spec without cgroups,
resource flags refused, and overlay xattrs in their user-namespace form."""
from __future__ import annotations

import pytest

from nerdpy.engine.config import user_defaults
from nerdpy.engine.containers.oci import SpecOptions, build_spec
from nerdpy.engine.errors import NerdpyError
from nerdpy.engine.runtime.rootless import check_resources, setup_problems, sub_range
from nerdpy.engine.snapshots.snapshotter import is_overlay_xattr


def test_user_paths_follow_xdg():
    d = user_defaults(1000, {"HOME": "/home/al"})
    assert d["data_root"] == "/home/al/.local/share/nerdpy"
    assert d["config"] == "/home/al/.config/nerdpy/nerdpy.toml"
    assert d["hosts_dirs"] == ["/home/al/.config/nerdpy/certs.d", "/etc/nerdpy/certs.d", "/etc/containerd/certs.d",
                               "/etc/docker/certs.d"]
    assert d["run_root"] == "/tmp/nerdpy-1000"  # no XDG_RUNTIME_DIR: a private dir under /tmp
    d = user_defaults(1000, {"HOME": "/home/al", "XDG_DATA_HOME": "/d", "XDG_CONFIG_HOME": "/c",
                             "XDG_RUNTIME_DIR": "/run/user/1000"})
    assert (d["data_root"], d["config"], d["run_root"]) == ("/d/nerdpy", "/c/nerdpy/nerdpy.toml",
                                                              "/run/user/1000/nerdpy")


def test_sub_range(tmp_path):
    f = tmp_path / "subuid"
    f.write_text("bob:100000:65536\n1234:200000:1000\nzero:300000:0\n")
    import pwd

    me = pwd.getpwuid(0).pw_name
    assert sub_range(str(f), 1234) is not None and sub_range(str(f), 1234).start == 200000
    assert sub_range(str(f), 0) is None or me == "bob"
    assert sub_range(str(tmp_path / "missing"), 1234) is None


def test_setup_problems_name_the_fix(monkeypatch):
    monkeypatch.setattr("nerdpy.engine.runtime.rootless.sub_range", lambda path, uid: None)
    problems = setup_problems(4242)
    assert any("/etc/subuid" in what for what, _ in problems)
    assert all("install.sh --rootless" in fix or "apt-get" in fix for _, fix in problems)


def test_rootless_spec_has_no_cgroup_settings():
    spec = build_spec(SpecOptions(rootfs="/r", args=["true"], rootless=True))
    assert "resources" not in spec["linux"] and "cgroupsPath" not in spec["linux"]
    cg = [m for m in spec["mounts"] if m["destination"] == "/sys/fs/cgroup"][0]
    assert cg["type"] == "bind" and "ro" in cg["options"]
    # docker's confinement as for root
    assert spec["linux"]["maskedPaths"] and spec["linux"]["readonlyPaths"] and "seccomp" in spec["linux"]
    assert "CAP_SYS_ADMIN" not in spec["process"]["capabilities"]["bounding"]


class _Spec:
    memory = None
    memory_swap = None
    memory_reservation = None
    cpus = None
    cpu_shares = None
    pids_limit = None
    domainname = ""
    uts = ""


def test_resource_flags_refused():
    check_resources(_Spec())
    s = _Spec()
    s.memory = 1 << 20
    with pytest.raises(NerdpyError, match="--memory needs cgroup delegation"):
        check_resources(s)
    s = _Spec()
    s.pids_limit = -1  # unlimited: nothing to enforce
    check_resources(s)


def test_device_modes_and_domainname_refused_where_a_user_cannot_have_them():
    dev = {"path": "/dev/kmsg", "container_path": "/dev/k", "access": "r"}
    with pytest.raises(NerdpyError, match="--device /dev/kmsg:/dev/k:r: access modes need the device cgroup"):
        check_resources(_Spec(), [dev])
    check_resources(_Spec(), [dict(dev, access="rw")])
    s = _Spec()
    s.domainname = "example.org"
    with pytest.raises(NerdpyError, match="--domainname needs runc 1.2"):
        check_resources(s, runc_release=lambda: (1, 1, 5))
    check_resources(s, runc_release=lambda: (1, 2, 0))
    s.uts = "host"
    check_resources(s, runc_release=lambda: (1, 1, 5))  # refused elsewhere: the UTS mode conflicts


def test_both_overlay_xattr_forms_are_reserved():
    assert is_overlay_xattr("trusted.overlay.opaque")
    assert is_overlay_xattr("user.overlay.redirect")
    assert not is_overlay_xattr("user.mime_type")


def test_run_root_must_be_private(tmp_path):
    from nerdpy.engine.config import Settings
    from nerdpy.engine.runtime.rootless import run_root_ready

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    with pytest.raises(NerdpyError, match="not a private directory"):
        run_root_ready(Settings(run_root=str(shared), rootless_uid=1000))
    fresh = tmp_path / "fresh"
    assert run_root_ready(Settings(run_root=str(fresh), rootless_uid=1000)) == str(fresh)
    assert (fresh.stat().st_mode & 0o777) == 0o700


def test_snapshotter_choice_is_recorded_per_data_root(tmp_path):
    from nerdpy.engine.config import Settings
    from nerdpy.engine.runtime.rootless import choose_snapshotter

    s = Settings(data_root=str(tmp_path / "a"), rootless_uid=1000, snapshotter="fuse-overlayfs")
    assert choose_snapshotter(s) == "fuse-overlayfs"  # configured: used as is, nothing recorded
    s = Settings(data_root=str(tmp_path / "b"), rootless_uid=1000)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "snapshotter").write_text("fuse-overlayfs\n")
    assert choose_snapshotter(s) == "fuse-overlayfs"  # what the data root was made with
    s = Settings(data_root=str(tmp_path / "c"), rootless_uid=1000)
    first = choose_snapshotter(s)  # probed (this kernel mounts overlayfs in a user namespace)
    assert first in ("overlayfs", "fuse-overlayfs")
    assert (tmp_path / "c" / "snapshotter").read_text().strip() == first


def test_rootless_spec_binds_devices_and_the_hosts_proc():
    dev = {"path": "/dev/null", "container_path": "/dev/xnull", "type": "c", "major": 1, "minor": 3}
    spec = build_spec(SpecOptions(rootfs="/r", args=["true"], rootless=True, devices=[dev], pidns="host"))
    assert spec["linux"]["devices"] == []  # a user namespace cannot make nodes
    assert {"destination": "/dev/xnull", "type": "bind", "source": "/dev/null", "options": ["bind", "nosuid"]} \
        in spec["mounts"]
    proc = [m for m in spec["mounts"] if m["destination"] == "/proc"][0]
    assert proc["type"] == "bind" and proc["source"] == "/proc"
    # root: devices made by runc, a proc mount of the host's pid namespace
    spec = build_spec(SpecOptions(rootfs="/r", args=["true"], devices=[dev], pidns="host"))
    assert spec["linux"]["devices"][0]["path"] == "/dev/xnull"
    assert [m for m in spec["mounts"] if m["destination"] == "/proc"][0]["type"] == "proc"
