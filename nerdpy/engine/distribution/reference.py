"""Image references: docker's grammar (distribution/reference) and its normalisation.

`busybox` -> `docker.io/library/busybox:latest`; `host:5000/a/b:tag`; `name@sha256:...`;
`name:tag@digest`; `localhost/x`. The first of several path components is a registry host when
it holds a dot or a colon, is `localhost`, or has an uppercase letter (distribution/reference v0.6).
"""
from __future__ import annotations

import re
from dataclasses import replace

from nerdpy.engine.errors import InvalidReference
from nerdpy.engine.util.lean import lean_dataclass

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
MAX_NAME = 255

# Go's regexp: `\w` is ASCII only and `$` never matches before a trailing newline, hence
# re.ASCII and fullmatch() everywhere.
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", re.ASCII)
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}", re.ASCII)
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(
    r"(?:" + _DOMAIN_PART + r"(?:\." + _DOMAIN_PART + r")*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?", re.ASCII
)
_IDENTIFIER = re.compile(r"[a-f0-9]{64}", re.ASCII)
_HEX = {"sha256": 64, "sha384": 96, "sha512": 128}


@lean_dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def repository(self) -> str:
        return self.name

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def familiar_name(self) -> str:
        if self.domain == DEFAULT_DOMAIN:
            if self.path.startswith(OFFICIAL_PREFIX) and "/" not in self.path[len(OFFICIAL_PREFIX):]:
                return self.path[len(OFFICIAL_PREFIX):]
            first = self.path.split("/", 1)[0]
            if "." in first or ":" in first or first == "localhost":
                # `docker.io/a.b/c` shown as `a.b/c` would name the registry a.b: keep the domain
                return self.name
            return self.path
        return self.name

    def familiar(self) -> str:
        s = self.familiar_name()
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def with_tag(self, tag: str) -> "Reference":
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            raise InvalidReference(f"invalid tag format: {tag!r}")
        return replace(self, tag=tag)

    def with_digest(self, digest: str) -> "Reference":
        _check_digest(digest)
        return replace(self, digest=digest)


def _check_digest(digest: str) -> None:
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise InvalidReference(f"invalid reference format: invalid digest {digest!r}")
    algo, _, hexpart = digest.partition(":")
    want = _HEX.get(algo)
    if want is None:
        raise InvalidReference(f"invalid reference format: unsupported digest algorithm {algo!r}")
    if len(hexpart) != want or not re.fullmatch(r"[a-f0-9]+", hexpart, re.ASCII):
        raise InvalidReference(f"invalid reference format: invalid checksum digest length or format: {digest!r}")


def parse_reference(s: str, *, default_tag: str | None = "latest") -> Reference:
    """Parse and normalise `s` as docker's ParseNormalizedNamed (+ TagNameOnly) does;
    raise InvalidReference with a clear message."""
    if not isinstance(s, str) or not s:
        raise InvalidReference("invalid reference format: the name is empty")
    if s != s.strip() or any(c.isspace() for c in s):
        raise InvalidReference(f"invalid reference format: {s!r} contains whitespace")
    if _IDENTIFIER.fullmatch(s):
        raise InvalidReference(f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    rest = s
    digest = None
    if "@" in rest:
        rest, _, digest = rest.partition("@")
        if "@" in digest:
            raise InvalidReference(f"invalid reference format: {s!r}")
        _check_digest(digest)
    tag = None
    # a tag is the part after the last ':' that comes after the last '/'
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise InvalidReference(f"invalid reference format: bad tag {tag!r} in {s!r}")
    if not rest:
        raise InvalidReference(f"invalid reference format: {s!r} has no repository name")
    parts = rest.split("/")
    first = parts[0]
    # docker's splitDockerDomain: the first of several components is a registry host when it is
    # `localhost`, holds a '.' or a ':', or has an uppercase letter (namespaces are lowercase)
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        domain, comps = first, parts[1:]
        if not _DOMAIN.fullmatch(domain):
            raise InvalidReference(f"invalid reference format: bad registry host {domain!r}")
    else:
        domain, comps = DEFAULT_DOMAIN, parts
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and len(comps) == 1:
        comps = [OFFICIAL_PREFIX.rstrip("/")] + comps
    path = "/".join(comps)
    if path.lower() != path:
        raise InvalidReference(f"invalid reference format: repository name ({path}) must be lowercase")
    for comp in comps:
        if not comp:
            raise InvalidReference(f"invalid reference format: empty path component in {s!r}")
        if not _COMPONENT.fullmatch(comp):
            raise InvalidReference(f"invalid reference format: bad path component {comp!r} in {s!r}")
    # distribution/reference counts the path only (domain excluded), "library/" included
    if len(path) > MAX_NAME:
        raise InvalidReference(f"invalid reference format: repository name must not be more than {MAX_NAME} characters")
    if tag is None and digest is None:
        tag = default_tag
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def is_image_id_like(s: str) -> bool:
    """'sha256:<hex>' or a 1-64 character hex string that could be an image ID prefix."""
    if s.startswith("sha256:"):
        s = s[7:]
    return 0 < len(s) <= 64 and re.fullmatch(r"[a-f0-9]+", s, re.ASCII) is not None
