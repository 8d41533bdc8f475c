"""The :class:`Store`: one root's blobs, image records, snapshots, roots, leases, GC and fsck."""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator

from layers.errors import StoreError

from .blobs import BlobStore
from .images import ImageStore
from .leases import Leases
from .roots import Roots
from .snapshots import SnapshotStore

__all__ = ["Store"]

_DIRS = ("blobs", "blobs/sha256", "ingest", "images", "snapshots", "locks", "leases", "roots")


class Store:
    """``Store(root)``: ``.blobs``, ``.images``, ``.snapshots``, ``.roots``, ``.lease()``, ``.gc()``, ``.fsck()``."""

    def __init__(self, root: str, notes: Callable[[str], None] | None = None) -> None:
        """``notes``: where one-line warnings of the store's work go (the CLI prints them; a library
        caller may collect them); none are printed by the store itself."""
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
        self.snapshots = SnapshotStore(self.root, self.blobs, notes)
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
