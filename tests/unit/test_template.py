"""The Go-template renderer behind `--format`. Expected outputs are what docker's Go templates
(text/template + docker's extra functions + its formatter/tabwriter) print for the same data."""
import pytest

from nerdpy.engine.errors import InvalidArgument
from nerdpy.template import TemplateError, format_output, render

DATA = {
    "ID": "abc",
    "Name": "web",
    "State": "running",
    "Running": True,
    "Stopped": False,
    "Size": 1024,
    "Ratio": 1.5,
    "Names": ["a", "b"],
    "Empty": [],
    "Labels": {"b": "2", "a": "1", "com.example.x": "y"},
    "Config": {"Image": "busybox", "Env": ["A=1", "B=2"], "Cmd": None},
    "Mixed": "MiXeD",
    "CSV": "x,y,z",
    "Blank": "",
    "Html": "<a&b>",
    "Unicode": "caf\u00e9",
}

CASES = [
    # fields, nested fields, literal text
    ("{{.Name}}", "web"),
    ("{{.Config.Image}}", "busybox"),
    ("ID={{.ID}}, name={{ .Name }}!", "ID=abc, name=web!"),
    ("plain text only", "plain text only"),
    ("{{.Running}} {{.Stopped}} {{.Size}} {{.Ratio}}", "true false 1024 1.5"),
    # a missing key of a map prints <no value>, as Go does for map[string]interface{}
    ("{{.Nope}}", "<no value>"),
    ("{{.Config.Cmd}}", "<no value>"),
    # %v of slices and maps (map keys sorted)
    ("{{.Names}}", "[a b]"),
    ("{{.Empty}}", "[]"),
    ("{{.Labels}}", "map[a:1 b:2 com.example.x:y]"),
    # docker's json: compact, HTML not escaped, UTF-8 kept
    ("{{json .Names}}", '["a","b"]'),
    ("{{json .Name}}", '"web"'),
    ("{{json .Size}}", "1024"),
    ("{{json .Running}}", "true"),
    ("{{json .Config.Cmd}}", "null"),
    ("{{json .Html}}", '"<a&b>"'),
    ("{{json .Unicode}}", '"caf\u00e9"'),
    ("{{json .Config.Env}}", '["A=1","B=2"]'),
    # join, lower, upper, title, split, len, truncate, pad
    ('{{join .Names ","}}', "a,b"),
    ('{{join .Empty ","}}', ""),
    ("{{lower .Mixed}}", "mixed"),
    ("{{upper .Mixed}}", "MIXED"),
    ("{{.Name | upper}}", "WEB"),
    ("{{title .T}}", "Hello WORLD O'Neil X_y"),
    ('{{index (split .CSV ",") 1}}', "y"),
    ('{{len (split .CSV ",")}}', "3"),
    ("{{len .Names}}", "2"),
    ("{{truncate .Name 2}}", "we"),
    ("[{{pad .Name 1 2}}]", "[ web  ]"),
    # index on maps and lists
    ('{{index .Labels "com.example.x"}}', "y"),
    ('{{index .Labels "missing"}}', "<no value>"),
    ("{{index .Names 1}}", "b"),
    ('{{upper (index .Labels "a")}}', "1"),
    # range: lists, maps (sorted by key), variables, $, else
    ("{{range .Names}}[{{.}}]{{end}}", "[a][b]"),
    ("{{range $i, $e := .Names}}{{$i}}:{{$e}} {{end}}", "0:a 1:b "),
    ("{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}", "a=1;b=2;com.example.x=y;"),
    ("{{range $v := .Names}}<{{$v}}>{{end}}", "<a><b>"),
    ("{{range .Names}}{{$.ID}}-{{.}} {{end}}", "abc-a abc-b "),
    ("{{range .Empty}}x{{else}}none{{end}}", "none"),
    ("{{range .Config.Env}}{{println .}}{{end}}", "A=1\nB=2\n"),
    # if / else if / else, comparison and logic
    ("{{if .Running}}up{{else}}down{{end}}", "up"),
    ("{{if .Stopped}}up{{else}}down{{end}}", "down"),
    ("{{if .Blank}}x{{else}}empty{{end}}", "empty"),
    ("{{if .Empty}}x{{else}}empty{{end}}", "empty"),
    ('{{if eq .State "exited"}}E{{else if eq .State "running"}}R{{else}}?{{end}}', "R"),
    ('{{if eq .State "a" "b" "running"}}any{{end}}', "any"),
    ('{{if ne .State "running"}}x{{else}}y{{end}}', "y"),
    ("{{if gt .Size 1000}}big{{end}}", "big"),
    ("{{if and .Running .Names}}both{{end}}", "both"),
    ("{{if or .Stopped .Blank}}x{{else}}neither{{end}}", "neither"),
    ("{{if not .Stopped}}not{{end}}", "not"),
    ('{{or .Blank "default"}}', "default"),
    ("{{with .Config}}{{.Image}}{{end}}", "busybox"),
    ("{{with .Blank}}x{{else}}no{{end}}", "no"),
    # print, println, printf
    ("{{println .Name}}", "web\n"),
    ('{{println "a" 1 true}}', "a 1 true\n"),
    ('{{print "a" "b"}}', "ab"),
    ("{{print 1 2}}", "1 2"),  # Sprint puts a space between two non-strings
    ('{{printf "%s-%d" .Name 3}}', "web-3"),
    ('{{printf "%q" .Name}}', '"web"'),
    ('{{printf "%5s|%-4s|" "ab" "cd"}}', "   ab|cd  |"),
    ('{{printf "%v %t %x %.2f %d%%" .Names true 255 .Ratio 7}}', "[a b] true ff 1.50 7%"),
    ('{{.Name | printf "%s!"}}', "web!"),
    # string literals, trim markers, comments
    ('{{"a\\tb"}}', "a\tb"),
    ("{{`raw\\n`}}", "raw\\n"),
    ("a  {{- .Name -}}  b", "awebb"),
    ("a\n{{- .Name}}\n", "aweb\n"),
    ("x{{/* a comment */}}y", "xy"),
    ("{{.}}", "map[a:1]"),
]


