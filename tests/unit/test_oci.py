"""Pure parts of the OCI spec: capabilities, seccomp profiles, users, flag parsing."""
from __future__ import annotations

import os

import pytest

from nerdpy.engine.containers.options import _ram_in_bytes, parse_mount, parse_sysctls, parse_tmpfs, parse_ulimit, parse_volume
from nerdpy.engine.errors import InvalidArgument
from nerdpy.engine.containers.etcfiles import read_from_layers, resolve_user
from nerdpy.engine.containers.lifecycle import _container_env, _security_opts, _tmpfs_options
from nerdpy.engine.containers.records import MountSpec
from nerdpy.engine.containers.oci import ALL_CAPS, DEFAULT_CAPS, SpecOptions, build_spec, capabilities
from nerdpy.engine.containers.seccomp import default_profile, from_docker_profile

ALL = list(ALL_CAPS)


# capabilities (moby's TweakCapabilities) ----------------------------------------------------
def test_default_caps_are_dockers_fourteen():
    assert capabilities(False, [], [], ALL) == DEFAULT_CAPS
    assert len(DEFAULT_CAPS) == 14


@pytest.mark.parametrize("add, drop, expected", [
    (["NET_ADMIN"], [], DEFAULT_CAPS + ["CAP_NET_ADMIN"]),
    ([], ["chown", "CAP_KILL"], [c for c in DEFAULT_CAPS if c not in ("CAP_CHOWN", "CAP_KILL")]),
    (["chown"], ["ALL"], ["CAP_CHOWN"]),
    ([], ["ALL"], []),
    (["KILL"], ["KILL"], DEFAULT_CAPS),  # an add wins over the same drop
])
def test_cap_add_drop(add, drop, expected):
    assert sorted(capabilities(False, add, drop, ALL)) == sorted(expected)


def test_all_caps_come_from_what_we_hold():
    held = [c for c in ALL if c != "CAP_SYS_RESOURCE"]
    assert capabilities(True, [], [], held) == held
    assert capabilities(False, ["ALL"], ["KILL"], held) == [c for c in held if c != "CAP_KILL"]


def test_unknown_cap_refused():
    with pytest.raises(InvalidArgument):
        capabilities(False, ["BOGUS"], [], ALL)


# seccomp --------------------------------------------------------------------------------------
def _names(profile: dict) -> set[str]:
    return {n for s in profile["syscalls"] if s["action"] == "SCMP_ACT_ALLOW" and "args" not in s for n in s["names"]}


def test_default_profile_follows_caps():
    p = default_profile(DEFAULT_CAPS, "x86_64")
    assert "mount" not in _names(p) and "ptrace" in _names(p)
    assert {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38} in p["syscalls"]
    admin = default_profile(DEFAULT_CAPS + ["CAP_SYS_ADMIN"], "x86_64")
    assert {"mount", "unshare", "clone", "clone3"} <= _names(admin)


def test_docker_format_profile_is_evaluated():
    prof = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                 "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
                {"name": "old", "action": "SCMP_ACT_ALLOW", "comment": "legacy single name"},
            ]}
    p = from_docker_profile(prof, DEFAULT_CAPS, "x86_64")
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert [s["names"] for s in p["syscalls"]] == [["read"], ["clone3"], ["arch_prctl"], ["old"]]
    assert all(set(s) <= {"names", "action", "args", "errnoRet"} for s in p["syscalls"])
    p = from_docker_profile(prof, DEFAULT_CAPS + ["CAP_SYS_ADMIN"], "aarch64")
    assert [s["names"] for s in p["syscalls"]] == [["read"], ["mount"], ["old"]]
    with pytest.raises(ValueError):
        from_docker_profile({"syscalls": []}, DEFAULT_CAPS)


def test_security_opts():
    assert _security_opts([]) == ("default", False)
    assert _security_opts(["seccomp=unconfined", "no-new-privileges"]) == ("unconfined", True)
    assert _security_opts(["no-new-privileges:false"]) == ("default", False)
    assert _security_opts(["no-new-privileges=true", "apparmor=unconfined"]) == ("default", True)
    with pytest.raises(InvalidArgument):
        _security_opts(["bogus"])


