"""What a manifest or index document is, and the field checks both share.

:func:`document_type` decides what a document is from the content type it came with and its own
``mediaType`` field, and refuses the ambiguous cases: a body that disagrees with its content type,
and a body that is both an index and a manifest (CVE-2021-41190). :mod:`layers.manifest` and
:mod:`layers.index` both build on this module; neither imports the other at load time.
"""

from __future__ import annotations

from typing import Any, Mapping

from .descriptor import Descriptor, require, valid_media_type
from .errors import InvalidDocument
from .mediatype import INDEX_TYPES, MANIFEST_TYPES, MediaType

__all__ = ["document_type", "check_schema_version", "descriptor_list", "optional_descriptor",
           "check_media_type_text"]

#: Content types that say nothing about the document; the body's own ``mediaType`` decides.
_GENERIC_TYPES = frozenset({"", "application/json", "application/octet-stream", "binary/octet-stream", "text/plain"})
_SCHEMA1_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)


def _strip_parameters(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _is_int(value: Any, want: int) -> bool:
    return type(value) is int and value == want


def document_type(body: Mapping[str, Any], content_type: str | None, kind: str = "manifest") -> str:
    """The media type of a parsed document: a manifest or index type, or :class:`InvalidDocument`.

    ``content_type`` is what the document came with (an HTTP ``Content-Type``, a descriptor's
    ``mediaType``), parameters ignored; ``None`` or a generic type defers to the body.
    """
    declared = body.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise InvalidDocument(kind, "mediaType", f"must be a string, got {type(declared).__name__}")
    if "manifests" in body and ("layers" in body or "config" in body):
        raise InvalidDocument(
            kind, "manifests", "appears beside 'layers'/'config': a document cannot be both an index and a manifest"
        )
    given = _strip_parameters(content_type or "")
    if given in _SCHEMA1_TYPES or declared in _SCHEMA1_TYPES or _is_int(body.get("schemaVersion"), 1):
        raise InvalidDocument(kind, "schemaVersion", "Docker schema 1 manifests are not supported; re-push the image")
    if given not in _GENERIC_TYPES:
        if declared and declared != given:
            raise InvalidDocument(kind, "mediaType", f"is {declared!r} but the content type is {given!r}")
        result = given
    elif declared:
        result = declared
    elif "manifests" in body:
        result = MediaType.OCI_INDEX
    elif "config" in body or "layers" in body:
        result = MediaType.OCI_MANIFEST
    else:
        raise InvalidDocument(kind, "mediaType", "is missing and the document has neither 'manifests' nor 'layers'")
    if result not in MANIFEST_TYPES and result not in INDEX_TYPES:
        raise InvalidDocument(kind, "mediaType", f"{result!r} is not a supported manifest or index type")
    return str(result)


def check_schema_version(body: Mapping[str, Any], kind: str) -> None:
    version = require(body, "schemaVersion", kind, "", int)
    if version != 2:
        raise InvalidDocument(kind, "schemaVersion", f"must be 2, got {version}")


def descriptor_list(body: Mapping[str, Any], key: str, kind: str) -> tuple[Descriptor, ...]:
    items = require(body, key, kind, "", list)
    return tuple(Descriptor.from_dict(item, kind, f"{key}[{i}]") for i, item in enumerate(items))


def optional_descriptor(body: Mapping[str, Any], key: str, kind: str) -> Descriptor | None:
    value = body.get(key)
    return None if value is None else Descriptor.from_dict(value, kind, key)


def check_media_type_text(value: str, kind: str, field: str) -> None:
    if not valid_media_type(value):
        raise InvalidDocument(kind, field, f"{value[:80]!r} is not a media type")
