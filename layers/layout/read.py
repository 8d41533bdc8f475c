"""Reading images into a blob store: an OCI layout (a directory, or a tar of one) or a docker-archive
tar. Nothing is trusted until the whole archive is in: then every document is parsed and every
referenced blob must be present; a nested index is kept whole when every image of it is in the archive,
else narrowed to one platform."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from layers.config import ImageConfig
from layers.descriptor import Descriptor, Platform
from layers.digest import Digest
from layers.errors import IntegrityError, InvalidDocument, InvalidInput, InvalidReference, NotFound
from layers.index import Index
from layers.manifest import Manifest, parse_document
from layers.mediatype import INDEX_TYPES, MANIFEST_TYPES
from layers.reference import Reference

from .base import (IMAGE_NAME, KIND, MAX_LAYER_SIZE, REF_NAME, REPO_DIGEST, BlobStore, LoadedImage, blob_name,
                   check_layout_version, read_blob)
from .docker import from_docker_manifest
from .tarstream import ingest_tar

__all__ = ["read_archive", "read_layout_dir", "read_path"]


def _require_blob(store: BlobStore, desc: Descriptor, what: str) -> None:
    if not store.has(desc.digest):
        raise NotFound(f"{what} {desc.digest} is not in the archive")


def _resolve_image(store: BlobStore, desc: Descriptor, platform: Platform, depth: int = 0) -> tuple[Manifest, ImageConfig]:
    """Manifest and config for an index entry; a nested index is narrowed to ``platform``."""
    if depth > 4:
        raise InvalidDocument(KIND, "index.json", "indexes nest more than 4 deep")
    _require_blob(store, desc, "manifest")
    doc = parse_document(read_blob(store, desc), desc.media_type)
    if isinstance(doc, Index):
        return _resolve_image(store, doc.select(platform), platform, depth + 1)
    _require_blob(store, doc.config, f"config of manifest {doc.digest}:")
    config = ImageConfig.parse(read_blob(store, doc.config))
    for i, layer in enumerate(doc.layers):
        if layer.urls and not store.has(layer.digest):
            continue  # a foreign (non-distributable) layer fetched from its urls on use
        _require_blob(store, layer, f"layer {i} of manifest {doc.digest}:")
    if len(config.diff_ids) != len(doc.layers):
        raise InvalidDocument(
            "manifest", "layers", f"has {len(doc.layers)} entries but config {doc.config.digest} has "
            f"{len(config.diff_ids)} diff_ids"
        )
    return doc, config


def _whole_index(store: BlobStore, desc: Descriptor) -> Index | None:
    """The index ``desc`` names when every runnable image of it is in the archive (checked as
    :func:`_resolve_image` checks one), else None (it is then narrowed to one platform)."""
    if desc.media_type not in INDEX_TYPES:
        return None
    doc = parse_document(read_blob(store, desc), desc.media_type)
    if not isinstance(doc, Index) or not doc.images():
        return None
    for child in doc.images():
        if child.media_type not in MANIFEST_TYPES or not store.has(child.digest):
            return None
        _resolve_image(store, child, Platform("", ""), 1)
    return doc


def _from_oci_index(raw_index: bytes, store: BlobStore, platform: Platform) -> list[LoadedImage]:
    index = Index.parse(raw_index)
    found: dict[Digest, tuple[Manifest, ImageConfig, list[str], list[str], Index | None, dict[str, Digest]]] = {}
    for i, desc in enumerate(index.manifests):
        if desc.media_type not in MANIFEST_TYPES and desc.media_type not in INDEX_TYPES:
            continue  # artifacts and other content the layout may hold
        whole = _whole_index(store, desc)
        if whole is not None and not any(d.platform is not None and d.platform.matches(platform)
                                         for d in whole.images()):
            manifest, config = _resolve_image(store, whole.images()[0], platform, 1)  # no entry for this host
        else:
            manifest, config = _resolve_image(store, desc, platform)
        key = whole.digest if whole is not None else manifest.digest
        entry = found.setdefault(key, (manifest, config, [], [], whole, {}))
        ann = desc.annotation_map
        name = ann.get(IMAGE_NAME)
        ref_name = ann.get(REF_NAME)
        if name is None and ref_name and ("/" in ref_name or ":" in ref_name):
            name = ref_name  # a full reference written into ref.name
        if name is not None:
            try:
                ref = Reference.parse(name)
            except InvalidReference as exc:
                raise InvalidDocument("index", f"manifests[{i}].annotations", str(exc)) from None
            if str(ref) not in entry[2]:
                entry[2].append(str(ref))
            if ann.get(REPO_DIGEST):
                try:
                    entry[5].setdefault(str(ref), Digest.parse(ann[REPO_DIGEST]))
                except InvalidInput as exc:
                    raise InvalidDocument("index", f"manifests[{i}].annotations[{REPO_DIGEST}]", str(exc)) from None
        if ref_name and ref_name not in entry[3]:
            entry[3].append(ref_name)
    return [LoadedImage(m, c, tuple(n), tuple(r), x, tuple(d.items())) for m, c, n, r, x, d in found.values()]


def read_archive(stream: BinaryIO, store: BlobStore, *, platform: Platform | None = None,
                 max_layer_size: int = MAX_LAYER_SIZE) -> list[LoadedImage]:
    """Load an OCI-layout tar or a docker-archive tar from ``stream`` (read once, front to back).

    Blobs land in ``store`` as they stream by (verified); the images are returned only when
    every one of them resolves. An OCI layout is preferred when the tar is both. Nested indexes
    are narrowed to ``platform`` (default: this machine's). A compressed docker-archive layer is
    inflated to check its diff_id, up to ``max_layer_size`` bytes.
    """
    try:
        got = ingest_tar(stream, store)
    except OSError as exc:
        raise InvalidInput(f"read image archive: {exc.strerror or exc}") from None
    want = platform or Platform.host()
    if "index.json" in got.meta and ("oci-layout" in got.meta or "manifest.json" not in got.meta):
        check_layout_version(got.meta.get("oci-layout"))
        images = _from_oci_index(got.meta["index.json"], store, want)
    elif "manifest.json" in got.meta:
        images = from_docker_manifest(got, store, max_layer_size)
    else:
        raise InvalidDocument(KIND, "", "has neither an OCI index.json nor a docker manifest.json")
    if not images:
        raise InvalidDocument(KIND, "index.json", "lists no images")
    return images


def read_layout_dir(path: str | os.PathLike[str], store: BlobStore, *,
                    platform: Platform | None = None) -> list[LoadedImage]:
    """Load every image of the OCI layout directory at ``path``; only referenced blobs are copied."""
    root = Path(path)
    try:
        check_layout_version((root / "oci-layout").read_bytes())
    except FileNotFoundError:
        raise NotFound(f"{root} is not an OCI image layout: oci-layout is missing") from None
    try:
        raw_index = (root / "index.json").read_bytes()
    except FileNotFoundError:
        raise NotFound(f"{root} is not an OCI image layout: index.json is missing") from None
    want = platform or Platform.host()
    dir_store = _DirImporter(root, store)
    return _from_oci_index(raw_index, dir_store, want)


class _DirImporter:
    """A :class:`BlobStore` view that copies a layout directory's blobs into ``store`` on first use."""

    def __init__(self, root: Path, store: BlobStore) -> None:
        self._root = root
        self._store = store

    def _fetch(self, digest: Digest, size: int | None) -> None:
        if self._store.has(digest):
            return
        source = self._root / blob_name(digest)
        try:
            f = open(source, "rb")
        except FileNotFoundError:
            return
        with f:
            try:
                self._store.put_stream(f, expected=digest, size=size)
            except IntegrityError as exc:
                raise IntegrityError(f"{source}: {exc}") from None

    def has(self, digest: Digest) -> bool:
        self._fetch(digest, None)
        return self._store.has(digest)

    def open(self, digest: Digest, size: int | None = None) -> BinaryIO:
        self._fetch(digest, size)
        return self._store.open(digest, size)

    def put_stream(self, stream: BinaryIO, expected: Digest | None = None,
                   size: int | None = None) -> tuple[Digest, int]:
        return self._store.put_stream(stream, expected=expected, size=size)


def read_path(path: str | os.PathLike[str], store: BlobStore, *,
              platform: Platform | None = None) -> list[LoadedImage]:
    """Load from a layout directory or an archive file, whichever ``path`` is."""
    if os.path.isdir(path):
        return read_layout_dir(path, store, platform=platform)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file or directory") from None
    with f:
        return read_archive(f, store, platform=platform)
