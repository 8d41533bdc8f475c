"""``.dockerignore`` with Docker's rules (moby/patternmatcher): one pattern a line, ``#`` comments,
paths cleaned and made relative, ``**`` matches any number of directories, ``!`` re-includes, the
last matching pattern wins, and a pattern that matches a directory excludes everything under it.
Patterns are matched by :class:`builder.glob.Glob` (linear time, whatever the pattern).
"""

from __future__ import annotations

import posixpath
from functools import cached_property

from layers.value import frozen

from .glob import Glob

__all__ = ["Pattern", "IgnoreRules", "load_ignore", "parse_ignore", "compile_pattern"]


@frozen
class Pattern:
    text: str
    exclusion: bool  # ``!pattern``: re-include

    @cached_property
    def glob(self) -> Glob:
        return Glob.compile(self.text)

    def matches(self, path: str) -> bool:
        """True when ``path`` or one of its parent directories matches (Docker's parent-dir rule)."""
        return self.glob.match_with_parents(path)


def compile_pattern(pattern: str) -> Glob:
    """A COPY source or exclude pattern (``fullmatch`` per path); ValueError when it is malformed."""
    return Glob.compile(pattern)


@frozen
class IgnoreRules:
    patterns: tuple[Pattern, ...] = ()

    def excluded(self, path: str) -> bool:
        """Is context-relative ``path`` (``a/b``, no leading slash) left out of the context?"""
        result = False
        for p in self.patterns:
            if p.exclusion == (not result):
                continue  # cannot change the outcome
            if p.matches(path):
                result = not p.exclusion
        return result

    def may_contain_included(self, directory: str) -> bool:
        """Whether an excluded ``directory`` could still hold re-included files (walk into it)."""
        return any(p.exclusion for p in self.patterns)


def parse_ignore(text: str, file: str = ".dockerignore") -> IgnoreRules:
    """The rules of a ``.dockerignore`` text; a malformed pattern is an InvalidInput naming ``file:line``
    (Docker refuses such a context too: "syntax error in pattern")."""
    from layers.errors import InvalidInput

    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        line = posixpath.normpath(line).lstrip("/")
        if line in ("", "."):
            continue
        pattern = Pattern(line, exclusion)
        try:
            pattern.glob
        except ValueError as exc:
            raise InvalidInput(f"{file}:{number}: syntax error in pattern {raw.strip()[:100]!r}: {exc}") from None
        out.append(pattern)
    return IgnoreRules(tuple(out))


def load_ignore(context_dir: str, dockerfile_path: str | None) -> IgnoreRules:
    """``<Dockerfile>.dockerignore`` next to the Dockerfile wins over ``<context>/.dockerignore``."""
    import os

    candidates = []
    if dockerfile_path:
        candidates.append(dockerfile_path + ".dockerignore")
    candidates.append(os.path.join(context_dir, ".dockerignore"))
    for path in candidates:
        try:
            with open(path, encoding="utf-8") as f:
                return parse_ignore(f.read(), os.path.basename(path))
        except FileNotFoundError:
            continue
    return IgnoreRules()
