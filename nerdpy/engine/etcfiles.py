"""Files a container needs from outside its image: users and groups looked up in the image's
/etc/passwd and /etc/group (read safely inside the root), and the per-container /etc/hosts,
/etc/hostname and /etc/resolv.conf.
"""
from __future__ import annotations

import os

from nerdpy.engine.errors import InvalidArgument


def resolve_in_root(root: str, path: str, max_links: int = 40) -> str:
    """Resolve `path` as if `root` were `/`: symlinks (absolute or relative) never leave root.
    Returns a host path inside root (the final component may not exist)."""
    root = os.path.abspath(root)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        import stat as _stat

        if _stat.S_ISLNK(st.st_mode):
            links += 1
            if links > max_links:
                raise InvalidArgument(f"too many levels of symbolic links in {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _read_lines(root: str, path: str) -> list[str]:
    try:
        with open(resolve_in_root(root, path), errors="replace") as f:
            return f.read().splitlines()
    except (OSError, InvalidArgument):
        return []


def lookup_user(root: str, user: str | None, group_add: list[str] = ()) -> tuple[int, int, list[int], str]:
    """docker's -u rules: `name|uid[:group|gid]`; returns (uid, gid, additional gids, home)."""
    user = user or ""
    name, _, group = user.partition(":")
    passwd = [line.split(":") for line in _read_lines(root, "/etc/passwd") if line.count(":") >= 6]
    groups = [line.split(":") for line in _read_lines(root, "/etc/group") if line.count(":") >= 3]
    uid, gid, home, uname = 0, 0, "/root", "root"
    if name:
        entry = next((p for p in passwd if p[0] == name), None)
        if entry is None and name.isdigit():
            entry = next((p for p in passwd if p[2] == name), None)
            if entry is None:
                uid, gid, home, uname = int(name), 0, "/", ""
        if entry is not None:
            uid, gid, home, uname = int(entry[2]), int(entry[3]), entry[5] or "/", entry[0]
        elif not name.isdigit():
            raise InvalidArgument(f"unable to find user {name}: no matching entries in passwd file")
    else:
        entry = next((p for p in passwd if p[2] == "0"), None)
        if entry is not None:
            home = entry[5] or "/root"
    if group:
        g = _group_id(groups, group)
        gid = g
    extra: list[int] = []
    if uname:
        for g in groups:
            members = g[3].split(",") if len(g) > 3 else []
            if uname in members and g[2].isdigit() and int(g[2]) != gid:
                extra.append(int(g[2]))
    for g in group_add:
        gi = _group_id(groups, g)
        if gi not in extra:
            extra.append(gi)
    return uid, gid, [gid] + [g for g in extra if g != gid], home


def _group_id(groups: list[list[str]], group: str) -> int:
    entry = next((g for g in groups if g[0] == group), None)
    if entry is not None and entry[2].isdigit():
        return int(entry[2])
    if group.isdigit():
        return int(group)
    raise InvalidArgument(f"unable to find group {group}: no matching entries in group file")


def write_atomic(path: str, data: str, mode: int = 0o644) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def hosts_file(hostname: str, ip: str | None = None, extra: list[tuple[str, str]] = ()) -> str:
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "ff00::0\tip6-mcastprefix",
        "ff02::1\tip6-allnodes",
        "ff02::2\tip6-allrouters",
    ]
    for name, addr in extra:
        lines.append(f"{addr}\t{name}")
    if ip:
        lines.append(f"{ip}\t{hostname}")
    elif hostname:
        lines.append(f"127.0.1.1\t{hostname}")
    return "\n".join(lines) + "\n"


def resolv_conf(host_network: bool, dns: list[str] = (), search: list[str] = (), options: list[str] = ()) -> str:
    """The host's resolv.conf (systemd-resolved's upstream file when the host lists only a
    loopback resolver), with loopback servers dropped unless the container uses the host network."""
    text = ""
    for path in ("/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"):
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        servers = [ln.split()[1] for ln in text.splitlines() if ln.startswith("nameserver") and len(ln.split()) > 1]
        if servers and all(_is_loopback(s) for s in servers) and path == "/etc/resolv.conf":
            continue
        break
    out_servers, out_search, out_opts = [], [], []
    for ln in text.splitlines():
        f = ln.split()
        if not f or f[0].startswith("#"):
            continue
        if f[0] == "nameserver" and len(f) > 1:
            if host_network or not _is_loopback(f[1]):
                out_servers.append(f[1])
        elif f[0] in ("search", "domain"):
            out_search = f[1:]
        elif f[0] == "options":
            out_opts += f[1:]
    if dns:
        out_servers = list(dns)
    if search:
        out_search = list(search)
    if options:
        out_opts = list(options)
    if not out_servers and not host_network:
        out_servers = ["8.8.8.8", "8.8.4.4"]  # docker's fallback
    lines = [f"nameserver {s}" for s in out_servers]
    if out_search:
        lines.append("search " + " ".join(out_search))
    if out_opts:
        lines.append("options " + " ".join(out_opts))
    return "\n".join(lines) + "\n"


def _is_loopback(addr: str) -> bool:
    return addr.startswith("127.") or addr == "::1"
