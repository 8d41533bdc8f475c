"""Dockerfile text -> typed instructions with locations.

dockerfile-parse does the line work (continuations, the escape directive, comments); this module adds
heredocs (cut out before dockerfile-parse sees them, line numbers kept), flag parsing, exec-form JSON,
and one typed value per instruction. Every error reads ``Dockerfile:LINE: INSTRUCTION: what is wrong``.
"""

from __future__ import annotations

import io
import re

from layers.value import frozen

from . import instructions as I
from .errors import DockerfileError
from .lex import HEREDOC, parse_duration, split_raw
from .parsers import instruction

__all__ = ["Dockerfile", "parse", "parse_file", "parse_instruction", "heredoc_name", "split_raw", "parse_duration"]

_DIRECTIVE = re.compile(r"^\s*#\s*([A-Za-z]+)\s*=\s*(.*?)\s*$")
_HEREDOC_KEYWORDS = ("RUN", "COPY", "ADD")


@frozen
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
        out.append(instruction(keyword, item["value"], loc, item["content"].strip(), escape, docs))
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
        for m in HEREDOC.finditer(logical):
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
    m = HEREDOC.fullmatch(token)
    return (m.group(2) or m.group(3) or m.group(4)) if m else None


def parse_instruction(text: str, location: I.Location, escape: str = "\\") -> I.Instruction:
    """Parse one instruction line (an ONBUILD trigger from a base image) as if it stood at ``location``."""
    keyword, _, rest = text.strip().partition(" ")
    return instruction(keyword.upper(), rest, location, text.strip(), escape, ())
