"""Go ``text/template`` source to a tree: a lexer for actions and a recursive-descent parser.

Supported: text, ``{{pipeline}}``, ``{{- `` / `` -}}`` trimming, comments ``{{/* */}}``, ``if`` /
``else if`` / ``else`` / ``end``, ``range`` (with ``$i, $v :=`` and ``else``), ``with`` (and
``else``), variable declaration and assignment (``$x := ...``, ``$x = ...``), fields and chains
(``.A.B``, ``$x.A``, ``(pipe).A``), functions, pipes, strings (``"..."`` with Go escapes and raw
`` `...` ``), numbers, ``true`` / ``false`` / ``nil``. Errors are :class:`TemplateError` worded as
Go's (``template: :1: unexpected "}" in operand``).
"""

from __future__ import annotations

import re

from layers.errors import InvalidInput
from layers.value import frozen

__all__ = ["TemplateError", "parse", "Text", "Action", "If", "Range", "With", "Pipe", "Command",
           "Field", "Var", "Dot", "Literal", "Ident", "Chain"]


class TemplateError(InvalidInput):
    """A template that does not parse or fails to execute (Docker exits 1 on both)."""

    exit_code = 1


# -- tree ------------------------------------------------------------------------------------------

@frozen
class Text:
    text: str


@frozen
class Dot:
    pass


@frozen
class Field:
    """``.A.B``: fields of dot."""
    names: tuple[str, ...]


@frozen
class Var:
    """``$x.A.B`` (``names`` may be empty); ``$`` is the data the template was run on."""
    name: str
    names: tuple[str, ...] = ()


@frozen
class Literal:
    value: object


@frozen
class Ident:
    """A function name."""
    name: str


@frozen
class Chain:
    """``(pipeline).A.B``."""
    node: object
    names: tuple[str, ...]


@frozen
class Command:
    args: tuple


@frozen
class Pipe:
    decl: tuple[str, ...]
    cmds: tuple[Command, ...]
    assign: bool = False            # ``$x = ...`` rather than ``$x := ...``


@frozen
class Action:
    pipe: Pipe
    pos: str = ""


@frozen
class If:
    pipe: Pipe
    body: tuple
    orelse: tuple = ()


@frozen
class Range:
    pipe: Pipe
    body: tuple
    orelse: tuple = ()


@frozen
class With:
    pipe: Pipe
    body: tuple
    orelse: tuple = ()


# -- lexer -----------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>/\*.*?\*/)
  | (?P<declare>:=)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\]|\\.)+')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<dot>\.)
  | (?P<punct>[|(),=])
