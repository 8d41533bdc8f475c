"""Where a blob is known to exist remotely, for cross-repository mounts on push.

containerd keeps this as ``containerd.io/distribution.source.<registry>`` labels on content; we
keep one small JSON file per blob, ``<root>/registry/sources/<alg>/<hex>.json``, holding
``{"registry/repository": true, ...}``. Entries are hints: a stale one only costs a mount that the
registry declines, after which the blob is uploaded. Writes are atomic (temp + rename).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from layers.digest import Digest

__all__ = ["SourceIndex"]

_MAX_ENTRIES = 32
_MAX_FILE = 64 << 10


class SourceIndex:
    """Remember and look up ``registry/repository`` locations of blobs under a store root."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.dir = Path(root) / "registry" / "sources"

    def _path(self, digest: Digest) -> Path:
        return self.dir / digest.algorithm / f"{digest.hex}.json"

    def _entries(self, digest: Digest) -> list:
        """The recorded ``registry/repository`` entries of ``digest`` (none for a missing or bad file)."""
        try:
            with open(self._path(digest), "rb") as fh:
                data = json.loads(fh.read(_MAX_FILE))
        except (FileNotFoundError, ValueError):
            return []
        return data if isinstance(data, list) else []

    def lookup(self, digest: Digest, registry: str) -> list[str]:
        """Repositories on ``registry`` that had ``digest``, most recent first."""
        data = self._entries(digest)
        prefix = registry + "/"
        return [e[len(prefix):] for e in data if isinstance(e, str) and e.startswith(prefix)]

    def locations(self, digest: Digest) -> list[tuple[str, str]]:
        """Every ``(registry, repository)`` known to have had ``digest``, most recent first."""
        out = []
        for entry in self._entries(digest):
            host, slash, repo = entry.partition("/") if isinstance(entry, str) else ("", "", "")
            if host and slash and repo:
                out.append((host, repo))
        return out

    def record(self, digest: Digest, registry: str, repository: str) -> None:
        """Note that ``registry/repository`` has ``digest`` (best effort: a hint, not a record of truth)."""
        path = self._path(digest)
        entry = f"{registry}/{repository}"
        data = [entry] + [e for e in self._entries(digest) if e != entry and isinstance(e, str)]
        data = data[:_MAX_ENTRIES]
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".src-", dir=path.parent)
        except OSError:
            return  # a missing hint only costs an upload instead of a mount
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh)
            os.replace(tmp, path)
        except OSError:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
