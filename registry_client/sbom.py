"""An SBOM (SPDX 2.3 JSON, made by :mod:`layers.sbom`) up to a registry as an OCI 1.1 referrer of its
image, and back down. The artifact manifest has the empty config, the document as its one layer
(media type :data:`SPDX`), ``artifactType`` :data:`SPDX` and ``subject`` the image manifest."""

from __future__ import annotations

from layers.descriptor import Descriptor, Platform
from layers.digest import Digest
from layers.index import Index
from layers.manifest import Manifest, parse_document
from layers.mediatype import MediaType
from layers.reference import Reference

from .errors import RemoteNotFound
from .referrers import fetch_small, list_referrers, push_artifact
from .repository import Repository
from .signatures import EMPTY_CONFIG, Blob

__all__ = ["SPDX", "sbom_manifest", "push_sbom", "fetch_sbom"]

SPDX = "application/spdx+json"


def sbom_manifest(subject: Descriptor, document: bytes, created: str = "") -> tuple[Manifest, list[Blob]]:
    empty = Descriptor(MediaType.OCI_EMPTY, Digest.from_bytes(EMPTY_CONFIG), len(EMPTY_CONFIG))
    layer = Descriptor(SPDX, Digest.from_bytes(document), len(document),
                       annotations=(("org.opencontainers.image.title", "sbom.spdx.json"),))
    annotations = {"org.opencontainers.image.created": created} if created else None
    manifest = Manifest.build(empty, [layer], subject=subject, artifact_type=SPDX, annotations=annotations)
    return manifest, [Blob(empty, EMPTY_CONFIG), Blob(layer, document)]


def push_sbom(repo: Repository, subject: Descriptor, document: bytes, created: str = "") -> tuple[Digest, str]:
    """Attach ``document`` to ``subject``; the artifact's digest and how it is found (``api``/``tag``)."""
    manifest, blobs = sbom_manifest(subject, document, created)
    return manifest.digest, push_artifact(repo, manifest, blobs)


def fetch_sbom(repo: Repository, ref: Reference, platform: Platform | None = None) -> bytes:
    """The SPDX document attached to what ``ref`` names now (the last one listed, when several); for
    an index, the one attached to its image for ``platform`` (the host's when None), as a
    multi-platform ``build --sbom`` attaches one per platform."""
    doc = repo.get_manifest(ref.identifier)
    digest = doc.digest
    top = parse_document(doc.raw, doc.media_type or None)
    if isinstance(top, Index):
        digest = top.select(platform or Platform.host()).digest
    elif platform is not None:  # one image: it must be of that platform
        from layers.config import ImageConfig

        config = ImageConfig.parse(fetch_small(repo, top.config, 16 << 20))
        if not config.platform.matches(platform):
            raise RemoteNotFound(f"{ref} is one image of {config.platform}, not {platform}")
    found = list_referrers(repo, digest, SPDX)
    if not found:
        raise RemoteNotFound(f"{ref}: no SBOM ({SPDX}) is attached to {digest}")
    doc = repo.get_manifest(str(found[-1].descriptor.digest))
    manifest = Manifest.parse(doc.raw, doc.media_type or None)
    layers = [d for d in manifest.layers if d.media_type == SPDX]
    if not layers:
        raise RemoteNotFound(f"{ref}: artifact {doc.digest} has no {SPDX} layer")
    return fetch_small(repo, layers[0], 64 << 20)
