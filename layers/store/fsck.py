"""Store consistency check: blobs against their names, records against their references, snapshots,
registered roots and the containers' images they name, and what crashes and GC left behind.

:func:`check` returns a :class:`FsckReport`:

* ``problems``: what is broken (a blob whose bytes do not match its name, an image record whose
  manifest, config or a layer is missing, a snapshot marked ready without its tree, a registered
  root that cannot be read, a container whose image is gone). ``ok`` is False while any is unrepaired.
* ``notes``: what a crash or normal use leaves and nothing needs (partial ingests kept for resume,
  an unpack interrupted before its ready marker, unreferenced blobs and snapshots GC will take).

``repair=True`` reports the same, then removes what is provably broken or unreferenced (each removal
is a line in ``repaired`` or ``removed``): corrupt blobs, broken image records, incomplete snapshots,
and then everything GC would collect (:func:`layers.store.gc.collect`). It never fetches or rebuilds
anything: a removed record says to pull or build the image again; a container whose image is gone
and an unreadable root are reported, never removed (GC, and so the repair's collection, then stops
before freeing anything). An entry another process is writing (its lock is held) is left alone.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

from layers.digest import Digest
from layers.errors import InvalidInput, NotFound, PybuildError, StoreError
from layers.index import Index

from .locks import held_by_other
from .space import human

__all__ = ["FsckReport", "check"]


@dataclass
class FsckReport:
    blobs: int = 0
    records: int = 0
    snapshots: int = 0
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unrepaired: int = 0
    corrupt: set = field(default_factory=set)  # blobs found corrupt: an image that needs one is broken

    @property
    def ok(self) -> bool:
        return self.unrepaired == 0

    def problem(self, text: str, fixed: str | None = None) -> None:
        self.problems.append(text)
        if fixed is None:
            self.unrepaired += 1
        else:
            self.repaired.append(fixed)


def _check_blobs(store, report: FsckReport, repair: bool) -> None:
    base = os.path.join(store.root, "blobs")
    for alg in sorted(os.listdir(base)):
        for name in sorted(os.listdir(os.path.join(base, alg))):
            path = os.path.join(base, alg, name)
            try:
                digest = Digest(alg, name)
            except InvalidInput:
                report.problem(f"blob {path}: name is not a digest")
                continue
            report.blobs += 1
            try:
                with store.blobs.open(digest) as r:
                    r.verify_rest()
            except PybuildError as exc:
                fixed = None
                report.corrupt.add(digest)
                if repair:
                    store.blobs.delete(digest)
                    fixed = f"removed corrupt blob {digest}"
                report.problem(str(exc), fixed)
                continue
            if os.stat(path).st_mode & 0o222:
                report.notes.append(f"blob {digest}: is writable (should be read-only)")
                if repair:
                    os.chmod(path, 0o444)


def _check_records(store, report: FsckReport, repair: bool) -> None:
    drop: list[str] = []
    unnamed = []
    try:
        records = store.images.records()
    except PybuildError as exc:
        report.problem(str(exc))  # an unreadable index is not repaired by guessing
        return
    for record in records:
        report.records += 1
        try:
            image = store.images.load(record, lazy=True)
            for layer in image.manifest.layers:
                if not store.blobs.has(layer.digest):
                    if layer.digest in report.corrupt or not _known_remote(store, layer.digest):
                        raise NotFound(f"layer {layer.digest} is not in the store")
                    report.notes.append(f"image {record.name}: layer {layer.digest.short} is lazy (a build cache "
                                        "hit or a lazy pull: fetched from its registry when needed)")
            if isinstance(image.index, Index):
                for child in image.index.images():
                    if not store.blobs.has(child.digest):
                        report.notes.append(f"image {record.name}: index entry {child.digest} not in the store")
            for layer in image.manifest.layers:
                if store.blobs.has(layer.digest) and store.blobs.size(layer.digest) != layer.size:
                    raise InvalidInput(f"layer {layer.digest}: size differs from the manifest")
        except PybuildError as exc:
            if not _still_named(store, record):
                continue  # removed (and collected) while we looked: not a broken record
            fixed = None
            what = record.name or f"<none> {record.id.short}"
            if repair:
                (drop if record.name else unnamed).append(record.name or record.manifest_digest)
                fixed = f"removed broken image record {what} (pull or build it again)"
            report.problem(f"image {what}: {exc}", fixed)
    if drop:
        store.images.remove_names(drop)
    if unnamed:
        store.images.remove_dangling(unnamed)


def _known_remote(store, digest) -> bool:
    """Whether a registry is recorded as holding ``digest`` (the source hints push and lazy fetches use,
    ``<root>/registry/sources/``): such a layer is lazy, not lost."""
    return os.path.exists(os.path.join(store.root, "registry", "sources", digest.algorithm, digest.hex + ".json"))


def _still_named(store, record) -> bool:
    try:
        return any(r.name == record.name and r.manifest_digest == record.manifest_digest
                   for r in store.images.records())
    except PybuildError:
        return True


def _check_snapshots(store, report: FsckReport, repair: bool) -> None:
    snaps = store.snapshots
    for name, ready in snaps.list():
        hex_ = snaps.hex_of(name)
        lock = snaps.lock_path(hex_) if hex_ else None
        path = os.path.join(snaps.base, name)
        if not name.startswith("."):
            report.snapshots += 1
        if ready and not name.startswith(".") and os.path.isdir(os.path.join(path, "fs")):
            continue
        with held_by_other(lock) if lock else contextlib.nullcontext(False) as busy:
            if busy:
                continue  # an unpack is writing it right now
            if ready and not name.startswith("."):
                fixed = None
                if repair:
                    snaps.remove(name)
                    fixed = f"removed snapshot {name} (unpacked again when used)"
                report.problem(f"snapshot {name}: marked ready but its tree is missing", fixed)
                continue
            what = "an unpack interrupted before its ready marker" if not name.startswith(".") else \
                "debris of an interrupted unpack or removal"
            report.notes.append(f"snapshot {name}: {what} (unpacked again when used; system prune removes it)")
            if repair:
                snaps.remove(name)
                report.removed.append(f"removed snapshot {name}")


def _check_roots(store, report: FsckReport) -> None:
    """An unreadable registered root is a problem (GC keeps everything while it stays); never
    removed, not even by ``repair``: a root is its owner's (the runner's, the builder's) to fix."""
    for exc in store.roots.unreadable():
        report.problem(str(exc))


