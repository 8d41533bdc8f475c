"""Registered roots: what the rooms above the store keep alive, asked for by name.

The store does not read other rooms' files to learn what they use. A room that needs store content
to outlive the process that made it (a container needs its image; the build cache needs its
layers) registers a *root*: ``store.roots.put(owner, key, docs=..., blobs=..., snapshots=...)``
writes ``<root>/roots/<owner>/<key>.json`` atomically (under the shared GC lock, so a collection
never sees half a change), and ``store.roots.drop(owner, key)`` removes it. GC marks from every root:

* ``docs``: manifest, index or config digests, and everything they reference;
* ``blobs``: single blobs;
* ``snapshots``: unpacked layers, by diff_id.

Contract:

* ``owner`` and ``key`` are short names (``[A-Za-z0-9][A-Za-z0-9_.-]*``), checked before any path is built.
* ``put`` replaces the root of the same owner and key; ``drop`` of an absent root is not an error.
* :meth:`Roots.read_all` fails with :class:`~layers.errors.StoreError` naming the file if any root
  cannot be read or parsed: GC then stops before it frees anything. An unreadable root keeps its
  content; it never frees it.
"""

from __future__ import annotations

import json
import os
import re

from layers.atomic import write_atomic
from layers.errors import InvalidInput, PybuildError, StoreError
from layers.value import frozen

TYPE_CHECKING = False       # not typing's: the runner's records (and so a shim) import this module
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from layers.digest import Digest

__all__ = ["Root", "Roots"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_MAX_ROOT = 1 << 20


def _check_name(what: str, name: str) -> str:
    if not _NAME.fullmatch(name) or name.endswith(".tmp"):
        raise InvalidInput(f"store root {what} {name!r}: must match {_NAME.pattern}")
    return name


@frozen
class Root:
    """One registered root: who holds it and what it keeps."""

    owner: str
    key: str
    docs: "frozenset[Digest]" = frozenset()
    blobs: "frozenset[Digest]" = frozenset()
    snapshots: "frozenset[Digest]" = frozenset()

    def to_json(self) -> bytes:
        return json.dumps({
            "owner": self.owner, "key": self.key,
            "docs": sorted(map(str, self.docs)),
            "blobs": sorted(map(str, self.blobs)),
            "snapshots": sorted(map(str, self.snapshots)),
        }, separators=(",", ":")).encode()

    @classmethod
    def parse(cls, raw: bytes, where: str) -> "Root":
        from layers.digest import Digest

        try:
            doc = json.loads(raw)
            return cls(
                owner=_check_name("owner", doc["owner"]),
                key=_check_name("key", doc["key"]),
                docs=frozenset(Digest.parse(d) for d in doc.get("docs", ())),
                blobs=frozenset(Digest.parse(d) for d in doc.get("blobs", ())),
                snapshots=frozenset(Digest.parse(d) for d in doc.get("snapshots", ())),
            )
        except (ValueError, TypeError, KeyError, AttributeError, PybuildError) as exc:
            raise StoreError(f"store root {where} is unreadable ({exc}); GC keeps everything until it "
                             f"is fixed or removed") from None


class Roots:
    """``<root>/roots/<owner>/<key>.json`` records; see the module docstring for the contract."""

    def __init__(self, root: str, leases=None) -> None:
        """``leases``: the store's :class:`~layers.store.leases.Leases` (its GC guard); without it (a
        room that holds no :class:`Store`, such as the runner's records) the guard is the same shared
        ``locks/gc.lock``, taken directly."""
        self.root = root
        self.dir = os.path.join(root, "roots")
        self._leases = leases

    def _guard(self):
        if self._leases is not None:
            return self._leases.guard()
        from .locks import FileLock

        os.makedirs(os.path.join(self.root, "locks"), mode=0o700, exist_ok=True)
        return FileLock(os.path.join(self.root, "locks", "gc.lock"), shared=True)

    def _path(self, owner: str, key: str) -> str:
        return os.path.join(self.dir, _check_name("owner", owner), _check_name("key", key) + ".json")

    def put(self, owner: str, key: str, *, docs: Iterable[Digest] = (), blobs: Iterable[Digest] = (),
            snapshots: Iterable[Digest] = ()) -> Root:
        """Register (or replace) the root ``owner/key``; durable once this returns."""
        root = Root(owner, key, frozenset(docs), frozenset(blobs), frozenset(snapshots))
        path = self._path(owner, key)
        with self._guard():
            try:
                os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
                write_atomic(path, root.to_json())
            except OSError as exc:
                raise StoreError(f"store root {owner}/{key}: write: {exc.strerror}") from None
        return root

    def drop(self, owner: str, key: str) -> None:
        """Unregister ``owner/key`` (absent is fine)."""
        path = self._path(owner, key)
        with self._guard():
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StoreError(f"store root {owner}/{key}: remove: {exc.strerror}") from None

    def keys(self, owner: str) -> list[str]:
        """The keys registered under ``owner``, sorted."""
        try:
            names = os.listdir(os.path.join(self.dir, _check_name("owner", owner)))
        except FileNotFoundError:
            return []
        return sorted(n[:-5] for n in names if n.endswith(".json") and _NAME.fullmatch(n[:-5]))

    def get(self, owner: str, key: str) -> Root | None:
        """The root ``owner/key``, or ``None`` when it is not registered."""
        path = self._path(owner, key)
        try:
            with open(path, "rb") as f:
                raw = f.read(_MAX_ROOT + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"store root {path}: {exc.strerror}") from None
        if len(raw) > _MAX_ROOT:
            raise StoreError(f"store root {path} is over {_MAX_ROOT} bytes")
        return Root.parse(raw, path)

    def read_all(self) -> Iterator[Root]:
        """Every registered root. Raises :class:`StoreError` on the first that cannot be read
        (a stray file or directory in ``roots/`` counts as unreadable: nothing is guessed)."""
        for item in self._scan():
            if isinstance(item, StoreError):
                raise item
            yield item

    def unreadable(self) -> list[StoreError]:
        """One error per root file (or stray entry) that :meth:`read_all` would fail on; ``fsck``
        reports them. Nothing is removed: a root is its owner's to fix or drop."""
        return [item for item in self._scan() if isinstance(item, StoreError)]

    def _scan(self) -> Iterator[Root | StoreError]:
        try:
            owners = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return
        for owner in owners:
            base = os.path.join(self.dir, owner)
            if not _NAME.fullmatch(owner) or not os.path.isdir(base):
                yield StoreError(f"store root {base}: not a root owner directory; GC keeps everything "
                                 f"until it is removed")
                continue
            for name in sorted(os.listdir(base)):
                if name.startswith(".") and ".tmp" in name:
                    continue  # an atomic write in progress (or a killed one): its target is what counts
                path = os.path.join(base, name)
                key = name[:-5] if name.endswith(".json") else ""
                if not key or not _NAME.fullmatch(key):
                    yield StoreError(f"store root {path}: not a root record; GC keeps everything until "
                                     f"it is removed")
                    continue
                try:
                    root = self.get(owner, key)
                except StoreError as exc:
                    yield exc
                    continue
                if root is None:
                    continue  # dropped while we looked
                if root.owner != owner or root.key != key:
                    yield StoreError(f"store root {path}: names {root.owner}/{root.key}; GC keeps "
                                     f"everything until it is fixed")
                    continue
                yield root
