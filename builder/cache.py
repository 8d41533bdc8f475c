"""The build cache index: ``<root>/cache/keys/<key>.json`` maps a vertex's cache key to the layer it
produced (descriptor + diff_id), or to "no layer" for a step that changed nothing.

An entry is only trusted while the store still holds its blob with the recorded size, and the blob's
bytes are re-hashed before first use in a process (moby CVE-2024-24557: a cache hit must be the
content the key promises). Entries are written atomically after the layer is committed, so a killed
build never leaves an entry pointing at nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass

from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.errors import PybuildError

from .atomic import write_atomic

__all__ = ["CacheEntry", "BuildCache"]

_KEY = re.compile(r"[0-9a-f]{64}")


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
        self.store = store
        self._verified: set[str] = set()

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
        try:
            if os.path.getsize(blobs.path(layer.digest)) != layer.size:
                return False
            h = hashlib.sha256()
            with open(blobs.path(layer.digest), "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        except OSError:
            return False
        if "sha256:" + h.hexdigest() != str(layer.digest):
            return False
        self._verified.add(str(layer.digest))
        return True

    def put(self, key: str, layer: Descriptor | None, diff_id: Digest | None, created: str = "") -> None:
        doc = {"key": key, "layer": layer.to_dict() if layer else None, "diff_id": str(diff_id) if diff_id else None,
               "created": created}
        if layer is not None:
            self._verified.add(str(layer.digest))
        write_atomic(self._path(key), json.dumps(doc, sort_keys=True).encode())
