"""Docker's word processing for Dockerfile arguments (BuildKit ``shell.Lex`` semantics, the subset
Dockerfiles use): quotes, the escape character, ``$VAR``, ``${VAR}``, ``${VAR:-word}``, ``${VAR-word}``,
``${VAR:+word}``, ``${VAR+word}``, ``${VAR:?msg}``, ``${VAR?msg}``.

Only the instructions Docker expands call this (FROM, COPY, ADD, ENV, ARG, LABEL, EXPOSE, USER,
WORKDIR, VOLUME, STOPSIGNAL, ONBUILD is not expanded); RUN/CMD/ENTRYPOINT are left to the shell.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ExpandError", "process_word", "process_words", "process_heredoc"]


class ExpandError(ValueError):
    """A substitution is malformed or a ``${VAR?msg}`` variable is unset. Callers add the location."""


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.text, self.env, self.escape, self.pos = text, env, escape, 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        ch = self.peek()
        self.pos += 1
        return ch

    def words(self, split: bool) -> list[str]:
        """Process the whole text; split on unquoted whitespace when ``split``."""
        words: list[str] = []
        cur: list[str] = []
        started = False
        while self.pos < len(self.text):
            ch = self.peek()
            if split and ch in " \t\r\n":
                self.take()
                if started:
                    words.append("".join(cur))
                    cur, started = [], False
                continue
            started = True
            if ch == "'":
                self.take()
                cur.append(self.single_quoted())
            elif ch == '"':
                self.take()
                cur.append(self.double_quoted())
            elif ch == "$":
                self.take()
                value = self.dollar()
                if not split:
                    cur.append(value)
                    continue
                # an unquoted expansion is split into words, as the shell (and Docker) does
                pieces = value.split()
                if value[:1].isspace() and started and cur:
                    words.append("".join(cur))
                    cur = []
                for piece in pieces[:-1]:
                    cur.append(piece)
                    words.append("".join(cur))
                    cur = []
                if pieces:
                    cur.append(pieces[-1])
                if value[-1:].isspace() and cur:
                    words.append("".join(cur))
                    cur = []
                started = bool(cur)
            elif ch == self.escape:
                self.take()
                nxt = self.take()
                cur.append(nxt if nxt else self.escape)
            else:
                cur.append(self.take())
        if started or not split:
            words.append("".join(cur))
        return words

    def single_quoted(self) -> str:
        out = []
        while True:
            ch = self.take()
            if ch == "":
                raise ExpandError("unexpected end of text in single quotes")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def double_quoted(self) -> str:
        out = []
        while True:
            ch = self.take()
            if ch == "":
                raise ExpandError("unexpected end of text in double quotes")
            if ch == '"':
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
            elif ch == self.escape and self.peek() in ('"', "$", self.escape):
                out.append(self.take())
            else:
                out.append(ch)

    def name(self) -> str:
        start = self.pos
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            self.pos += 1
        return self.text[start:self.pos]

    def dollar(self) -> str:
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            return self.env.get(name, "")
        self.take()
        name = self.name()
        if not name:
            raise ExpandError(f"bad substitution in {self.text!r}")
        ch = self.take()
        if ch == "}":
            return self.env.get(name, "")
        colon = ch == ":"
        if colon:
            ch = self.take()
        if ch not in "-+?" or ch == "":
            raise ExpandError(f"unsupported modifier in ${{{name}...}} of {self.text!r}")
        word = self.until_brace()
        value = self.env.get(name)
        present = value is not None and (value != "" or not colon)
        if ch == "-":
            return value if present else word
        if ch == "+":
            return word if present else ""
        if not present:
            raise ExpandError(f"{name}: {word or 'is not set'}")
        return value

    def until_brace(self) -> str:
        """The word inside ``${V:-word}``: itself expanded, quotes processed."""
        out = []
        while True:
            ch = self.peek()
            if ch == "":
                raise ExpandError(f"missing '}}' in {self.text!r}")
            self.take()
            if ch == "}":
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
            elif ch == "'":
                out.append(self.single_quoted())
            elif ch == '"':
                out.append(self.double_quoted())
            elif ch == self.escape:
                out.append(self.take())
            else:
                out.append(ch)


def process_word(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Expand ``text`` as one word: quotes removed, variables substituted, no splitting."""
    return _Lexer(text, env, escape).words(split=False)[0]


def process_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Expand ``text`` and split it into words on unquoted whitespace (COPY/EXPOSE/VOLUME arguments)."""
    return _Lexer(text, env, escape).words(split=True)


def process_heredoc(text: str, env: Mapping[str, str]) -> str:
    """Expand ``$VAR``/``${VAR...}`` in a heredoc body; quotes and everything else stay as written."""
    lexer = _Lexer(text, env, "\0")
    out: list[str] = []
    while lexer.pos < len(text):
        ch = lexer.take()
        if ch == "\\" and lexer.peek() == "$":
            out.append(lexer.take())
        elif ch == "$":
            out.append(lexer.dollar())
        else:
            out.append(ch)
    return "".join(out)
