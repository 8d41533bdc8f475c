"""What the store's content occupies (``system df``).

:func:`disk_usage` counts blobs, snapshots and partial ingests; what is reclaimable is what GC would
take now (the same marks, :func:`layers.store.gc.mark`, without leases), so an unreadable registered
root makes it raise :class:`StoreError` as GC does. Containers, volumes and the build cache belong to
other rooms and are not counted here.
"""

from __future__ import annotations

import os
from typing import Callable, Iterable

from layers.value import frozen

from .gc import mark
from .removal import containers_using
from .space import tree_size

__all__ = ["DiskUsage", "StoreUsage", "disk_usage"]


@frozen(slots=True)
class DiskUsage:
    """One line of ``system df``: how many, how many in use, bytes, bytes GC would free."""

    kind: str
    total: int
    active: int
    size: int
    reclaimable: int


@frozen(slots=True)
class StoreUsage:
    """The store's lines of ``system df``."""

    images: DiskUsage
    snapshots: DiskUsage
    ingest: DiskUsage


def disk_usage(store, *, in_use: Callable | Iterable | None = None) -> StoreUsage:
    """Sizes of ``store``'s images (their blobs), snapshots and partial ingests. An image is active
    when a container uses it (``in_use``, default: the ``containers`` roots, see
    :func:`layers.store.removal.containers_using`); reclaimable is what GC would remove now."""
    marks = mark(store)
    if in_use is None:
        used = containers_using(store)
        in_use = used.__contains__
    elif not callable(in_use):
        in_use = frozenset(in_use).__contains__
    blob_total = blob_reclaim = 0
    for digest in store.blobs.digests():
        try:
            size = os.stat(store.blobs.path(digest)).st_size
        except FileNotFoundError:
            continue  # collected while we looked
        blob_total += size
        if digest not in marks.blobs:
            blob_reclaim += size
    records = store.images.records()
    active = {r.id for r in records if in_use(r.id) or in_use(r.manifest_digest)}
    keep = {d.hex for d in marks.diff_ids}
    snaps = store.snapshots.list()
    snap_sizes = {name: tree_size(os.path.join(store.snapshots.base, name)) for name, _ready in snaps}
    ingest_dir = os.path.join(store.root, "ingest")
    ingest = tree_size(ingest_dir)
    partial = [n for n in os.listdir(ingest_dir) if not n.endswith(".lock")]
    return StoreUsage(
        images=DiskUsage("Images", len({r.id for r in records}), len(active), blob_total, blob_reclaim),
        snapshots=DiskUsage("Snapshots", len(snaps), len([n for n in snap_sizes if n in keep]),
                            sum(snap_sizes.values()), sum(s for n, s in snap_sizes.items() if n not in keep)),
        ingest=DiskUsage("Ingest", len(partial), 0, ingest, ingest),
    )
