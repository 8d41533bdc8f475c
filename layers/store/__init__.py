"""The local store under one root: blobs, image records, snapshots, leases, GC and fsck.

Layout (directories 0700)::

    <root>/blobs/sha256/<hex>     read-only, verified content
    <root>/ingest/                partial writes (resumable by digest), with their locks
    <root>/images/index.json      name -> manifest/index digest + image id, atomic, locked
    <root>/snapshots/<hex>/fs     unpacked layer (overlay form), <hex>/ready written last
    <root>/leases/<pid>-<random>  what a live process is creating or using (GC roots; see .leases)
    <root>/roots/<owner>/<key>.json  what another room keeps alive (containers, build cache; see .roots)
    <root>/locks/                 flock files: images.lock, gc.lock, snapshot-<hex>.lock

The package loads its modules on first use (PEP 562): ``from layers.store import Store`` loads the
whole store, while ``layers.store.roots`` alone stays light (the runner's records use it).
"""

from __future__ import annotations

__all__ = ["Store", "Image", "ImageRecord", "Ingest", "BlobStore", "ImageStore", "SnapshotStore", "Root", "Roots"]

_HOMES = {
    "Store": "store", "Image": "images", "ImageRecord": "images", "ImageStore": "images",
    "Ingest": "blobs", "BlobStore": "blobs", "SnapshotStore": "snapshots", "Root": "roots", "Roots": "roots",
}


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'layers.store' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