@pytest.mark.parametrize("tmpl,expected", CASES, ids=[c[0][:50] for c in CASES])
def test_render(tmpl, expected):
    data = dict(DATA, T="hello wORLD o'neil x_y")
    if tmpl == "{{.}}":
        data = {"a": "1"}
    assert render(tmpl, data) == expected


def test_objects_by_attribute():
    class C:
        Name = "obj"
        Inner = {"K": "v"}

    assert render("{{.Name}} {{.Inner.K}}", C()) == "obj v"


def test_dot_is_a_string():
    assert render("<{{.}}>", "x") == "<x>"


BAD = [
    "{{.Name",  # unclosed action
    "{{if .Running}}a",  # missing end
    "{{range .Names}}",
    "{{end}}",
    "{{else}}",
    "{{if .Running}}a{{else}}b{{else}}c{{end}}",
    "{{nosuchfunc .Name}}",
    "{{.Name | }}",
    "{{(.Name}}",
    "{{.Name)}}",
    "{{ }}",
    "{{$undefined}}",
    "{{index .Names 9}}",  # execution error: index out of range
    "{{.Name 1}}",  # arguments to a non-function
]


@pytest.mark.parametrize("tmpl", BAD)
def test_bad_templates_raise_a_clear_error(tmpl):
    with pytest.raises(TemplateError) as exc:
        render(tmpl, DATA)
    assert isinstance(exc.value, InvalidArgument)
    assert exc.value.exit_code == 125
    assert str(exc.value).startswith("template")
    assert "\n" not in str(exc.value)


# -- format_output: docker's formatter (table, json, plain templates) ----------------------
HEADERS = {"ID": "CONTAINER ID", "Name": "NAMES", "Ports": "PORTS"}
DEFAULT = "table {{.ID}}\t{{.Name}}"
ROWS = [{"Name": "web", "ID": "abc", "Ports": ""}, {"Name": "db", "ID": "defghijklmnopq", "Ports": "80/tcp"}]


