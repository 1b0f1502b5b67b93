"""Property-based tests (issue 8): the parsers of user input, fed arbitrary text by hypothesis.

For every input, a parser either returns a value or raises nerdpy's own typed error (the one the
command line turns into one line and an exit code) -- never another exception. Where a parse has
an inverse, the round trip holds. The last tests drive the command line itself (in-process, a
fresh store) with random `--publish`, `pull` and `--format` values: exit 1 or 125, one line on
stderr, no traceback.

Runtime is bounded (PROPERTY_SETTINGS), so this file stays a few seconds of the unit suite; set
NERDPY_HYPOTHESIS_EXAMPLES for a longer search.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import string
import tarfile

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from compose import syntax as compose_syntax  # noqa: E402
from compose.errors import InterpolationError  # noqa: E402
from compose.interpolate import interpolate  # noqa: E402
from nerdpy.engine.errors import InvalidArgument, InvalidReference, NerdpyError  # noqa: E402
from nerdpy.engine.network import InvalidPort  # noqa: E402
from nerdpy.engine.network.ports import PROTOCOLS, PortMapping, parse_publish  # noqa: E402
from nerdpy.engine.distribution.reference import DEFAULT_DOMAIN, Reference, parse_reference  # noqa: E402
from nerdpy.template import TemplateError, format_output, render  # noqa: E402

EXAMPLES = int(os.environ.get("NERDPY_HYPOTHESIS_EXAMPLES", "200"))
PROPERTY_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# arbitrary text, weighted towards the characters these grammars care about
_SPECIAL = ":/@.-_[]{}$,=\\\"'`|()%+?* \t\n\x00"
chars = st.one_of(st.sampled_from(list(_SPECIAL)), st.sampled_from(list(string.ascii_letters + string.digits)),
                  st.characters())
texts = st.one_of(st.text(), st.text(alphabet=chars, max_size=60))


# -- image references ------------------------------------------------------------------------------
_component = st.from_regex(r"\A[a-z0-9]{1,6}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,4}){0,2}\Z")
_domain = st.one_of(
    st.just("localhost"), st.just("docker.io"), st.just("index.docker.io"),
    st.from_regex(r"\A[a-zA-Z0-9]{1,5}(?:\.[a-zA-Z0-9]{1,5}){1,2}(?::[0-9]{1,5})?\Z"),
    st.from_regex(r"\A[a-z]{1,6}:[0-9]{1,5}\Z"),
    st.from_regex(r"\A\[[a-f0-9:]{2,12}\](?::[0-9]{1,5})?\Z"),
)
_tag = st.from_regex(r"\A[\w][\w.-]{0,20}\Z").filter(lambda t: t.isascii())
_digest = st.sampled_from([("sha256", 64), ("sha512", 128), ("sha384", 96)]).flatmap(
    lambda a: st.from_regex(r"\A[a-f0-9]{%d}\Z" % a[1]).map(lambda h: f"{a[0]}:{h}"))


@st.composite
def reference_texts(draw) -> str:
    comps = draw(st.lists(_component, min_size=1, max_size=3))
    s = "/".join(comps)
    if draw(st.booleans()):
        s = draw(_domain) + "/" + s
    if draw(st.booleans()):
        s += ":" + draw(_tag)
    if draw(st.booleans()):
        s += "@" + draw(_digest)
    # a mutation now and then: the parser must still only say "invalid reference"
    if draw(st.integers(0, 3)) == 0:
        i = draw(st.integers(0, len(s)))
        s = s[:i] + draw(st.text(alphabet=chars, max_size=3)) + s[i:]
    return s


@PROPERTY_SETTINGS
@given(st.one_of(texts, reference_texts()))
@example("a" * 300)
@example("UPPER/x")
@example("docker.io/0.0/0")
@example("[::1]:5000/a/b:c@sha256:" + "a" * 64)
def test_reference_parses_or_is_invalid(s):
    try:
        r = parse_reference(s)
    except InvalidReference:
        return
    assert isinstance(r, Reference)
    assert r.tag or r.digest
    # the canonical form and the familiar form parse back to the same reference
    assert parse_reference(str(r), default_tag=None) == r
    assert parse_reference(r.familiar(), default_tag=None) == r
    if r.domain == DEFAULT_DOMAIN and "/" not in r.path:
        raise AssertionError(f"official image without library/: {r}")
    try:
        r2 = parse_reference(s, default_tag=None)
    except InvalidReference as e:
        raise AssertionError(f"{s!r} parses with a default tag but not without one: {e}")
    assert r2 == r or (r2.tag is None and r2.digest is None and r2.with_tag("latest") == r)


@PROPERTY_SETTINGS
@given(reference_texts(), texts)
def test_reference_with_tag_is_typed(ref, tag):
    try:
        r = parse_reference(ref)
    except InvalidReference:
        return
    try:
        r2 = r.with_tag(tag)
    except InvalidReference:
        return
    assert parse_reference(str(r2), default_tag=None) == r2


# -- Go templates (--format) -----------------------------------------------------------------------
DATA = {
    "ID": "abc", "Names": "web", "Size": 1024, "Ratio": 1.5, "Running": True, "Blank": "",
    "List": ["a", "b"], "Empty": [], "Labels": {"a": "1", "b": "2"}, "Nil": None,
    "Config": {"Env": ["A=1"], "Cmd": None, "Port": 80},
}
_WORDS = [
    ".", ".ID", ".Names", ".Size", ".Ratio", ".Running", ".List", ".Empty", ".Labels", ".Nil",
    ".Config.Env", ".Config.Port", ".Nope.Deeper", "$", "$x", "$i", "$.ID", "$x.Env", ":=", ",", "|",
    "(", ")", "if", "else", "end", "with", "range", "nil", "true", "false", "0", "-1", "3", "1.5",
    "99999999999999999999", '"s"', '"\\x"', '"\\u12"', '"%d %s %v %q %x %5.2f %!"', "`raw`", '"a\\"b"',
    "json", "join", "lower", "upper", "title", "split", "index", "len", "printf", "print", "println",
    "truncate", "pad", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "/* c */", "-", "bogus",
]


@st.composite
def templates(draw) -> str:
    out = []
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.booleans()):
            out.append(draw(st.text(alphabet=chars, max_size=8)))
        else:
            words = draw(st.lists(st.sampled_from(_WORDS), max_size=7))
            left = draw(st.sampled_from(["{{", "{{- ", "{{ "]))
            right = draw(st.sampled_from(["}}", " -}}", " }}", ""]))
            out.append(left + " ".join(words) + right)
    return "".join(out)


def _render_or_typed(tmpl: str, data=DATA):
    try:
        out = render(tmpl, data)
    except TemplateError:
        return None
    assert isinstance(out, str)
    return out


@PROPERTY_SETTINGS
@given(st.one_of(texts, templates()))
@example('{{"\\x"}}')
@example("{{range .Size}}x{{end}}")
@example("{{index .List 5}}")
@example("{{.ID 1}}")
@example("{{len .Size}}")
@example("{{printf}}")
@example("{{. truncate}}")
@example("{{lt .ID 1}}")
@example("{{" + "(" * 3000 + ".ID" + ")" * 3000 + "}}")
@example("{{if .ID}}" * 2000 + "x" + "{{end}}" * 2000)
@example("{{range $i, $x := .List}}{{$x.Env}}{{end}}")
def test_template_renders_or_is_typed(tmpl):
    _render_or_typed(tmpl)


@PROPERTY_SETTINGS
@given(st.text(alphabet=chars).filter(lambda s: "{{" not in s))
def test_template_without_actions_is_identity(text):
    assert render(text, DATA) == text


@PROPERTY_SETTINGS
@given(st.one_of(texts, templates(), templates().map(lambda t: "table " + t), st.just("json")))
def test_format_output_renders_or_is_typed(fmt):
    try:
        out = format_output(fmt, [DATA, {"ID": "x"}], default_table="table {{.ID}}", headers={"ID": "CONTAINER ID"})
    except TemplateError:
        return
    assert isinstance(out, str)


# -- compose interpolation -------------------------------------------------------------------------
ENV = {"A": "a", "EMPTY": "", "B": "${A}", "D": "$$"}
_IWORDS = ["$", "$$", "${", "}", "A", "EMPTY", "UNSET", "B", ":-", "-", ":?", "?", ":+", "+", "x", "/", "{", "$A",
           "${A}", "${UNSET:-d}", "${EMPTY:?err}", "${UNSET?}", "1"]


@st.composite
def interpolations(draw) -> str:
    return "".join(draw(st.lists(st.sampled_from(_IWORDS), max_size=12)))


@PROPERTY_SETTINGS
@given(st.one_of(texts, interpolations()))
@example("${A:-" * 2000 + "}" * 2000)
@example("${A:+" * 2000 + "}" * 2000)
@example("${UNSET:-" * 2000 + "x" + "}" * 2000)
def test_interpolation_substitutes_or_is_typed(text):
    try:
        out = interpolate(text, ENV, where="services.web.image", file="compose.yaml", line=3)
    except InterpolationError as e:
        assert "\n" not in str(e).strip() or "\n" in text, str(e)
        return
    assert isinstance(out, str)


@PROPERTY_SETTINGS
@given(st.text(alphabet=chars).filter(lambda s: "$" not in s))
def test_interpolation_without_dollar_is_identity(text):
    assert interpolate(text, ENV) == text


@PROPERTY_SETTINGS
@given(st.text(alphabet=chars))
def test_interpolation_of_escaped_dollars_is_the_text(text):
    assert interpolate(text.replace("$", "$$"), ENV) == text


@PROPERTY_SETTINGS
@given(st.from_regex(r"\A[_a-zA-Z][_a-zA-Z0-9]{0,10}\Z"), st.text(alphabet=chars), st.text(alphabet=chars))
def test_interpolation_of_a_variable_is_its_value(name, value, default):
    # the value is never interpolated again, whatever it holds
    assert interpolate("${" + name + "}", {name: value}) == value
    assert interpolate("$" + name, {name: value}) == value
    escaped = default.replace("$", "$$").replace("}", "")
    want = default.replace("}", "")
    assert interpolate("${" + name + ":-" + escaped + "}", {}) == want
    assert interpolate("${" + name + ":-" + escaped + "}", {name: value}) == (value or want)


# -- port specs (-p, compose ports:) ---------------------------------------------------------------
_port = st.integers(0, 70000).map(str)
_range = st.one_of(_port, st.tuples(_port, _port).map(lambda t: f"{t[0]}-{t[1]}"))
_ip = st.one_of(st.just(""), st.just("127.0.0.1"), st.just("0.0.0.0"), st.just("[::1]"), st.just("::1"),
                st.just("[::]"), st.just("1.2.3"), st.just("[fe80::1"), st.ip_addresses().map(str))


@st.composite
def port_specs(draw) -> str:
    s = draw(_range)
    n = draw(st.integers(0, 2))
    if n >= 1:
        s = draw(st.one_of(st.just(""), _range)) + ":" + s
    if n == 2:
        s = draw(_ip) + ":" + s
    if draw(st.booleans()):
        s += "/" + draw(st.sampled_from(["tcp", "udp", "sctp", "UDP", "", "icmp", "tcp/udp"]))
    return s


@PROPERTY_SETTINGS
@given(st.one_of(texts, port_specs()))
@example("\u0663:\u0663")   # Arabic-Indic digits: not a port
@example("\u00b2")          # a superscript two: str.isdigit() but not int()
@example("9" * 5000)
@example("1-65535:1-65535")
def test_publish_parses_or_is_invalid(spec):
    try:
        got = parse_publish(spec)
    except InvalidPort:
        return
    assert got and all(isinstance(m, PortMapping) for m in got)
    for m in got:
        assert 1 <= m.container_port <= 65535
        assert 0 <= m.host_port <= 65535 and m.protocol in PROTOCOLS
        assert m.host_port_end == 0 or m.host_port <= m.host_port_end <= 65535
    # what parsed was written in ASCII digits only
    assert re.fullmatch(r"[0-9:.\-\[\]/a-zA-Z%]*", spec.strip()), spec


@PROPERTY_SETTINGS
@given(st.integers(1, 65535), st.integers(0, 65535), st.sampled_from(["", "127.0.0.1", "::1"]),
       st.sampled_from(PROTOCOLS))
def test_publish_round_trip(container, host, ip, proto):
    spec = f"{container}/{proto}"
    if host or ip:
        spec = f"{host or ''}:{spec}"
    if ip:
        spec = ("[" + ip + "]" if ":" in ip else ip) + ":" + spec
    assert parse_publish(spec) == [PortMapping(container, proto, ip, host, host)]


@PROPERTY_SETTINGS
@given(st.one_of(texts, port_specs(), st.integers(-5, 70000), st.floats(allow_nan=True), st.booleans()))
def test_compose_port_parses_or_is_value_error(spec):
    try:
        out = compose_syntax.parse_port(spec)
    except ValueError as e:
        assert str(e)
        return
    for entry in out:
        assert 1 <= entry["target"] <= 65535 and entry["protocol"] in PROTOCOLS


# -- volume and mount specs (-v, --mount, --tmpfs, compose volumes:) -------------------------------
_path = st.one_of(st.just("/"), st.just("/data"), st.just("/a/../b"), st.just("relative"), st.just("./x"),
                  st.just("/proc/x"), st.text(alphabet=chars, max_size=10).map(lambda s: "/" + s))


@st.composite
def volume_specs(draw) -> str:
    parts = [draw(st.one_of(_path, st.just("vol"), st.just("v@l"), st.just(""), st.text(alphabet=chars, max_size=6)))]
    for _ in range(draw(st.integers(0, 3))):
        parts.append(draw(st.one_of(_path, st.sampled_from(["ro", "rw", "z", "Z", "nocopy", "rshared", "ro,rw",
                                                            "cached", "bogus", ""]))))
    return ":".join(parts)


@st.composite
def mount_specs(draw) -> str:
    keys = ["type", "source", "src", "target", "destination", "dst", "readonly", "ro", "bind-propagation",
            "volume-nocopy", "tmpfs-size", "tmpfs-mode", "colour", "TYPE", ""]
    values = ["bind", "volume", "tmpfs", "bogus", "/", "/data", "/tmp", "rel", "vol", "true", "0", "maybe",
              "64m", "1.5g", "9" * 400, "1777", "9", "rshared", ""]
    fields = []
    for _ in range(draw(st.integers(0, 6))):
        k = draw(st.sampled_from(keys))
        fields.append(k if draw(st.integers(0, 4)) == 0 else f"{k}={draw(st.sampled_from(values))}")
    return ",".join(fields)


def _run_parsers():
    from nerdpy.engine.containers import options as run_cmd

    return run_cmd


@PROPERTY_SETTINGS
@given(st.one_of(texts, volume_specs()))
@example("/host:/ctr:ro")
@example("name:/ctr")
def test_volume_flag_parses_or_is_invalid(spec):
    from nerdpy.engine.containers.records import MountSpec

    try:
        m = _run_parsers().parse_volume(spec)
    except InvalidArgument:
        return
    assert isinstance(m, MountSpec)
    assert m.target.startswith("/") and m.target != "/" and os.path.normpath(m.target) == m.target


@PROPERTY_SETTINGS
@given(st.one_of(texts, mount_specs()))
@example("type=tmpfs,target=/t,tmpfs-size=" + "9" * 400)
@example("type=tmpfs,target=/t,tmpfs-mode=9")
def test_mount_flag_parses_or_is_invalid(spec):
    try:
        m = _run_parsers().parse_mount(spec)
    except InvalidArgument:
        return
    assert m.target.startswith("/") and m.target != "/"


@PROPERTY_SETTINGS
@given(st.one_of(texts, st.tuples(_path, st.text(alphabet=chars, max_size=20)).map(":".join)))
def test_tmpfs_flag_parses_or_is_invalid(spec):
    try:
        m = _run_parsers().parse_tmpfs(spec)
    except InvalidArgument:
        return
    assert m.target.startswith("/") and m.target != "/"


@PROPERTY_SETTINGS
@given(st.one_of(texts, volume_specs()))
def test_compose_volume_parses_or_is_value_error(spec):
    try:
        out = compose_syntax.parse_volume(spec)
    except ValueError as e:
        assert str(e)
        return
    assert out["type"] in ("bind", "volume") and out["target"].startswith("/")


@PROPERTY_SETTINGS
@given(st.from_regex(r"\A[a-zA-Z0-9][a-zA-Z0-9_.-]{1,20}\Z"), st.from_regex(r"\A(/[a-z0-9]{1,5}){1,3}\Z"),
       st.sampled_from(["", "ro", "rw", "nocopy", "ro,nocopy"]))
def test_named_volume_round_trip(name, target, opts):
    spec = f"{name}:{target}" + (f":{opts}" if opts else "")
    m = _run_parsers().parse_volume(spec)
    assert (m.type, m.target, m.source, m.readonly) == ("volume", target, name, "ro" in opts.split(","))


# -- the command line: random flag values give one line and exit 1/125 -----------------------------
def _tar(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


class CLI:
    """`nerdpy` in this process (click's machinery and the error mapping of nerdpy.cli.main),
    against a store of its own."""

    def __init__(self, root: str):
        self.root = root

    def __call__(self, *args: str) -> tuple[int, str, str]:
        from nerdpy.cli import main

        out, err = io.StringIO(), io.StringIO()
        env = {"NERDPY_RUN_ROOT": os.path.join(self.root, "run"), "NERDPY_CONFIG": "/nonexistent",
               "HOME": os.path.join(self.root, "home"), "NERDPY_DEBUG": ""}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        code = 0
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    main(["--data-root", os.path.join(self.root, "data"), *args])
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """A store holding one tiny image (loaded from a hand-made docker-archive: no registry, no
    network) and one created container, so that `ps --format` has a row to render."""
    if os.geteuid() != 0:
        pytest.skip("a store needs root")
    root = str(tmp_path_factory.mktemp("cli-props"))
    os.makedirs(os.path.join(root, "home"))
    layer = _tar([("hello", b"hi\n")])
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/hello"]},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}
                        ).encode()
    cfg = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": cfg, "RepoTags": ["prop.test/img:1"], "Layers": ["l/layer.tar"]}]).encode()
    archive = os.path.join(root, "img.tar")
    with open(archive, "wb") as f:
        f.write(_tar([(cfg, config), ("l/layer.tar", layer), ("manifest.json", manifest)]))
    c = CLI(root)
    code, _, err = c("load", "-i", archive)
    assert code == 0, err
    code, _, err = c("create", "--name", "row", "prop.test/img:1")
    assert code == 0, err
    yield c
    c("rm", "-f", "row")
    code, out, _ = c("ps", "-a", "-q")
    if out.split():
        c("rm", "-f", *out.split())


def _one_clear_line(code: int, out: str, err: str, allowed=(1, 125)) -> None:
    assert code in allowed, (code, err)
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [x for x in err.split("\n") if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("nerdpy: "), err
    assert "\r" not in err, err


CLI_SETTINGS = settings(max_examples=max(10, EXAMPLES // 4), deadline=None, database=None,
                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
_flag_text = st.one_of(texts, port_specs()).filter(lambda s: "\x00" not in s)


@CLI_SETTINGS
@given(spec=_flag_text)
@example(spec="\u0663:\u0663")
@example(spec="8080:80/icmp")
@example(spec="0\r0")
def test_cli_create_publish(cli, spec):
    # create takes the same flags as run and parses -p the same way, without starting anything
    try:
        parse_publish(spec)
        valid = True
    except NerdpyError:
        valid = False
    code, out, err = cli("create", "--publish", spec, "prop.test/img:1")
    if valid:
        assert code == 0, err
        cli("rm", "-f", out.strip())
        return
    _one_clear_line(code, out, err)


@CLI_SETTINGS
@given(ref=st.one_of(_flag_text, reference_texts()))
@example(ref="a" * 300)
@example(ref="127.0.0.1:1/x@sha256:" + "0" * 64)
def test_cli_pull(cli, ref):
    try:
        r = parse_reference(ref)
    except NerdpyError:
        r = None
    if r is not None:
        # a valid name goes to a registry that refuses at once (port 1 of loopback): no network
        assume(not ref.startswith("-"))
        ref = "127.0.0.1:1/" + r.path + (f":{r.tag}" if r.tag else "") + (f"@{r.digest}" if r.digest else "")
    assume(not ref.startswith("-"))
    code, out, err = cli("pull", "-q", ref)
    _one_clear_line(code, out, err)


@CLI_SETTINGS
@given(fmt=st.one_of(_flag_text, templates(), templates().map(lambda t: "table " + t)))
@example(fmt='{{"\\x"}}')
@example(fmt="{{range .Size}}{{end}}")
def test_cli_ps_format(cli, fmt):
    code, out, err = cli("ps", "-a", "--format", fmt)
    if code == 0:
        assert err == ""
        return
    _one_clear_line(code, out, err)


# -- working directories (-w, WORKDIR, exec -w): never under /proc ---------------------------------
@PROPERTY_SETTINGS
@given(st.one_of(texts, st.lists(st.sampled_from(["", ".", "..", "proc", "self", "fd", "7", "tmp", "procx"]),
                                 max_size=6).map(lambda p: "/" + "/".join(p))))
@example("//proc/self/cwd")
@example("/tmp/../proc/self/fd/7")
def test_workdir_check(path):
    from nerdpy.engine.containers.oci import check_workdir

    try:
        assert check_workdir(path) == path
    except InvalidArgument:
        return
    assert path.startswith("/")
    resolved = "/" + os.path.normpath(path).lstrip("/")
    assert resolved != "/proc" and not resolved.startswith("/proc/"), path
