"""``.dockerignore`` with Docker's rules (moby/patternmatcher): one pattern a line, ``#`` comments,
paths cleaned and made relative, ``**`` matches any number of directories, ``!`` re-includes, the
last matching pattern wins, and a pattern that matches a directory excludes everything under it.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from functools import cached_property

__all__ = ["Pattern", "IgnoreRules", "load_ignore", "parse_ignore", "compile_pattern"]


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool  # ``!pattern``: re-include

    @cached_property
    def regex(self) -> re.Pattern:
        return compile_pattern(self.text)

    @cached_property
    def parts(self) -> int:
        return len(self.text.split("/"))

    def matches(self, path: str) -> bool:
        """True when ``path`` or one of its parent directories matches (Docker's parent-dir rule)."""
        if self.regex.fullmatch(path):
            return True
        parents = path.split("/")
        # a pattern with N components can match the first N components of a deeper path
        if "**" not in self.text and len(parents) > self.parts:
            return bool(self.regex.fullmatch("/".join(parents[: self.parts])))
        for i in range(1, len(parents)):
            if self.regex.fullmatch("/".join(parents[:i])):
                return True
        return False


def compile_pattern(pattern: str) -> re.Pattern:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):  # "**/" matches zero or more directories
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("^") or body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.S)


@dataclass(frozen=True)
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


def parse_ignore(text: str) -> IgnoreRules:
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        line = posixpath.normpath(line).lstrip("/")
        if line in ("", "."):
            continue
        out.append(Pattern(line, exclusion))
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
                return parse_ignore(f.read())
        except FileNotFoundError:
            continue
    return IgnoreRules()
