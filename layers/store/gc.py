"""Garbage collection: mark from image records, registered roots and leases; sweep the rest.

Roots (a blob or snapshot reachable from any of them is kept):

* every image record (manifest or index digest -> child manifests -> config + layers), and the
  index a one-platform pull took its manifest out of (the record's ``index``; only its present
  children are reached);
* every registered root (``<root>/roots/<owner>/<key>.json``, see :mod:`.roots`): the runner keeps
  each container's image there, the builder its cache entries. GC never reads another room's files.
  If any root cannot be read, :func:`collect` raises :class:`StoreError` naming it before it frees
  anything: an unreadable root keeps everything, it never lets its blobs go;
* live work: every entry of a live lease file (``<root>/leases/``, see :mod:`.leases`). GC holds
  ``locks/gc.lock`` exclusively while it marks and sweeps; writers hold it shared only for the
  instants they commit or decide to use something, so GC waits for those, never for a whole pull
  or build.

Snapshots are kept for every diff_id of a kept config, every root's ``snapshots`` and every ``snap``
lease entry; a snapshot entry whose lock is held (an unpack in progress) is left alone. Ingest files
whose lock is free, temporary snapshot dirs nobody holds, and lease files of dead processes are
debris and go too.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

from layers.config import ImageConfig
from layers.digest import Digest
from layers.errors import PybuildError, StoreError
from layers.index import Index
from layers.manifest import parse_document
from layers.value import frozen

from .leases import read_roots
from .locks import FileLock, held_by_other
from .roots import Root
from .space import tree_size

__all__ = ["GCResult", "Marks", "collect", "mark", "registered"]

_MAX_DOC = 8 << 20


@frozen
class GCResult:
    blobs_removed: tuple[Digest, ...] = ()
    snapshots_removed: tuple[str, ...] = ()
    ingests_removed: tuple[str, ...] = ()
    bytes_freed: int = 0
    images_untagged: tuple[str, ...] = ()
    leases_removed: tuple[str, ...] = ()


@dataclass
class Marks:
    """What GC keeps: blob digests, and the diff_ids whose snapshots stay."""

    blobs: set[Digest] = field(default_factory=set)
    diff_ids: set[Digest] = field(default_factory=set)


def _mark_doc(store, digest: Digest, marks: Marks) -> None:
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


def _mark_config(store, digest: Digest, marks: Marks) -> None:
    try:
        size = store.blobs.size(digest)
        if size > _MAX_DOC:
            return
        config = ImageConfig.parse(store.blobs.read_bytes(digest, _MAX_DOC))
    except (PybuildError, ValueError):
        return
    marks.diff_ids.update(config.diff_ids)


def registered(store) -> list[Root]:
    """Every registered root (:mod:`.roots`), read in full before anything is marked; raises
    :class:`StoreError` naming the file if one cannot be read (the caller must then free nothing)."""
    return list(store.roots.read_all())


def mark(store, leased: dict[str, set[Digest]] | None = None, *, roots: list[Root] | None = None) -> Marks:
    """Everything reachable from the roots; ``leased`` are the live leases' entries (GC reads them
    under its lock; ``system df`` passes none and so counts leased work as reclaimable). Raises
    :class:`StoreError` on an unreadable registered root (``roots``: already read by the caller)."""
    marks = Marks()
    records = store.images.records()
    # a one-platform pull keeps the registry's index document beside its record (its repo digest)
    docs = {r.manifest_digest for r in records} | {r.index for r in records if r.index is not None}
    for root in registered(store) if roots is None else roots:
        docs |= root.docs
        marks.blobs.update(d for d in root.blobs if store.blobs.has(d))
        marks.diff_ids.update(root.snapshots)
    if leased:
        docs |= leased.get("doc", set())
        marks.blobs.update(d for d in leased.get("blob", ()) if store.blobs.has(d))
        marks.diff_ids.update(leased.get("snap", ()))
    for digest in docs:
        _mark_doc(store, digest, marks)
    return marks


def collect(store, *, timeout: float = 30.0, ingests: bool = True) -> GCResult:
    """Remove every blob and snapshot no root reaches (and, with ``ingests``, partial ingests kept for
    resume). Waits for leases up to ``timeout`` seconds, then raises :class:`StoreError`."""
    lock = FileLock(os.path.join(store.root, "locks", "gc.lock"))
    if not lock.acquire(timeout):
        raise StoreError(f"garbage collection: store {store.root} stayed busy for {timeout:g}s "
                         "(another pybuild process is committing to it); try again")
    leases = getattr(store, "leases", None)
    if leases is not None:
        leases.collecting = True
    try:
        try:
            roots = registered(store)
        except StoreError as exc:
            raise StoreError(f"garbage collection removed nothing: {exc}") from None
        leased, stale = read_roots(store.root)
        marks = mark(store, leased, roots=roots)
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
