"""A build cache's manifest up and down, and lazy blobs fetched on demand.

The builder owns what a cache *means* (``builder.remotecache``); this module only moves it:

- :func:`fetch_cache_documents` reads the manifest at a reference (verified against its digest) and
  its config blob (verified, capped at 16 MiB): a BuildKit cache manifest (config media type
  ``application/vnd.buildkit.cacheconfig.v0``) or an image whose config carries an inline cache; for
  an index (a multi-platform image with inline caches), each image entry's manifest and config.
- :func:`push_cache_manifest` pushes a manifest already in the store through :func:`push` (blobs
  skipped when present, mounted across repositories from a known source, else uploaded), so a cache
  layer the local store only knows lazily is mounted, never downloaded.
- :func:`complete_images` fetches the layers of stored images that the store knows only lazily,
  through :class:`registry_client.remotes.Remotes` (before ``run``, ``save``, ``push``), or says in
  one line which are missing and how to get them.
"""

from __future__ import annotations

from typing import Iterable

from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.errors import NotFound
from layers.manifest import Manifest, parse_document
from layers.reference import Reference
from layers.value import frozen

from .remotes import Remotes
from .store import LocalStore
from .transport import TransportConfig

__all__ = ["CacheDocument", "LazyLayersUnavailable", "Remotes", "complete_image", "complete_images", "fetch_cache_documents", "push_cache_manifest", "CONFIG_MAX"]

CONFIG_MAX = 16 << 20


@frozen
class CacheDocument:
    """What a cache reference holds: the manifest, its raw config, and where it was read."""

    manifest: Manifest
    config: bytes
    registry: str
    repository: str
    platform: str = ""  # an index entry's platform; "" for a manifest named directly


def complete_image(store, name: str, transport: TransportConfig | None = None) -> int:
    """:func:`complete_images` for one image, before ``run``."""
    return complete_images(store, (name,), transport, "run")


def complete_images(store, names: Iterable[str], transport: TransportConfig | None = None,
                    purpose: str = "save") -> int:
    """Fetch the layers of the stored images ``names`` (every image of an index in the store) that the
    store knows only lazily (a build's registry cache hits, a lazy base pull), each from a repository
    the source index names, verified by digest; the number fetched. An image whose layers are all
    present costs a stat per layer. Raises :class:`LazyLayersUnavailable` (one line: which layers,
    of which image, where they were to come from, what to do) when some cannot be fetched."""
    missing: dict[Digest, tuple[str, Descriptor]] = {}
    for name in names:
        for desc in store.images.missing_layers(name):
            missing.setdefault(desc.digest, (name, desc))
    if not missing:
        return 0
    remotes = Remotes(transport)
    failed: list[tuple[str, Descriptor]] = []
    fetched = 0
    try:
        with store.lease():
            for name, desc in missing.values():
                try:
                    fetched += remotes.fetch_missing(store, desc)
                except NotFound:
                    failed.append((name, desc))
    finally:
        remotes.close()
    if failed:
        raise LazyLayersUnavailable(_unavailable(store, purpose, failed))
    return fetched


class LazyLayersUnavailable(NotFound):
    """Layers an image needs are known only lazily and no registry that holds them answered."""


def _unavailable(store, purpose: str, failed: list[tuple[str, Descriptor]]) -> str:
    from .sources import SourceIndex

    name, first = failed[0]
    places = sorted({f"{h}/{r}" for _, d in failed for h, r in SourceIndex(store.root).locations(d.digest)})
    more = f" and {len(failed) - 1} more" if len(failed) > 1 else ""
    where = (f"from {', '.join(places[:3])}, which could not be reached" if places
             else "and no registry is recorded as holding it")
    return (f"{purpose}: {name}: layer {first.digest}{more} is not in the store (a lazy registry cache hit) "
            f"{where}; {purpose} fetches it when that registry answers (log in first if it needs credentials)")


def fetch_cache_documents(remotes: Remotes, ref: Reference) -> tuple[CacheDocument, ...]:
    """What ``ref`` names: one manifest and its config bytes, or for an index (a multi-platform image
    whose configs carry inline caches) each image entry's manifest and config, ``platform`` set."""
    from .pull import parse_remote

    repo = remotes.registry(ref.api_host).repository(ref.repository)
    identifier = str(ref.digest) if ref.digest is not None else (ref.tag or "latest")
    top = parse_remote(repo.get_manifest(identifier), f"{ref}")
    if isinstance(top, Manifest):
        return (CacheDocument(top, repo.read_blob(top.config, CONFIG_MAX), ref.api_host, ref.repository),)
    out = []
    for entry in top.images():
        manifest = parse_remote(repo.get_manifest(str(entry.digest)), f"{ref}@{entry.digest}")
        if not isinstance(manifest, Manifest):
            from layers.errors import InvalidInput

            raise InvalidInput(f"{ref}: entry {entry.digest} is a nested index; not a cache")
        out.append(CacheDocument(manifest, repo.read_blob(manifest.config, CONFIG_MAX), ref.api_host,
                                 ref.repository, str(entry.platform or "")))
    return tuple(out)


def push_cache_manifest(store: LocalStore, remotes: Remotes, manifest_digest: Digest, ref: Reference,
                        jobs: int = 4) -> Digest:
    """Push the manifest ``manifest_digest`` (in ``store``, its config too) to ``ref``."""
    from .push import PushOptions, push

    raw = store.blobs.read_bytes(manifest_digest, 4 << 20)
    document = parse_document(raw)
    repo = remotes.registry(ref.api_host).repository(ref.repository)
    return push(store, repo, document, ref, PushOptions(jobs=jobs)).digest
