"""Dockerfile text -> typed instructions with locations.

dockerfile-parse does the line work (continuations, the escape directive, comments); this module adds
heredocs (cut out before dockerfile-parse sees them, line numbers kept), flag parsing, exec-form JSON,
and one typed value per instruction. Every error reads ``Dockerfile:LINE: INSTRUCTION: what is wrong``.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
from dataclasses import dataclass

from .errors import DockerfileError
from . import instructions as I

__all__ = ["Dockerfile", "parse", "parse_file", "parse_instruction", "heredoc_name", "split_raw", "parse_duration"]

_HEREDOC = re.compile(r"<<(-?)(?:\"([A-Za-z_][\w.-]*)\"|'([A-Za-z_][\w.-]*)'|([A-Za-z_][\w.-]*))")
_FLAG = re.compile(r"\s*--([A-Za-z][\w-]*)(?:=(\"[^\"]*\"|'[^']*'|\S*))?(?=\s|$)")
_DIRECTIVE = re.compile(r"^\s*#\s*([A-Za-z]+)\s*=\s*(.*?)\s*$")
_HEREDOC_KEYWORDS = ("RUN", "COPY", "ADD")


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile: its name (for messages), escape character and instructions in order."""

    file: str
    escape: str
    instructions: tuple[I.Instruction, ...]

    def to_list(self) -> list[dict]:
        return [i.to_dict() for i in self.instructions]


def parse_file(path: str, display: str | None = None) -> Dockerfile:
    """Read and parse ``path``; messages name it by ``display`` (default: its base name)."""
    import os

    with open(path, "rb") as f:
        data = f.read()
    return parse(data, display or os.path.basename(path))


def parse(text: bytes | str, file: str = "Dockerfile") -> Dockerfile:
    """Parse Dockerfile ``text``. Raises :class:`DockerfileError` naming ``file`` and the line."""
    data = text.encode() if isinstance(text, str) else text
    if b"\0" in data:
        line = data[: data.index(b"\0")].count(b"\n") + 1
        raise DockerfileError(file, line, None, "contains a NUL byte")
    try:
        source = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DockerfileError(file, line, None, "is not valid UTF-8") from None
    escape = _escape_directive(source)
    lines = source.splitlines()
    cleaned, heredocs = _cut_heredocs(lines, escape, file)

    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(fileobj=io.BytesIO(("\n".join(cleaned) + "\n").encode()), env_replace=False)
    out: list[I.Instruction] = []
    for item in parser.structure:
        keyword = item["instruction"].upper()
        if keyword == "COMMENT":
            continue
        loc = I.Location(file, item["startline"] + 1)
        docs = heredocs.get(item["startline"], ())
        out.append(_instruction(keyword, item["value"], loc, item["content"].strip(), escape, docs))
    if not out:
        raise DockerfileError(file, None, None, "file with no instructions")
    if not isinstance(out[0], (I.From, I.Arg)):
        raise DockerfileError(file, out[0].location.line, out[0].keyword,
                              "the first instruction must be FROM (ARG may come before it)")
    return Dockerfile(file, escape, tuple(out))


def _escape_directive(text: str) -> str:
    """The ``# escape=`` parser directive (only in the leading comment block), default backslash."""
    for line in text.splitlines():
        m = _DIRECTIVE.match(line)
        if not m:
            break
        if m.group(1).lower() == "escape" and m.group(2) in ("\\", "`"):
            return m.group(2)
    return "\\"


def _cut_heredocs(lines: list[str], escape: str, file: str):
    """Blank out heredoc bodies (keeping line numbers) and return them keyed by 0-based start line."""
    cleaned = list(lines)
    found: dict[int, tuple[I.Heredoc, ...]] = {}
    i, start, continuing, logical = 0, 0, False, ""
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not continuing and (not stripped or stripped.startswith("#")):
            i += 1
            continue
        if continuing and stripped.startswith("#"):
            i += 1
            continue
        if not continuing:
            start, logical = i, ""
        body = line.rstrip()
        continuing = body.endswith(escape)
        logical += body[:-1] if continuing else body
        i += 1
        if continuing:
            continue
        words = logical.split()
        keyword = words[0].upper() if words else ""
        if keyword == "ONBUILD" and len(words) > 1:
            keyword = words[1].upper()
        if keyword not in _HEREDOC_KEYWORDS:
            continue
        docs = []
        for m in _HEREDOC.finditer(logical):
            chomp, name = m.group(1) == "-", m.group(2) or m.group(3) or m.group(4)
            content: list[str] = []
            while True:
                if i >= len(lines):
                    raise DockerfileError(file, start + 1, keyword, f"heredoc <<{name} is not terminated")
                raw = lines[i]
                cleaned[i] = ""
                i += 1
                check = raw.lstrip("\t") if chomp else raw
                if check == name:
                    break
                content.append(check)
            quoted = m.group(2) is not None or m.group(3) is not None
            docs.append(I.Heredoc(name, "".join(c + "\n" for c in content), expand=not quoted, chomp=chomp))
        if docs:
            found[start] = tuple(docs)
    return cleaned, found


