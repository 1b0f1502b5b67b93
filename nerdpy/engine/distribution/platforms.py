"""OCI platforms: parsing `os/arch[/variant]`, the host's platform, and matching index entries
(containerd's normalisation: x86_64 -> amd64, aarch64 -> arm64, arm64's default variant v8...)."""
from __future__ import annotations

import platform as _platform
import re
from dataclasses import dataclass

from nerdpy.engine.errors import InvalidPlatform

_ARCH = {
    "x86_64": ("amd64", None), "x86-64": ("amd64", None), "amd64": ("amd64", None),
    "aarch64": ("arm64", None), "arm64": ("arm64", None),
    "armhf": ("arm", "v7"), "armel": ("arm", "v6"), "arm": ("arm", "v7"),
    "i386": ("386", None), "i686": ("386", None), "386": ("386", None),
    "ppc64le": ("ppc64le", None), "s390x": ("s390x", None), "riscv64": ("riscv64", None),
    "mips64le": ("mips64le", None),
}
_OS = {"linux", "windows", "darwin", "freebsd", "unknown"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        s = f"{self.os}/{self.architecture}"
        return f"{s}/{self.variant}" if self.variant else s


def _normalise(os_: str, arch: str, variant: str | None) -> Platform:
    os_ = os_.lower()
    arch = arch.lower()
    variant = variant.lower() if variant else None
    if arch in _ARCH:
        norm, default_variant = _ARCH[arch]
        if arch == "arm" and variant is None:
            variant = default_variant
        elif norm == "arm" and variant is None:
            variant = default_variant
        arch = norm
    if arch == "arm64" and variant in ("v8", "8"):
        variant = None
    if arch == "arm" and variant and variant.isdigit():
        variant = "v" + variant
    if arch == "amd64" and variant == "v1":
        variant = None
    return Platform(os_, arch, variant)


def parse_platform(s: str) -> Platform:
    """'linux/amd64', 'amd64', 'linux/arm/v7', 'linux/arm64/v8' -> Platform."""
    if not s or not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,2}", s):
        raise InvalidPlatform(f"invalid platform {s!r}: expected os/arch[/variant]")
    parts = s.split("/")
    if len(parts) == 1:
        if parts[0].lower() in _OS:
            raise InvalidPlatform(f"invalid platform {s!r}: missing architecture")
        os_, arch, variant = "linux", parts[0], None
    elif len(parts) == 2:
        if parts[0].lower() in _OS:
            os_, arch, variant = parts[0], parts[1], None
        else:
            os_, arch, variant = "linux", parts[0], parts[1]
    else:
        os_, arch, variant = parts
    if os_.lower() not in _OS:
        raise InvalidPlatform(f"invalid platform {s!r}: unknown operating system {os_!r}")
    if arch.lower() not in _ARCH and not re.fullmatch(r"[a-z0-9]+", arch.lower()):
        raise InvalidPlatform(f"invalid platform {s!r}: unknown architecture {arch!r}")
    return _normalise(os_, arch, variant)


def host_platform() -> Platform:
    machine = _platform.machine() or "amd64"
    return _normalise("linux", machine, None)


def platform_matches(wanted: Platform, candidate: dict | None) -> bool:
    if not isinstance(candidate, dict):
        return False
    try:
        got = _normalise(str(candidate.get("os", "")), str(candidate.get("architecture", "")),
                         candidate.get("variant"))
    except Exception:
        return False
    if got.os != wanted.os or got.architecture != wanted.architecture:
        return False
    if got.architecture == "amd64":
        return True
    return (got.variant or None) == (wanted.variant or None)


def is_attestation(candidate: dict | None) -> bool:
    if not isinstance(candidate, dict):
        return False
    return candidate.get("os") == "unknown" or candidate.get("architecture") == "unknown"
