"""`nerdpy doctor`: does this host have what nerdpy needs? Each check says what it found and,
when something is wrong, the command that fixes it.

Checks: root; runc on PATH and carrying the CVE-2024-21626 fix (upstream 1.1.12 or later, or a
distribution build that backports it: the Debian/Ubuntu package changelog, or the RPM one, is
read rather than the version compared); overlayfs; cgroups (v1, v2 or hybrid, with the
controllers limits need); the CNI plugins; iptables; iproute2 and tini (warnings only: bridge
teardown and `--init` need them); the data root's filesystem, by mounting a tiny overlay with
its upper dir there (in a private mount namespace, so nothing is left behind); free space; and
the registry mirrors of the `hosts.toml` files found in the hosts dirs, each asked for `/v2/`
(a registry whose mirrors and server all fail to answer is a failure; a dead mirror with a live
server only a warning, since pulls fall back to the server).
"""
from __future__ import annotations

import ctypes
import gzip
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from nerdpy.engine.config import Settings

CVE = "CVE-2024-21626"
FIXED_UPSTREAM = (1, 1, 12)
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap", "firewall", "tuning")
MIN_FREE_BYTES = 2 << 30

# statfs f_type -> name
FS_TYPES = {
    0xEF53: "ext2/ext3/ext4", 0x58465342: "xfs", 0x9123683E: "btrfs", 0x2FC12FC1: "zfs",
    0x01021994: "tmpfs", 0x794C7630: "overlayfs", 0x6969: "nfs", 0xFF534D42: "cifs", 0x65735546: "fuse",
    0x858458F6: "ramfs", 0x5346544E: "ntfs", 0x4D44: "vfat", 0xF2F52010: "f2fs", 0x73717368: "squashfs",
    0x01021997: "9p", 0x6A656A63: "virtiofs",
}


@dataclass
class Check:
    name: str
    status: str          # ok, warn (reported, does not fail), fail
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "fail"


def _run(argv: list[str], timeout: float = 10) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


# -- root -----------------------------------------------------------------------------------------
def check_root() -> Check:
    if os.geteuid() == 0:
        return Check("root", "ok", "running as root")
    return Check("root", "fail", f"running as uid {os.geteuid()}: nerdpy needs root (rootless mode is not "
                 "supported)", "sudo nerdpy ...  (or run it from a root shell)")


# -- runc -----------------------------------------------------------------------------------------
def parse_version(text: str) -> tuple[int, int, int] | None:
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", text or "")
    return tuple(int(x) for x in m.groups()) if m else None  # type: ignore[return-value]


def find_runc(settings: Settings, path_env: str | None = None) -> str | None:
    """runc as a shell would find it: the configured absolute path, or on PATH."""
    name = settings.runc or "runc"
    if os.path.isabs(name):
        return name if os.access(name, os.X_OK) else None
    return shutil.which(name, path=path_env if path_env is not None else os.environ.get("PATH", os.defpath))


def _dpkg_owner(path: str) -> str | None:
    """The Debian package that ships `path` (merged /usr: /sbin/x is /usr/sbin/x)."""
    cands = {path, os.path.realpath(path)}
    for p in list(cands):
        if p.startswith("/usr/"):
            cands.add(p[4:])
        else:
            cands.add("/usr" + p)
    for p in cands:
        r = _run(["dpkg-query", "-S", p])
        if r is not None and r.returncode == 0 and ":" in r.stdout:
            return r.stdout.split(":", 1)[0].strip()
    return None


def _debian_changelog_has(package: str, needle: str) -> bool:
    for path in (f"/usr/share/doc/{package}/changelog.Debian.gz", f"/usr/share/doc/{package}/changelog.gz"):
        try:
            with gzip.open(path, "rt", errors="replace") as f:
                if needle in f.read():
                    return True
        except OSError:
            continue
    return False


