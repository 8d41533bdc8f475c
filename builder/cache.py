"""The build cache index: ``<root>/cache/keys/<key>.json`` maps a vertex's cache key to the layer it
produced (descriptor + diff_id), or to "no layer" for a step that changed nothing.

Each entry with a layer is a registered store root (``store.roots``, owner ``build-cache``, key the
cache key) keeping its layer blob and the layer's snapshot (what makes a hit fast): GC never reads
the index itself. The root is written before the entry and dropped after it, so an entry never names
content GC may take; a hit whose root is missing (an entry from before roots) registers it again.

An entry is only trusted while the store still holds its blob with the recorded size, and the blob's
bytes hash to its digest (moby CVE-2024-24557: a cache hit must be the content the key promises).
A blob is re-hashed unless ``<root>/cache/verified.memo`` records that this very file (device, inode,
size, mtime and ctime, the same memo rule as the context hashes) was hashed before: any write, chmod
or replacement of the file changes its ctime and so forces a new check. Entries are written
atomically after the layer is committed, so a killed build never leaves an entry pointing at nothing.

:func:`prune` drops the whole index and its roots (``system prune -a``); :func:`reap_stale_build_dirs`
removes the work directories of killed builds (:mod:`builder.workdir`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from typing import TYPE_CHECKING

from layers.atomic import write_atomic
from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.errors import PybuildError, StoreError
from layers.value import frozen

from .workdir import reap_stale_build_dirs, stale_build_dirs

if TYPE_CHECKING:
    from layers.store import Store


__all__ = ["CacheEntry", "BuildCache", "ROOT_OWNER", "prune", "reap_stale_build_dirs", "stale_build_dirs"]

_KEY = re.compile(r"[0-9a-f]{64}")
#: The owner of the build cache's registered store roots (one per entry, keyed by the cache key).
ROOT_OWNER = "build-cache"


def _signature(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


@frozen
class CacheEntry:
    key: str
    layer: Descriptor | None
    diff_id: Digest | None
    created: str = ""  # when the step ran: a no-change rebuild reuses it, so the image id stays


class BuildCache:
    """Cache index under ``<root>/cache``. ``verified`` remembers blobs re-hashed in this process."""

    def __init__(self, root: str, store: Store) -> None:
        self.dir = os.path.join(root, "cache", "keys")
        self.mounts_dir = os.path.join(root, "cache", "mounts")
        self.memo_path = os.path.join(root, "cache", "verified.memo")
        self.store = store
        self._verified: set[str] = set()
        self._memo: dict[str, str] | None = None
        self._memo_dirty = False
        self._memo_lock = threading.Lock()

    def _path(self, key: str) -> str:
        if not _KEY.fullmatch(key):
            raise ValueError(f"bad cache key {key!r}")
        return os.path.join(self.dir, key[:2], key + ".json")

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key`` if its content is in the store and intact, else None."""
        try:
            with open(self._path(key), "rb") as f:
                doc = json.loads(f.read(1 << 16))
        except (FileNotFoundError, ValueError):
            return None
        try:
            if doc.get("key") != key:
                return None
            created = doc.get("created") if isinstance(doc.get("created"), str) else ""
            if doc.get("layer") is None:
                return CacheEntry(key, None, None, created)
            layer = Descriptor.from_dict(doc["layer"])
            diff_id = Digest.parse(doc["diff_id"])
        except (PybuildError, KeyError, TypeError, AttributeError, ValueError):
            return None  # a malformed entry is a miss; it is rewritten after the step runs
        if not self._intact(layer):
            return None
        self._ensure_root(key, layer, diff_id)
        return CacheEntry(key, layer, diff_id, created)

    def _ensure_root(self, key: str, layer: Descriptor, diff_id: Digest) -> None:
        """Register the root of a hit that has none (or an unreadable one): it is the entry's content."""
        try:
            if self.store.roots.get(ROOT_OWNER, key) is not None:
                return
        except StoreError:
            pass  # unreadable: rewritten below with what the entry names
        self._put_root(key, layer, diff_id)

    def _put_root(self, key: str, layer: Descriptor, diff_id: Digest | None) -> None:
        self.store.roots.put(ROOT_OWNER, key, blobs=(layer.digest,), snapshots=(diff_id,) if diff_id else ())

    def _intact(self, layer: Descriptor) -> bool:
        blobs = self.store.blobs
        if not blobs.has(layer.digest):
            return False
        if str(layer.digest) in self._verified:
            return True
        path = blobs.path(layer.digest)
        try:
            st = os.stat(path)
            if st.st_size != layer.size:
                return False
            if self._memo_get(layer.digest.hex) == _signature(st):
                self._verified.add(str(layer.digest))
                return True
            h = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            after = os.stat(path)
        except OSError:
            return False
        if "sha256:" + h.hexdigest() != str(layer.digest) or _signature(after) != _signature(st):
            return False
        self._verified.add(str(layer.digest))
        self._memo_set(layer.digest.hex, _signature(st))
        return True

    def _memo_get(self, digest: str) -> str | None:
        with self._memo_lock:
            if self._memo is None:
                self._memo = {}
                try:
                    with open(self.memo_path, "rb") as f:
                        doc = json.loads(f.read(16 << 20))
                    if isinstance(doc, dict):
                        self._memo = {k: v for k, v in doc.items() if isinstance(k, str) and isinstance(v, str)}
                except (OSError, ValueError):
                    pass
            return self._memo.get(digest)

    def _memo_set(self, digest: str, signature: str) -> None:
        self._memo_get(digest)
        with self._memo_lock:
            self._memo[digest] = signature
            self._memo_dirty = True

    def remember(self, layer: Descriptor) -> None:
        """Record a blob file this build just wrote itself, hashing it as it went (the caller checked
        that the file in the store is the one it wrote, not an older one with the same name)."""
        try:
            st = os.stat(self.store.blobs.path(layer.digest))
        except OSError:
            return
        if st.st_size == layer.size:
            self._verified.add(str(layer.digest))
            self._memo_set(layer.digest.hex, _signature(st))

    def save(self) -> None:
        """Write the verification memo (entries of blobs still present only). Losing a concurrent
        build's additions only costs a re-hash later."""
        with self._memo_lock:
            if not self._memo_dirty or self._memo is None:
                return
            live = {h: sig for h, sig in self._memo.items() if _KEY.fullmatch(h)
                    and self.store.blobs.has(Digest("sha256", h))}
            self._memo_dirty = False
        os.makedirs(os.path.dirname(self.memo_path), mode=0o700, exist_ok=True)
        write_atomic(self.memo_path, json.dumps(live, sort_keys=True).encode())

    def put(self, key: str, layer: Descriptor | None, diff_id: Digest | None, created: str = "") -> None:
        """Record ``key`` -> ``layer`` (None: the step changed nothing): its root first, then the entry."""
        doc = {"key": key, "layer": layer.to_dict() if layer else None, "diff_id": str(diff_id) if diff_id else None,
               "created": created}
        path = self._path(key)
        if layer is not None:
            self._put_root(key, layer, diff_id)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        write_atomic(path, json.dumps(doc, sort_keys=True).encode())

    def drop(self, key: str) -> int:
        """Remove the entry for ``key``, then its root; the bytes of the entry removed (0 if absent)."""
        path = self._path(key)
        try:
            size = os.stat(path).st_size
            os.unlink(path)
        except FileNotFoundError:
            size = 0
        self.store.roots.drop(ROOT_OWNER, key)
        return size


