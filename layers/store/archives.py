"""Saving store images to an archive and loading archives into the store (``save`` / ``load``).

:func:`save_images` writes the images named (each manifest or index once, with every tag it was
asked by) through :func:`layers.layout.write_archive`. :func:`load_images` reads an OCI layout (tar
or directory) or a docker-archive tar through :mod:`layers.layout` inside a lease, then tags each
image with :meth:`layers.layout.LoadedImage.tags`: GC cannot take a loaded image before its name
is written.
"""

from __future__ import annotations

import os
from typing import BinaryIO, Iterable

from layers import events
from layers.digest import Digest
from layers.errors import NotFound
from layers.reference import Reference
from layers.value import frozen

from .images import MAX_DOCUMENT

__all__ = ["Loaded", "load_images", "save_images"]


@frozen(slots=True)
class Loaded:
    """One image loaded: its manifest digest and the full names it was tagged with, in order."""

    manifest: Digest
    names: tuple[str, ...]


def save_images(store, refs: Iterable[str], out: BinaryIO) -> None:
    """Write the images ``refs`` name (names, ids, digests) to ``out`` as one archive. An image asked for
    twice is written once; a name with a tag is recorded, an id or digest records none."""
    from layers.layout import ArchiveImage, write_archive
    from layers.manifest import parse_document

    todo: dict[Digest, tuple[object, list[Reference], dict[Reference, Digest]]] = {}
    for text in refs:
        rec = store.images.resolve(text)
        ref = rec.reference
        if rec.manifest_digest not in todo:
            doc = parse_document(store.blobs.read_bytes(rec.manifest_digest, MAX_DOCUMENT))
            todo[rec.manifest_digest] = (doc, [], {})
        names, repo_digests = todo[rec.manifest_digest][1:]
        if ref is not None and ref.tag and ref not in names:
            names.append(ref)
            if rec.index is not None:  # one platform pulled out of an index: the name keeps that repo digest
                repo_digests[ref] = rec.index
    write_archive(out, [ArchiveImage(doc, tuple(names), tuple(rd.items())) for doc, names, rd in todo.values()],
                  store.blobs)
    for doc, names, _ in todo.values():
        image_id = doc.config.digest if hasattr(doc, "config") else doc.digest
        events.emit(store.root, "image", "save", str(image_id), name=events.familiar(str(names[0])) if names else None)


def load_images(store, source: str | os.PathLike[str] | BinaryIO) -> list[Loaded]:
    """Load every image of ``source`` (a path to a tar or layout directory, or a binary stream) and tag
    it; what was loaded, in archive order. Raises :class:`NotFound` for a missing path."""
    from layers import layout

    out: list[Loaded] = []
    with store.lease():
        if isinstance(source, (str, os.PathLike)):
            if not os.path.exists(source):
                raise NotFound(f"load: {os.fspath(source)}: no such file or directory")
            loaded = layout.read_path(source, store.blobs)
        else:
            loaded = layout.read_archive(source, store.blobs)
        for img in loaded:
            names = img.tags()
            repo_digests = dict(img.repo_digests)
            for name in names:  # a whole multi-platform index stays one
                store.images.tag(name, img.document.digest, index=repo_digests.get(name))
            out.append(Loaded(img.document.digest, names))
            events.emit(store.root, "image", "load", str(img.manifest.config.digest),
                        name=events.familiar(str(names[0])) if names else None)
    return out