def runc_fix_status(runc: str, version_text: str) -> tuple[bool, str]:
    """(has the CVE-2024-21626 fix, why we think so)."""
    v = parse_version(version_text)
    if v is not None and v >= FIXED_UPSTREAM:
        return True, f"runc {'.'.join(map(str, v))} >= 1.1.12"
    pkg = _dpkg_owner(runc)
    if pkg is not None:
        r = _run(["dpkg-query", "-W", "-f", "${Version}", pkg])
        pkg_version = r.stdout.strip() if r is not None and r.returncode == 0 else "?"
        if _debian_changelog_has(pkg, CVE):
            return True, f"package {pkg} {pkg_version} backports the fix (its changelog names {CVE})"
        return False, f"package {pkg} {pkg_version}: its changelog does not mention {CVE}"
    r = _run(["rpm", "-qf", "--changelog", runc])
    if r is not None and r.returncode == 0:
        if CVE in r.stdout:
            return True, f"the RPM package's changelog names {CVE}"
        return False, f"the RPM package's changelog does not mention {CVE}"
    shown = ".".join(map(str, v)) if v else "unknown version"
    return False, f"runc {shown} (not from a package whose changelog could be read) is older than 1.1.12"


def _off_path(name: str) -> str | None:
    """Where `name` is installed in a usual directory that PATH lacks."""
    for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if os.access(os.path.join(d, name), os.X_OK):
            return os.path.join(d, name)
    return None


def check_runc(settings: Settings) -> list[Check]:
    runc = find_runc(settings)
    if runc is None:
        elsewhere = _off_path("runc")
        if elsewhere:
            return [Check("runc", "fail", f"runc not found on PATH={os.environ.get('PATH', '')} ({elsewhere} "
                          "exists but its directory is not on PATH)",
                          f"export PATH=$PATH:{os.path.dirname(elsewhere)}")]
        return [Check("runc", "fail", f"runc not found on PATH={os.environ.get('PATH', '')}",
                      "apt-get install -y runc")]
    r = _run([runc, "--version"])
    if r is None or r.returncode != 0:
        return [Check("runc", "fail", f"{runc} --version failed: {(r.stderr.strip() if r else 'could not run')}",
                      "apt-get install --reinstall -y runc")]
    lines = r.stdout.strip().splitlines()
    first = lines[0] if lines else ""
    commit = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("commit:")), "")
    version = first.replace("runc version", "").strip()
    checks = [Check("runc", "ok", f"{runc}: runc {version}" + (f" (commit {commit})" if commit else ""))]
    fixed, why = runc_fix_status(runc, version)
    if fixed:
        checks.append(Check(f"runc {CVE}", "ok", why))
    else:
        checks.append(Check(f"runc {CVE}", "fail", f"{why}: containers could escape through a leaked fd "
                            "(\"Leaky Vessels\")",
                            "apt-get update && apt-get install -y runc  (or install runc >= 1.1.12 from "
                            "https://github.com/opencontainers/runc/releases)"))
    return checks


# -- kernel features ------------------------------------------------------------------------------
def check_overlay(proc_filesystems: str = "/proc/filesystems") -> Check:
    try:
        with open(proc_filesystems) as f:
            names = {line.split()[-1] for line in f if line.strip()}
    except OSError as e:
        return Check("overlayfs", "fail", f"cannot read {proc_filesystems}: {e.strerror}", "mount -t proc proc /proc")
    if "overlay" in names:
        return Check("overlayfs", "ok", "overlay is in /proc/filesystems")
    return Check("overlayfs", "fail", "the kernel has no overlay filesystem loaded", "modprobe overlay  "
                 "(and add `overlay` to /etc/modules-load.d/nerdpy.conf to load it at boot)")


def cgroup_layout(root: str = "/sys/fs/cgroup") -> str:
    """v2, hybrid (v1 controllers plus a v2 unified hierarchy), v1, or none."""
    from nerdpy.engine.runtime.cgroups import layout

    return layout(root)


