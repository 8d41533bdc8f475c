"""Garbage collection: mark from image records, containers, the build cache and leases; sweep the rest.

Roots (a blob or snapshot reachable from any of them is kept):

* every image record (manifest or index digest -> child manifests -> config + layers);
* every container under ``<root>/containers/*/``: its ``image-ref`` file (a manifest digest) and
  any ``image``/``image_id`` digest in its ``config.json``;
* every ``sha256:...`` string in files under ``<root>/cache/`` (the build cache index);
* live work: GC takes ``locks/gc.lock`` exclusively, and every :meth:`Store.lease` and ingest holds
  it shared, so GC waits until no pybuild process is creating or using something unrecorded.

Snapshots are kept for every diff_id of a kept config; ingest files whose lock is free and
temporary snapshot dirs are debris and go too.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

from layers.config import ImageConfig
from layers.digest import Digest
from layers.errors import PybuildError
from layers.index import Index
from layers.manifest import parse_document

from .locks import FileLock

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


def mark(store) -> _Marks:
    marks = _Marks()
    cached = cache_roots(store.root)
    marks.diff_ids.update(cached)  # a cached layer's snapshot is what makes the cache hit fast
    roots = {r.manifest_digest for r in store.images.list()}
    roots |= container_roots(store.root) | cached
    for digest in roots:
        _mark_doc(store, digest, marks)
    return marks


def collect(store, *, timeout: float = 30.0, ingests: bool = True) -> GCResult:
    """Remove every blob and snapshot no root reaches (and, with ``ingests``, partial ingests kept for
    resume). Waits for leases up to ``timeout`` seconds, then raises :class:`StoreError`."""
    from layers.errors import StoreError

    lock = FileLock(os.path.join(store.root, "locks", "gc.lock"))
    if not lock.acquire(timeout):
        raise StoreError(f"garbage collection: the store is in use by another pybuild process (waited {timeout:g}s)")
    try:
        marks = mark(store)
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
        keep = {d.hex for d in marks.diff_ids}
        snaps: list[str] = []
        for name, _ready in store.snapshots.list():
            if name in keep:
                continue
            freed += _tree_size(os.path.join(store.snapshots.base, name))
            store.snapshots.remove(name)
            snaps.append(name)
            if not name.startswith("."):
                # no unpack can be running (it would hold a lease), so its lock file can go too
                try:
                    os.unlink(os.path.join(store.root, "locks", f"snapshot-{name}.lock"))
                except FileNotFoundError:
                    pass
        swept = _sweep_ingest(store.root) if ingests else []
        return GCResult(tuple(removed), tuple(snaps), tuple(swept), freed)
    finally:
        lock.release()


def _sweep_ingest(root: str) -> list[str]:
    """Remove partial ingests and their lock files.

    Safe only under the exclusive GC lock: every ingest takes the shared lease lock before it
    opens its own lock file, so no ingest is live or about to lock while we run.
    """
    base = os.path.join(root, "ingest")
    out = []
    for name in sorted(os.listdir(base)):
        try:
            os.unlink(os.path.join(base, name))
        except FileNotFoundError:
            continue
        if not name.endswith(".lock"):
            out.append(name)
    return out


def _tree_size(path: str) -> int:
    total = 0
    for dirpath, dirs, files in os.walk(path):
        for n in files + dirs:
            try:
                total += os.lstat(os.path.join(dirpath, n)).st_blocks * 512
            except OSError:
                pass
    return total
