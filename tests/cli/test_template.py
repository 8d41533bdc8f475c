"""The Go text/template engine behind ``--format``: every construct, Docker's table/json formats,
and the errors a bad template gets."""

from __future__ import annotations

import pytest

from pybuild.template import Template, TemplateError, render, render_one, tabwrite

DATA = {"A": {"B": "x"}, "Labels": {"k": "v", "a": "b"}, "L": [1, 2, 3], "Name": "web one", "N": None,
        "T": True, "Zero": 0, "Empty": ""}


class Obj:
    """A Docker-style formatter context: attributes and methods are the placeholders."""

    ID = "abc"

    def Label(self, key):
        return {"k": "v"}.get(key, "")

    def Names(self):
        return "web"

    def to_json(self):
        return {"ID": self.ID, "Names": self.Names()}


@pytest.mark.parametrize("tmpl, want", [
    ("plain", "plain"),
    ("{{.A.B}}", "x"),
    ("{{ .A.B }}", "x"),
    ("{{json .L}}", "[1,2,3]"),
    ("{{json .A}}", '{"B":"x"}'),
    ('{{index .Labels "k"}}', "v"),
    ("{{index .L 2}}", "3"),
    ('[{{index .Labels "nope"}}] {{index .A "nope"}}', "[] "),     # a map of strings gives ""
    ('{{index . "nope"}}', "<no value>"),
    ("{{range .L}}<{{.}}>{{end}}", "<1><2><3>"),
    ("{{range $i, $e := .L}}{{$i}}={{$e}} {{end}}", "0=1 1=2 2=3 "),
    ("{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}", "a=b;k=v;"),
    ("{{range .Nope}}x{{else}}none{{end}}", "none"),
    ("{{if .T}}yes{{end}}", "yes"),
    ("{{if .N}}y{{else}}n{{end}}", "n"),
    ("{{if .Zero}}y{{else if .Empty}}e{{else}}w{{end}}", "w"),
    ("{{if .N}}y{{else if .T}}t{{end}}", "t"),
    ("{{if .N}}a{{else if .Zero}}b{{else if .Name}}c{{else}}d{{end}}", "c"),
    ("{{with .N}}n{{else with .A}}{{.B}}{{end}}", "x"),
    ("{{if and .T .Name}}both{{end}}", "both"),
    ("{{if or .N .Zero}}y{{else}}n{{end}}", "n"),
    ("{{if not .N}}y{{end}}", "y"),
    ("{{with .A}}{{.B}}{{end}}", "x"),
    ("{{with .N}}y{{else}}n{{end}}", "n"),
    ('{{join .L ","}}', "1,2,3"),
    ("{{lower .Name}}", "web one"),
    ("{{upper .Name}}", "WEB ONE"),
    ("{{title .Name}}", "Web One"),
    ("{{.Name | upper}}", "WEB ONE"),
    ("{{.Name | printf \"%s!\" | upper}}", "WEB ONE!"),
    ("{{println .Name}}", "web one\n"),
    ('{{printf "%s-%d-%5s|%-4s|%q" .Name 3 "ab" "c" "q"}}', 'web one-3-   ab|c   |"q"'),
    ('{{printf "%v %v" .L .T}}', "[1 2 3] true"),
    ("{{len .L}} {{len .Labels}} {{len .Name}}", "3 2 7"),
    ("a  {{- .A.B -}}  b", "axb"),
    ("a {{- /* note */ -}} b", "ab"),
    ("{{/* comment */}}", ""),
    ("{{$x := .Name}}{{$x}}", "web one"),
    ("{{$x := 1}}{{if .T}}{{$x = 2}}{{end}}{{$x}}", "2"),
    ("{{range .L}}{{$.Name}};{{end}}", "web one;web one;web one;"),
    ("{{$.A.B}}", "x"),
    ("{{.Missing}}", "<no value>"),
    ("{{.N}}", "<no value>"),
    ("{{.Labels}}", "map[a:b k:v]"),
    ("{{.L}}", "[1 2 3]"),
    ("{{.T}} {{.Zero}}", "true 0"),
    ('{{eq .Name "web one"}} {{ne 1 2}} {{lt 1 2}} {{ge 1 2}}', "true true true false"),
    ('{{"a}}b"}} {{`raw`}} {{"t\\x41"}}', "a}}b raw tA"),
    (r"a\tb\n", "a\tb\n"),                   # Docker turns a typed backslash-t or -n into the character
    ("{{(index .L 1)}}", "2"),
    ('{{index .L 0 | printf "%03d"}}', "001"),
    ('{{split "a,b" ","}}', "[a b]"),
    ('{{truncate "abcdef" 3}}', "abc"),
    ('{{pad "a" 1 2}}|', " a  |"),
])
def test_constructs(tmpl, want):
    assert render_one(tmpl, DATA) == want