def check_cgroups(root: str = "/sys/fs/cgroup") -> Check:
    layout = cgroup_layout(root)
    want = ("memory", "pids", "cpu")
    if layout == "none":
        return Check("cgroups", "fail", f"no cgroup hierarchy mounted at {root}",
                     f"mount -t cgroup2 none {root}")
    if layout == "v2":
        try:
            with open(os.path.join(root, "cgroup.controllers")) as f:
                have = set(f.read().split())
        except OSError:
            have = set()
        missing = [c for c in want if c not in have]
        detail = "cgroup v2 (unified), controllers: " + " ".join(sorted(have))
    else:
        have = {c for c in ("memory", "pids", "cpu", "cpuset", "devices", "freezer", "blkio")
                if os.path.isdir(os.path.join(root, c))}
        missing = [c for c in want + ("devices", "freezer") if c not in have]
        detail = ("cgroup v1 with a v2 unified hierarchy (hybrid)" if layout == "hybrid" else "cgroup v1") \
            + ", controllers: " + " ".join(sorted(have))
    if missing:
        return Check("cgroups", "fail", detail + f"; missing: {', '.join(missing)}",
                     "enable the controllers on the kernel command line (e.g. cgroup_enable=memory) and reboot")
    return Check("cgroups", "ok", detail)


def check_cni(settings: Settings) -> Check:
    dirs = list(settings.cni_path)
    missing = []
    found_in: set[str] = set()
    for plugin in CNI_PLUGINS:
        hit = next((d for d in dirs if os.access(os.path.join(d, plugin), os.X_OK)), None)
        if hit is None:
            missing.append(plugin)
        else:
            found_in.add(hit)
    where = ", ".join(sorted(found_in)) or ", ".join(dirs)
    if missing:
        return Check("CNI plugins", "fail", f"missing in {':'.join(dirs)}: {', '.join(missing)} "
                     "(needed for bridge networks and published ports; --network none/host work without)",
                     "apt-get install -y containernetworking-plugins")
    return Check("CNI plugins", "ok", f"{', '.join(CNI_PLUGINS)} in {where}")


def check_iptables() -> Check:
    search = None
    if os.geteuid() != 0:  # rootless: found as the user's namespace finds it
        from nerdpy.engine.runtime.rootless import tools_path

        search = tools_path()
    path = shutil.which("iptables", path=search)
    if path is None:
        elsewhere = _off_path("iptables")
        if elsewhere:
            return Check("iptables", "fail", f"iptables not found on PATH ({elsewhere} exists but its directory "
                         "is not on PATH)", f"export PATH=$PATH:{os.path.dirname(elsewhere)}")
        return Check("iptables", "fail", "iptables not found on PATH (needed for published ports and masquerading)",
                     "apt-get install -y iptables")
    r = _run([path, "--version"])
    if r is None or r.returncode != 0:
        return Check("iptables", "fail", f"{path} --version failed", "apt-get install --reinstall -y iptables")
    return Check("iptables", "ok", f"{path}: {r.stdout.strip()}")


def check_iproute2() -> Check:
    path = shutil.which("ip") or _off_path("ip")
    if path is None:
        return Check("iproute2", "warn", "ip not found (nerdpy deletes the bridges of removed networks with it)",
                     "apt-get install -y iproute2")
    return Check("iproute2", "ok", path)


def check_tini() -> Check:
    for path in ("/usr/bin/tini-static", "/usr/bin/docker-init", "/usr/libexec/docker/docker-init"):
        if os.access(path, os.X_OK):
            return Check("tini", "ok", f"{path} (for run --init)")
    found = shutil.which("tini-static") or shutil.which("docker-init")
    if found:
        return Check("tini", "ok", f"{found} (for run --init)")
    return Check("tini", "warn", "no static tini: run --init will refuse to start containers",
                 "apt-get install -y tini")


# -- registries and their mirrors (hosts.toml) ----------------------------------------------------
PROBE_TIMEOUT = 5.0