class StepLocks:
    """One lock per cache key, shared by the executors of one build (every ``--platform``'s graph): a
    step two graphs share (a ``FROM --platform=$BUILDPLATFORM`` stage that reads no ``TARGET*`` arg) runs
    once, and the other graph finds its cache entry when the lock is released."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def hold(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


def prune(root: str) -> int:
    """Delete the whole build cache index of the store at ``root`` and its roots, as ``docker system
    prune -a`` drops the build cache (``cache/mounts``, the RUN cache mounts, stay); the bytes of
    index removed (the layers become GC's to free). Entry by entry, and the directories stay: a build
    running meanwhile only sees misses, and the entry it writes lands with its root (renaming the
    whole index aside made such a build fail writing its entry; tests/reliability/test_concurrency.py)."""
    from layers.store import Store

    store = Store(root)
    cache = BuildCache(root, store)
    freed = 0
    for dirpath, _dirs, files in os.walk(cache.dir):
        for name in files:
            key = name[:-5] if name.endswith(".json") else ""
            if _KEY.fullmatch(key):
                freed += cache.drop(key)
            elif name.endswith(".json"):
                try:
                    freed += os.stat(os.path.join(dirpath, name)).st_size
                    os.unlink(os.path.join(dirpath, name))
                except FileNotFoundError:
                    pass
    for key in store.roots.keys(ROOT_OWNER):
        if not _KEY.fullmatch(key) or not os.path.exists(cache._path(key)):
            store.roots.drop(ROOT_OWNER, key)  # a root whose entry is gone (a build killed between the two)
    return freed
