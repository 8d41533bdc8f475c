"""Executing a parsed template on Python data with Go ``text/template`` semantics.

Data is dicts (keys looked up by name; a missing key is ``<no value>``, as Go's maps of
interface{}), lists, scalars, or objects whose public attributes and methods are the fields
(``{{.Label "k"}}`` calls ``Label("k")``; a missing one is an error, as Go's structs). Values print
as Go's ``fmt`` does: ``true``, ``[a b]``, ``map[k:v]``, ``<no value>`` for nil. Functions: Go's
builtins (and, or, not, len, index, slice, print, printf, println, eq, ne, lt, le, gt, ge,
urlquery, html, js) and Docker's (json, join, split, lower, upper, title, pad, truncate).
"""

from __future__ import annotations

import json
import re

from .parse import Action, Chain, Command, Dot, Field, Ident, If, Literal, Pipe, Range, Text, \
    TemplateError, Var, With

__all__ = ["execute", "go_str", "FUNCS"]

_MISSING = object()


def go_str(value) -> str:
    """``fmt.Sprint`` of a value."""
    if value is None or value is _MISSING:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_inner(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{_inner(k)}:{_inner(value[k])}" for k in sorted(value, key=str)) + "]"
    return str(value)


def _inner(value) -> str:
    return "<nil>" if value is None else go_str(value)


def _go_float(f: float) -> str:
    if f == f and abs(f) < 1e21 and f == int(f):      # Go's %v: no exponent below 1e21, no ".0"
        return str(int(f))
    return repr(f).replace("inf", "Inf").replace("nan", "NaN")


def truth(value) -> bool:
    """Go's ``if``: false, 0, nil, and empty strings, lists and maps are false."""
    return not (value is None or value is _MISSING or value is False or value == 0 and not isinstance(value, str)
                or isinstance(value, (str, list, tuple, dict)) and len(value) == 0)


# -- functions -------------------------------------------------------------------------------------

def _json(value) -> str:
    return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"))


def _plain(value):
    """Data for ``json``: an object with ``to_json()`` gives its own document."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if value is _MISSING:
        return None
    return value


def _index(item, *keys):
    for k in keys:
        if isinstance(item, dict):
            # a missing key is its map's zero value: "" in a map of strings (Docker's Labels), else nil
            item = item.get(k, "" if all(isinstance(v, str) for v in item.values()) else None)
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(k, int) or not 0 <= k < len(item):
                raise _ExecError(f"error calling index: index out of range: {k}")
            item = item[k]
        elif item is None:
            raise _ExecError("error calling index: index of untyped nil")
        else:
            raise _ExecError(f"error calling index: can't index item of type {type(item).__name__}")
    return item


def _len(item):
    try:
        return len(item)
    except TypeError:
        raise _ExecError(f"error calling len: len of type {type(item).__name__}") from None


def _cmp(op):
    def compare(a, *bs):
        if op == "eq":
            return any(a == b for b in bs)
        b = bs[0]
        try:
            return {"ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]
        except TypeError:
            raise _ExecError(f"error calling {op}: incompatible types for comparison") from None
    return compare


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def printf(fmt: str, *args) -> str:
    """Go's ``fmt.Sprintf`` for the verbs templates use: %s %v %d %q %x %X %o %f %e %g %t %c %%."""
    out, pos, n = [], 0, 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2) or "", m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if n >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[n]
        n += 1
        spec = "%" + flags + width + (f".{prec}" if prec is not None else "")
        if verb in "sv":
            out.append((spec + "s") % go_str(arg))
        elif verb == "q":
            out.append((spec.split(".")[0] + "s") % json.dumps(go_str(arg), ensure_ascii=False))
        elif verb == "t":
            out.append((spec + "s") % go_str(bool(arg)))
        elif verb in "dxXoc" and isinstance(arg, (int, bool)):
            out.append((spec + verb) % arg)
        elif verb in "feEgG" and isinstance(arg, (int, float)) and not isinstance(arg, bool):
            out.append((spec + verb) % arg)
        else:
            out.append(f"%!{verb}({type(arg).__name__}={go_str(arg)})")
    out.append(fmt[pos:])
    if n < len(args):
        out.append("%!(EXTRA " + ", ".join(f"{type(a).__name__}={go_str(a)}" for a in args[n:]) + ")")
    return "".join(out)


