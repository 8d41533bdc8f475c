"""The local store under one root: blobs, image records, snapshots, leases, GC and fsck.

Layout (directories 0700)::

    <root>/blobs/sha256/<hex>     read-only, verified content
    <root>/ingest/                partial writes (resumable by digest), with their locks
    <root>/images/index.json      name -> manifest/index digest + image id, atomic, locked
    <root>/snapshots/<hex>/fs     unpacked layer (overlay form), <hex>/ready written last
    <root>/leases/<pid>-<random>  what a live process is creating or using (GC roots; see .leases)
    <root>/roots/<owner>/<key>.json  what another room keeps alive (containers, build cache; see .roots)
    <root>/locks/                 flock files: images.lock, gc.lock, snapshot-<hex>.lock
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from layers.errors import StoreError

from .blobs import BlobStore, Ingest
from .images import Image, ImageRecord, ImageStore
from .leases import Leases
from .roots import Root, Roots
from .snapshots import SnapshotStore

__all__ = ["Store", "Image", "ImageRecord", "Ingest", "BlobStore", "ImageStore", "SnapshotStore", "Root", "Roots"]

_DIRS = ("blobs", "blobs/sha256", "ingest", "images", "snapshots", "locks", "leases", "roots")


class Store:
    """``Store(root)``: ``.blobs``, ``.images``, ``.snapshots``, ``.roots``, ``.lease()``, ``.gc()``, ``.fsck()``."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        try:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            for d in _DIRS:
                os.makedirs(os.path.join(self.root, d), mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"store root {self.root}: {exc.strerror}") from None
        self.leases = Leases(self.root)
        self.blobs = BlobStore(self.root, self.leases)
        self.images = ImageStore(self.root, self.blobs)
        self.snapshots = SnapshotStore(self.root, self.blobs)
        self.roots = Roots(self.root, self.leases)

    @contextlib.contextmanager
    def lease(self) -> Iterator[None]:
        """While held, GC keeps every blob this process commits or finds present, every image it
        resolves or loads and every snapshot it ensures (wrap "write blobs ... tag", "load image ...
        write container record"). GC does not wait for the lease, only for the instants it records
        something (see :mod:`layers.store.leases`). Nested and threaded uses share one lease."""
        with self.leases.hold():
            yield

    def gc(self, *, timeout: float = 30.0, ingests: bool = True):
        """Garbage-collect (see :mod:`layers.store.gc`); a :class:`~layers.store.gc.GCResult`."""
        from .gc import collect

        return collect(self, timeout=timeout, ingests=ingests)

    def fsck(self, *, repair: bool = False):
        from .fsck import check

        return check(self, repair=repair)

    def __repr__(self) -> str:
        return f"Store({self.root!r})"
