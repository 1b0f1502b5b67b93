"""What a process inside a container can and cannot do (issue 8, security), seen from inside the
busybox image as an attacker would look: docker's 14 capabilities in every set, a seccomp filter
that blocks what docker's profile blocks, masked and read-only /proc and /sys paths, no way to
reach the host's runc through /proc/[pid]/exe (CVE-2019-5736), no working directory under /proc
(CVE-2024-21626) however it is spelled, and `--privileged` lifting exactly what docker lifts.

The busybox image links only a few applets; the others (unshare, mount, usleep) are called as
`busybox APPLET`. Each test looks at the host too (a positive control), so that a check that
finds nothing because the kernel has nothing cannot pass by accident."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time

import pytest

import hostleaks
import world

T = 60
DOCKER_CAPS = 0x00000000A80425FB  # docker's default 14

MASKED = ["/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
          "/sys/devices/virtual/powercap"]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def status(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out[k.strip()] = v.strip()
    return out


def host_status() -> dict[str, str]:
    with open("/proc/self/status") as f:
        return status(f.read())


def mountinfo(text: str) -> dict[str, tuple[str, str]]:
    """mount point -> (mount options, filesystem type) of a /proc/self/mountinfo text."""
    out = {}
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        f = left.split()
        if len(f) >= 6:
            out[f[4]] = (f[5], right.split()[0] if right else "")
    return out


def run(nerdpy, *args, rc: int | None = 0) -> subprocess.CompletedProcess:
    r = nerdpy("run", "--rm", "-q", *args, timeout=T)
    if rc is not None:
        assert r.returncode == rc, f"exit {r.returncode}: {r.stderr}\n{r.stdout}"
    return r


def host_nonempty(path: str) -> bool:
    try:
        if os.path.isdir(path):
            return bool(os.listdir(path))
        with open(path, "rb") as f:
            return bool(f.read(1))
    except OSError:
        return False


# -- capabilities ---------------------------------------------------------------------------------
def test_capability_sets_are_dockers_14(nerdpy, images):
    got = run(nerdpy, images.busybox, "grep", "^Cap", "/proc/self/status").stdout
    st = status(got)
    for k in ("CapEff", "CapPrm", "CapBnd"):
        assert int(st[k], 16) == DOCKER_CAPS, (k, st)
    assert int(st["CapInh"], 16) == 0 and int(st["CapAmb"], 16) == 0, st
    # the host (root) holds more than these, so the sets were really narrowed
    assert int(host_status()["CapEff"], 16) & ~DOCKER_CAPS
    # a non-root user has no effective capabilities, and the same bounding set
    st = status(run(nerdpy, "-u", "1000", images.busybox, "grep", "^Cap", "/proc/self/status").stdout)
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0, st
    assert int(st["CapBnd"], 16) == DOCKER_CAPS, st
    # and root cannot do what CAP_SYS_ADMIN or CAP_NET_ADMIN would allow
    r = run(nerdpy, images.busybox, "sh", "-c",
            "mkdir -p /tmp/m; busybox mount -t tmpfs t /tmp/m 2>&1; echo mount=$?; ip link add dummy0 type dummy 2>&1; echo link=$?",
            rc=None)
    assert "mount=0" not in r.stdout and "link=0" not in r.stdout, r.stdout


# -- seccomp --------------------------------------------------------------------------------------
def test_seccomp_filter_blocks_what_dockers_profile_blocks(nerdpy, images):
    script = ("grep -E '^Seccomp(_filters)?:' /proc/self/status;"
              " busybox unshare -U true 2>&1; echo unshare=$?;"
              " busybox unshare -m true 2>&1; echo unshare-m=$?")
    st_text = run(nerdpy, images.busybox, "sh", "-c", script).stdout
    st = status(st_text)
    assert st["Seccomp"] == "2", st_text  # filter mode
    if "Seccomp_filters" in st:
        assert int(st["Seccomp_filters"]) >= 1, st_text
    # unshare(CLONE_NEWUSER) needs no capability: only the profile refuses it
    assert "unshare=1" in st_text and "Operation not permitted" in st_text, st_text
    assert "unshare-m=0" not in st_text, st_text
    # positive control: without the profile the same call works, so the refusal was seccomp's
    free = run(nerdpy, "--security-opt", "seccomp=unconfined", images.busybox, "sh", "-c", script).stdout
    assert status(free)["Seccomp"] == "0", free
    assert "unshare=0" in free, free


# -- masked and read-only paths -------------------------------------------------------------------
def test_masked_paths_are_unreadable_or_empty(nerdpy, images):
    present_on_host = [p for p in MASKED if host_nonempty(p)]
    assert len(present_on_host) >= 3, f"too few masked paths with content on this host: {present_on_host}"
    script = "cat /proc/self/mountinfo; echo ===;" + "".join(
        f" if [ -d {p} ]; then echo {p}=dir:$(ls -A {p} 2>/dev/null | wc -l);"
        f" elif [ -e {p} ]; then echo {p}=file:$(cat {p} 2>/dev/null | head -c 4096 | wc -c); else echo {p}=absent; fi;"
        for p in MASKED) + " (echo x > /proc/kcore) 2>/dev/null && echo kcore-writable; true"
    out = run(nerdpy, images.busybox, "sh", "-c", script).stdout
    mi_text, _, rest = out.partition("===\n")
    mi = mountinfo(mi_text)
    seen = dict(line.split("=", 1) for line in rest.splitlines() if "=" in line)
    problems = []
    for p in MASKED:
        kind = seen.get(p, "")
        if kind == "absent":
            continue
        if kind not in ("dir:0", "file:0"):
            problems.append(f"{p}: {kind}")
        if p in present_on_host and p not in mi:
            problems.append(f"{p}: not masked by a mount")
        if kind.startswith("dir") and p in mi and mi[p][1] != "tmpfs":
            problems.append(f"{p}: masked by {mi[p][1]}, not a read-only tmpfs")
        if kind.startswith("dir") and p in mi and "ro" not in mi[p][0].split(","):
            problems.append(f"{p}: the masking tmpfs is writable")
    assert not problems, problems
    assert "kcore-writable" not in rest


def test_readonly_paths_are_unwritable(nerdpy, images):
    script = ("cat /proc/self/mountinfo; echo ===;"
              " (echo 1 > /proc/sys/vm/overcommit_memory) 2>/dev/null && echo wrote-sys;"
              " [ -e /proc/sysrq-trigger ] && (echo h > /proc/sysrq-trigger) 2>/dev/null && echo wrote-sysrq;"
              " for d in /proc/irq /proc/bus /proc/fs; do (touch $d/x) 2>/dev/null && echo wrote-$d;"
              "  for f in $d/* $d/*/*; do [ -f \"$f\" ] && (: >> \"$f\") 2>/dev/null && echo wrote-$f; done; done;"
              " true")
    out = run(nerdpy, images.busybox, "sh", "-c", script).stdout
    mi_text, _, rest = out.partition("===\n")
    mi = mountinfo(mi_text)
    problems = [f"{p}: not a read-only mount" for p in READONLY
                if os.path.exists(p) and (p not in mi or "ro" not in mi[p][0].split(","))]
    problems += [line for line in rest.splitlines() if line.startswith("wrote-")]
    assert not problems, problems
    # positive control: the host can write its own /proc/sys (root, no such mounts)
    assert os.access("/proc/sys/vm/overcommit_memory", os.W_OK)


# -- /proc/self/exe: CVE-2019-5736 ----------------------------------------------------------------
_EXE_HUNTER = r"""
: > /tmp/seen; : > /tmp/hits; echo ready > /tmp/ready
while [ ! -e /tmp/stop ]; do
  for d in /proc/[0-9]*; do
    [ "$d" = "/proc/$$" ] && continue
    n=; { read -r _ n; } < $d/status 2>/dev/null
    case "$n" in sh|sleep|busybox|usleep|true|touch|test|readlink|sort|tr|"") continue;; esac
    echo "$n" >> /tmp/seen
    (
      exec 3<$d/exe || exit 0
      t=$(readlink /proc/self/fd/3)
      echo "$n opened $t" >> /tmp/seen
      for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
        case "$t" in
          memfd:*) (printf x >> /proc/self/fd/3) && { echo "wrote $n $t" >> /tmp/hits; exit 0; } ;;
          *) (: >> /proc/self/fd/3) && { echo "opened $n $t for writing" >> /tmp/hits; exit 0; } ;;
        esac
        busybox usleep 20000
      done
    ) 2>/dev/null
  done