def test_table_default_uses_headers_and_tabwriter():
    # tabwriter(minwidth=10, padding=3): the first column is 14 + 3 wide
    want = (
        "CONTAINER ID     NAMES\n"
        "abc              web\n"
        "defghijklmnopq   db\n"
    )
    assert format_output(None, ROWS, default_table=DEFAULT, headers=HEADERS) == want
    assert format_output("table", ROWS, default_table=DEFAULT, headers=HEADERS) == want
    assert format_output("", ROWS, default_table=DEFAULT, headers=HEADERS) == want


def test_table_custom_with_escaped_tab_and_minwidth():
    out = format_output("table {{.Name}}\\t{{.ID}}", ROWS, default_table=DEFAULT, headers=HEADERS)
    assert out == (
        "NAMES     CONTAINER ID\n"
        "web       abc\n"
        "db        defghijklmnopq\n"
    )


def test_table_unknown_header_is_upper_cased_field_name():
    out = format_output("table {{.Size}}", [{"Size": "1kB"}], default_table=DEFAULT, headers=HEADERS)
    assert out == "SIZE\n1kB\n"


def test_table_with_no_rows_prints_the_header():
    assert format_output(None, [], default_table=DEFAULT, headers=HEADERS) == "CONTAINER ID   NAMES\n"


def test_table_empty_last_cell_keeps_padding():
    # Go's tabwriter pads every tab-terminated cell, even when the last cell is empty
    out = format_output("table {{.Name}}\t{{.Ports}}", ROWS, default_table=DEFAULT, headers=HEADERS)
    assert out.splitlines() == ["NAMES     PORTS", "web       ", "db        80/tcp"]


def test_json_format_one_object_per_line_sorted_keys():
    out = format_output("json", ROWS, default_table=DEFAULT, headers=HEADERS)
    assert out == (
        '{"ID":"abc","Name":"web","Ports":""}\n'
        '{"ID":"defghijklmnopq","Name":"db","Ports":"80/tcp"}\n'
    )
    assert format_output("{{json .}}", ROWS[:1], default_table=DEFAULT, headers=HEADERS) == \
        '{"ID":"abc","Name":"web","Ports":""}\n'


def test_plain_template_one_line_per_row_trimmed():
    assert format_output("{{.ID}}", ROWS, default_table=DEFAULT, headers=HEADERS) == "abc\ndefghijklmnopq\n"
    # docker trims spaces around the template and unescapes \t and \n
    assert format_output("  {{.Name}}\\t{{.ID}}  ", ROWS[:1], default_table=DEFAULT, headers=HEADERS) == "web\tabc\n"
    assert format_output("{{.Name}}\\n--", ROWS[:1], default_table=DEFAULT, headers=HEADERS) == "web\n--\n"


def test_bad_template_in_format_output():
    with pytest.raises(TemplateError):
        format_output("table {{.Name", ROWS, default_table=DEFAULT, headers=HEADERS)


# -- the fast path for plain-field templates renders exactly as the interpreter does -------------
def _interpreted(template, data):
    from nerdpy import template as t

    out: list[str] = []
    t._exec(t.compile_template(template), data, {"$": data}, out)
    return "".join(out)


@pytest.mark.parametrize("template", [
    "{{.ID}}\t{{.Image}}\t{{.Names}}", "x{{.A.B}}y{{ .Missing }}z", "{{.N}} {{.F}} {{.T}} {{.L}} {{.D}}",
    "{{.A}}", "plain text", "{{.A.B.C}}", "{{- .A -}} - {{ .N }}",
])
def test_plain_field_fast_path_matches_the_interpreter(template):
    from nerdpy.template import _field_plan, render

    assert _field_plan(template) is not None
    rows = [{"ID": "abc", "Image": "busybox", "Names": "x", "A": {"B": {"C": 1}}, "N": 0, "F": 1.5, "T": True,
             "L": ["a", "b"], "D": {"k": "v"}}, {}, {"A": None}, {"A": "str"}]
    for row in rows:
        assert render(template, row) == _interpreted(template, row)


@pytest.mark.parametrize("template", ["{{json .}}", "{{.A | upper}}", "{{if .A}}y{{end}}", "{{$.A}}",
                                      '{{.Label "k"}}'])
def test_other_templates_take_the_interpreter(template):
    from nerdpy.template import _field_plan

    assert _field_plan(template) is None