def heredoc_name(token: str) -> str | None:
    """The delimiter a ``<<EOF`` / ``<<-'EOF'`` source token names, or None for a plain source."""
    m = _HEREDOC.fullmatch(token)
    return (m.group(2) or m.group(3) or m.group(4)) if m else None


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


def _flags(value: str, allowed: dict[str, bool], err) -> tuple[dict[str, list[str]], str]:
    """Take leading ``--name[=value]`` flags. ``allowed`` maps a name to whether it takes a value."""
    flags: dict[str, list[str]] = {}
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
        flags.setdefault(name, []).append(arg if arg is not None else "true")
        pos = m.end()
    return flags, value[pos:].strip()


def _one(flags: dict[str, list[str]], name: str, err) -> str | None:
    values = flags.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise err(f"flag --{name} given more than once")
    return values[0]


def _json_or_shell(rest: str, err, *, allow_shell: bool = True) -> tuple[tuple[str, ...], bool]:
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


def _words(rest: str, escape: str, err) -> list[str]:
    """:func:`split_raw`, an unmatched quote reported at the instruction's line."""
    try:
        return split_raw(rest, escape)
    except ValueError as exc:
        raise err(str(exc)) from None


def _pairs(rest: str, escape: str, err, keyword: str) -> tuple[tuple[str, str], ...]:
    """``k=v k2="v 2"`` or the legacy ``key value`` form (ENV, LABEL)."""
    words = _words(rest, escape, err)
    if not words:
        raise err("needs at least one argument")
    if "=" not in words[0]:
        if keyword == "LABEL" or len(words) < 2:
            raise err(f"expects key=value, got {rest!r}")
        return ((words[0], rest[len(words[0]):].strip()),)
    out = []
    for w in words:
        if "=" not in w:
            raise err(f"expects key=value pairs, got {w!r}")
        k, v = w.split("=", 1)
        if not k:
            raise err(f"empty name in {w!r}")
        out.append((k, v))
    return tuple(out)


def _mount(spec: str, err) -> I.Mount:
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


def _instruction(keyword: str, value: str, loc: I.Location, source: str, escape: str,
                 heredocs: tuple[I.Heredoc, ...], *, nested: bool = False) -> I.Instruction:
    def err(reason: str) -> DockerfileError:
        return DockerfileError(loc.file, loc.line, keyword, reason)

    rest = value.strip()
    common = {"location": loc, "source": source}
    if keyword not in _PARSERS:
        raise err("unknown instruction")
    if not rest and keyword not in ("RUN", "COPY", "ADD") or (not rest and not heredocs):
        raise err("needs at least one argument")
    return _PARSERS[keyword](rest, common, err, escape, heredocs)


def _from(rest, common, err, escape, heredocs):
    flags, rest = _flags(rest, {"platform": True}, err)
    words = rest.split()
    if len(words) == 3 and words[1].lower() == "as":
        name = words[2].lower()
        if not re.fullmatch(r"[a-z][a-z0-9._-]*", name):
            raise err(f"invalid stage name {words[2]!r}")
        return I.From(image=words[0], name=name, platform=_one(flags, "platform", err), **common)
    if len(words) != 1:
        raise err(f"expects 'FROM image [AS name]', got {rest!r}")
    return I.From(image=words[0], platform=_one(flags, "platform", err), **common)


def _run(rest, common, err, escape, heredocs):
    flags, rest = _flags(rest, {"mount": True, "network": True, "security": True}, err)
    network = _one(flags, "network", err)
    if network not in (None, "default", "host", "none"):
        raise err(f"--network must be default, host or none, got {network!r}")
    if _one(flags, "security", err) not in (None, "sandbox"):
        raise err("--security=insecure is not supported")
    mounts = tuple(_mount(m, err) for m in flags.get("mount", ()))
    if heredocs:
        only = _HEREDOC.fullmatch(rest.strip())
        if only and len(heredocs) == 1:
            script = heredocs[0].content
        else:
            script = rest + "\n" + "".join(f"{h.content}{h.name}\n" for h in heredocs)
        return I.Run(command=(script,), shell_form=True, mounts=mounts, network=network,
                     heredocs=heredocs, **common)
    if not rest:
        raise err("needs a command")
    command, shell_form = _json_or_shell(rest, err)
    return I.Run(command=command, shell_form=shell_form, mounts=mounts, network=network, **common)


def _copy_like(add: bool):
    def parse_copy(rest, common, err, escape, heredocs):
        allowed = {"chown": True, "chmod": True, "link": False, "exclude": True, "parents": False}
        if add:
            allowed.update({"checksum": True, "keep-git-dir": False})
        else:
            allowed["from"] = True
        flags, rest = _flags(rest, allowed, err)
        if rest.startswith("["):
            words, _ = _json_or_shell(rest, err)
        else:
            words = tuple(_words(rest, escape, err))
        if len(words) < 2:
            raise err("needs at least one source and a destination")
        for src in words[:-1]:
            clean = posixpath.normpath(src.strip("\"'")) if "$" not in src else ""
            if not flags.get("from") and (clean == ".." or clean.startswith("../")):
                raise err(f"source {src} is outside the build context")
        if flags.get("parents"):
            raise err("--parents is not supported")
        return I.Copy(add=add, sources=tuple(words[:-1]), dest=words[-1], from_=_one(flags, "from", err),
                      chown=_one(flags, "chown", err), chmod=_one(flags, "chmod", err),
                      link=bool(flags.get("link")), checksum=_one(flags, "checksum", err),
                      excludes=tuple(flags.get("exclude", ())), heredocs=heredocs, **common)

    return parse_copy


