"""Variable interpolation and ``.env`` files, as Compose v2 does them.

Contract:

- :func:`substitute` expands one string: ``$$`` is a literal ``$``; ``$VAR`` and ``${VAR}`` take the
  value (unset = empty string, and the name is added to ``missing``); ``${VAR:-d}`` / ``${VAR-d}``
  give ``d`` when unset-or-empty / unset; ``${VAR:+a}`` / ``${VAR+a}`` give ``a`` when set-and-non-empty
  / set; ``${VAR:?err}`` / ``${VAR?err}`` raise :class:`InterpolationError`. Defaults, alternatives and
  messages are themselves expanded, so ``${A:-${B:-x}}`` nests. A ``$`` before anything else is kept.
  Names are ``[A-Za-z_][A-Za-z0-9_]*``; a malformed ``${...}`` is an error naming it.
- :func:`interpolate_tree` expands every string value (never a key) of a parsed file, and names the
  path and line of the value that failed.
- :func:`read_env_file` parses a dotenv file the way Compose does (``export``, quotes, ``#`` comments,
  ``${VAR}`` inside unquoted and double-quoted values).
"""

from __future__ import annotations

import re

from compose.errors import ComposeFileError, ComposeFileNotFound, InterpolationError

__all__ = ["substitute", "interpolate_tree", "read_env_file", "parse_env_text", "path_text"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS = (":-", ":?", ":+", "-", "?", "+")


class _Bad(Exception):
    pass


def path_text(path) -> str:
    """``("services", "web", "ports", 0)`` -> ``services.web.ports[0]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def substitute(text: str, env, missing: set | None = None) -> str:
    """Expand ``text`` with ``env`` (a mapping). Raises InterpolationError (no file/path) on failure."""
    if "$" not in text:
        return text
    try:
        return _expand(text, env, missing if missing is not None else set())
    except _Bad as exc:
        raise InterpolationError(f"invalid interpolation format {text!r}: {exc}; "
                                 "you may need to escape any $ with another $") from None


def _expand(text: str, env, missing: set) -> str:
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "$" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing(text, i + 2)
            out.append(_braced(text[i + 2:end], env, missing))
            i = end + 1
        else:
            m = _NAME.match(text, i + 1)
            if m is None:
                out.append("$")
                i += 1
                continue
            out.append(_lookup(m.group(0), env, missing, ""))
            i = m.end()
    return "".join(out)


def _closing(text: str, start: int) -> int:
    depth, i = 1, start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise _Bad("missing closing brace")


def _lookup(name: str, env, missing: set, default: str) -> str:
    value = env.get(name)
    if value is None:
        missing.add(name)
        return default
    return value


def _braced(body: str, env, missing: set) -> str:
    m = _NAME.match(body)
    if m is None:
        raise _Bad(f"bad variable name in ${{{body}}}")
    name, rest = m.group(0), body[m.end():]
    if not rest:
        return _lookup(name, env, missing, "")
    op = next((o for o in _OPS if rest.startswith(o)), None)
    if op is None:
        raise _Bad(f"unknown operator in ${{{body}}}")
    arg = rest[len(op):]
    value = env.get(name)
    unset = value is None or (op.startswith(":") and value == "")
    if op in (":-", "-"):
        return _expand(arg, env, missing) if unset else value
    if op in (":+", "+"):
        return "" if unset else _expand(arg, env, missing)
    if unset:  # ":?" / "?"
        msg = _expand(arg, env, missing)
        raise InterpolationError(f"required variable {name} is missing a value" + (f": {msg}" if msg else ""))
    return value


def interpolate_tree(data, env, file: str, lines, missing: set | None = None):
    """A copy of ``data`` with every string value expanded; errors name ``file:line: path``."""
    missing = missing if missing is not None else set()

    def walk(value, path):
        if isinstance(value, str):
            try:
                return substitute(value, env, missing)
            except InterpolationError as exc:
                raise InterpolationError(exc.why, file=file, path=path_text(path),
                                         line=lines(path) if lines else None) from None
        if isinstance(value, dict):
            return {k: walk(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, path + (i,)) for i, v in enumerate(value)]
        inner = getattr(value, "value", None)
        if inner is not None and type(value).__name__ in ("Reset", "Override"):
            return type(value)(walk(inner, path))
        return value

    return walk(data, ())


def read_env_file(path: str, env=None, required: bool = True, raw: bool = False) -> list[tuple[str, str | None]]:
    """The ``(key, value)`` pairs of a dotenv file in order; ``value`` None for a bare ``KEY`` line.
    ``env`` is what ``${VAR}`` in values may refer to (earlier keys of the file win over it).
    ``raw`` (``env_file: {format: raw}``): each value is the rest of its line, untouched."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        if not required:
            return []
        raise ComposeFileNotFound(f"env file {path} not found") from None
    except OSError as exc:
        raise ComposeFileError(f"cannot read env file: {exc.strerror}", file=path) from None
    if raw:
        return [(k, v if sep else None) for k, sep, v in
                (line.partition("=") for line in text.splitlines() if line.strip() and not line.startswith("#"))]
    return parse_env_text(text, path, env or {})


def parse_env_text(text: str, file: str, env) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    seen: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        raw, lineno = lines[i], i + 1
        i += 1
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[7:].lstrip()
        key, eq, value = line.partition("=")
        key = key.strip()
        if not _NAME.fullmatch(key) and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", key):
            raise ComposeFileError(f"invalid variable name {key!r}", file=file, line=lineno)
        if not eq:
            pairs.append((key, None))
            continue
        value = value.lstrip()
        lookup = _Chain(seen, env)
        if value[:1] in ("'", '"'):
            quote = value[0]
            body = value[1:]
            while _find_quote(body, quote) < 0 and i < len(lines):
                body += "\n" + lines[i]
                i += 1
            end = _find_quote(body, quote)
            if end < 0:
                raise ComposeFileError(f"unterminated quoted value for {key}", file=file, line=lineno)
            body = body[:end]
            if quote == '"':
                body = _unescape(body)
                value = _env_sub(body, lookup, file, lineno)
            else:
                value = body
        else:
            value = re.split(r"\s#", value, maxsplit=1)[0].rstrip()
            value = _env_sub(value, lookup, file, lineno)
        seen[key] = value
        pairs.append((key, value))
    return pairs


def _find_quote(body: str, quote: str) -> int:
    i = 0
    while i < len(body):
        if quote == '"' and body[i] == "\\":
            i += 2
            continue
        if body[i] == quote:
            return i
        i += 1
    return -1


def _unescape(body: str) -> str:
    table = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$$"}
    return re.sub(r"\\(.)", lambda m: table.get(m.group(1), "\\" + m.group(1)), body)


def _env_sub(value: str, lookup, file: str, lineno: int) -> str:
    try:
        return substitute(value, lookup)
    except InterpolationError as exc:
        raise InterpolationError(exc.why, file=file, line=lineno) from None


class _Chain:
    def __init__(self, first, second) -> None:
        self.first, self.second = first, second

    def get(self, key, default=None):
        if key in self.first:
            return self.first[key]
        return self.second.get(key, default)
