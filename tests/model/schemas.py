"""Validate documents against the OCI JSON schemas copied into ``testdata/oci-schemas/``.

The schemas refer to each other by file name under ``id`` URIs that vary per nesting level, so
the registry resolves any URI by its last path component inside the schema folder.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SCHEMAS = Path(__file__).resolve().parents[2] / "testdata" / "oci-schemas"


def _load(folder: str, name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / folder / name).read_text())


@lru_cache(maxsize=None)
def validator(folder: str, name: str) -> jsonschema.Validator:
    """A draft-4 validator for ``testdata/oci-schemas/<folder>/<name>`` with cross-file refs resolved."""

    def retrieve(uri: str) -> Resource:
        return Resource.from_contents(_load(folder, uri.rsplit("/", 1)[-1]), default_specification=DRAFT4)

    registry = Registry(retrieve=retrieve)
    return jsonschema.Draft4Validator(
        _load(folder, name), registry=registry, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )


def validate(raw: bytes | dict, schema: str, folder: str = "image-spec") -> None:
    """Raise ``jsonschema.ValidationError`` unless ``raw`` (bytes or parsed) fits the schema."""
    doc = json.loads(raw) if isinstance(raw, (bytes, str)) else raw
    validator(folder, schema).validate(doc)


MANIFEST = "image-manifest-schema.json"
INDEX = "image-index-schema.json"
CONFIG = "config-schema.json"
LAYOUT = "image-layout-schema.json"
DESCRIPTOR = "content-descriptor.json"
