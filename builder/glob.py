"""Docker's path patterns (``.dockerignore``, COPY sources), matched in linear time.

Syntax as moby/patternmatcher: ``*`` any run of non-``/`` characters, ``?`` one non-``/`` character,
``[...]`` a class (``^`` or ``!`` negates, ``a-z`` ranges, ``\\`` escapes), ``**`` any run including
``/``, ``**/`` zero or more leading directories, ``\\x`` a literal ``x``. A malformed class is
:class:`ValueError`, as Go's ``filepath.ErrBadPattern``.

Docker compiles patterns to Go regexps, which run in linear time; Python's ``re`` backtracks, so a
pattern of many stars could take exponential time (found by fuzzing). Here a pattern is a list of
tokens simulated as an NFA over the path: O(len(pattern) * len(path)) whatever the pattern.
"""

from __future__ import annotations

from layers.value import frozen

__all__ = ["Glob"]

_LIT, _ONE, _CLASS, _STAR, _ANY, _DIRS = range(6)


def _class(pattern: str, i: int) -> tuple[tuple[bool, tuple[tuple[str, str], ...]], int]:
    """Parse ``[...]`` starting after ``[``; ``(negated, ranges)`` and the index after ``]``."""
    negated = i < len(pattern) and pattern[i] in "^!"
    if negated:
        i += 1
    ranges: list[tuple[str, str]] = []
    while True:
        if i >= len(pattern):
            raise ValueError("unterminated character class")
        ch = pattern[i]
        if ch == "]" and ranges:
            return (negated, tuple(ranges)), i + 1
        if ch == "]":
            raise ValueError("empty character class")
        if ch == "\\":
            i += 1
            if i >= len(pattern):
                raise ValueError("trailing backslash in a character class")
            ch = pattern[i]
        lo = hi = ch
        if i + 2 < len(pattern) and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            hi = pattern[i + 2]
            if hi == "\\":
                if i + 3 >= len(pattern):
                    raise ValueError("trailing backslash in a character class")
                hi = pattern[i + 3]
                i += 1
            if hi < lo:
                raise ValueError(f"bad range {lo}-{hi} in a character class")
            i += 2
        ranges.append((lo, hi))
        i += 1


@frozen
class Glob:
    """A compiled pattern; :meth:`fullmatch` and :meth:`match_with_parents` run in linear time."""

    text: str
    tokens: tuple[tuple[int, object], ...]

    @classmethod
    def compile(cls, pattern: str) -> "Glob":
        tokens: list[tuple[int, object]] = []
        i = 0
        while i < len(pattern):
            ch = pattern[i]
            if ch == "*":
                run = len(pattern) - i - len(pattern[i:].lstrip("*"))
                i += run
                if run == 1:
                    kind = _STAR
                elif pattern.startswith("/", i):
                    kind, i = _DIRS, i + 1
                else:
                    kind = _ANY
                if not (tokens and tokens[-1][0] == kind and kind in (_ANY, _DIRS)):  # "**/**/" == "**/"
                    tokens.append((kind, None))
                continue
            if ch == "?":
                tokens.append((_ONE, None))
            elif ch == "[":
                spec, i = _class(pattern, i + 1)
                tokens.append((_CLASS, spec))
                continue
            elif ch == "\\" and i + 1 < len(pattern):
                i += 1
                tokens.append((_LIT, pattern[i]))
            else:
                tokens.append((_LIT, ch))
            i += 1
        return cls(pattern, tuple(tokens))

    def _closure(self, states: set[int]) -> set[int]:
        todo = list(states)
        while todo:
            s = todo.pop()
            if s < len(self.tokens) and self.tokens[s][0] in (_STAR, _ANY, _DIRS) and s + 1 not in states:
                states.add(s + 1)
                todo.append(s + 1)
        return states

    def _step(self, states: set[int], c: str) -> set[int]:
        out: set[int] = set()
        for s in states:
            if s >= len(self.tokens):
                continue
            kind, arg = self.tokens[s]
            if kind == _LIT:
                if c == arg:
                    out.add(s + 1)
            elif kind == _ONE:
                if c != "/":
                    out.add(s + 1)
            elif kind == _CLASS:
                negated, ranges = arg  # type: ignore[misc]
                if (any(lo <= c <= hi for lo, hi in ranges)) != negated:
                    out.add(s + 1)
            elif kind == _STAR:
                if c != "/":
                    out.add(s)
            elif kind == _ANY:
                out.add(s)
            else:  # _DIRS: inside "(.*/)?": stay on anything, leave after a "/"
                out.add(s)
                if c == "/":
                    out.add(s + 1)
        return self._closure(out)

    def fullmatch(self, path: str) -> bool:
        """Does the whole of ``path`` match?"""
        states = self._closure({0})
        end = len(self.tokens)
        for c in path:
            states = self._step(states, c)
            if not states:
                return False
        return end in states

    def match_with_parents(self, path: str) -> bool:
        """Does ``path`` or one of its parent directories match (Docker's rule for ``.dockerignore``)?"""
        states = self._closure({0})
        end = len(self.tokens)
        for c in path:
            if c == "/" and end in states:
                return True
            states = self._step(states, c)
            if not states:
                return False
        return end in states