def test_objects_fields_methods_and_json():
    assert render_one('{{.ID}} {{.Names}} {{.Label "k"}}', Obj()) == "abc web v"
    assert render_one("{{json .}}", Obj()) == '{"ID":"abc","Names":"web"}'
    with pytest.raises(TemplateError, match="can't evaluate field Nope"):
        render_one("{{.Nope}}", Obj())


def test_table_header_and_alignment():
    rows = [{"ID": "abc", "Image": "busybox:latest"}, {"ID": "abcdefabcdef", "Image": "x"}]
    lines = render(r"table {{.ID}}\t{{.Image}}", rows, titles={"ID": "CONTAINER ID"})
    assert lines == ["CONTAINER ID   IMAGE", "abc            busybox:latest", "abcdefabcdef   x"]


def test_table_alone_uses_the_default_and_json_is_one_object_a_line():
    rows = [{"ID": "a"}, {"ID": "b"}]
    assert render("table", rows, default=r"{{.ID}}\tZ", titles={"ID": "ID"}) == ["ID        Z", "a         Z",
                                                                                  "b         Z"]
    assert render("json", rows) == ['{"ID":"a"}', '{"ID":"b"}']
    assert render("{{.ID}}", rows) == ["a", "b"]
    assert render("table {{.ID}}", []) == ["ID"]
    assert Template("json").is_json and Template("table {{.X}}").is_table


def test_tabwriter_min_width_and_last_cell():
    assert tabwrite("a\tb\nlonger-than-ten\tc") == "a                 b\nlonger-than-ten   c"


@pytest.mark.parametrize("tmpl, msg", [
    ("{{", "template parsing error: template: :1: unclosed action"),
    ("{{.A", "unclosed action"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{else}}", "unexpected {{else}}"),
    ("{{if .A}}x", "unexpected EOF"),
    ("{{nofunc .A}}", 'function "nofunc" not defined'),
    ("{{$y}}", 'undefined variable "$y"'),
    ("{{}}", "missing value for command"),
    ("{{ | }}", "missing command"),
    ('{{"abc}}', "unterminated quoted string"),
    ("{{range .L}}{{end}", "unclosed action"),
    ("{{define \"x\"}}{{end}}", "not supported"),
])
def test_parse_errors_are_one_line(tmpl, msg):
    with pytest.raises(TemplateError) as err:
        Template(tmpl)
    assert msg in str(err.value) and "\n" not in str(err.value)
    assert err.value.exit_code == 1


@pytest.mark.parametrize("tmpl, msg", [
    ("{{.A.B.C}}", "can't evaluate field C"),
    ("{{index .L 9}}", "index out of range"),
    ("{{range .T}}{{end}}", "range can't iterate over true"),
    ("{{.Name 3}}", "not a method"),
    ("{{len .T}}", "error calling len"),
])
def test_execution_errors(tmpl, msg):
    with pytest.raises(TemplateError, match="executing") as err:
        render_one(tmpl, DATA)
    assert msg in str(err.value) and err.value.exit_code == 1


def test_execution_error_names_the_failing_node_as_go_does():
    with pytest.raises(TemplateError) as err:
        render_one("{{.A.B.C}}", DATA)
    assert str(err.value) == 'template: :1: executing "" at <.A.B.C>: can\'t evaluate field C in type str'
