"""Store consistency check: blobs against their names, records against their references, snapshots.

:func:`check` returns a :class:`FsckReport`; ``repair=True`` removes what is provably broken
(a blob whose bytes do not match its name, a snapshot without its ready marker, a record whose
manifest is gone). Nothing is repaired by guessing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from layers.digest import Digest
from layers.errors import InvalidInput, PybuildError
from layers.index import Index

__all__ = ["FsckReport", "check"]

_MAX_DOC = 8 << 20


@dataclass
class FsckReport:
    blobs: int = 0
    records: int = 0
    snapshots: int = 0
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems or len(self.repaired) >= len(self.problems)


def _check_blobs(store, report: FsckReport, repair: bool) -> set[Digest]:
    bad: set[Digest] = set()
    base = os.path.join(store.root, "blobs")
    for alg in sorted(os.listdir(base)):
        for name in sorted(os.listdir(os.path.join(base, alg))):
            path = os.path.join(base, alg, name)
            try:
                digest = Digest(alg, name)
            except InvalidInput:
                report.problems.append(f"blob {path}: name is not a digest")
                continue
            report.blobs += 1
            try:
                with store.blobs.open(digest) as r:
                    r.verify_rest()
            except PybuildError as exc:
                bad.add(digest)
                report.problems.append(str(exc))
                if repair:
                    store.blobs.delete(digest)
                    report.repaired.append(f"removed corrupt blob {digest}")
                continue
            if os.stat(path).st_mode & 0o222:
                report.notes.append(f"blob {digest}: is writable (should be read-only)")
    return bad


def _check_records(store, report: FsckReport, repair: bool) -> None:
    drop: list[str] = []
    try:
        records = store.images.list()
    except PybuildError as exc:
        report.problems.append(str(exc))  # an unreadable index is not repaired by guessing
        return
    for record in records:
        report.records += 1
        try:
            image = store.images.load(record)
            if isinstance(image.index, Index):
                for child in image.index.images():
                    if not store.blobs.has(child.digest):
                        report.notes.append(f"image {record.name}: index entry {child.digest} not in the store")
            for layer in image.manifest.layers:
                if store.blobs.size(layer.digest) != layer.size:
                    raise InvalidInput(f"layer {layer.digest}: size differs from the manifest")
        except PybuildError as exc:
            report.problems.append(f"image {record.name}: {exc}")
            if repair:
                drop.append(record.name)
    if drop:
        store.images.remove_names(drop)
        report.repaired.extend(f"removed broken image record {n}" for n in drop)


def _check_snapshots(store, report: FsckReport, repair: bool) -> None:
    for name, ready in store.snapshots.list():
        if name.startswith(".tmp-") or name.startswith(".trash-"):
            report.problems.append(f"snapshot {name}: left over from an interrupted unpack")
            if repair:
                store.snapshots.remove(name)
                report.repaired.append(f"removed snapshot debris {name}")
            continue
        report.snapshots += 1
        if not ready:
            report.problems.append(f"snapshot {name}: no ready marker (interrupted unpack)")
            if repair:
                store.snapshots.remove(name)
                report.repaired.append(f"removed incomplete snapshot {name}")


def check(store, *, repair: bool = False) -> FsckReport:
    """Check every blob, image record and snapshot; with ``repair``, remove what is broken."""
    report = FsckReport()
    _check_blobs(store, report, repair)
    _check_records(store, report, repair)
    _check_snapshots(store, report, repair)
    ingest = [n for n in os.listdir(os.path.join(store.root, "ingest")) if not n.endswith(".lock")]
    if ingest:
        report.notes.append(f"{len(ingest)} partial ingest file(s) kept for resume (system prune removes them)")
    return report
