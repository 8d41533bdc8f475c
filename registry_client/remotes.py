"""Registries opened on demand, by host, and blobs the store knows only lazily fetched from them.

:class:`Remotes` keeps one :class:`~registry_client.client.Registry` per host (credentials as push
and pull find them; httpx is imported on first use) and fetches a blob the store lacks from a
repository :class:`~registry_client.sources.SourceIndex` names for it: through the store's ingest,
which checks every byte against the digest and size before the blob exists.
"""

from __future__ import annotations

import threading

from layers.descriptor import Descriptor
from layers.errors import NotFound, PybuildError

from .errors import RegistryError
from .progress import QuietProgress
from .sources import SourceIndex
from .store import LocalStore
from .transport import TransportConfig

__all__ = ["Remotes"]


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
