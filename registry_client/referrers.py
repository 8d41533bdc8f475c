"""OCI 1.1 referrers: artifacts that point at an image with ``subject`` (signature bundles, SBOMs).

Listing asks ``GET /v2/<name>/referrers/<digest>`` first; a registry without that API (Debian's
``docker-registry`` 2.8 answers 404) is read through the **referrers tag schema**: the index tagged
``sha256-<hex>``. Pushing puts the blobs, then the artifact manifest; when the registry's answer has
no ``OCI-Subject`` header (it did not index the subject itself), the artifact's descriptor is added
to the fallback index (read, append if absent, put back) so clients of either kind find it.
"""

from __future__ import annotations

import json
from contextlib import closing

from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.errors import IntegrityError, InvalidDocument
from layers.index import Index
from layers.manifest import Manifest
from layers.mediatype import MediaType
from layers.value import frozen

from .errors import RemoteNotFound
from .repository import Repository
from .responses import MANIFEST_MAX, read_capped
from .signatures import Blob, signature_tag

__all__ = ["Referrer", "list_referrers", "push_artifact", "put_blobs", "fetch_small"]

_BLOB_MAX = 16 << 20


@frozen
class Referrer:
    """One artifact attached to an image, and where its listing came from (``api`` or ``tag``)."""

    descriptor: Descriptor
    source: str

    @property
    def artifact_type(self) -> str:
        return self.descriptor.artifact_type


def _parse_index(raw: bytes, where: str) -> Index:
    try:
        return Index.parse(raw, MediaType.OCI_INDEX)
    except InvalidDocument as exc:
        raise InvalidDocument(f"referrers of {where}", exc.field, exc.reason) from None


def list_referrers(repo: Repository, digest: Digest, artifact_type: str = "") -> tuple[Referrer, ...]:
    """Artifacts whose subject is ``digest`` (all of them, or those of ``artifact_type``)."""
    where = f"{repo.registry.host}/{repo.name}@{digest}"
    params = {"artifactType": artifact_type} if artifact_type else None
    response = repo.registry.send("GET", repo.registry.url(f"/v2/{repo.name}/referrers/{digest}"),
                                  what=f"referrers of {where}", params=params, allow=(404, 400, 405))
    with closing(response):
        status = response.status_code
        raw = read_capped(response, MANIFEST_MAX, f"referrers of {where}") if status == 200 else b""
    if status == 200 and raw:
        index = _parse_index(raw, where)
        found = [Referrer(d, "api") for d in index.manifests]
    else:
        try:
            doc = repo.get_manifest(signature_tag(digest, ""))
        except RemoteNotFound:
            return ()
        index = _parse_index(doc.raw, where)
        found = [Referrer(d, "tag") for d in index.manifests]
    if artifact_type:
        found = [r for r in found if r.artifact_type == artifact_type]
    return tuple(found)


def put_blobs(repo: Repository, blobs: list[Blob]) -> None:
    """Upload small blobs the registry lacks (from memory)."""
    import io

    for blob in blobs:
        if not repo.blob_exists(blob.descriptor):
            repo.upload_blob(blob.descriptor, lambda b=blob: io.BytesIO(b.data))


def _put_manifest(repo: Repository, identifier: str, manifest: Manifest) -> bool:
    """Put ``manifest``; True when the registry answered with ``OCI-Subject`` (it indexes referrers)."""
    what = f"push manifest {repo.registry.host}/{repo.name}:{identifier}"
    response = repo.registry.send("PUT", repo.registry.url(f"/v2/{repo.name}/manifests/{identifier}"), what=what,
                                  ok=(200, 201, 202), headers={"Content-Type": manifest.media_type},
                                  content=manifest.raw)
    response.close()
    header = response.headers.get("docker-content-digest", "").strip()
    if header and header != str(manifest.digest):
        raise IntegrityError(f"{what}: registry reports digest {header[:80]}, we sent {manifest.digest}")
    return bool(response.headers.get("oci-subject"))


def push_artifact(repo: Repository, manifest: Manifest, blobs: list[Blob]) -> str:
    """Push an artifact manifest with a ``subject``; ``api`` or ``tag`` says how it is found."""
    assert manifest.subject is not None
    repo.want_push()
    put_blobs(repo, blobs)
    if _put_manifest(repo, str(manifest.digest), manifest):
        return "api"
    subject = manifest.subject.digest
    tag = signature_tag(subject, "")
    try:
        current = _parse_index(repo.get_manifest(tag).raw, f"{repo.name}:{tag}")
        entries = list(current.manifests)
    except RemoteNotFound:
        entries = []
    if not any(d.digest == manifest.digest for d in entries):
        entries.append(Descriptor(manifest.media_type, manifest.digest, manifest.size,
                                  annotations=manifest.annotations, artifact_type=manifest.artifact_type))
    index = Index.build(entries)
    repo.put_manifest(tag, index.raw, index.media_type)
    return "tag"


def fetch_small(repo: Repository, desc: Descriptor, cap: int = _BLOB_MAX) -> bytes:
    """A small blob (payload, bundle, SBOM), verified against its descriptor's digest and size."""
    return repo.read_blob(desc, cap)


def artifact_json(raw: bytes, where: str) -> dict:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InvalidDocument(where, "", f"not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise InvalidDocument(where, "", "not a JSON object")
    return value
