"""Image reference parsing: the expectations are those of docker's distribution/reference v0.6
(ParseNormalizedNamed followed by TagNameOnly), not whatever nerdpy happens to do."""
import pytest

from nerdpy.engine.errors import InvalidArgument, InvalidReference
from nerdpy.engine.distribution.reference import is_image_id_like, parse_reference

H64 = "0123456789abcdef" * 4
H96 = "0123456789abcdef" * 6
H128 = "0123456789abcdef" * 8
D256 = "sha256:" + H64

# (input, normalised string, familiar string)
VALID = [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/library/busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/busybox:glibc", "docker.io/library/busybox:glibc", "busybox:glibc"),
    ("index.docker.io/user/app", "docker.io/user/app:latest", "user/app:latest"),
    ("user/app", "docker.io/user/app:latest", "user/app:latest"),
    ("user/app:v2", "docker.io/user/app:v2", "user/app:v2"),
    ("a/b/c/d", "docker.io/a/b/c/d:latest", "a/b/c/d:latest"),
    # "library/" is only dropped from a familiar name when nothing nests below it
    ("library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
    ("host:5000/a/b:tag", "host:5000/a/b:tag", "host:5000/a/b:tag"),
    ("example.com/x", "example.com/x:latest", "example.com/x:latest"),
    # on other registries a single component gets no "library/"
    ("quay.io/busybox", "quay.io/busybox:latest", "quay.io/busybox:latest"),
    ("my-registry.example.com:443/team/app:2024.01", "my-registry.example.com:443/team/app:2024.01",
     "my-registry.example.com:443/team/app:2024.01"),
    ("127.0.0.1:5000/ns/img:1.0", "127.0.0.1:5000/ns/img:1.0", "127.0.0.1:5000/ns/img:1.0"),
    ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
    ("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest"),
    # a lone component is never a domain: "localhost" and "localhost:5000" are Hub names (+tag)
    ("localhost", "docker.io/library/localhost:latest", "localhost:latest"),
    ("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000"),
    ("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
    ("[2001:db8::1]/x:v", "[2001:db8::1]/x:v", "[2001:db8::1]/x:v"),
    # uppercase in the host is fine; an uppercase first component is taken as a host (v0.6)
    ("UPPER.example.com/x", "UPPER.example.com/x:latest", "UPPER.example.com/x:latest"),
    ("Foo/bar", "Foo/bar:latest", "Foo/bar:latest"),
    ("busybox@" + D256, "docker.io/library/busybox@" + D256, "busybox@" + D256),
    ("busybox:1.36@" + D256, "docker.io/library/busybox:1.36@" + D256, "busybox:1.36@" + D256),
    ("host:5000/a@sha512:" + H128, "host:5000/a@sha512:" + H128, "host:5000/a@sha512:" + H128),
    ("docker.io/user/app@sha384:" + H96, "docker.io/user/app@sha384:" + H96, "user/app@sha384:" + H96),
    ("a__b", "docker.io/library/a__b:latest", "a__b:latest"),
    ("a-b--c", "docker.io/library/a-b--c:latest", "a-b--c:latest"),
    ("a.b_c", "docker.io/library/a.b_c:latest", "a.b_c:latest"),
    ("x:A_b.c-D", "docker.io/library/x:A_b.c-D", "x:A_b.c-D"),
    ("x:_tag", "docker.io/library/x:_tag", "x:_tag"),
    ("x:" + "t" * 128, "docker.io/library/x:" + "t" * 128, "x:" + "t" * 128),
    # a quirk of docker's: "sha256:<hex>" is the Hub repository "sha256" with a 64-char tag
    ("sha256:" + H64, "docker.io/library/sha256:" + H64, "sha256:" + H64),
    # 255 characters of path ("library/" counts, the domain does not)
    ("a" * 247, "docker.io/library/" + "a" * 247 + ":latest", "a" * 247 + ":latest"),
    ("example.com/" + "a" * 255, "example.com/" + "a" * 255 + ":latest", "example.com/" + "a" * 255 + ":latest"),
]

INVALID = [
    "",
    ":tag",
    "busybox:",  # trailing colon
    "Busybox",  # uppercase repository
    "user/App",
    "docker.io/Foo/bar",
    "localhost:5000/Foo",
    "a//b",  # double slash
    "/a",
    "a/",
    "host:5000/",
    "busybox@",
    "busybox@sha256:abc",  # short digest
    "busybox@sha256:" + H64.upper(),  # hex must be lowercase
    "busybox@sha256:" + "g" * 64,
    "busybox@sha256:" + H64 + "0",  # 65 hex
    "busybox@sha512:" + H64,  # wrong length for the algorithm
    "busybox@md5:" + "0" * 32,  # unsupported algorithm
    "busybox@" + D256 + "@" + D256,
    "busybox:1@2@" + D256,
    "busybox:tag:tag",
    "a/b:c/d",
    "a" * 248,  # path of 256 characters
    "example.com/" + "a" * 256,
    "x:" + "t" * 129,
    "x:-tag",
    "x:.tag",
    "x:t\u00e4g",  # Go's \w is ASCII only
    "a___b",
    "a..b",
    "-a",
    "a-",
    "_a",
    "[::1]",
    "::1/x",
    "[::1/x",
    "host:abc/x",
    "http://host/x",
    "-bad.com/x",
    "bad-.com/x",
    " busybox",
    "busy box",
    "busybox\n",
    "caf\u00e9",
    H64,  # a bare 64-hex string is an image ID, never a name
]


@pytest.mark.parametrize("text,normal,familiar", VALID, ids=[v[0][:40] for v in VALID])
def test_valid(text, normal, familiar):
    ref = parse_reference(text)
    assert str(ref) == normal
    assert ref.familiar() == familiar
    # parsing is idempotent: the normalised form parses to itself
    assert str(parse_reference(normal)) == normal
    assert parse_reference(familiar) == ref


@pytest.mark.parametrize("text", INVALID, ids=[repr(t)[:40] for t in INVALID])
def test_invalid(text):
    with pytest.raises(InvalidReference) as exc:
        parse_reference(text)
    assert isinstance(exc.value, InvalidArgument)
    assert exc.value.exit_code == 125
    assert str(exc.value)


def test_parts():
    ref = parse_reference("host:5000/a/b:tag@" + D256)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("host:5000", "a/b", "tag", D256)
    assert ref.name == ref.repository == "host:5000/a/b"
    assert ref.familiar_name() == "host:5000/a/b"
    ref = parse_reference("busybox")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("docker.io", "library/busybox", "latest", None)
    assert ref.familiar_name() == "busybox"


def test_digest_only_gets_no_default_tag():
    ref = parse_reference("busybox@" + D256)
    assert ref.tag is None and ref.digest == D256


def test_default_tag_none_keeps_name_only():
    ref = parse_reference("busybox", default_tag=None)
    assert ref.tag is None
    assert str(ref) == "docker.io/library/busybox"
    assert ref.familiar() == "busybox"


@pytest.mark.parametrize("text,message", [
    ("Busybox", "repository name (library/Busybox) must be lowercase"),
    ("user/App", "repository name (user/App) must be lowercase"),
    ("a" * 248, "must not be more than 255 characters"),
    (H64, "cannot specify 64-byte hexadecimal strings"),
])
def test_messages(text, message):
    with pytest.raises(InvalidReference, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_reference(text)


def test_with_tag_and_digest():
    ref = parse_reference("busybox")
    assert str(ref.with_tag("v1")) == "docker.io/library/busybox:v1"
    assert str(ref.with_digest(D256)) == "docker.io/library/busybox:latest@" + D256
    for bad in ("", "v1\n", "-x", "t" * 129, "t\u00e4g"):
        with pytest.raises(InvalidReference):
            ref.with_tag(bad)
    for bad in ("sha256:abc", D256 + "\n", "sha256:" + H64.upper(), "md5:" + "0" * 32):
        with pytest.raises(InvalidReference):
            ref.with_digest(bad)


@pytest.mark.parametrize("text,expected", [
    (H64, True), ("sha256:" + H64, True), ("abc123", True), ("a", True),
    (H64 + "0", False), ("", False), ("sha256:", False), ("xyz", False), ("ABC", False), ("\u0661", False),
])
def test_image_id_like(text, expected):
    assert is_image_id_like(text) is expected
