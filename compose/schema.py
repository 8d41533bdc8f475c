"""Validation of one compose file against the Compose Specification's JSON schema.

Contract: :func:`validate` raises :class:`ComposeFileError` for the first (best) violation, naming
the file, the line and the path inside (``compose.yaml:12: services.web.ports[0]: ...``), and
returns None when the document is valid. The schema is ``compose-spec.json`` beside this module
(a copy of ``testdata/compose/compose-spec.json``, Apache-2.0, see ``LICENSE.compose-spec`` there).
jsonschema is imported on first use.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache

from compose.canon import Where

__all__ = ["validate", "schema_path"]


def schema_path() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "compose-spec.json")


@lru_cache(maxsize=1)
def _validator():
    import jsonschema
    with open(schema_path(), encoding="utf-8") as fh:
        schema = json.load(fh)
    return jsonschema.Draft7Validator(schema), jsonschema


def validate(data, where: Where) -> None:
    """``data``: one file after interpolation, with ``!reset``/``!override`` tags removed."""
    if data is None:
        return
    validator, jsonschema = _validator()
    errors = list(validator.iter_errors(data))
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
    extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
    return [k for k in extra if not str(k).startswith("x-")]


def _message(error) -> str:
    v = error.validator
    if v == "additionalProperties":
        extra = _extra(error)
        if len(extra) == 1:
            return f"additional property {extra[0]} is not allowed"
        return "additional properties " + ", ".join(extra) + " are not allowed"
    if v == "type":
        want = error.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return f"must be {want}, not {_kind(error.instance)}"
    if v == "enum":
        return f"must be one of {', '.join(map(str, error.validator_value))}, not {error.instance!r}"
    if v == "required":
        return error.message.replace("'", "").replace(" is a required property", " is required")
    if v == "uniqueItems":
        return "contains duplicate entries"
    if v == "oneOf":
        return f"{_kind(error.instance)} {_short(error.instance)} is not a valid value here"
    if v == "pattern":
        return f"{error.instance!r} does not match {error.validator_value!r}"
    return error.message


def _kind(value) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) < 60 else text[:57] + "..."
