"""Removing images by name or id (``rmi``) and untagging every unused image (``system prune -a``).

Rules, as Docker applies them:

* a text that resolves to a record *by that name* removes that name only;
* a text naming an id (or digest) removes every name of the image, but only with ``force`` when
  there is more than one (``image X is referenced by N names``);
* the last name of an image a container uses is kept unless ``force`` (``image X is used by a
  container``);
* once an image has lost its last name, GC (:func:`layers.store.gc.collect`, ``timeout=10``, partial
  ingests kept for resume) takes what nothing else keeps; a store that stays busy only delays that.

Which images containers use is asked of the registered roots of owner ``containers`` (the runner
keeps one per container, see :mod:`.roots`); the store never reads container folders. The roots are
read only when a rule needs them, so ``force`` works even while one of them is unreadable; without
``force``, an unreadable root fails that image with the root's error (nothing is guessed).
"""

from __future__ import annotations

from typing import Callable, Iterable

from layers import events
from layers.digest import Digest
from layers.errors import AlreadyExists, InvalidInput, PybuildError, StoreError
from layers.reference import Reference
from layers.value import frozen

from .images import ImageRecord

__all__ = ["CONTAINERS", "Removed", "NotRemoved", "RemovalResult", "containers_using", "prune_dangling", "remove_images",
           "untag_unused"]

#: The owner under which the runner registers a root per container (docs = the image's manifest digest).
CONTAINERS = "containers"

InUse = Callable[[Digest], bool]


@frozen(slots=True)
class Removed:
    """One argument that was removed: the names it untagged; ``image_id`` if the image lost its last name."""

    text: str
    untagged: tuple[str, ...]
    image_id: Digest | None


@frozen(slots=True)
class NotRemoved:
    """One argument that was refused or not found, and why."""

    text: str
    error: PybuildError


@frozen(slots=True)
class RemovalResult:
    """What :func:`remove_images` did, argument by argument, and the image ids whose content GC took."""

    removed: tuple[Removed, ...]
    failed: tuple[NotRemoved, ...]
    deleted: tuple[Digest, ...]
    asked: int

    def error(self) -> PybuildError | None:
        """The one error to exit with: the image's own when one was asked for, else a count."""
        if not self.failed:
            return None
        if self.asked == 1:
            return self.failed[0].error
        texts = ", ".join(f.text for f in self.failed)
        return StoreError(f"{len(self.failed)} of {self.asked} images not removed: {texts}")


def containers_using(store) -> frozenset[Digest]:
    """Manifest (or config) digests named by the ``containers`` roots; raises :class:`StoreError` if one
    cannot be read."""
    used: set[Digest] = set()
    for key in store.roots.keys(CONTAINERS):
        root = store.roots.get(CONTAINERS, key)
        if root is not None:  # (removed while we looked)
            used |= root.docs
    return frozenset(used)


def _in_use_of(store, in_use: InUse | Iterable[Digest] | None) -> Callable[[ImageRecord], bool]:
    """``record -> bool``; the default reads the containers' roots once, on first need."""
    if callable(in_use):
        return lambda rec: in_use(rec.id) or in_use(rec.manifest_digest)
    known = frozenset(in_use) if in_use is not None else None

    def check(rec: ImageRecord) -> bool:
        nonlocal known
        if known is None:
            known = containers_using(store)
        return rec.id in known or rec.manifest_digest in known

    return check


def _by_name(text: str, record: ImageRecord) -> bool:
    if record.name is None:
        return False
    try:
        return str(Reference.parse(text)) == record.name
    except InvalidInput:
        return False


def _remove_one(store, text: str, force: bool, used: Callable[[ImageRecord], bool]) -> Removed:
    rec = store.images.resolve(text)
    if rec.name is None and not store.images.names_for(rec.id):   # an image without a name: by its id
        if not force and used(rec):
            raise AlreadyExists(f"image {text} is used by a container; stop and remove it first, or use -f")
        gone = store.images.remove_dangling([rec.manifest_digest])
        return Removed(text, (), rec.id if gone else None)
    by_name = _by_name(text, rec)
    names = [rec.name] if by_name else store.images.names_for(rec.id)
    if not by_name and len(names) > 1 and not force:
        raise AlreadyExists(f"image {rec.id.short} is referenced by {len(names)} names "
                            f"({', '.join(names[:3])}); remove by name or use -f")
    remaining = [r for r in store.images.list() if r.id == rec.id and r.name not in names]
    if not remaining and not force and used(rec):
        raise AlreadyExists(f"image {text} is used by a container; stop and remove it first, or use -f")
    store.images.remove_names(names)
    if not remaining:
        events.emit(store.root, "image", "delete", str(rec.id), name=events.familiar(names[0]) if names else None)
    return Removed(text, tuple(names), None if remaining else rec.id)


def remove_images(store, refs: Iterable[str], *, force: bool = False,
                  in_use: InUse | Iterable[Digest] | None = None, collect: bool = True) -> RemovalResult:
    """Remove each of ``refs`` (names, ids, digests) by the rules above; one failing does not stop the
    others. ``in_use`` answers "does a container use this image id or manifest digest" (default: the
    ``containers`` roots). With ``collect``, GC runs once if any image lost its last name."""
    used = _in_use_of(store, in_use)
    refs = list(refs)
    removed: list[Removed] = []
    failed: list[NotRemoved] = []
    for text in refs:
        try:
            removed.append(_remove_one(store, text, force, used))
        except PybuildError as exc:
            failed.append(NotRemoved(text, exc))
    gone = {r.image_id for r in removed if r.image_id is not None}
    deleted: tuple[Digest, ...] = ()
    if gone and collect:
        try:
            blobs = set(store.gc(timeout=10, ingests=False).blobs_removed)
        except StoreError:
            blobs = set()  # busy or an unreadable root: `system prune` frees the space later
        deleted = tuple(sorted(d for d in gone if d in blobs))
    return RemovalResult(tuple(removed), tuple(failed), deleted, len(refs))


def untag_unused(store, *, in_use: InUse | Iterable[Digest] | None = None) -> tuple[str, ...]:
    """Remove every name of every image no container uses (``system prune -a``), and every unnamed
    one no container uses; the names removed. GC is the caller's next step."""
    used = _in_use_of(store, in_use)
    drop = tuple(r.name for r in store.images.list() if r.name and not used(r))
    store.images.remove_names(list(drop))
    _prune_dangling(store, used)
    return drop


def prune_dangling(store, *, in_use: InUse | Iterable[Digest] | None = None) -> tuple[Digest, ...]:
    """Forget every unnamed image no container uses (``image prune``); their image ids. GC is the
    caller's next step."""
    return _prune_dangling(store, _in_use_of(store, in_use))


def _prune_dangling(store, used: Callable[[ImageRecord], bool]) -> tuple[Digest, ...]:
    drop = [r for r in store.images.dangling() if not used(r)]
    return tuple(r.id for r in store.images.remove_dangling([r.manifest_digest for r in drop]))
