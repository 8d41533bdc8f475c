"""Docker's ``--format`` on top of the template engine: ``table`` (a header row from the
placeholders, columns aligned like Go's tabwriter), ``json`` (one object a line) and plain
templates (one rendering a line), as ``docker/cli``'s formatter does."""

from __future__ import annotations

from typing import Iterable, Mapping

from .execute import FUNCS, execute
from .parse import TemplateError, parse

__all__ = ["Template", "render", "render_one", "tabwrite", "TemplateError"]


class _HeaderText(str):
    """A header cell; callable so that ``{{.Label "k"}}`` renders the header too."""

    def __call__(self, *_args) -> str:
        return str(self)


class _Headers:
    """The data a table's header row is rendered on: every field is its column title."""

    def __init__(self, titles: Mapping[str, str]):
        self._titles = titles

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return _HeaderText(self._titles.get(name, _upper_words(name)))

    def to_json(self):
        return ""


def _upper_words(name: str) -> str:
    import re

    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).upper()


class Template:
    """A parsed ``--format`` value. ``table`` and ``json`` keep Docker's meaning; ``default`` is the
    table template used for ``table`` alone (and for an empty format)."""

    def __init__(self, fmt: str | None, default: str = "{{json .}}"):
        if fmt is None or not fmt.strip():
            fmt = "table"
        self.is_json = fmt.strip() == "json"
        self.is_table = fmt.startswith("table") and not self.is_json
        text = "{{json .}}" if self.is_json else (fmt[len("table"):] if self.is_table else fmt)
        if self.is_table and text.strip() == "":
            text = default
        text = text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
        try:
            self.tree = parse(text, FUNCS)
        except TemplateError as exc:
            raise TemplateError(f"template parsing error: {exc}") from None

    def execute(self, data) -> str:
        return execute(self.tree, data)

    def lines(self, items: Iterable, titles: Mapping[str, str] | None = None) -> list[str]:
        """Every item rendered, one a line (the header first for a table), aligned for a table."""
        out = [self.execute(_Headers(titles or {}))] if self.is_table else []
        out += [self.execute(item) for item in items]
        text = "\n".join(out) + "\n" if out else ""
        if self.is_table:
            text = tabwrite(text)
        return text.splitlines()


def render(fmt: str | None, items: Iterable, *, default: str = "{{json .}}",
           titles: Mapping[str, str] | None = None) -> list[str]:
    """The lines ``--format fmt`` prints for ``items``."""
    return Template(fmt, default).lines(items, titles)


def render_one(fmt: str, data) -> str:
    """One rendering of a template (``inspect -f``, ``info -f``), without its trailing newline."""
    return Template(fmt).execute(data)


def tabwrite(text: str, minwidth: int = 10, padding: int = 3) -> str:
    """Go's ``tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)``: tab-terminated cells padded to their
    column's widest cell plus ``padding`` (at least ``minwidth``); a line's last cell is left as is.
    A column is aligned over each run of consecutive lines that have it, as tabwriter does."""
    rows = [line.split("\t") for line in text.split("\n")]
    widths: list[dict[int, int]] = [dict() for _ in rows]
    _blocks(rows, widths, 0, 0, len(rows), minwidth, padding)
    out = []
    for r, row in enumerate(rows):
        cells = [c.ljust(widths[r][k]) for k, c in enumerate(row[:-1])]
        out.append("".join(cells) + row[-1])
    return "\n".join(out)


def _blocks(rows, widths, col: int, start: int, end: int, minwidth: int, padding: int) -> None:
    r = start
    while r < end:
        if len(rows[r]) - 1 <= col:       # no tab-terminated cell in this column
            r += 1
            continue
        first = r
        while r < end and len(rows[r]) - 1 > col:
            r += 1
        width = max(minwidth, max(len(rows[k][col]) + padding for k in range(first, r)))
        for k in range(first, r):
            widths[k][col] = width
        _blocks(rows, widths, col + 1, first, r, minwidth, padding)
