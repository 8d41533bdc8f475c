"""Lexical pieces of Dockerfile instructions: quote-aware word splitting, leading ``--flags``,
exec-form JSON, ``key=value`` pairs, ``--mount`` specs and Go durations. Each reports a problem
through the ``err`` callable it is given (which makes a located :class:`DockerfileError`)."""

from __future__ import annotations

import json
import re

from . import instructions as I

__all__ = ["HEREDOC", "split_raw", "flags", "one", "json_or_shell", "parse_duration", "words", "pairs", "mount"]

HEREDOC = re.compile(r"<<(-?)(?:\"([A-Za-z_][\w.-]*)\"|'([A-Za-z_][\w.-]*)'|([A-Za-z_][\w.-]*))")
_FLAG = re.compile(r"\s*--([A-Za-z][\w-]*)(?:=(\"[^\"]*\"|'[^']*'|\S*))?(?=\s|$)")


def split_raw(text: str, escape: str = "\\") -> list[str]:
    """Split on unquoted whitespace, keeping quotes and escapes as written (expansion comes later)."""
    words: list[str] = []
    cur: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == escape and quote != "'" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
            cur.append(ch)
        elif ch == "$" and text.startswith("${", i) and "}" in text[i:]:
            end = text.index("}", i)
            cur.append(text[i : end + 1])
            i = end + 1
            continue
        elif ch in "\"'":
            quote = ch
            cur.append(ch)
        elif ch.isspace():
            if cur:
                words.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
        i += 1
    if quote:
        raise ValueError(f"unmatched {quote} quote")
    if cur:
        words.append("".join(cur))
    return words


def flags(value: str, allowed: dict[str, bool], err) -> tuple[dict[str, list[str]], str]:
    """Take leading ``--name[=value]`` flags. ``allowed`` maps a name to whether it takes a value."""
    found: dict[str, list[str]] = {}
    pos = 0
    while True:
        m = _FLAG.match(value, pos)
        if not m:
            break
        name, arg = m.group(1).lower(), m.group(2)
        if name not in allowed:
            raise err(f"unknown flag --{name}")
        if allowed[name] and arg is None:
            raise err(f"flag --{name} needs a value")
        if not allowed[name] and arg not in (None, "", "true", "false"):
            raise err(f"flag --{name} takes no value (got {arg!r})")
        if arg and arg[0] in "\"'" and arg[-1] == arg[0] and len(arg) > 1:
            arg = arg[1:-1]
        found.setdefault(name, []).append(arg if arg is not None else "true")
        pos = m.end()
    return found, value[pos:].strip()


def one(flags: dict[str, list[str]], name: str, err) -> str | None:
    values = flags.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise err(f"flag --{name} given more than once")
    return values[0]


def json_or_shell(rest: str, err, *, allow_shell: bool = True) -> tuple[tuple[str, ...], bool]:
    """Exec form (JSON array of strings) or shell form. A ``[`` that is not a valid array is an error
    (Docker would fall back to shell form; a typo there silently changes what runs)."""
    if rest.startswith("["):
        try:
            doc = json.loads(rest)
        except json.JSONDecodeError as exc:
            raise err(f"invalid JSON array {rest!r}: {exc.msg}") from None
        if not isinstance(doc, list) or not all(isinstance(w, str) for w in doc):
            raise err(f"exec form must be a JSON array of strings, got {rest!r}")
        return tuple(doc), False
    if not allow_shell:
        raise err(f"needs a JSON array of strings, got {rest!r}")
    return (rest,), True


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def parse_duration(text: str) -> int:
    """Go duration (``30s``, ``1m30s``, ``500ms``) -> nanoseconds. ValueError when malformed."""
    if text == "0":
        return 0
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {text!r}")
    return int(total)


def words(rest: str, escape: str, err) -> list[str]:
    """:func:`split_raw`, an unmatched quote reported at the instruction's line."""
    try:
        return split_raw(rest, escape)
    except ValueError as exc:
        raise err(str(exc)) from None


def pairs(rest: str, escape: str, err, keyword: str) -> tuple[tuple[str, str], ...]:
    """``k=v k2="v 2"`` or the legacy ``key value`` form (ENV, LABEL)."""
    parts = words(rest, escape, err)
    if not parts:
        raise err("needs at least one argument")
    if "=" not in parts[0]:
        if keyword == "LABEL" or len(parts) < 2:
            raise err(f"expects key=value, got {rest!r}")
        return ((parts[0], rest[len(parts[0]):].strip()),)
    out = []
    for w in parts:
        if "=" not in w:
            raise err(f"expects key=value pairs, got {w!r}")
        k, v = w.split("=", 1)
        if not k:
            raise err(f"empty name in {w!r}")
        out.append((k, v))
    return tuple(out)


def mount(spec: str, err) -> I.Mount:
    """``type=cache,target=/root/.cache,id=pip,sharing=locked`` -> :class:`Mount`."""
    fields: dict = {"type": "bind"}
    for part in spec.split(","):
        if not part:
            continue
        key, _, val = part.partition("=")
        key = key.strip().lower()
        if key in ("target", "dst", "destination"):
            fields["target"] = val
        elif key in ("source", "src"):
            fields["source"] = val
        elif key == "from":
            fields["from_"] = val
        elif key in ("type", "id", "env"):
            fields[key] = val
        elif key == "sharing":
            if val not in ("shared", "private", "locked"):
                raise err(f"--mount sharing must be shared, private or locked, got {val!r}")
            fields["sharing"] = val
        elif key in ("ro", "readonly"):
            fields["readonly"] = val in ("", "true")
        elif key in ("rw", "readwrite"):
            fields["readonly"] = val not in ("", "true")
        elif key == "required":
            fields["required"] = val in ("", "true")
        elif key in ("mode", "uid", "gid", "size"):
            try:
                fields[key] = int(val, 8) if key == "mode" else int(val)
            except ValueError:
                raise err(f"--mount {key} must be a number, got {val!r}") from None
        else:
            raise err(f"--mount: unknown option {key!r}")
    kind = fields["type"]
    if kind not in ("cache", "secret", "bind", "tmpfs", "ssh"):
        raise err(f"--mount type must be cache, secret, bind or tmpfs, got {kind!r}")
    if kind == "ssh":
        raise err("--mount=type=ssh is not supported")
    if kind == "secret":
        if not fields.get("id") and fields.get("target"):
            fields["id"] = fields["target"].rsplit("/", 1)[-1]
        if not fields.get("id"):
            raise err("--mount=type=secret needs id= or target=")
        if not fields.get("target") and not fields.get("env"):
            fields["target"] = "/run/secrets/" + fields["id"]
    elif not fields.get("target"):
        raise err(f"--mount=type={kind} needs target=")
    if kind == "cache" and fields.get("source"):
        # subpaths of a shared cache dir are what BuildKit CVE-2024-23651 raced into host paths
        raise err("--mount=type=cache,source= (a subpath of the cache) is not supported")
    if kind == "bind" and "readonly" not in fields:
        fields["readonly"] = True
    return I.Mount(**fields)
