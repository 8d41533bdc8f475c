"""Interpolation (every ${...} form, $$, nesting, errors) and .env files, through the library and
through load_project (precedence of the process environment, .env and --env-file)."""

from __future__ import annotations

import pytest

from compose.errors import ComposeFileError, ComposeFileNotFound, InterpolationError
from compose.interpolate import parse_env_text, substitute
from compose.load import load_project

ENV = {"SET": "value", "EMPTY": "", "OTHER": "o"}


@pytest.mark.parametrize("text, expected", [
    ("$SET", "value"),
    ("${SET}", "value"),
    ("pre-${SET}-post", "pre-value-post"),
    ("${UNSET}", ""),
    ("$UNSET", ""),
    ("${SET:-d}", "value"),
    ("${EMPTY:-d}", "d"),
    ("${UNSET:-d}", "d"),
    ("${SET-d}", "value"),
    ("${EMPTY-d}", ""),
    ("${UNSET-d}", "d"),
    ("${SET:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${UNSET:+alt}", ""),
    ("${SET+alt}", "alt"),
    ("${EMPTY+alt}", "alt"),
    ("${UNSET+alt}", ""),
    ("${SET:?must}", "value"),
    ("${EMPTY?must}", ""),
    ("$$SET", "$SET"),
    ("$${SET}", "${SET}"),
    ("a$$$$b", "a$$b"),
    ("$$$SET", "$value"),
    ("${UNSET:-${OTHER}}", "o"),
    ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
    ("${UNSET:-x${OTHER}y}", "xoy"),
    ("${UNSET:-a:b-c}", "a:b-c"),
    ("${UNSET:-}", ""),
    ("cost: $5", "cost: $5"),          # $ before a digit is kept, as Compose does
    ("trailing $", "trailing $"),
    ("${set}", ""),                    # names are case-sensitive
    ("no dollar", "no dollar"),
])
def test_forms(text, expected):
    assert substitute(text, ENV) == expected


def test_missing_names_are_reported():
    missing: set = set()
    substitute("${A}-$B-${C:-x}-${SET}", ENV, missing)
    assert missing == {"A", "B"}


@pytest.mark.parametrize("text, message", [
    ("${UNSET:?please set it}", "required variable UNSET is missing a value: please set it"),
    ("${EMPTY:?empty is not enough}", "required variable EMPTY is missing a value: empty is not enough"),
    ("${UNSET?}", "required variable UNSET is missing a value"),
    ("${UNSET:?need ${OTHER}}", "required variable UNSET is missing a value: need o"),
])
def test_required_errors(text, message):
    with pytest.raises(InterpolationError) as exc:
        substitute(text, ENV)
    assert str(exc.value) == message


@pytest.mark.parametrize("text", ["${SET", "${}", "${1X}", "${SET:x}", "${SET/a/b}", "${UNSET:-${X}"])
def test_malformed(text):
    with pytest.raises(InterpolationError, match="invalid interpolation format"):
        substitute(text, ENV)


def test_env_file_syntax():
    text = "\n".join([
        "# a comment",
        "PLAIN=abc",
        "export EXPORTED=yes",
        "SPACED = padded  ",
        "INLINE=value # comment",
        "HASH=a#b",
        "SINGLE='literal ${PLAIN} \\n'",
        'DOUBLE="x ${PLAIN} \\"q\\" \\n end"',
        "REF=${PLAIN}-${OUTER:-d}",
        'MULTI="line1',
        'line2"',
        "EMPTY=",
        "BARE",
        "",
    ])
    pairs = parse_env_text(text, ".env", {"OUTER": "outer"})
    got = dict(pairs)
    assert got["PLAIN"] == "abc"
    assert got["EXPORTED"] == "yes"
    assert got["SPACED"] == "padded"
    assert got["INLINE"] == "value"
    assert got["HASH"] == "a#b"
    assert got["SINGLE"] == "literal ${PLAIN} \\n"
    assert got["DOUBLE"] == 'x abc "q" \n end'
    assert got["REF"] == "abc-outer"
    assert got["MULTI"] == "line1\nline2"
    assert got["EMPTY"] == ""
    assert got["BARE"] is None
    assert [k for k, _ in pairs][:3] == ["PLAIN", "EXPORTED", "SPACED"]


def test_env_file_errors():
    with pytest.raises(ComposeFileError, match=r"^\.env:2: invalid variable name"):
        parse_env_text("A=1\nBAD KEY=2\n", ".env", {})
    with pytest.raises(ComposeFileError, match=r"^\.env:1: unterminated quoted value for A"):
        parse_env_text('A="open\n', ".env", {})


COMPOSE = """\
services:
  web:
    image: "busybox:${TAG:-latest}"
    environment:
      FROM_ENV: ${WHO}
      LITERAL: "$$HOME"
"""


def _load(tmp_path, environ, **kw):
    (tmp_path / "compose.yaml").write_text(kw.pop("text", COMPOSE))
    return load_project([str(tmp_path / "compose.yaml")], environ=environ, **kw)


def test_dotenv_is_read_from_the_project_directory(tmp_path):
    (tmp_path / ".env").write_text("TAG=1.36\nWHO=dotenv\n")
    web = _load(tmp_path, {}).service("web")
    assert web.image == "busybox:1.36"
    assert web.env() == {"FROM_ENV": "dotenv", "LITERAL": "$HOME"}


def test_process_environment_wins_over_dotenv(tmp_path):
    (tmp_path / ".env").write_text("TAG=1.36\nWHO=dotenv\n")
    web = _load(tmp_path, {"WHO": "shell"}).service("web")
    assert web.image == "busybox:1.36" and web.env()["FROM_ENV"] == "shell"


def test_env_file_option_replaces_dotenv(tmp_path):
    (tmp_path / ".env").write_text("TAG=from-dotenv\nWHO=dotenv\n")
    a = tmp_path / "a.env"
    b = tmp_path / "b.env"
    a.write_text("TAG=a\nWHO=a\n")
    b.write_text("WHO=b\n")
    web = _load(tmp_path, {}, env_files=[str(a), str(b)]).service("web")
    assert web.image == "busybox:a"              # .env not read at all
    assert web.env()["FROM_ENV"] == "b"          # the later --env-file wins


def test_missing_env_file_option_is_an_error(tmp_path):
    with pytest.raises(ComposeFileNotFound, match="env file .*nope.env not found"):
        _load(tmp_path, {}, env_files=[str(tmp_path / "nope.env")])


def test_unset_variable_warns(tmp_path):
    project = _load(tmp_path, {})
    assert project.service("web").image == "busybox:latest"
    assert project.warnings == ('The "WHO" variable is not set. Defaulting to a blank string.',)


def test_required_variable_error_names_file_path_and_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # files under the current directory are named relative to it
    text = COMPOSE.replace("${WHO}", '"${WHO:?set WHO first}"')
    with pytest.raises(InterpolationError) as exc:
        _load(tmp_path, {}, text=text)
    assert str(exc.value) == ("compose.yaml:5: services.web.environment.FROM_ENV: "
                              "required variable WHO is missing a value: set WHO first")
    assert exc.value.exit_code == 15


def test_keys_are_not_interpolated_and_types_survive(tmp_path):
    text = """\
services:
  web:
    image: busybox
    labels:
      "${NOT_A_VAR}": "x"
    deploy:
      replicas: ${N}
    read_only: ${RO}
"""
    web = _load(tmp_path, {"N": "3", "RO": "true"}, text=text).service("web")
    assert web.labels == (("${NOT_A_VAR}", "x"),)
    assert web.replicas == 3 and web.read_only is True