def _sprint(*args) -> str:
    # Go's Sprint adds a space between operands when neither is a string
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_str(a))
    return "".join(out)


def _and(*args):
    for a in args:
        if not truth(a):
            return a
    return args[-1]


def _or(*args):
    for a in args:
        if truth(a):
            return a
    return args[-1]


def _slice(item, *idx):
    bounds = [int(i) for i in idx]
    if len(bounds) > 2:
        raise _ExecError("error calling slice: too many slice indexes")
    return item[slice(*bounds)] if bounds else item


def _title(s: str) -> str:
    # strings.Title: upper-case the first letter of each word, keep the rest
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), s)


def _truncate(s: str, n: int) -> str:
    return s[:n]


def _pad(s: str, before: int, after: int) -> str:
    return " " * before + s + " " * after


FUNCS = {
    "and": _and, "or": _or, "not": lambda a: not truth(a), "len": _len, "index": _index, "slice": _slice,
    "print": _sprint, "printf": printf, "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "eq": _cmp("eq"), "ne": _cmp("ne"), "lt": _cmp("lt"), "le": _cmp("le"), "gt": _cmp("gt"), "ge": _cmp("ge"),
    "urlquery": lambda *a: __import__("urllib.parse").parse.quote_plus(_sprint(*a)),
    "html": lambda *a: __import__("html").escape(_sprint(*a)), "js": lambda *a: json.dumps(_sprint(*a))[1:-1],
    # Docker's additions (cli/templates)
    "json": _json, "join": lambda items, sep: sep.join(go_str(i) for i in (items or ())),
    "split": lambda s, sep: s.split(sep), "lower": lambda s: go_str(s).lower(), "upper": lambda s: go_str(s).upper(),
    "title": lambda s: _title(go_str(s)), "pad": _pad, "truncate": _truncate,
}


# -- evaluation ------------------------------------------------------------------------------------

class _ExecError(Exception):
    """An execution failure; :func:`execute` words it as Go does and raises :class:`TemplateError`."""


class _State:
    def __init__(self, root):
        self.vars: list[list[tuple[str, object]]] = [[("$", root)]]
        self.out: list[str] = []

    def lookup(self, name: str):
        for scope in reversed(self.vars):
            for n, v in reversed(scope):
                if n == name:
                    return v
        raise _ExecError(f"undefined variable: {name}")

    def set(self, name: str, value) -> None:
        for scope in reversed(self.vars):
            for i, (n, _v) in enumerate(scope):
                if n == name:
                    scope[i] = (name, value)
                    return
        raise _ExecError(f"undefined variable: {name}")


def _field(value, name: str, args: tuple = (), final: bool = True):
    if isinstance(value, dict):
        if args:
            raise _ExecError(f"{name} is not a method but has arguments")
        return value.get(name, _MISSING)
    if value is None or value is _MISSING:
        raise _ExecError(f"nil pointer evaluating interface {{}}.{name}")
    if name.startswith("_") or not hasattr(value, name) or isinstance(value, (str, int, float, list, tuple)):
        raise _ExecError(f"can't evaluate field {name} in type {type(value).__name__}")
    attr = getattr(value, name)
    if callable(attr):
        try:
            return attr(*args)
        except TypeError as exc:
            raise _ExecError(f"wrong number of args for {name}: {exc}") from None
    if args:
        raise _ExecError(f"{name} is not a method but has arguments")
    return attr


def _chain(value, names: tuple[str, ...], args: tuple = ()):
    for i, name in enumerate(names):
        value = _field(value, name, args if i == len(names) - 1 else ())
    return value


def _arg(st: _State, node, dot):
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Dot):
        return dot
    if isinstance(node, Field):
        return _chain(dot, node.names)
    if isinstance(node, Var):
        return _chain(st.lookup(node.name), node.names)
    if isinstance(node, Chain):
        return _chain(_pipe(st, node.node, dot), node.names)
    if isinstance(node, Ident):
        return _call(st, node.name, (), dot, _MISSING)
    raise _ExecError(f"can't evaluate {node!r}")


