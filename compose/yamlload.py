"""YAML text -> plain Python values, with the line of every value kept beside them.

Contract: :func:`parse` returns a :class:`Parsed` whose ``data`` holds only ``dict`` (str keys,
file order), ``list``, ``str``, ``int``, ``float``, ``bool`` and ``None``, and whose ``lines``
maps a path (tuple of keys and list indices) to its 1-based line. Scalars resolve as YAML 1.2's
core schema, as Compose's Go parser does: ``yes``/``on`` and ``22:22`` stay strings. Anchors,
aliases and ``<<`` merge keys work; duplicate keys and multi-document files are errors. The
Compose merge tags ``!reset`` and ``!override`` come back as :class:`Reset` / :class:`Override`
around the value. Every failure is a :class:`ComposeFileError` naming the file and line.
PyYAML is imported on first use (start-up time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from compose.errors import ComposeFileError
from layers.value import frozen

__all__ = ["Parsed", "Reset", "Override", "parse", "Path"]

Path = tuple  # of str keys and int indices

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_INT = re.compile(r"[-+]?[0-9]+\Z")
_OCT = re.compile(r"0o[0-7]+\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")


@frozen
class Reset:
    """``!reset`` on a value: the merged result drops the key (or empties the sequence)."""

    value: object = None


@frozen
class Override:
    """``!override`` on a value: the merged result takes it whole instead of merging."""

    value: object = None


@dataclass
class Parsed:
    file: str
    data: object
    lines: dict = field(default_factory=dict)

    def line(self, path: Path) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def _loader():
    import yaml
    return yaml, getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(text: str, file: str) -> Parsed:
    """Parse one compose (or override) file's text; an empty file gives ``data`` None."""
    yaml, loader = _loader()
    try:
        docs = list(yaml.compose_all(text, Loader=loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        why = " ".join(str(p) for p in (exc.context, exc.problem) if p) or "invalid YAML"
        if mark is not None and "\t" in (text.splitlines()[mark.line:mark.line + 1] or [""])[0]:
            why += " (a tab: indent with spaces)"
        raise ComposeFileError(f"invalid YAML: {why}", file=file, line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise ComposeFileError(f"invalid YAML: {exc}", file=file) from None
    if len(docs) > 1:
        raise ComposeFileError("more than one YAML document in a compose file", file=file,
                               line=docs[1].start_mark.line + 1)
    parsed = Parsed(file, None)
    if docs and docs[0] is not None:
        parsed.data = _Builder(parsed, yaml).value(docs[0], (), set())
    return parsed


class _Builder:
    def __init__(self, parsed: Parsed, yaml) -> None:
        self.parsed, self.yaml = parsed, yaml

    def error(self, why: str, node) -> ComposeFileError:
        return ComposeFileError(why, file=self.parsed.file, line=node.start_mark.line + 1)

    def value(self, node, path: Path, active: set):
        self.parsed.lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in active:
            raise self.error("recursive YAML alias", node)
        tag = node.tag
        if tag in ("!reset", "!override"):
            inner = self._plain(node, path, active)
            return Reset(inner) if tag == "!reset" else Override(inner)
        return self._plain(node, path, active)

    def _plain(self, node, path: Path, active: set):
        y = self.yaml
        if isinstance(node, y.ScalarNode):
            return self.scalar(node)
        active = active | {id(node)}
        if isinstance(node, y.SequenceNode):
            return [self.value(item, path + (i,), active) for i, item in enumerate(node.value)]
        out: dict = {}
        merges = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.extend(self._merge_sources(value_node))
                continue
            if not isinstance(key_node, y.ScalarNode):
                raise self.error("a mapping key must be a plain value", key_node)
            key = self.scalar(key_node)
            key = "null" if key is None else str(key).lower() if isinstance(key, bool) else str(key)
            if key in out:
                raise self.error(f"mapping key {key!r} already defined at line "
                                 f"{self.parsed.lines.get(path + (key,), '?')}", key_node)
            self.parsed.lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = self.value(value_node, path + (key,), active)
        for src in merges:  # explicit keys win, then earlier merge sources over later ones
            for k, v in self._plain(src, path + ("<<",), active).items():
                out.setdefault(k, v)
        return out

    def _merge_sources(self, node):
        y = self.yaml
        if isinstance(node, y.MappingNode):
            return [node]
        if isinstance(node, y.SequenceNode) and all(isinstance(n, y.MappingNode) for n in node.value):
            return list(node.value)
        raise self.error("the << merge key needs a mapping or a list of mappings", node)

    def scalar(self, node):
        """Quoted and block scalars are strings; plain ones resolve as YAML 1.2's core schema."""
        return node.value if node.style else _resolve(node.value)


def _resolve(text: str):
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.match(text):
        return int(text)
    if _OCT.match(text):
        return int(text[2:], 8)
    if _HEX.match(text):
        return int(text[2:], 16)
    if _FLOAT.match(text) and any(c.isdigit() for c in text):
        return float(text)
    low = text.lower()
    if low in (".inf", "+.inf", "-.inf", ".nan"):
        return float(low.replace(".", ""))
    return text
