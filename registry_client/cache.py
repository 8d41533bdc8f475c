"""A build cache's manifest up and down, and lazy blobs fetched on demand.

The builder owns what a cache *means* (``builder.remotecache``); this module only moves it:

- :func:`fetch_cache_document` reads the manifest at a reference (verified against its digest) and
  its config blob (verified, capped at 16 MiB): a BuildKit cache manifest (config media type
  ``application/vnd.buildkit.cacheconfig.v0``) or an image whose config carries an inline cache.
- :func:`push_cache_manifest` pushes a manifest already in the store through :func:`push` (blobs
  skipped when present, mounted across repositories from a known source, else uploaded), so a cache
  layer the local store only knows lazily is mounted, never downloaded.
- :class:`Remotes` keeps one :class:`Registry` per host (credentials as push and pull find them)
  and fetches a blob the store lacks from a repository :class:`SourceIndex` names for it; the
  store's ingest checks every byte against the digest before the blob exists.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.errors import NotFound, PybuildError
from layers.manifest import Manifest, parse_document
from layers.reference import Reference

from .errors import RegistryError
from .progress import QuietProgress
from .sources import SourceIndex
from .store import LocalStore
from .transport import TransportConfig

__all__ = ["CacheDocument", "Remotes", "fetch_cache_document", "push_cache_manifest", "CONFIG_MAX"]

CONFIG_MAX = 16 << 20


@dataclass(frozen=True)
class CacheDocument:
    """What a cache reference holds: the manifest, its raw config, and where it was read."""

    manifest: Manifest
    config: bytes
    registry: str
    repository: str


class Remotes:
    """Registries by host, opened on first use and closed by :meth:`close`. Thread-safe."""

    def __init__(self, transport: TransportConfig | None = None) -> None:
        self.transport = transport or TransportConfig()
        self._open: dict = {}
        self._lock = threading.Lock()
        self.fetched_bytes = 0
        self.fetched_blobs = 0

    def registry(self, host: str):
        """The :class:`registry_client.client.Registry` for ``host`` (httpx is imported on first use)."""
        from .client import Registry
        from .credentials import CredentialStore

        with self._lock:
            reg = self._open.get(host)
            if reg is None:
                reg = self._open[host] = Registry(host, config=self.transport,
                                                  credentials=CredentialStore().get(host))
            return reg

    def close(self) -> None:
        with self._lock:
            regs, self._open = list(self._open.values()), {}
        for reg in regs:
            reg.close()

    def fetch_missing(self, store: LocalStore, desc: Descriptor) -> bool:
        """Make ``desc`` present in ``store`` from a repository the source index names for it; True
        when bytes were downloaded. Raises :class:`NotFound` when no known source has it."""
        from .pull import fetch_blob

        if store.blobs.has(desc.digest):
            return False
        sources = SourceIndex(store.root).locations(desc.digest)
        errors = []
        for host, repo in sources:
            try:
                before = _Bytes()
                done = fetch_blob(store, self.registry(host).repository(repo), desc, _Counting(before))
                with self._lock:
                    self.fetched_bytes += before.n
                    self.fetched_blobs += int(done)
                return done
            except (RegistryError, PybuildError) as exc:
                errors.append(f"{host}/{repo}: {exc}")
        where = "; ".join(errors) if errors else "no registry is known to have it"
        raise NotFound(f"layer {desc.digest} is not in the store and could not be fetched ({where})")


class _Bytes:
    n = 0


class _Counting(QuietProgress):
    def __init__(self, box: _Bytes) -> None:
        super().__init__()
        self.box = box

    def advance(self, key: str, n: int) -> None:
        self.box.n += n


def complete_image(store, name: str, transport: TransportConfig | None = None) -> int:
    """Fetch the layers of the stored image ``name`` that the store knows only lazily (a build's cache
    hits, a lazy base pull), each from a repository the source index names, verified by digest; the
    number fetched. An image whose layers are all present costs a stat per layer."""
    record = store.images.resolve(name)
    image = store.images.load(record, lazy=True)
    missing = [d for d in image.manifest.layers if not store.blobs.has(d.digest)]
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