def _call(st: _State, name: str, args: tuple, dot, final):
    fn = FUNCS.get(name)
    if fn is None:
        raise _ExecError(f"function \"{name}\" not defined")
    values = [_arg(st, a, dot) for a in args]
    if final is not _MISSING:
        values.append(final)
    values = [None if v is _MISSING else v for v in values]
    try:
        return fn(*values)
    except _ExecError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise _ExecError(f"error calling {name}: {exc}") from None


def _command(st: _State, cmd: Command, dot, final):
    try:
        return _run_command(st, cmd, dot, final)
    except _ExecError as exc:
        if str(exc).startswith("at <"):
            raise
        raise _ExecError(f"at <{_describe(cmd.args[0])}>: {exc}") from None


def _run_command(st: _State, cmd: Command, dot, final):
    head, rest = cmd.args[0], cmd.args[1:]
    if isinstance(head, Ident):
        return _call(st, head.name, rest, dot, final)
    extra = tuple(_arg(st, a, dot) for a in rest) + (() if final is _MISSING else (final,))
    if isinstance(head, Field) and extra:                 # a method with arguments: {{.Label "k"}}
        return _chain(dot, head.names, extra)
    if isinstance(head, Var) and head.names and extra:
        return _chain(st.lookup(head.name), head.names, extra)
    if extra:
        raise _ExecError(f"can't give argument to non-function {_describe(head)}")
    return _arg(st, head, dot)


def _describe(node) -> str:
    """The node as Go's error messages quote it (``<.A.B>``, ``<$x.A>``, ``<index>``)."""
    if isinstance(node, Field):
        return "." + ".".join(node.names)
    if isinstance(node, Var):
        return ".".join((node.name,) + node.names)
    if isinstance(node, Ident):
        return node.name
    if isinstance(node, Dot):
        return "."
    if isinstance(node, Literal):
        return go_str(node.value)
    return "(...)"


def _pipe(st: _State, pipe: Pipe, dot):
    value = _MISSING
    for cmd in pipe.cmds:
        value = _command(st, cmd, dot, value)
    for name in pipe.decl if len(pipe.decl) == 1 else ():
        if pipe.assign:
            st.set(name, value)
        else:
            st.vars[-1].append((name, value))
    return value


def _walk(st: _State, nodes: tuple, dot) -> None:
    for node in nodes:
        if isinstance(node, Text):
            st.out.append(node.text)
        elif isinstance(node, Action):
            value = _pipe(st, node.pipe, dot)
            if not node.pipe.decl:
                st.out.append(go_str(value))
        elif isinstance(node, (If, With)):
            st.vars.append([])
            value = _pipe(st, node.pipe, dot)
            if truth(value):
                _walk(st, node.body, value if isinstance(node, With) else dot)
            else:
                _walk(st, node.orelse, dot)
            st.vars.pop()
        elif isinstance(node, Range):
            _range(st, node, dot)


def _range(st: _State, node: Range, dot) -> None:
    st.vars.append([])
    pipe = Pipe((), node.pipe.cmds)
    value = _pipe(st, pipe, dot)
    if isinstance(value, dict):
        items = [(k, value[k]) for k in sorted(value, key=str)]
    elif isinstance(value, (list, tuple)):
        items = list(enumerate(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [(i, i) for i in range(value)]
    elif value is None or value is _MISSING:
        items = []
    else:
        raise _ExecError(f"range can't iterate over {go_str(value)}")
    if not items:
        _walk(st, node.orelse, dot)
    for key, elem in items:
        scope: list = []
        if len(node.pipe.decl) == 2:
            scope = [(node.pipe.decl[0], key), (node.pipe.decl[1], elem)]
        elif len(node.pipe.decl) == 1:
            scope = [(node.pipe.decl[0], elem)]
        st.vars.append(scope)
        _walk(st, node.body, elem)
        st.vars.pop()
    st.vars.pop()


def execute(tree: tuple, data) -> str:
    """The text of a parsed template run on ``data``; :class:`TemplateError` if execution fails."""
    st = _State(data)
    try:
        _walk(st, tree, data)
    except _ExecError as exc:
        msg = str(exc)
        raise TemplateError(f"template: :1: executing \"\"{' ' if msg.startswith('at <') else ': '}{msg}") from None
    except RecursionError:
        raise TemplateError("template: :1: executing \"\": too deeply nested") from None
    return "".join(st.out)
