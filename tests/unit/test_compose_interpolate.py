"""Interpolation as the compose specification (section 12) defines it: a table of cases."""
import pytest

from compose.errors import InterpolationError
from compose.interpolate import interpolate, interpolate_tree

ENV = {"SET": "value", "EMPTY": "", "FOO": "foo", "BAR": "bar", "NUM": "42", "DOLLAR": "$x",
       "lower_case": "lc", "_U": "under", "A1": "a-one"}

CASES = [
    # plain text
    ("no variables", "no variables"),
    ("", ""),
    # direct substitution
    ("$SET", "value"),
    ("${SET}", "value"),
    ("pre-$SET-post", "pre-value-post"),
    ("pre${SET}post", "prevaluepost"),
    ("$SET$FOO", "valuefoo"),
    ("${FOO}${BAR}", "foobar"),
    ("$lower_case", "lc"),
    ("$_U", "under"),
    ("${A1}", "a-one"),
    ("$A1x", ""),                       # the name is A1x, unset
    ("${UNSET}", ""),
    ("$UNSET", ""),
    ("x${UNSET}y", "xy"),
    ("$EMPTY", ""),
    # values are not re-interpolated
    ("$DOLLAR", "$x"),
    # escapes and lone dollars
    ("$$", "$"),
    ("$$SET", "$SET"),
    ("$${SET}", "${SET}"),
    ("$$$SET", "$value"),
    ("cost: $$5", "cost: $5"),
    ("$", "$"),
    ("a $ b", "a $ b"),
    ("$1", "$1"),
    ("100$", "100$"),
    ("$-", "$-"),
    # default values
    ("${UNSET:-default}", "default"),
    ("${EMPTY:-default}", "default"),
    ("${SET:-default}", "value"),
    ("${UNSET-default}", "default"),
    ("${EMPTY-default}", ""),
    ("${SET-default}", "value"),
    ("${UNSET:-}", ""),
    ("${UNSET:-with spaces and : colons}", "with spaces and : colons"),
    ("${UNSET:-a-b}", "a-b"),
    ("${UNSET:-$$}", "$"),
    # alternative values
    ("${SET:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${UNSET:+alt}", ""),
    ("${SET+alt}", "alt"),
    ("${EMPTY+alt}", "alt"),
    ("${UNSET+alt}", ""),
    # required values that are there
    ("${SET:?must be set}", "value"),
    ("${SET?must be set}", "value"),
    ("${EMPTY?must be set}", ""),
    # nesting
    ("${UNSET:-${FOO}}", "foo"),
    ("${UNSET:-$FOO}", "foo"),
    ("${UNSET:-${UNSET2:-deep}}", "deep"),
    ("${UNSET:-${UNSET2:-${BAR}}}", "bar"),
    ("${SET:-${UNSET:?not evaluated}}", "value"),
    ("${SET:+${FOO}-${BAR}}", "foo-bar"),
    ("${UNSET:-pre-${FOO}-post}", "pre-foo-post"),
    ("${UNSET:-{braces}", "{braces"),
    ("${NUM}:${NUM}", "42:42"),
    ("${UNSET:-8080}:80", "8080:80"),
]


@pytest.mark.parametrize("text,expected", CASES)
def test_table(text, expected):
    assert interpolate(text, ENV) == expected


def test_table_is_large_enough():
    assert len(CASES) >= 40


ERRORS = [
    ("${UNSET:?must be set}", "UNSET", "must be set"),
    ("${EMPTY:?must not be empty}", "EMPTY", "must not be empty"),
    ("${UNSET?needed}", "UNSET", "needed"),
    ("${UNSET:?}", "UNSET", "missing a value"),
    ("${UNSET?$FOO is needed}", "UNSET", "foo is needed"),
    ("${UNSET:-${UNSET2:?inner}}", "UNSET2", "inner"),
]


@pytest.mark.parametrize("text,var,fragment", ERRORS)
def test_required_errors(text, var, fragment):
    with pytest.raises(InterpolationError) as e:
        interpolate(text, ENV, where="services.web.image", file="compose.yaml", line=7)
    assert e.value.variable == var
    assert var in str(e.value)
    assert fragment in str(e.value)
    assert str(e.value).startswith("compose.yaml:7: services.web.image")


@pytest.mark.parametrize("text", ["${", "${FOO", "${FOO:-x", "${FOO/a/b}", "${FOO:=x}", "${}", "${1A}",
                                  "${FOO BAR}", "${UNSET:-${NESTED}"])
def test_invalid_templates(text):
    with pytest.raises(InterpolationError) as e:
        interpolate(text, ENV, where="services.web.command", file="c.yml", line=3)
    assert "invalid interpolation format for services.web.command" in str(e.value)
    assert str(e.value).startswith("c.yml:3:")


def test_unset_warns_once_per_use_and_not_in_unused_branches():
    seen = []
    interpolate("${A} $B ${SET:-$C} ${UNSET:-$D}", ENV, on_unset=seen.append)
    assert seen == ["A", "B", "D"]


def test_lookup_function():
    assert interpolate("${X:-d}", lambda k: {"X": "1"}.get(k)) == "1"


def test_tree_values_not_keys():
    data = {"services": {"$KEY": {"image": "$FOO", "labels": ["$FOO=$BAR"], "n": 3, "b": True,
                                  "environment": {"$SET": "${BAR}"}}}}
    out = interpolate_tree(data, ENV)
    svc = out["services"]["$KEY"]
    assert svc["image"] == "foo"
    assert svc["labels"] == ["foo=bar"]
    assert svc["environment"] == {"$SET": "bar"}
    assert svc["n"] == 3 and svc["b"] is True


def test_tree_error_names_path_and_line():
    lines = {("services", "web", "ports", 1): 9}
    with pytest.raises(InterpolationError) as e:
        interpolate_tree({"services": {"web": {"ports": ["80", "${PORT:?set PORT}"]}}}, ENV,
                         file="compose.yaml", line_of=lambda p: lines.get(tuple(p)))
    assert str(e.value) == ("compose.yaml:9: services.web.ports[1]: required variable PORT is missing a value: "
                            "set PORT")