def _check_containers(store, report: FsckReport) -> None:
    """A container whose image is gone cannot start again: reported (``pybuild rm`` it), never removed.
    Which image a container uses is its registered root (owner ``containers``), not its files."""
    for cid in store.roots.keys("containers"):
        try:
            root = store.roots.get("containers", cid)
        except PybuildError:
            continue  # reported by _check_roots
        for digest in sorted(root.docs if root is not None else (), key=str):
            if not store.blobs.has(digest):
                report.problem(f"container {cid[:12]}: its image {digest} is not in the store "
                               f"(pybuild rm {cid[:12]}; fsck does not remove containers)")


def check(store, *, repair: bool = False) -> FsckReport:
    """Check every blob, image record, snapshot and container image; with ``repair``, remove what is
    broken and what GC would collect."""
    report = FsckReport()
    _check_blobs(store, report, repair)
    _check_records(store, report, repair)
    _check_snapshots(store, report, repair)
    _check_roots(store, report)
    _check_containers(store, report)
    if repair:
        _collect(store, report)
    else:
        _unreferenced(store, report)
    return report


def _unreferenced(store, report: FsckReport) -> None:
    from .gc import mark

    try:
        marks = mark(store)
    except StoreError:
        return  # an unreadable root: reported as a problem; nothing counts as unreferenced meanwhile
    loose = [d for d in store.blobs.digests() if d not in marks.blobs]
    if loose:
        size = sum(os.stat(store.blobs.path(d)).st_size for d in loose if store.blobs.has(d))
        report.notes.append(f"{len(loose)} unreferenced blob(s), {human(size)} "
                            "(left by interrupted work or removed images; system prune removes them)")
    ingest = [n for n in os.listdir(os.path.join(store.root, "ingest")) if not n.endswith(".lock")]
    if ingest:
        report.notes.append(f"{len(ingest)} partial ingest file(s) kept for resume (system prune removes them)")


def _collect(store, report: FsckReport) -> None:
    try:
        result = store.gc(timeout=30)
    except StoreError as exc:
        report.notes.append(f"unreferenced data not removed: {exc}")
        return
    report.removed.extend(f"removed unreferenced blob {d}" for d in result.blobs_removed)
    report.removed.extend(f"removed unreferenced snapshot {s}" for s in result.snapshots_removed)
    report.removed.extend(f"removed partial ingest {n}" for n in result.ingests_removed)
    report.removed.extend(f"removed the lease of a dead process ({n})" for n in result.leases_removed)