def hosts_files(hosts_dirs: list[str]) -> list[tuple[str, str]]:
    """(registry name as nerdpy looks it up, path) of every hosts.toml in the hosts dirs; a name
    found in an earlier dir shadows the same name in a later one, as in resolve_hosts."""
    seen: dict[str, str] = {}
    for d in hosts_dirs:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for name in names:
            path = os.path.join(d, name, "hosts.toml")
            if not os.path.isfile(path):
                continue
            registry = name
            head, sep, tail = name.rpartition("_")
            if name != "_default" and sep and head and tail.isdigit():
                registry = f"{head}:{tail}"          # HOST_PORT is HOST:PORT
            seen.setdefault(registry, path)
    return sorted(seen.items())


def _file_used(registry: str, hosts_dirs: list[str]) -> str | None:
    """The hosts.toml resolve_hosts reads for `registry` (same order)."""
    for d in hosts_dirs:
        for name in (registry, registry.replace(":", "_"), "_default"):
            path = os.path.join(d, name, "hosts.toml")
            if os.path.isfile(path):
                return path
    return None


def probe(host) -> str | None:
    """Ask an endpoint (a hosts.RegistryHost) for its API root; None when it answers as a
    registry does (200 or 401), else why not."""
    import requests

    from nerdpy.engine.distribution.hosts import requests_cert

    path = "/" if host.override_path else "/v2/"
    urls = [host.url + path]
    if host.plain_http_fallback and host.url.startswith("https://"):
        urls.append("http://" + host.url.split("://", 1)[1] + path)
    verify = False if host.skip_verify else (host.ca[0] if host.ca else True)
    why = "no answer"
    for url in urls:
        try:
            with requests.Session() as s:
                s.trust_env = False
                r = s.get(url, timeout=PROBE_TIMEOUT, verify=verify, headers=dict(host.headers),
                          cert=requests_cert(host.client), allow_redirects=True)
                r.close()
        except requests.exceptions.Timeout:
            why = f"no answer within {PROBE_TIMEOUT:g}s"
            continue
        except requests.exceptions.RequestException as e:
            from nerdpy.engine.distribution.registry import _short

            why = _short(e)
            continue
        if r.status_code in (200, 401):
            return None
        return f"{url} answered HTTP {r.status_code}, not a registry's API"
    return why


def check_registries(settings: Settings) -> list[Check]:
    """One row per hosts.toml: its mirrors, and whether they (or the server) answer."""
    from nerdpy.engine.errors import NerdpyError
    from nerdpy.engine.distribution.hosts import resolve_hosts

    dirs = list(settings.hosts_dirs)
    files = hosts_files(dirs)
    if not files:
        return [Check("registry mirrors", "ok", "none: no hosts.toml in " + ":".join(settings.hosts_dirs)
                      + " (images come straight from their registries)")]
    checks = []
    for registry, path in files:
        name = f"registry {registry}" if registry != "_default" else "registry _default (any registry)"
        try:
            hosts = resolve_hosts(registry, [os.path.dirname(os.path.dirname(path))],
                                  list(settings.insecure_registries))
        except NerdpyError as e:
            checks.append(Check(name, "fail", str(e), f"fix the TOML in {path} (see docs/configuration.md)"))
            continue
        used = _file_used(registry, dirs)
        if used != path:
            checks.append(Check(name, "warn", f"{path} is not used: {used} comes first in " + ":".join(dirs),
                                f"merge the two files, or remove {used}"))
            continue
        mirrors, server = hosts[:-1], hosts[-1]
        if registry == "_default":
            server = None
        pulling = [m for m in mirrors if "pull" in m.capabilities]
        if not pulling:
            checks.append(Check(name, "ok", f"{path}: no mirror; server {server.url if server else '-'}"))
            continue
        dead = [(m, why) for m in pulling if (why := probe(m)) is not None]
        live = [m for m in pulling if all(m is not d for d, _ in dead)]
        detail = f"{path}: mirror{'s' if len(pulling) > 1 else ''} " + ", ".join(m.url for m in pulling)
        if not dead:
            checks.append(Check(name, "ok", detail + (" answers" if len(pulling) == 1 else " answer")))
            continue
        down = "; ".join(f"{m.url}: {why}" for m, why in dead)
        fix = f"check the mirror URL in {path}, or that the mirror is running and reachable from this host"
        if live:
            checks.append(Check(name, "warn", f"{detail}; not answering: {down}", fix))
        elif server is None:
            checks.append(Check(name, "warn", f"{detail}; not answering: {down} (pulls fall back to each "
                                "registry's own server)", fix))
        elif server is not None and probe(server) is None:
            checks.append(Check(name, "warn", f"{detail}; not answering: {down} (pulls fall back to {server.url})",
                                fix))
        else:
            checks.append(Check(name, "fail", f"{detail}; not answering: {down}; nor does the server "
                                f"{server.url}: pulls from {registry} will fail", fix))
    return checks


