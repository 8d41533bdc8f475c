"""Validation of one compose file against the Compose Specification's JSON schema.

Contract: :func:`validate` raises :class:`ComposeFileError` for the most telling violation, naming
the file, the line and the path inside (``compose.yaml:12: services.web.ports[0]: ...``), and
returns None when the document is valid. The schema is ``compose-spec.json`` beside this module
(a copy of ``testdata/compose/compose-spec.json``, Apache-2.0, see ``LICENSE.compose-spec`` there).

The checker is a small draft-07 evaluator for exactly the keywords that schema uses (type,
properties, patternProperties, additionalProperties, required, enum, oneOf, items, uniqueItems,
minimum, maximum, pattern, local $ref); any other keyword in the schema is refused when it is
loaded, so a newer schema cannot be half-checked. It exists because importing ``jsonschema``
costs ~0.2 s of CPU on every compose command; tests/compose/test_schema_errors.py holds it to
``jsonschema``'s verdicts on a corpus of valid and invalid files.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache

from compose.canon import Where

__all__ = ["validate", "schema_path", "errors_of"]

_ANNOTATIONS = {"$id", "$schema", "title", "description", "default", "deprecated", "definitions"}
_KEYWORDS = {"type", "properties", "patternProperties", "additionalProperties", "required", "enum", "oneOf",
             "items", "uniqueItems", "minimum", "maximum", "pattern", "$ref"} | _ANNOTATIONS


def schema_path() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "compose-spec.json")


@lru_cache(maxsize=1)
def _schema() -> dict:
    with open(schema_path(), encoding="utf-8") as fh:
        schema = json.load(fh)
    _check_keywords(schema)
    return schema


def _check_keywords(node, in_map: bool = False) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if not in_map and key not in _KEYWORDS:
                raise RuntimeError(f"compose-spec.json uses JSON Schema keyword {key!r}, which compose.schema "
                                   "does not evaluate")
            _check_keywords(value, key in ("properties", "patternProperties", "definitions") and not in_map)
    elif isinstance(node, list):
        for item in node:
            _check_keywords(item)


class SchemaError:
    """One violation: ``validator`` is the keyword, ``absolute_path`` the path in the document,
    ``context`` the branch errors of a failed ``oneOf``."""

    def __init__(self, validator, value, instance, schema, path, message, context=()):
        self.validator, self.validator_value, self.instance = validator, value, instance
        self.schema, self.absolute_path, self.message, self.context = schema, path, message, list(context)


def errors_of(data) -> list[SchemaError]:
    """Every violation of ``data`` against the compose schema (empty when valid)."""
    root = _schema()
    return list(_check(data, root, root, ()))


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
}


def _resolve(ref: str, root: dict) -> dict:
    if not ref.startswith("#/"):
        raise RuntimeError(f"compose-spec.json: non-local $ref {ref!r}")
    node = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _canon(v):
    return json.dumps(v, sort_keys=True, default=str)


def _check(inst, schema: dict, root: dict, path: tuple):
    if "$ref" in schema:
        yield from _check(inst, _resolve(schema["$ref"], root), root, path)
    if "type" in schema:
        want = schema["type"]
        kinds = want if isinstance(want, list) else [want]
        if not any(_TYPES[k](inst) for k in kinds):
            yield SchemaError("type", want, inst, schema, path, f"{inst!r} is not of type {want!r}")
            return
    if "enum" in schema and inst not in schema["enum"]:
        yield SchemaError("enum", schema["enum"], inst, schema, path, f"{inst!r} is not one of {schema['enum']}")
    if isinstance(inst, dict):
        props = schema.get("properties", {})
        patterns = schema.get("patternProperties", {})
        for key in schema.get("required", ()):
            if key not in inst:
                yield SchemaError("required", schema["required"], inst, schema, path, f"'{key}' is a required property")
        extra = []
        for key, value in inst.items():
            matched = False
            if key in props:
                matched = True
                yield from _check(value, props[key], root, path + (key,))
            for pattern, sub in patterns.items():
                if re.search(pattern, key):
                    matched = True
                    yield from _check(value, sub, root, path + (key,))
            if not matched:
                extra.append(key)
        additional = schema.get("additionalProperties", True)
        if extra and additional is False:
            yield SchemaError("additionalProperties", extra, inst, schema, path,
                              f"Additional properties are not allowed ({', '.join(map(repr, extra))} unexpected)")
        elif extra and isinstance(additional, dict):
            for key in extra:
                yield from _check(inst[key], additional, root, path + (key,))
    if isinstance(inst, list):
        if "items" in schema:
            for i, item in enumerate(inst):
                yield from _check(item, schema["items"], root, path + (i,))
        if schema.get("uniqueItems"):
            seen = [_canon(v) for v in inst]
            if len(set(seen)) != len(seen):
                yield SchemaError("uniqueItems", True, inst, schema, path, f"{inst!r} has non-unique elements")
    if isinstance(inst, str) and "pattern" in schema and not re.search(schema["pattern"], inst):
        yield SchemaError("pattern", schema["pattern"], inst, schema, path, f"{inst!r} does not match")
    if _TYPES["number"](inst):
        if "minimum" in schema and inst < schema["minimum"]:
            yield SchemaError("minimum", schema["minimum"], inst, schema, path, f"{inst} is less than the minimum")
        if "maximum" in schema and inst > schema["maximum"]:
            yield SchemaError("maximum", schema["maximum"], inst, schema, path, f"{inst} is more than the maximum")
    if "oneOf" in schema:
        branches = [list(_check(inst, sub, root, path)) for sub in schema["oneOf"]]
        valid = sum(1 for b in branches if not b)
        if valid != 1:
            context = [e for b in branches for e in b]
            why = "is not valid under any of the given schemas" if valid == 0 else "is valid under more than one schema"
            yield SchemaError("oneOf", schema["oneOf"], inst, schema, path, f"{inst!r} {why}", context)


def validate(data, where: Where) -> None:
    """``data``: one file after interpolation, with ``!reset``/``!override`` tags removed."""
    if data is None:
        return
    errors = errors_of(data)
    if not errors:
        return
    best = _pick(errors)
    path = tuple(best.absolute_path)
    if best.validator == "additionalProperties":
        extra = _extra(best)
        if len(extra) == 1:  # the line of the unexpected key itself
            raise where.error(_message(best), path, line_path=path + (extra[0],))
    raise where.error(_message(best), path)


def _rank(error):
    return (len(error.absolute_path), error.validator != "type")


def _pick(errors):
    """The most telling error: the deepest leaf, preferring a real violation over a type
    mismatch of a ``oneOf`` branch; a ``oneOf`` whose branches all mismatch in type is kept whole."""
    best = max(errors, key=_rank)
    if best.context:
        inner = _pick(best.context)
        if inner.validator == "type" and len(inner.absolute_path) == len(best.absolute_path):
            return best
        return inner
    return best


def _extra(error) -> list:
    """The unexpected keys (ours carry them; a jsonschema error is recomputed from its schema)."""
    if isinstance(error.validator_value, list):
        return list(error.validator_value)
    patterns = error.schema.get("patternProperties", {})
    return sorted(k for k in error.instance if k not in error.schema.get("properties", {})
                  and not any(re.search(p, k) for p in patterns))


def _message(error) -> str:
    v = error.validator
    if v == "additionalProperties":
        extra = _extra(error)
        if len(extra) == 1:
            return f"additional property {extra[0]} is not allowed"
        return "additional properties " + ", ".join(extra) + " are not allowed"
    if v == "type":
        return f"must be {_wanted([error.validator_value])}, not {_kind(error.instance)}"
    if v == "enum":
        return f"must be one of {', '.join(map(str, error.validator_value))}, not {error.instance!r}"
    if v == "required":
        return error.message.replace("'", "").replace(" is a required property", " is required")
    if v == "uniqueItems":
        return "contains duplicate entries"
    if v == "oneOf":
        wants = [e.validator_value for e in error.context
                 if e.validator == "type" and len(e.absolute_path) == len(error.absolute_path)]
        if wants:
            return f"must be {_wanted(wants)}, not {_kind(error.instance)}"
        return f"{_kind(error.instance)} {_short(error.instance)} is not a valid value here"
    if v == "pattern":
        return f"{error.instance!r} does not match {error.validator_value!r}"
    return error.message


_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "number": "a number",
          "integer": "an integer", "boolean": "a boolean", "null": "null"}


def _wanted(values) -> str:
    """``["string", ["array", "null"]]`` -> ``a string, a list or null`` (each once, in order)."""
    names: list[str] = []
    for value in values:
        for kind in value if isinstance(value, list) else [value]:
            name = _NAMES.get(kind, kind)
            if name not in names:
                names.append(name)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _kind(value) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) < 60 else text[:57] + "..."
