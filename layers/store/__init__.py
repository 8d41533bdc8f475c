"""The local store under one root: blobs, image records, snapshots, leases, GC and fsck.

Layout (directories 0700)::

    <root>/blobs/sha256/<hex>     read-only, verified content
    <root>/ingest/                partial writes (resumable by digest), with their locks
    <root>/images/index.json      name -> manifest/index digest + image id, atomic, locked
    <root>/snapshots/<hex>/fs     unpacked layer (overlay form), <hex>/ready written last
    <root>/locks/                 flock files: images.lock, gc.lock, snapshot-<hex>.lock
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from layers.errors import StoreError

from .blobs import BlobStore, Ingest
from .images import Image, ImageRecord, ImageStore
from .locks import FileLock
from .snapshots import SnapshotStore

__all__ = ["Store", "Image", "ImageRecord", "Ingest", "BlobStore", "ImageStore", "SnapshotStore"]

_DIRS = ("blobs", "blobs/sha256", "ingest", "images", "snapshots", "locks")


class Store:
    """``Store(root)``: ``.blobs``, ``.images``, ``.snapshots``, ``.lease()``, ``.gc()``, ``.fsck()``."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        try:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            for d in _DIRS:
                os.makedirs(os.path.join(self.root, d), mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"store root {self.root}: {exc.strerror}") from None
        self.blobs = BlobStore(self.root, self._lease_lock)
        self.images = ImageStore(self.root, self.blobs)
        self.snapshots = SnapshotStore(self.root, self.blobs)

    def _lease_lock(self) -> FileLock:
        return FileLock(os.path.join(self.root, "locks", "gc.lock"), shared=True)

    @contextlib.contextmanager
    def lease(self) -> Iterator[None]:
        """While held, GC removes nothing (it waits): wrap work between writing blobs and tagging."""
        lock = self._lease_lock()
        lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def gc(self, *, timeout: float = 30.0, ingests: bool = True):
        """Garbage-collect (see :mod:`layers.store.gc`); a :class:`~layers.store.gc.GCResult`."""
        from .gc import collect

        return collect(self, timeout=timeout, ingests=ingests)

    def fsck(self, *, repair: bool = False):
        from .fsck import check

        return check(self, repair=repair)

    def __repr__(self) -> str:
        return f"Store({self.root!r})"
