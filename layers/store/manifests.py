"""Index records made by hand: what ``pybuild manifest create/add/annotate/remove`` do to the store.

An index record is an ordinary image record whose name points at an OCI index or a Docker manifest
list (``images`` lists it as one entry with its platforms). Every edit here builds a new index (the
old bytes are never changed: an index's digest is its identity), writes it to the blob store and moves
the name to it, inside a store lease, so a failed edit leaves the name where it was.

An entry comes from an image in the store: a one-platform image becomes one entry whose platform is
what its config records (``--os/--arch/--variant`` override it); an index contributes its runnable
entries. An entry for a digest already in the list replaces it. ``docker=None`` keeps the list's
kind, or for a new list makes a Docker manifest list when every entry is a Docker manifest.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Iterable

from layers.config import ImageConfig
from layers.descriptor import Descriptor, Platform, frozen_map
from layers.errors import InvalidInput, NotFound
from layers.index import Index
from layers.manifest import Manifest, parse_document
from layers.mediatype import MediaType
from layers.reference import Reference
from layers.value import frozen

if TYPE_CHECKING:
    from .store import Store

__all__ = ["EntryEdit", "create_index", "add_to_index", "annotate_index", "remove_from_index", "load_index"]

_MAX_DOCUMENT = 4 << 20


@frozen
class EntryEdit:
    """What ``--os/--arch/--variant/--os-version/--os-features/--annotation`` set on an entry; empty
    fields leave the entry's value."""

    os: str = ""
    architecture: str = ""
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()

    def apply(self, desc: Descriptor) -> Descriptor:
        have = desc.platform or Platform("", "")
        platform = Platform(self.os or have.os, self.architecture or have.architecture,
                            self.variant or have.variant, self.os_version or have.os_version,
                            self.os_features or have.os_features)
        if not platform.os or not platform.architecture:
            raise InvalidInput(f"manifest {desc.digest}: no platform recorded; give --os and --arch")
        annotations = dict(desc.annotation_map)
        annotations.update(dict(self.annotations))
        return replace(desc, platform=platform, annotations=frozen_map(annotations))


def _document(store: "Store", digest) -> Manifest | Index:
    return parse_document(store.blobs.read_bytes(digest, _MAX_DOCUMENT))


def load_index(store: "Store", name: str) -> tuple[Reference, Index]:
    """The index record ``name`` points at; :class:`InvalidInput` when it names one image, not a list."""
    record = store.images.resolve(name)
    doc = _document(store, record.manifest_digest)
    if not isinstance(doc, Index):
        raise InvalidInput(f"{name} is an image, not a manifest list (make one with: manifest create {name} IMAGE...)")
    return Reference.parse(record.name or name), doc


def _entries(store: "Store", image: str, edit: EntryEdit | None) -> list[Descriptor]:
    """The index entries image ``image`` (a name, id or digest in the store) gives."""
    doc = _document(store, store.images.resolve(image).manifest_digest)
    if isinstance(doc, Index):
        entries = [d for d in doc.images() if store.blobs.has(d.digest)]
        if not entries:
            raise NotFound(f"{image}: none of its platforms is in the store")
        return [edit.apply(d) if edit else d for d in entries]
    config = ImageConfig.parse(store.blobs.read_bytes(doc.config.digest, _MAX_DOCUMENT))
    desc = Descriptor(media_type=doc.media_type, digest=doc.digest, size=len(doc.raw),
                      platform=config.platform if config.architecture else None)
    return [(edit or EntryEdit()).apply(desc)]


def _merge(old: Iterable[Descriptor], new: Iterable[Descriptor]) -> list[Descriptor]:
    out = {d.digest: d for d in old}
    for d in new:
        out[d.digest] = d
    return list(out.values())


def _commit(store: "Store", ref: Reference, entries: list[Descriptor], docker: bool | None,
            annotations: dict[str, str] | None = None) -> Index:
    if not entries:
        raise InvalidInput(f"manifest list {ref.familiar} would be empty; remove it with: manifest rm {ref.familiar}")
    if docker is None:
        docker = all(d.media_type == MediaType.DOCKER_MANIFEST for d in entries)
    index = Index.build(entries, docker=docker, annotations=annotations or None)
    store.blobs.put_bytes(index.raw, index.digest)
    store.images.tag(ref, index)
    return index


def create_index(store: "Store", name: str, images: Iterable[str], *, amend: bool = False,
                 docker: bool | None = None, annotations: dict[str, str] | None = None) -> Index:
    """A list ``name`` of ``images``; an existing record of that name is refused unless ``amend``
    (then the images are added to it)."""
    ref = Reference.parse(name)
    with store.lease():
        entries: list[Descriptor] = []
        try:
            store.images.resolve(str(ref))
            exists = True
        except NotFound:
            exists = False
        if exists:
            if not amend:
                raise InvalidInput(f"{ref.familiar} already exists; --amend adds to it")
            _, index = load_index(store, str(ref))
            entries = list(index.manifests)
            if docker is None:
                docker = index.media_type == MediaType.DOCKER_MANIFEST_LIST
        for image in images:
            entries = _merge(entries, _entries(store, image, None))
        return _commit(store, ref, entries, docker, annotations)


def add_to_index(store: "Store", name: str, image: str, edit: EntryEdit | None = None) -> Index:
    """Add ``image``'s entries (with ``edit`` applied) to list ``name``."""
    with store.lease():
        ref, index = load_index(store, name)
        entries = _merge(index.manifests, _entries(store, image, edit))
        return _commit(store, ref, entries, index.media_type == MediaType.DOCKER_MANIFEST_LIST,
                       index.annotation_map)


def annotate_index(store: "Store", name: str, image: str, edit: EntryEdit) -> Index:
    """Set ``edit`` on the entry of list ``name`` that ``image`` (an entry's digest, or an image whose
    manifest is one) names."""
    with store.lease():
        ref, index = load_index(store, name)
        digest = _entry_digest(store, index, image)
        entries = [edit.apply(d) if d.digest == digest else d for d in index.manifests]
        return _commit(store, ref, entries, index.media_type == MediaType.DOCKER_MANIFEST_LIST,
                       index.annotation_map)


def remove_from_index(store: "Store", name: str, image: str) -> Index:
    """Drop the entry ``image`` names (as in :func:`annotate_index`) from list ``name``."""
    with store.lease():
        ref, index = load_index(store, name)
        digest = _entry_digest(store, index, image)
        entries = [d for d in index.manifests if d.digest != digest]
        return _commit(store, ref, entries, index.media_type == MediaType.DOCKER_MANIFEST_LIST,
                       index.annotation_map)


def _entry_digest(store: "Store", index: Index, image: str):
    for d in index.manifests:
        if str(d.digest) == image or str(d.digest).startswith(image) and len(image) > 12:
            return d.digest
    try:
        digest = store.images.resolve(image).manifest_digest
    except NotFound:
        digest = None
    if digest is None or all(d.digest != digest for d in index.manifests):
        raise NotFound(f"manifest list {index.digest.short}: no entry for {image}")
    return digest
