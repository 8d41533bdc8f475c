"""Image indexes: OCI ``image-index.md`` and the Docker manifest list (schema2).

An :class:`Index` keeps its raw bytes beside the parsed fields; its digest is the digest of
those bytes. :meth:`Index.select` picks the manifest for a platform as Docker and containerd do.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any, Iterable, Mapping

from .descriptor import Descriptor, Platform, frozen_map
from .digest import Digest
from .errors import InvalidDocument, InvalidInput, NotFound
from .jsonutil import canonical, load_object, optional, str_map
from .document import check_media_type_text, check_schema_version, descriptor_list, document_type, optional_descriptor
from .mediatype import INDEX_TYPES, MediaType
from .value import frozen

__all__ = ["Index", "ATTESTATION_ANNOTATION"]

#: BuildKit marks its attestation manifests (platform unknown/unknown) with this annotation.
ATTESTATION_ANNOTATION = "vnd.docker.reference.type"


@frozen(slots=True)
class Index:
    """An image index or Docker manifest list. Build with :meth:`parse` or :meth:`build`."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: tuple[tuple[str, str], ...]
    subject: Descriptor | None
    artifact_type: str
    raw: bytes = field(repr=False)
    digest: Digest

    @classmethod
    def parse(cls, raw: bytes, media_type: str | None = None) -> "Index":
        """Parse index bytes; ``media_type`` is the content type they came with, if known."""
        raw = bytes(raw)
        body = load_object(raw, "index")
        return cls._from_body(raw, body, document_type(body, media_type, "index"))

    @classmethod
    def _from_body(cls, raw: bytes, body: dict[str, Any], mt: str) -> "Index":
        """Build from already-loaded JSON (``body`` of ``raw``) whose media type is ``mt``."""
        if mt not in INDEX_TYPES:
            raise InvalidDocument("index", "mediaType", f"{mt} is an image manifest, not an index")
        for key in ("layers", "config"):
            if key in body:
                raise InvalidDocument("index", key, "is not allowed in an index")
        check_schema_version(body, "index")
        manifests = descriptor_list(body, "manifests", "index")
        if mt == MediaType.DOCKER_MANIFEST_LIST:
            for i, desc in enumerate(manifests):
                if desc.platform is None:
                    raise InvalidDocument("index", f"manifests[{i}].platform", "is required in a Docker manifest list")
        artifact_type = optional(body, "artifactType", "index", "", str, "")
        if artifact_type:
            check_media_type_text(artifact_type, "index", "artifactType")
        return cls(
            media_type=mt,
            manifests=manifests,
            annotations=frozen_map(str_map(body, "annotations", "index", "")),
            subject=optional_descriptor(body, "subject", "index"),
            artifact_type=artifact_type,
            raw=raw,
            digest=Digest.from_bytes(raw),
        )

    @classmethod
    def build(
        cls,
        manifests: Iterable[Descriptor],
        *,
        docker: bool = False,
        annotations: Mapping[str, str] | None = None,
        subject: Descriptor | None = None,
        artifact_type: str = "",
    ) -> "Index":
        """A new index in canonical JSON. A Docker manifest list needs a platform on every entry."""
        manifests = tuple(manifests)
        if docker:
            if annotations or subject or artifact_type:
                raise InvalidInput("a Docker manifest list cannot carry annotations, a subject or an artifactType")
            missing = [str(d.digest) for d in manifests if d.platform is None]
            if missing:
                raise InvalidInput(f"a Docker manifest list needs a platform for {missing[0]}")
        media_type = MediaType.DOCKER_MANIFEST_LIST if docker else MediaType.OCI_INDEX
        body: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": str(media_type),
            "manifests": [d.to_dict() for d in manifests],
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
            manifests=manifests,
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

    def descriptor(self, annotations: Mapping[str, str] | None = None) -> Descriptor:
        """A descriptor pointing at this index's bytes."""
        return Descriptor(self.media_type, self.digest, len(self.raw), annotations=frozen_map(annotations))

    def images(self) -> tuple[Descriptor, ...]:
        """Entries that are runnable images: not attestations, not ``unknown/unknown``."""
        return tuple(
            d for d in self.manifests
            if d.annotation_map.get(ATTESTATION_ANNOTATION) != "attestation-manifest"
            and not (d.platform is not None and d.platform.os == "unknown")
        )

    def select(self, platform: Platform) -> Descriptor:
        """The entry for ``platform``; an exact variant beats an entry without one. :class:`NotFound` if none."""
        candidates = [d for d in self.images() if d.platform is not None and d.platform.matches(platform)]
        if not candidates:
            have = ", ".join(sorted({str(d.platform) for d in self.images() if d.platform is not None})) or "none"
            raise NotFound(f"index {self.digest} has no manifest for platform {platform} (available: {have})")
        # Stable sort: entries whose variant equals the wanted one first, then those without a variant.
        candidates.sort(key=lambda d: (d.platform.variant != platform.variant, d.platform.variant != ""))
        return candidates[0]

    def to_dict(self) -> dict[str, Any]:
        """The parsed body (from :attr:`raw`, so unknown fields survive)."""
        return load_object(self.raw, "index")