# the spec -------------------------------------------------------------------------------------
def test_spec_hardening_and_privileged():
    spec = build_spec(SpecOptions(rootfs="/r", args=["sh"]))
    assert "/proc/kcore" in spec["linux"]["maskedPaths"] and "/proc/sys" in spec["linux"]["readonlyPaths"]
    assert spec["process"]["capabilities"]["bounding"] == DEFAULT_CAPS
    assert "inheritable" not in spec["process"]["capabilities"]
    priv = build_spec(SpecOptions(rootfs="/r", args=["sh"], privileged=True))
    assert "maskedPaths" not in priv["linux"] and "seccomp" not in priv["linux"]
    assert priv["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert any(d["path"] == "/dev/null" for d in priv["linux"]["devices"])


def test_spec_resources():
    spec = build_spec(SpecOptions(rootfs="/r", args=["sh"], memory=64 << 20, cpus=1.5, cpu_shares=512,
                                  pids_limit=-1, domainname="example.com"))
    res = spec["linux"]["resources"]
    assert res["memory"]["limit"] == 64 << 20
    assert res["cpu"] == {"period": 100000, "quota": 150000, "shares": 512}
    assert "pids" not in res
    assert spec["linux"]["sysctl"]["kernel.domainname"] == "example.com"


# users ----------------------------------------------------------------------------------------
PASSWD = ["root:x:0:0:root:/root:/bin/sh", "app:x:1000:1000:app:/home/app:/bin/sh"]
GROUP = ["root:x:0:", "app:x:1000:", "extra:x:2000:app,other"]


@pytest.mark.parametrize("user, group_add, expected", [
    ("", [], (0, 0, [0], "/root")),
    ("app", [], (1000, 1000, [1000, 2000], "/home/app")),
    ("1000", [], (1000, 1000, [1000, 2000], "/home/app")),
    ("app:root", [], (1000, 0, [0], "/home/app")),
    ("4242", ["extra", "77"], (4242, 0, [0, 2000, 77], "/")),
    ("4242:4343", [], (4242, 4343, [4343], "/")),
])
def test_resolve_user(user, group_add, expected):
    assert resolve_user(PASSWD, GROUP, user, group_add) == expected


@pytest.mark.parametrize("user, group_add", [("nobody", []), ("app:nogroup", []), ("app", ["nogroup"]),
                                             ("99999999999", [])])
def test_resolve_user_refuses(user, group_add):
    with pytest.raises(InvalidArgument):
        resolve_user(PASSWD, GROUP, user, group_add)


def test_read_from_layers(tmp_path):
    top, low = tmp_path / "top", tmp_path / "low"
    (low / "etc").mkdir(parents=True)
    (low / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    top.mkdir()
    layers = [str(top), str(low)]
    assert read_from_layers(layers, "/etc/passwd") == ["root:x:0:0:root:/root:/bin/sh"]
    (top / "etc").mkdir()
    (top / "etc" / "passwd").write_text("app:x:1:1::/:/bin/sh\n")
    assert read_from_layers(layers, "/etc/passwd") == ["app:x:1:1::/:/bin/sh"]
    assert read_from_layers(layers, "/etc/group") == []
    os.unlink(top / "etc" / "passwd")
    os.symlink("/elsewhere", top / "etc" / "passwd")
    assert read_from_layers(layers, "/etc/passwd") is None


# environment ----------------------------------------------------------------------------------
def test_container_env_order():
    env = _container_env(["A=1", "PATH=/x"], ["B=2", "A=3"], "h", True, "/root")
    assert env == ["PATH=/x", "HOSTNAME=h", "TERM=xterm", "A=3", "B=2", "HOME=/root"]
    assert _container_env([], ["HOME=/h"], "h", False, "/root")[-1] == "HOME=/h"


# flag parsing ---------------------------------------------------------------------------------
def test_ram_in_bytes():
    assert _ram_in_bytes("64m", "-m") == 64 << 20
    assert _ram_in_bytes("1.5g", "-m") == 3 << 29
    assert _ram_in_bytes("512", "-m") == 512
    assert _ram_in_bytes("2GiB", "-m") == 2 << 30
    with pytest.raises(InvalidArgument):
        _ram_in_bytes("lots", "-m")


def test_parse_ulimit():
    assert parse_ulimit("nofile=1024:2048") == ("nofile", 1024, 2048)
    assert parse_ulimit("nproc=10") == ("nproc", 10, 10)
    assert parse_ulimit("core=-1") == ("core", 2**64 - 1, 2**64 - 1)
    for bad in ("nofile", "nofile=", "bogus=1", "nofile=2:1", "nofile=a:b", "nofile=1:"):
        with pytest.raises(InvalidArgument):
            parse_ulimit(bad)


def test_parse_volume_and_mount(tmp_path):
    v = parse_volume(f"{tmp_path}:/data:ro,z")
    assert (v.type, v.target, v.source, v.readonly) == ("bind", "/data", str(tmp_path), True)
    v = parse_volume("named:/data")
    assert (v.type, v.source, v.readonly) == ("volume", "named", False)
    anon = parse_volume("/anon")
    assert anon.type == "volume" and len(anon.source) == 64 and anon.options["anonymous"]
    for bad in ("bad@name:/x", "/x:relative", "/x:/", "/a:/b:bogus", "a:b:c:d"):
        with pytest.raises(InvalidArgument):
            parse_volume(bad)
    m = parse_mount(f"type=bind,src={tmp_path},dst=/b,readonly")
    assert (m.type, m.target, m.readonly) == ("bind", "/b", True)
    m = parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770")
    assert m.options == {"size": str(1 << 20), "mode": "1770"}
    for bad in ("type=bind,target=/b", "type=bind,source=/nonexistent-x,target=/b", "type=x,target=/b",
                "target=/b,foo=bar", "type=volume", "type=tmpfs,source=x,target=/t", "target=/b,readonly=maybe"):
        with pytest.raises(InvalidArgument):
            parse_mount(bad)


def test_tmpfs_options():
    t = parse_tmpfs("/x:size=2m,exec,uid=1000")
    assert _tmpfs_options(MountSpec("tmpfs", "/x", "", t.readonly, t.options)) == \
        ["nosuid", "nodev", "exec", "uid=1000", "size=2m"]
    assert _tmpfs_options(MountSpec("tmpfs", "/x", "", True, {})) == ["noexec", "nosuid", "nodev", "ro"]


def test_parse_sysctls():
    assert parse_sysctls(["kernel.msgmax=1", "net.ipv4.ip_forward=1", "fs/mqueue/msg_max=5"], "none") == \
        {"kernel.msgmax": "1", "net.ipv4.ip_forward": "1", "fs.mqueue.msg_max": "5"}
    for items, net in ((["kernel.hostname=x"], "none"), (["net.ipv4.ip_forward=1"], "host"), (["vm.swappiness"], "none")):
        with pytest.raises(InvalidArgument):
            parse_sysctls(items, net)