def _env(rest, common, err, escape, heredocs):
    return I.Env(pairs=_pairs(rest, escape, err, "ENV"), **common)


def _label(rest, common, err, escape, heredocs):
    return I.Label(pairs=_pairs(rest, escape, err, "LABEL"), **common)


def _arg(rest, common, err, escape, heredocs):
    out = []
    for w in _words(rest, escape, err):
        name, eq, default = w.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise err(f"invalid argument name {name!r}")
        out.append((name, default if eq else None))
    return I.Arg(pairs=tuple(out), **common)


def _single(cls, field_name):
    def parse_single(rest, common, err, escape, heredocs):
        return cls(**{field_name: rest}, **common)

    return parse_single


def _list_form(cls, field_name):
    def parse_list(rest, common, err, escape, heredocs):
        if rest.startswith("["):
            words, _ = _json_or_shell(rest, err)
        else:
            words = tuple(_words(rest, escape, err))
        return cls(**{field_name: tuple(words)}, **common)

    return parse_list


def _command(cls):
    def parse_command(rest, common, err, escape, heredocs):
        command, shell_form = _json_or_shell(rest, err)
        return cls(command=command, shell_form=shell_form, **common)

    return parse_command


def _shell(rest, common, err, escape, heredocs):
    words, _ = _json_or_shell(rest, err, allow_shell=False)
    if not words:
        raise err("needs a non-empty JSON array")
    return I.Shell(shell=words, **common)


def _healthcheck(rest, common, err, escape, heredocs):
    flags, rest = _flags(rest, {"interval": True, "timeout": True, "start-period": True,
                                "start-interval": True, "retries": True}, err)
    if rest.upper() == "NONE":
        if flags:
            raise err("HEALTHCHECK NONE takes no flags")
        return I.Healthcheck(test=("NONE",), **common)
    word, _, cmd = rest.partition(" ")
    if word.upper() != "CMD" or not cmd.strip():
        raise err(f"expects 'NONE' or 'CMD command', got {rest!r}")
    command, shell_form = _json_or_shell(cmd.strip(), err)
    test = ("CMD-SHELL", command[0]) if shell_form else ("CMD", *command)
    durations = {}
    for flag in ("interval", "timeout", "start-period", "start-interval"):
        text = _one(flags, flag, err)
        if text is not None:
            try:
                durations[flag.replace("-", "_")] = parse_duration(text)
            except ValueError as exc:
                raise err(f"--{flag}: {exc}") from None
    retries = _one(flags, "retries", err)
    try:
        n = int(retries) if retries is not None else 0
    except ValueError:
        raise err(f"--retries must be a number, got {retries!r}") from None
    if n < 0:
        raise err("--retries must not be negative")
    return I.Healthcheck(test=test, retries=n, **durations, **common)


def _onbuild(rest, common, err, escape, heredocs):
    word, _, inner_rest = rest.partition(" ")
    inner_kw = word.upper()
    if inner_kw in ("ONBUILD", "FROM", "MAINTAINER"):
        raise err(f"{inner_kw} is not allowed as an ONBUILD trigger")
    inner = _instruction(inner_kw, inner_rest, common["location"], rest, escape, heredocs, nested=True)
    return I.Onbuild(expression=rest, inner=inner, **common)


def _stopsignal(rest, common, err, escape, heredocs):
    return I.Stopsignal(signal=rest, **common)


_PARSERS = {
    "FROM": _from,
    "RUN": _run,
    "COPY": _copy_like(False),
    "ADD": _copy_like(True),
    "ENV": _env,
    "ARG": _arg,
    "LABEL": _label,
    "WORKDIR": _single(I.Workdir, "path"),
    "USER": _single(I.User, "user"),
    "EXPOSE": _list_form(I.Expose, "ports"),
    "VOLUME": _list_form(I.Volume, "paths"),
    "CMD": _command(I.Cmd),
    "ENTRYPOINT": _command(I.Entrypoint),
    "SHELL": _shell,
    "STOPSIGNAL": _stopsignal,
    "HEALTHCHECK": _healthcheck,
    "ONBUILD": _onbuild,
    "MAINTAINER": _single(I.Maintainer, "name"),
}


def parse_instruction(text: str, location: I.Location, escape: str = "\\") -> I.Instruction:
    """Parse one instruction line (an ONBUILD trigger from a base image) as if it stood at ``location``."""
    keyword, _, rest = text.strip().partition(" ")
    return _instruction(keyword.upper(), rest, location, text.strip(), escape, ())