done
echo "seen: $(sort -u /tmp/seen | tr '\n' ';')"
echo "hits: $(sort -u /tmp/hits | tr '\n' ';')"
"""


def test_proc_self_exe_cannot_reach_the_host_runc(nerdpy, images):
    runc = shutil.which("runc")
    with open(runc, "rb") as f:
        before = hashlib.sha256(f.read()).hexdigest()
    nerdpy("run", "-d", "--name", "hunter", images.busybox, "sh", "-c", _EXE_HUNTER, check=True, timeout=T)
    hostleaks.settle(lambda: _assert_ok(nerdpy("exec", "hunter", "test", "-e", "/tmp/ready")))
    # runc exec's own processes (runc:[1:CHILD], runc:[2:INIT]) appear in the container's /proc for
    # a moment each time: go on until the hunter has caught some (then it tried their exe links)
    for i in range(60):
        r = nerdpy("exec", "hunter", "true", timeout=T)
        assert r.returncode == 0, r.stderr
        if i >= 8 and i % 4 == 0 and nerdpy("exec", "hunter", "grep", "-q", "runc", "/tmp/seen").returncode == 0:
            break
    nerdpy("exec", "hunter", "touch", "/tmp/stop", check=True, timeout=T)
    assert nerdpy("wait", "hunter", timeout=T).stdout.strip() == "0"
    logs = nerdpy("logs", "hunter", check=True, timeout=T).stdout
    nerdpy("rm", "hunter", check=True, timeout=T)
    with open(runc, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == before, "the host's runc binary changed"
    seen = next(line for line in logs.splitlines() if line.startswith("seen: "))
    hits = next(line for line in logs.splitlines() if line.startswith("hits: "))
    assert hits == "hits: ", f"{hits} (seen {seen})"
    assert "runc" in seen, f"the hunter never saw runc's processes: {seen}"
    hostleaks.assert_nothing_left(nerdpy, exclusive=False)


def _assert_ok(r):
    assert r.returncode == 0, r.stderr


# -- working directory under /proc: CVE-2024-21626 ------------------------------------------------
PROC_WORKDIRS = ["/proc/self/fd/7", "//proc/self/cwd", "/tmp/../proc/self/fd/8", "/./proc", "/proc/1/cwd/"]


def _one_line_refusal(r, what: str) -> None:
    assert r.returncode == 125, f"{what}: exit {r.returncode}: {r.stderr}"
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("nerdpy: ") and "/proc" in lines[0], f"{what}: {r.stderr}"
    assert "Traceback" not in r.stderr


def test_workdir_under_proc_is_refused_however_spelled(nerdpy, images, registry, tmp_path):
    nerdpy("pull", "-q", images.busybox, check=True, timeout=T)
    base = os.path.dirname(nerdpy.data_root)
    before = hostleaks.HostState.take(base)
    for wd in PROC_WORKDIRS:
        for cmd in (["run", "--rm"], ["run", "-d"], ["create"]):
            r = nerdpy(*cmd, "-w", wd, images.busybox, "pwd", timeout=T)
            _one_line_refusal(r, f"{' '.join(cmd)} -w {wd}")
    # an image whose WorkingDir reaches /proc by a detour
    layout = str(tmp_path / "layout")
    world.write_image(layout, "procwd", [world._tar(world.busybox_entries())],
                      dict(world.BUSYBOX_CONFIG, WorkingDir="/usr/../proc/self/fd/8"))
    ref = f"{registry.host}/test/procwd-detour:latest"
    world.push_layout(layout, "procwd", ref)
    _one_line_refusal(nerdpy("run", "--rm", "-q", ref, "pwd", timeout=T), "image WorkingDir")
    # nothing was created, and the host is as it was
    assert nerdpy("ps", "-a", "-q", timeout=T).stdout == ""
    hostleaks.settle(lambda: _same(before, hostleaks.HostState.take(base)))
    hostleaks.assert_nothing_left(nerdpy, exclusive=False)


def test_exec_workdir_under_proc_is_refused(nerdpy, images):
    nerdpy("run", "-d", "--name", "box", images.busybox, "sleep", "600", check=True, timeout=T)
    assert nerdpy("exec", "-w", "/tmp", "box", "pwd", check=True, timeout=T).stdout == "/tmp\n"
    for wd in PROC_WORKDIRS:
        r = nerdpy("exec", "-w", wd, "box", "pwd", timeout=T)
        _one_line_refusal(r, f"exec -w {wd}")
    # the container is untouched, and no exec process file is left in its directory
    assert nerdpy("inspect", "-f", "{{.State.Status}}", "box", check=True, timeout=T).stdout.strip() == "running"
    cid = nerdpy("inspect", "-f", "{{.Id}}", "box", check=True, timeout=T).stdout.strip()
    cdir = os.path.join(nerdpy.data_root, "containers", "default", cid)
    assert not [n for n in os.listdir(cdir) if n.startswith("exec-")]
    nerdpy("rm", "-f", "box", check=True, timeout=T)
    hostleaks.assert_nothing_left(nerdpy, exclusive=False)


def test_workdir_symlink_into_proc_does_not_reach_a_host_directory(nerdpy, images, registry, tmp_path):
    # the name is not under /proc, the target is: runc (which carries the CVE-2024-21626 fix)
    # must refuse, or the process must at least not start in a directory outside its root
    layout = str(tmp_path / "layout")
    entries = world.busybox_entries([("w", "symlink", "/proc/self/fd/7")])
    world.write_image(layout, "procsym", [world._tar(entries)], dict(world.BUSYBOX_CONFIG, WorkingDir="/w"))
    ref = f"{registry.host}/test/procsym:latest"
    world.push_layout(layout, "procsym", ref)
    r = nerdpy("run", "--rm", "-q", ref, "sh", "-c", "pwd; ls -a . | head -50; ls ../../../ | head -50",
               timeout=T)
    assert "Traceback" not in r.stderr
    if r.returncode == 0:
        assert not r.stdout.startswith("/proc"), r.stdout
        # what a leaked host directory would show (the host's own data roots, /etc/hostname...)
        assert nerdpy.data_root not in r.stdout
    else:
        assert r.returncode in (125, 126, 127), r
        assert len([x for x in r.stderr.splitlines() if x.strip()]) == 1, r.stderr
    assert nerdpy("ps", "-a", "-q", timeout=T).stdout == ""
    hostleaks.assert_nothing_left(nerdpy, exclusive=False)


def _same(before, after):
    d = before.diff(after)
    assert not d, f"host state changed: {json.dumps(d, indent=1)}"


# -- --privileged ----------------------------------------------------------------------------------
def test_privileged_lifts_exactly_what_docker_lifts(nerdpy, images):
    host = host_status()
    script = ("grep -E '^(Cap(Eff|Prm|Bnd|Inh)|Seccomp|NoNewPrivs):' /proc/self/status; echo ===;"
              " cat /proc/self/mountinfo; echo ===;"
              " busybox unshare -U true && echo unshare-ok;"
              " mkdir -p /tmp/m; busybox mount -t tmpfs t /tmp/m && echo mount-ok && busybox umount /tmp/m;"
              " echo $(cat /proc/timer_list 2>/dev/null | head -c 4096 | wc -c) > /tmp/tl; echo timer_list=$(cat /tmp/tl);"
              " echo sys_firmware=$(ls /sys/firmware | wc -l);"
              " true")
    out = run(nerdpy, "--privileged", images.busybox, "sh", "-c", script).stdout
    caps_text, mi_text, rest = out.split("===\n")
    st = status(caps_text)
    # root: the host's capabilities; a rootless user: every capability of its user namespace
    ceiling = nerdpy.cap_ceiling() if nerdpy.user else int(host["CapBnd"], 16) & int(host["CapEff"], 16)
    for k in ("CapEff", "CapPrm", "CapBnd"):
        assert int(st[k], 16) == ceiling, (k, st, host)
    assert st["Seccomp"] == "0" and st["NoNewPrivs"] == "0", st
    mi = mountinfo(mi_text)
    assert not [p for p in MASKED if p in mi], "masked paths under --privileged"
    assert not [p for p in READONLY if p in mi and "ro" in mi[p][0].split(",")], "read-only paths under --privileged"
    lines = rest.splitlines()
    assert "unshare-ok" in lines and "mount-ok" in lines, rest
    if host_nonempty("/proc/timer_list") and nerdpy.user is None:  # a user: a 0400 file of the host's root
        assert "timer_list=0" not in lines, rest
    if host_nonempty("/sys/firmware"):
        assert "sys_firmware=0" not in lines, rest
    assert "rw" in mi["/sys"][0].split(","), mi["/sys"]  # docker mounts /sys read-write when privileged
    # and what it does not lift: its own namespaces (pid, mount, uts, ipc, network stay private)
    r = run(nerdpy, "--privileged", images.busybox, "sh", "-c", "echo $$; hostname; ls /proc | grep -c '^[0-9]'")
    pid, hostname, nprocs = r.stdout.split()
    assert pid == "1" and hostname != open("/etc/hostname").read().strip() and int(nprocs) < 5, r.stdout


def test_privileged_spec_has_no_seccomp_masks_or_readonly_paths(nerdpy, images):
    nerdpy("create", "--name", "priv", "--privileged", images.busybox, "true", check=True, timeout=T)
    nerdpy("create", "--name", "plain", images.busybox, "true", check=True, timeout=T)
    specs = {}
    for name in ("priv", "plain"):
        nerdpy("start", name, check=True, timeout=T)
        assert nerdpy("wait", name, timeout=T).stdout.strip() == "0"
        cid = nerdpy("inspect", "-f", "{{.Id}}", name, check=True, timeout=T).stdout.strip()
        with open(os.path.join(nerdpy.data_root, "containers", "default", cid, "config.json")) as f:
            specs[name] = json.load(f)
    priv, plain = specs["priv"]["linux"], specs["plain"]["linux"]
    assert "seccomp" not in priv and "seccomp" in plain
    assert not priv.get("maskedPaths") and not priv.get("readonlyPaths")
    assert set(plain["maskedPaths"]) == set(MASKED) and set(plain["readonlyPaths"]) == set(READONLY)
    # host devices, all of them allowed in the device cgroup (a rootless user: bound, no cgroup)
    if nerdpy.user is None:
        assert len(priv.get("devices") or []) > len(plain.get("devices") or [])
        assert {"allow": True, "access": "rwm"} in priv["resources"]["devices"]
    else:
        def binds(spec):
            return [m for m in spec["mounts"] if m["type"] == "bind" and m["source"].startswith("/dev/")]
        assert len(binds(specs["priv"])) > len(binds(specs["plain"])) == 0
    sys_mount = [m for m in specs["priv"]["mounts"] if m["destination"] == "/sys"][0]
    assert "ro" not in sys_mount.get("options", [])
    sys_mount = [m for m in specs["plain"]["mounts"] if m["destination"] == "/sys"][0]
    assert "ro" in sys_mount.get("options", [])
    nerdpy("rm", "priv", "plain", check=True, timeout=T)
