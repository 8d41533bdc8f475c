"""A build cache's manifest up and down, and lazy blobs fetched on demand.

The builder owns what a cache *means* (``builder.remotecache``); this module only moves it:

- :func:`fetch_cache_document` reads the manifest at a reference (verified against its digest) and
  its config blob (verified, capped at 16 MiB): a BuildKit cache manifest (config media type
  ``application/vnd.buildkit.cacheconfig.v0``) or an image whose config carries an inline cache.
- :func:`push_cache_manifest` pushes a manifest already in the store through :func:`push` (blobs
  skipped when present, mounted across repositories from a known source, else uploaded), so a cache
  layer the local store only knows lazily is mounted, never downloaded.
- :func:`complete_image` fetches the layers of a stored image that the store knows only lazily,
  through :class:`registry_client.remotes.Remotes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from layers.digest import Digest
from layers.manifest import Manifest, parse_document
from layers.reference import Reference

from .remotes import Remotes
from .store import LocalStore
from .transport import TransportConfig

__all__ = ["CacheDocument", "Remotes", "complete_image", "fetch_cache_document", "push_cache_manifest", "CONFIG_MAX"]

CONFIG_MAX = 16 << 20


@dataclass(frozen=True)
class CacheDocument:
    """What a cache reference holds: the manifest, its raw config, and where it was read."""

    manifest: Manifest
    config: bytes
    registry: str
    repository: str


def complete_image(store, name: str, transport: TransportConfig | None = None) -> int:
    """Fetch the layers of the stored image ``name`` that the store knows only lazily (a build's cache
    hits, a lazy base pull), each from a repository the source index names, verified by digest; the
    number fetched. An image whose layers are all present costs a stat per layer."""
    missing = store.images.missing_layers(name)
    if not missing:
        return 0
    remotes = Remotes(transport)
    try:
        with store.lease():
            return sum(remotes.fetch_missing(store, d) for d in missing)
    finally:
        remotes.close()


def fetch_cache_document(remotes: Remotes, ref: Reference) -> CacheDocument:
    """The manifest ``ref`` names (an image manifest, not an index) and its config bytes."""
    from .pull import parse_remote

    repo = remotes.registry(ref.api_host).repository(ref.repository)
    identifier = str(ref.digest) if ref.digest is not None else (ref.tag or "latest")
    doc = repo.get_manifest(identifier)
    top = parse_remote(doc, f"{ref}")
    if not isinstance(top, Manifest):
        from layers.errors import InvalidInput

        raise InvalidInput(f"{ref}: an index, not a cache manifest (the index form of a cache is not supported)")
    config = repo.read_blob(top.config, CONFIG_MAX)
    return CacheDocument(top, config, ref.api_host, ref.repository)


def push_cache_manifest(store: LocalStore, remotes: Remotes, manifest_digest: Digest, ref: Reference,
                        jobs: int = 4) -> Digest:
    """Push the manifest ``manifest_digest`` (in ``store``, its config too) to ``ref``."""
    from .push import PushOptions, push

    raw = store.blobs.read_bytes(manifest_digest, 4 << 20)
    document = parse_document(raw)
    repo = remotes.registry(ref.api_host).repository(ref.repository)
    return push(store, repo, document, ref, PushOptions(jobs=jobs)).digest
