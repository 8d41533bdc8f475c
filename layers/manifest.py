"""Image manifests: OCI ``image-manifest.md`` and Docker Image Manifest V2, Schema 2.

A :class:`Manifest` keeps the exact bytes it was parsed from (or built into) beside the parsed
fields; its digest is always the digest of those bytes. Parsing is strict about what pybuild
relies on (types, digests, sizes, media types) and ignores unknown fields, as the spec asks.

:func:`document_type` decides what a document is from the content type it came with and its own
``mediaType`` field, and refuses the ambiguous cases: a body that disagrees with its content type,
and a body that is both an index and a manifest (CVE-2021-41190).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from .descriptor import Descriptor, Platform, frozen_map, require, valid_media_type
from .digest import Digest
from .errors import InvalidDocument, InvalidInput
from .jsonutil import canonical, load_object, optional, str_map
from .mediatype import INDEX_TYPES, MANIFEST_TYPES, MediaType

if TYPE_CHECKING:
    from .index import Index

__all__ = ["Manifest", "parse_document", "document_type"]

#: Content types that say nothing about the document; the body's own ``mediaType`` decides.
_GENERIC_TYPES = frozenset({"", "application/json", "application/octet-stream", "binary/octet-stream", "text/plain"})
_DOCKER_LAYER_TYPES = frozenset({MediaType.DOCKER_LAYER_GZIP, MediaType.DOCKER_LAYER_FOREIGN})
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


@dataclass(frozen=True, slots=True)
class Manifest:
    """An image manifest (OCI or Docker schema2). Build with :meth:`parse` or :meth:`build`."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: tuple[tuple[str, str], ...]
    subject: Descriptor | None
    artifact_type: str
    raw: bytes = field(repr=False)
    digest: Digest

    @classmethod
    def parse(cls, raw: bytes, media_type: str | None = None) -> "Manifest":
        """Parse manifest bytes; ``media_type`` is the content type they came with, if known."""
        raw = bytes(raw)
        body = load_object(raw, "manifest")
        return cls._from_body(raw, body, document_type(body, media_type, "manifest"))

    @classmethod
    def _from_body(cls, raw: bytes, body: dict[str, Any], mt: str) -> "Manifest":
        """Build from already-loaded JSON (``body`` of ``raw``) whose media type is ``mt``."""
        if mt not in MANIFEST_TYPES:
            raise InvalidDocument("manifest", "mediaType", f"{mt} is an index, not an image manifest")
        check_schema_version(body, "manifest")
        config = Descriptor.from_dict(require(body, "config", "manifest", "", dict), "manifest", "config")
        layers = descriptor_list(body, "layers", "manifest")
        artifact_type = optional(body, "artifactType", "manifest", "", str, "")
        if artifact_type:
            check_media_type_text(artifact_type, "manifest", "artifactType")
        return cls(
            media_type=mt,
            config=config,
            layers=layers,
            annotations=frozen_map(str_map(body, "annotations", "manifest", "")),
            subject=optional_descriptor(body, "subject", "manifest"),
            artifact_type=artifact_type,
            raw=raw,
            digest=Digest.from_bytes(raw),
        )

    @classmethod
    def build(
        cls,
        config: Descriptor,
        layers: Iterable[Descriptor],
        *,
        docker: bool = False,
        annotations: Mapping[str, str] | None = None,
        subject: Descriptor | None = None,
        artifact_type: str = "",
    ) -> "Manifest":
        """A new manifest in canonical JSON. Docker schema2 has no annotations, subject or artifactType."""
        layers = tuple(layers)
        if docker:
            if annotations or subject or artifact_type:
                raise InvalidInput("a Docker schema2 manifest cannot carry annotations, a subject or an artifactType")
            if config.media_type != MediaType.DOCKER_CONFIG:
                raise InvalidInput(f"a Docker schema2 manifest needs a {MediaType.DOCKER_CONFIG} config, "
                                   f"not {config.media_type}")
            for i, layer in enumerate(layers):
                if layer.media_type not in _DOCKER_LAYER_TYPES:
                    raise InvalidInput(f"layer {i} of a Docker schema2 manifest has media type {layer.media_type}; "
                                       "want a gzip Docker layer type (or build an OCI manifest)")
        media_type = MediaType.DOCKER_MANIFEST if docker else MediaType.OCI_MANIFEST
        body: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": str(media_type),
            "config": config.to_dict(),
            "layers": [layer.to_dict() for layer in layers],
        }
        if artifact_type:
            body["artifactType"] = artifact_type
        if subject is not None:
            body["subject"] = subject.to_dict()
        if annotations:
            body["annotations"] = dict(annotations)
        raw = canonical(body)
        return cls(
            media_type=str(media_type),
            config=config,
            layers=layers,
            annotations=frozen_map(annotations),
            subject=subject,
            artifact_type=artifact_type,
            raw=raw,
            digest=Digest.from_bytes(raw),
        )

    @property
    def annotation_map(self) -> dict[str, str]:
        return dict(self.annotations)

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def is_docker(self) -> bool:
        return self.media_type == MediaType.DOCKER_MANIFEST

    def descriptor(self, platform: Platform | None = None, annotations: Mapping[str, str] | None = None) -> Descriptor:
        """A descriptor pointing at this manifest's bytes."""
        return Descriptor(self.media_type, self.digest, len(self.raw), annotations=frozen_map(annotations),
                          platform=platform)

    def to_dict(self) -> dict[str, Any]:
        """The parsed body (from :attr:`raw`, so unknown fields survive)."""
        return load_object(self.raw, "manifest")


def parse_document(raw: bytes, media_type: str | None = None) -> "Manifest | Index":
    """Parse a manifest or an index, whichever ``raw`` is (see :func:`document_type`)."""
    from .index import Index

    raw = bytes(raw)
    body = load_object(raw, "manifest")
    mt = document_type(body, media_type, "manifest")
    if mt in INDEX_TYPES:
        return Index._from_body(raw, body, mt)
    return Manifest._from_body(raw, body, mt)
