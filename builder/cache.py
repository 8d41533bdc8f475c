"""The build cache index: ``<root>/cache/keys/<key>.json`` maps a vertex's cache key to the layer it
produced (descriptor + diff_id), or to "no layer" for a step that changed nothing.

An entry is only trusted while the store still holds its blob with the recorded size, and the blob's
bytes hash to its digest (moby CVE-2024-24557: a cache hit must be the content the key promises).
A blob is re-hashed unless ``<root>/cache/verified.memo`` (not ``.json``: it must not read as GC roots)
records that this very file (device, inode,
size, mtime and ctime, the same memo rule as the context hashes) was hashed before: any write, chmod
or replacement of the file changes its ctime and so forces a new check. Entries are written
atomically after the layer is committed, so a killed build never leaves an entry pointing at nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass

from layers.atomic import write_atomic
from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.errors import PybuildError

__all__ = ["CacheEntry", "BuildCache"]

_KEY = re.compile(r"[0-9a-f]{64}")


def _signature(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


@dataclass(frozen=True)
class CacheEntry:
    key: str
    layer: Descriptor | None
    diff_id: Digest | None
    created: str = ""  # when the step ran: a no-change rebuild reuses it, so the image id stays


class BuildCache:
    """Cache index under ``<root>/cache``. ``verified`` remembers blobs re-hashed in this process."""

    def __init__(self, root: str, store) -> None:
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
        return CacheEntry(key, layer, diff_id, created)

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
        doc = {"key": key, "layer": layer.to_dict() if layer else None, "diff_id": str(diff_id) if diff_id else None,
               "created": created}
        path = self._path(key)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        write_atomic(path, json.dumps(doc, sort_keys=True).encode())
