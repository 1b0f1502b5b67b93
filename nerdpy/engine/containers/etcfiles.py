"""Files a container needs from outside its image: users and groups looked up in the image's
/etc/passwd and /etc/group (read safely inside the root), and the per-container /etc/hosts,
/etc/hostname and /etc/resolv.conf.
"""
from __future__ import annotations

import os

from nerdpy.engine.errors import InvalidArgument
from nerdpy.engine.util.fs import resolve_in_root


def _read_lines(root: str, path: str) -> list[str]:
    try:
        with open(resolve_in_root(root, path), errors="replace") as f:
            return f.read().splitlines()
    except (OSError, InvalidArgument):
        return []


def lookup_user(root: str, user: str | None, group_add: list[str] = ()) -> tuple[int, int, list[int], str]:
    """docker's -u rules: `name|uid[:group|gid]`; returns (uid, gid, additional gids, home)."""
    return resolve_user(_read_lines(root, "/etc/passwd"), _read_lines(root, "/etc/group"), user, group_add)


_MAX_ID = 2**31 - 1


def _numeric_id(text: str, what: str) -> int | None:
    if not text.isdigit():
        return None
    n = int(text)
    if n > _MAX_ID:
        raise InvalidArgument(f"{what} {text} is out of range: uids and gids must be in range 0-{_MAX_ID}")
    return n


def resolve_user(passwd_lines: list[str], group_lines: list[str], user: str | None,
                 group_add: list[str] = ()) -> tuple[int, int, list[int], str]:
    """runc's GetExecUser as moby calls it: a name must be in passwd, a number need not be;
    supplementary groups from /etc/group only when no group is given explicitly; the primary
    gid first in the additional gids (containerd's CVE-2023-25173 fix), then --group-add."""
    user = (user or "").strip()
    name, _, group = user.partition(":")
    passwd = [line.split(":") for line in passwd_lines if line.count(":") >= 6]
    groups = [line.split(":") for line in group_lines if line.count(":") >= 3]
    uid, gid, home, uname = 0, 0, "/", ""
    if name:
        num = _numeric_id(name, "uid")
        entry = next((p for p in passwd if p[0] == name), None)
        if entry is None and num is not None:
            entry = next((p for p in passwd if p[2] == name), None)
        if entry is not None:
            uid, gid, home, uname = _int(entry[2]), _int(entry[3]), entry[5] or "/", entry[0]
        elif num is not None:
            uid = num
        else:
            raise InvalidArgument(f"unable to find user {name}: no matching entries in passwd file")
    else:
        entry = next((p for p in passwd if p[2] == "0"), None)
        uid, gid, home, uname = 0, 0, "/root", "root"
        if entry is not None:
            gid, home, uname = _int(entry[3]), entry[5] or "/root", entry[0]
    extra: list[int] = []
    if group:
        gid = _group_id(groups, group)
    elif uname:
        for g in groups:
            members = g[3].split(",") if len(g) > 3 else []
            if uname in members and g[2].isdigit():
                extra.append(int(g[2]))
    for g in group_add:
        extra.append(_group_id(groups, g))
    out = [gid]
    for g in extra:
        if g not in out:
            out.append(g)
    return uid, gid, out, home


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _group_id(groups: list[list[str]], group: str) -> int:
    entry = next((g for g in groups if g[0] == group), None)
    if entry is not None and entry[2].isdigit():
        return int(entry[2])
    num = _numeric_id(group, "gid")
    if num is not None:
        return num
    raise InvalidArgument(f"unable to find group {group}: no matching entries in group file")


def read_from_layers(layers: list[str], path: str) -> list[str] | None:
    """Lines of `path` in an image given as its layer directories (top first, in the
    snapshotter's diff form), without mounting it; None when that cannot be decided this simply
    (a symlink on the way)."""
    import stat as _stat

    from nerdpy.engine.snapshots.snapshotter import is_whiteout, opaque_xattr

    parts = [p for p in path.split("/") if p]
    for layer in layers:
        cur = layer
        for i, part in enumerate(parts):
            cur = os.path.join(cur, part)
            try:
                st = os.lstat(cur)
            except FileNotFoundError:
                break
            except OSError:
                return None
            if is_whiteout(st):
                return []  # a whiteout hides it and everything below
            if _stat.S_ISLNK(st.st_mode):
                return None
            if i == len(parts) - 1:
                if not _stat.S_ISREG(st.st_mode):
                    return None
                try:
                    with open(cur, errors="replace") as f:
                        return f.read().splitlines()
                except OSError:
                    return None
            if not _stat.S_ISDIR(st.st_mode):
                return []
        else:
            continue
        # not in this layer: an opaque directory on the way hides the layers below
        probe = layer
        for part in parts[:-1]:
            probe = os.path.join(probe, part)
            try:
                if os.getxattr(probe, opaque_xattr()) == b"y":
                    return []
            except OSError:
                pass
    return []


def check_user_in_layers(layers: list[str], user: str | None, group_add: list[str] = ()) -> None:
    """Fail early (at create, before anything exists) for a user or group the image lacks."""
    if not user and not group_add:
        return
    passwd = read_from_layers(layers, "/etc/passwd")
    group = read_from_layers(layers, "/etc/group")
    if passwd is None or group is None:
        return  # decided at start, inside the mounted root
    resolve_user(passwd, group, user, group_add)


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
    # without an address (--network none) docker writes no line for the hostname either
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