# -- the data root ---------------------------------------------------------------------------------
def _existing(path: str) -> str:
    p = os.path.abspath(path)
    while not os.path.exists(p):
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    return p


def fs_type(path: str) -> tuple[int, str]:
    """statfs(2)'s f_type of `path` and its name."""
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(256)
    if libc.statfs(os.fsencode(path), buf) != 0:
        return 0, "unknown"
    magic = int.from_bytes(buf.raw[:8], "little", signed=True) & 0xFFFFFFFF
    return magic, FS_TYPES.get(magic, hex(magic))


def check_data_root(settings: Settings) -> list[Check]:
    root = settings.data_root
    base = _existing(root)
    magic, name = fs_type(base)
    where = f"{root}" + ("" if base == os.path.abspath(root) else f" (not created yet; checked {base})")
    fix = "nerdpy --data-root /var/lib/nerdpy ...  (a directory on a local ext4, xfs or btrfs filesystem)"
    checks = []
    if name in ("overlayfs",):
        checks.append(Check("data root", "fail", f"{where} is on overlayfs, which cannot hold overlay upper dirs",
                            fix))
        return checks
    if name in ("nfs", "cifs", "fuse", "9p", "ramfs", "squashfs", "vfat", "ntfs"):
        checks.append(Check("data root", "fail", f"{where} is on {name}, which cannot hold overlay upper dirs", fix))
        return checks
    if os.geteuid() != 0:
        if settings.rootless_uid is not None:  # tried in a user namespace (the snapshotter check)
            checks.append(Check("data root", "ok", f"{where} is on {name}"))
        else:
            checks.append(Check("data root", "warn", f"{where} is on {name}; not tried (needs root)"))
        return checks
    from nerdpy.engine.snapshots.probe import overlay_whiteout_works

    err = overlay_whiteout_works(base)
    if err:
        checks.append(Check("data root", "fail", f"{where} is on {name}, where an overlay upper dir does not "
                            f"work: {err}", fix))
    else:
        checks.append(Check("data root", "ok", f"{where} is on {name}; overlay upper dirs work there"))
    return checks


def check_free_space(settings: Settings, minimum: int = MIN_FREE_BYTES) -> Check:
    base = _existing(settings.data_root)
    try:
        du = shutil.disk_usage(base)
    except OSError as e:
        return Check("free space", "fail", f"cannot stat {base}: {e.strerror}", "")
    gib = du.free / (1 << 30)
    detail = f"{gib:.1f} GiB free of {du.total / (1 << 30):.1f} GiB on {base}"
    if du.free < minimum:
        return Check("free space", "fail", detail + f" (less than {minimum / (1 << 30):.0f} GiB)",
                     "nerdpy system prune -a  (or free space on that filesystem, or use --data-root elsewhere)")
    return Check("free space", "ok", detail)


def run_checks(settings: Settings) -> list[Check]:
    """Every check, in the order `nerdpy doctor` prints them."""
    checks = [check_root()]
    checks += check_runc(settings)
    checks += [check_overlay(), check_cgroups(), check_cni(settings), check_iptables(), check_iproute2(),
               check_tini()]
    checks += check_data_root(settings)
    checks.append(check_free_space(settings))
    checks += check_registries(settings)
    return checks