""", re.VERBOSE | re.DOTALL)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b",
            "f": "\f", "v": "\v", "0": "\0"}
KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"}


@frozen
class Tok:
    kind: str
    text: str
    line: int


def _unquote(text: str) -> str:
    out, i, body = [], 0, text[1:-1]
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "xuU":
                width = {"x": 2, "u": 4, "U": 8}[nxt]
                out.append(chr(int(body[i + 2:i + 2 + width], 16)))
                i += 2 + width
                continue
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _lex_action(src: str, line: int) -> list[Tok]:
    toks, pos = [], 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m:
            raise TemplateError(f"template: :{line}: unexpected {src[pos]!r} in command")
        kind, text = m.lastgroup, m.group()
        pos = m.end()
        if kind not in ("space", "comment"):
            toks.append(Tok(kind, text, line))
    return toks


def _segments(src: str):
    """Yield ``("text", str)`` and ``("action", tokens)`` pieces, applying ``{{-`` / ``-}}`` trimming."""
    pos, trim_next, line = 0, False, 1
    while True:
        start = src.find("{{", pos)
        text = src[pos:] if start < 0 else src[pos:start]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if start < 0:
            if text:
                yield "text", text, line
            return
        inner_start = start + 2
        trim_left = src.startswith("- ", inner_start) or src.startswith("-\t", inner_start) \
            or src.startswith("-\n", inner_start)
        if trim_left:
            text = text.rstrip(" \t\r\n")
            inner_start += 1
        if text:
            yield "text", text, line
        line += src.count("\n", pos, start)
        end = _find_close(src, inner_start, line)
        inner, close_len = src[inner_start:end], 2
        trim_next = False
        if inner.endswith(" -") or inner.endswith("\t-") or inner.endswith("\n-"):
            inner, trim_next = inner[:-1], True
        if not (inner.strip().startswith("/*") and inner.strip().endswith("*/")):     # a comment prints nothing
            yield "action", _lex_action(inner, line), line
        line += inner.count("\n")
        pos = end + close_len


def _find_close(src: str, pos: int, line: int) -> int:
    """Index of the ``}}`` closing the action at ``pos`` (quoted strings may hold ``}}``)."""
    i = pos
    while i < len(src):
        c = src[i]
        if src.startswith("}}", i):
            return i
        if c in "\"`":
            j = i + 1
            while j < len(src) and src[j] != c:
                if src[j] == "\n" and c == '"':
                    raise TemplateError(f"template: :{line}: unterminated quoted string")
                j += 2 if src[j] == "\\" and c == '"' else 1
            if j >= len(src):
                raise TemplateError(f"template: :{line}: unterminated quoted string")
            i = j + 1
            continue
        if src.startswith("/*", i):
            j = src.find("*/", i + 2)
            if j < 0:
                raise TemplateError(f"template: :{line}: unclosed comment")
            i = j + 2
            continue
        i += 1
    raise TemplateError(f"template: :{line}: unclosed action")


# -- parser ----------------------------------------------------------------------------------------

class _Parser:
    def __init__(self, src: str, funcs):
        self.funcs = funcs
        self.segments = list(_segments(src))
        self.i = 0
        self.vars: list[list[str]] = [["$"]]

    def error(self, line: int, msg: str):
        return TemplateError(f"template: :{line}: {msg}")

    def parse_list(self, stop: tuple[str, ...]) -> tuple[tuple, str | None, list[Tok]]:
        """Nodes until a keyword action in ``stop``; returns (nodes, keyword, rest of its tokens)."""
        nodes = []
        while self.i < len(self.segments):
            kind, value, line = self.segments[self.i]
            self.i += 1
            if kind == "text":
                nodes.append(Text(value))
                continue
            toks = value
            if not toks:
                raise self.error(line, "missing value for command")
            head = toks[0]
            if head.kind == "ident" and head.text in KEYWORDS:
                if head.text in stop:
                    return tuple(nodes), head.text, toks[1:]
                if head.text in ("end", "else"):
                    raise self.error(line, f"unexpected {{{{{head.text}}}}}")
                nodes.append(self.control(head.text, toks[1:], line))
                continue
            nodes.append(Action(self.pipeline(toks, line, decl_ok=True), pos=str(line)))
        if stop:
            raise self.error(self.segments[-1][2] if self.segments else 1, "unexpected EOF")
        return tuple(nodes), None, []

    def control(self, word: str, toks: list[Tok], line: int):
        """``if`` / ``range`` / ``with`` up to its ``{{end}}``; its variables live until then."""
        if word not in ("if", "range", "with"):
            raise self.error(line, f"{{{{{word}}}}} is not supported")
        node = {"if": If, "range": Range, "with": With}[word]
        self.vars.append([])
        pipe = self.pipeline(toks, line, decl_ok=True, range_ok=word == "range")
        body, kw, rest = self.parse_list(("end", "else"))
        orelse: tuple = ()
        if kw == "else" and rest and rest[0].kind == "ident" and rest[0].text == word != "range":
            # {{else if x}}: an if nested in the else branch; it consumes the shared {{end}}
            orelse, rest = (self.control(word, rest[1:], line),), []
        elif kw == "else":
            if rest:
                raise self.error(line, "unexpected tokens after else")
            orelse, kw, rest = self.parse_list(("end",))
        if rest:
            raise self.error(line, "unexpected tokens after end")
        self.vars.pop()
        return node(pipe, body, orelse)

    def pipeline(self, toks: list[Tok], line: int, *, decl_ok: bool = False, range_ok: bool = False) -> Pipe:
        decl: list[str] = []
        assign = False
        i = 0
        if decl_ok and toks and toks[0].kind == "var":
            if len(toks) > 1 and (toks[1].kind == "declare" or toks[1].text == "="):
                decl, assign, i = [toks[0].text], toks[1].text == "=", 2
            elif range_ok and len(toks) > 3 and toks[1].text == "," and toks[2].kind == "var" \
                    and toks[3].kind == "declare":
                decl, i = [toks[0].text, toks[2].text], 4
        for name in decl:
            if assign and not self.known(name):
                raise self.error(line, f"undefined variable \"{name}\"")
            if not assign:
                self.vars[-1].append(name)
        cmds, args = [], []
        pos = i
        toks = toks[i:]
        j = 0
        while j < len(toks):
            t = toks[j]
            if t.kind == "punct" and t.text == "|":
                if not args:
                    raise self.error(line, "missing command")
                cmds.append(Command(tuple(args)))
                args = []
                j += 1
                continue
            node, j = self.operand(toks, j, line)
            args.append(node)
        if not args:
            raise self.error(line, "missing value for command" if not cmds and not pos else "missing command")
        cmds.append(Command(tuple(args)))
        for c in cmds[1:]:
            if isinstance(c.args[0], Literal):
                raise self.error(line, f"non executable command in pipeline stage {cmds.index(c) + 1}")
        return Pipe(tuple(decl), tuple(cmds), assign)

    def known(self, name: str) -> bool:
        return any(name in scope for scope in self.vars)

    def operand(self, toks: list[Tok], j: int, line: int):
        t = toks[j]
        kind = t.kind
        if kind == "field":
            return Field(tuple(t.text[1:].split("."))), j + 1
        if kind == "dot":
            return Dot(), j + 1
        if kind == "var":
            name, *names = t.text.split(".")
            if not self.known(name):
                raise self.error(line, f"undefined variable \"{name}\"")
            return Var(name, tuple(names)), j + 1
        if kind in ("string", "char"):
            text = _unquote(t.text)
            return Literal(text if kind == "string" else ord(text)), j + 1
        if kind == "raw":
            return Literal(t.text[1:-1]), j + 1
        if kind == "number":
            text = t.text.replace("_", "")
            try:
                value: object = int(text, 0)
            except ValueError:
                value = float(text)
            return Literal(value), j + 1
        if kind == "ident":
            if t.text in ("true", "false"):
                return Literal(t.text == "true"), j + 1
            if t.text == "nil":
                return Literal(None), j + 1
            if t.text in KEYWORDS:
                raise self.error(line, f"unexpected <{t.text}> in command")
            if self.funcs is not None and t.text not in self.funcs:
                raise self.error(line, f"function \"{t.text}\" not defined")
            return Ident(t.text), j + 1
        if kind == "punct" and t.text == "(":
            depth, k = 1, j + 1
            while k < len(toks) and depth:
                depth += {"(": 1, ")": -1}.get(toks[k].text, 0) if toks[k].kind == "punct" else 0
                k += 1
            if depth:
                raise self.error(line, "unclosed left paren")
            inner = self.pipeline(toks[j + 1:k - 1], line)
            if k < len(toks) and toks[k].kind == "field":
                return Chain(inner, tuple(toks[k].text[1:].split("."))), k + 1
            return Chain(inner, ()), k
        raise self.error(line, f"unexpected {t.text!r} in operand")


def parse(src: str, funcs=None) -> tuple:
    """The tree of a template source; :class:`TemplateError` if it is malformed or (given the
    names of the functions there are) calls an unknown function."""
    parser = _Parser(src, funcs)
    nodes, _kw, _rest = parser.parse_list(())
    return nodes
