"""Image manifests: OCI ``image-manifest.md`` and Docker Image Manifest V2, Schema 2.

A :class:`Manifest` keeps the exact bytes it was parsed from (or built into) beside the parsed
fields; its digest is always the digest of those bytes. Parsing is strict about what pybuild
relies on (types, digests, sizes, media types) and ignores unknown fields, as the spec asks.

What a document is (manifest or index, from its content type and ``mediaType``) is decided by
:func:`layers.document.document_type`, re-exported here.
"""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from .descriptor import Descriptor, Platform, frozen_map, require
from .digest import Digest
from .document import (check_media_type_text, check_schema_version, descriptor_list, document_type,
                       optional_descriptor)
from .errors import InvalidDocument, InvalidInput
from .jsonutil import canonical, load_object, optional, str_map
from .mediatype import INDEX_TYPES, MANIFEST_TYPES, MediaType
from .value import frozen

if TYPE_CHECKING:
    from .index import Index

_DOCKER_LAYER_TYPES = frozenset({MediaType.DOCKER_LAYER_GZIP, MediaType.DOCKER_LAYER_FOREIGN})

__all__ = ["Manifest", "parse_document", "document_type"]

@frozen(slots=True)
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
