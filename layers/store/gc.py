"""Garbage collection: mark from image records, containers, the build cache and leases; sweep the rest.

Roots (a blob or snapshot reachable from any of them is kept):

* every image record (manifest or index digest -> child manifests -> config + layers);
* every container under ``<root>/containers/*/``: its ``image-ref`` file (a manifest digest) and
  any ``image``/``image_id`` digest in its ``config.json``;
* every ``sha256:...`` string in files under ``<root>/cache/`` (the build cache index);
* live work: every entry of a live lease file (``<root>/leases/``, see :mod:`.leases`). GC holds
  ``locks/gc.lock`` exclusively while it marks and sweeps; writers hold it shared only for the
  instants they commit or decide to use something, so GC waits for those, never for a whole pull
  or build.

Snapshots are kept for every diff_id of a kept config and every ``snap`` lease entry; a snapshot
entry whose lock is held (an unpack in progress) is left alone. Ingest files whose lock is free,
temporary snapshot dirs nobody holds, and lease files of dead processes are debris and go too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field

from layers.config import ImageConfig
from layers.digest import Digest
from layers.errors import PybuildError
from layers.index import Index
from layers.manifest import parse_document

from .leases import read_roots
from .locks import FileLock, held_by_other
from .space import tree_size

__all__ = ["GCResult", "collect", "mark"]

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_MAX_DOC = 8 << 20


@dataclass(frozen=True)
class GCResult:
    blobs_removed: tuple[Digest, ...] = ()
    snapshots_removed: tuple[str, ...] = ()
    ingests_removed: tuple[str, ...] = ()
    bytes_freed: int = 0
    images_untagged: tuple[str, ...] = ()
    leases_removed: tuple[str, ...] = ()


@dataclass
class _Marks:
    blobs: set[Digest] = field(default_factory=set)
    diff_ids: set[Digest] = field(default_factory=set)


def container_roots(root: str) -> set[Digest]:
    """Digests the containers under ``<root>/containers`` use (manifest, index or config digests)."""
    out: set[Digest] = set()
    base = os.path.join(root, "containers")
    try:
        ids = os.listdir(base)
    except FileNotFoundError:
        return out
    for cid in ids:
        if cid.startswith("."):
            continue  # ".<id>.creating": a create in progress holds a lease; a killed one is debris
        d = os.path.join(base, cid)
        for name in ("image-ref", "config.json", "record.json", "container.json"):
            try:
                with open(os.path.join(d, name), "r", errors="replace") as f:
                    text = f.read(1 << 20)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue
            if name == "image-ref":
                out.update(Digest.parse(m) for m in _DIGEST.findall(text))
                continue
            try:
                body = json.loads(text)
            except ValueError:
                continue
            for key in ("image", "image_id", "Image", "ImageID"):
                value = body.get(key) if isinstance(body, dict) else None
                if isinstance(value, str):
                    out.update(Digest.parse(m) for m in _DIGEST.findall(value))
    return out


def cache_roots(root: str) -> set[Digest]:
    """Digests named in the build cache index (``<root>/cache/**/*.json``; ``cache/mounts`` is user data)."""
    out: set[Digest] = set()
    base = os.path.join(root, "cache")
    for dirpath, dirs, files in os.walk(base):
        if dirpath == base and "mounts" in dirs:
            dirs.remove("mounts")
        for name in files:
            if not name.endswith(".json"):
                continue
            try:
                with open(os.path.join(dirpath, name), "r", errors="replace") as f:
                    out.update(Digest.parse(m) for m in _DIGEST.findall(f.read(1 << 20)))
            except OSError:
                continue
    return out


def _mark_doc(store, digest: Digest, marks: _Marks) -> None:
    if digest in marks.blobs or not store.blobs.has(digest):
        return
    marks.blobs.add(digest)
    try:
        doc = parse_document(store.blobs.read_bytes(digest, _MAX_DOC))
    except PybuildError:
        # not a manifest (a config, a layer or a damaged document): it stays; fsck reports damage
        _mark_config(store, digest, marks)
        return
    if isinstance(doc, Index):
        for child in doc.manifests:
            _mark_doc(store, child.digest, marks)
        return
    marks.blobs.add(doc.config.digest)
    marks.blobs.update(layer.digest for layer in doc.layers)
    if doc.subject is not None:
        marks.blobs.add(doc.subject.digest)
    _mark_config(store, doc.config.digest, marks)


def _mark_config(store, digest: Digest, marks: _Marks) -> None:
    try:
        size = store.blobs.size(digest)
        if size > _MAX_DOC:
            return
        config = ImageConfig.parse(store.blobs.read_bytes(digest, _MAX_DOC))
    except (PybuildError, ValueError):
        return
    marks.diff_ids.update(config.diff_ids)


def mark(store, leased: dict[str, set[Digest]] | None = None) -> _Marks:
    """Everything reachable from the roots; ``leased`` are the live leases' entries (GC reads them
    under its lock; ``system df`` passes none and so counts leased work as reclaimable)."""
    marks = _Marks()
    cached = cache_roots(store.root)
    marks.diff_ids.update(cached)  # a cached layer's snapshot is what makes the cache hit fast
    roots = {r.manifest_digest for r in store.images.list()}
    roots |= container_roots(store.root) | cached
    if leased:
        roots |= leased.get("doc", set())
        marks.blobs.update(d for d in leased.get("blob", ()) if store.blobs.has(d))
        marks.diff_ids.update(leased.get("snap", ()))
    for digest in roots:
        _mark_doc(store, digest, marks)
    return marks


def collect(store, *, timeout: float = 30.0, ingests: bool = True) -> GCResult:
    """Remove every blob and snapshot no root reaches (and, with ``ingests``, partial ingests kept for
    resume). Waits for leases up to ``timeout`` seconds, then raises :class:`StoreError`."""
    from layers.errors import StoreError

    lock = FileLock(os.path.join(store.root, "locks", "gc.lock"))
    if not lock.acquire(timeout):
        raise StoreError(f"garbage collection: store {store.root} stayed busy for {timeout:g}s "
                         "(another pybuild process is committing to it); try again")
    leases = getattr(store, "leases", None)
    if leases is not None:
        leases.collecting = True
    try:
        leased, stale = read_roots(store.root)
        marks = mark(store, leased)
        removed: list[Digest] = []
        freed = 0
        for digest in list(store.blobs.digests()):
            if digest in marks.blobs:
                continue
            try:
                freed += os.stat(store.blobs.path(digest)).st_size
            except FileNotFoundError:
                continue
            store.blobs.delete(digest)
            removed.append(digest)
        snaps, snap_bytes = _sweep_snapshots(store, {d.hex for d in marks.diff_ids})
        freed += snap_bytes
        swept = _sweep_ingest(store.root) if ingests else []
        return GCResult(tuple(removed), tuple(snaps), tuple(swept), freed, leases_removed=tuple(stale))
    finally:
        if leases is not None:
            leases.collecting = False
        lock.release()


def _sweep_snapshots(store, keep: set[str]) -> tuple[list[str], int]:
    """Remove snapshot entries no root keeps, except those an unpack holds (their lock is taken)."""
    removed, freed = [], 0
    for name, ready in store.snapshots.list():
        hex_ = store.snapshots.hex_of(name)
        if hex_ is not None and not name.startswith(".") and hex_ in keep and ready:
            continue  # (an unready one is an interrupted unpack: the next use unpacks it again)
        lock_path = store.snapshots.lock_path(hex_) if hex_ else None
        with held_by_other(lock_path) if lock_path else contextlib.nullcontext(False) as busy:
            if busy:
                continue  # an unpack is writing it (or it is being made ready): not ours to judge
            freed += tree_size(os.path.join(store.snapshots.base, name))
            store.snapshots.remove(name)
            removed.append(name)
            if lock_path and not name.startswith("."):
                try:
                    os.unlink(lock_path)  # we hold it: a waiter re-locks the new file (see locks.py)
                except FileNotFoundError:
                    pass
    return removed, freed


def _sweep_ingest(root: str) -> list[str]:
    """Remove partial ingests nobody is writing (their ``.lock`` is free), and orphan lock files.

    A live ingest holds ``<name>.lock`` from before it creates ``<name>`` until after it commits or
    closes it; we remove a file only while holding its lock ourselves."""
    base = os.path.join(root, "ingest")
    out = []
    names = sorted(os.listdir(base))
    for name in names:
        if name.endswith(".lock"):
            continue
        with held_by_other(os.path.join(base, name + ".lock")) as busy:
            if busy:
                continue
            try:
                os.unlink(os.path.join(base, name))
                out.append(name)
            except FileNotFoundError:
                pass
            try:
                os.unlink(os.path.join(base, name + ".lock"))
            except FileNotFoundError:
                pass
    for name in names:
        if name.endswith(".lock") and name[:-5] not in names:
            path = os.path.join(base, name)
            with held_by_other(path) as busy:
                if not busy:
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        pass
    return out
