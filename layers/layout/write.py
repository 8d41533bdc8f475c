"""Writing images as an OCI image layout: a tar (:func:`write_archive`, with Docker's ``manifest.json``
and ``repositories`` beside ``index.json``) or a directory (:func:`write_layout_dir`). Every blob is
read through the source's verifying reader, so a corrupt store blob fails the save instead of being
copied; the tar is deterministic."""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Sequence

from layers.atomic import atomic_writer
from layers.descriptor import Descriptor, Platform
from layers.digest import Digest, VerifyingReader
from layers.errors import IntegrityError, InvalidInput, NotFound, StoreError
from layers.index import Index
from layers.jsonutil import canonical
from layers.manifest import Manifest
from layers.mediatype import MANIFEST_TYPES, MediaType

from .base import (COPY_CHUNK, IMAGE_NAME, LAYOUT_VERSION, REF_NAME, REPO_DIGEST, ArchiveImage, BlobSource,
                   blob_name, check_layout_version, read_blob)

__all__ = ["write_archive", "write_layout_dir"]


@dataclass
class _Plan:
    """What an archive of some images holds: store blobs, in-memory documents, index.json, manifest.json."""

    blobs: dict[Digest, Descriptor] = field(default_factory=dict)
    documents: dict[Digest, bytes] = field(default_factory=dict)
    entries: list[Descriptor] = field(default_factory=list)
    docker: list[dict] = field(default_factory=list)
    repositories: dict[str, dict[str, str]] = field(default_factory=dict)

    def add_manifest(self, manifest: Manifest) -> None:
        for desc in (manifest.config, *manifest.layers):
            self.blobs.setdefault(desc.digest, desc)
        self.documents.setdefault(manifest.digest, manifest.raw)

    def index_json(self) -> Index:
        return Index.build(self.entries)


def _read_child(source: BlobSource, desc: Descriptor) -> Manifest | None:
    """The manifest an index entry points to, or ``None`` when the source does not have it."""
    if desc.media_type not in MANIFEST_TYPES:
        return None
    try:
        return Manifest.parse(read_blob(source, desc), desc.media_type)
    except NotFound:
        return None


def _expand_index(plan: _Plan, index: Index, source: BlobSource) -> tuple[Index, Manifest]:
    """Add an index and its manifests to ``plan``; returns the index written and the child for manifest.json."""
    children = [(desc, _read_child(source, desc)) for desc in index.manifests]
    present = [(desc, child) for desc, child in children if child is not None]
    if len(present) != len(children):
        present = [(desc, child) for desc, child in present if desc in index.images()]
        if not present:
            raise NotFound(f"index {index.digest}: none of its manifests is in the store")
        index = Index.build([desc for desc, _ in present], docker=index.media_type == MediaType.DOCKER_MANIFEST_LIST,
                            annotations=None if index.media_type == MediaType.DOCKER_MANIFEST_LIST
                            else index.annotation_map or None)
    for _, child in present:
        assert child is not None
        plan.add_manifest(child)
    plan.documents.setdefault(index.digest, index.raw)
    host = Platform.host()
    for desc, child in present:
        if desc.platform is not None and desc.platform.matches(host):
            return index, child  # type: ignore[return-value]
    return index, present[0][1]  # type: ignore[return-value]


def _plan(images: Sequence[ArchiveImage], source: BlobSource) -> _Plan:
    """Every blob once (layers and configs from ``source``, then manifests, then indexes)."""
    plan = _Plan()
    for image in images:
        top: Manifest | Index = image.manifest
        if isinstance(top, Index):
            top, runnable = _expand_index(plan, top, source)
        else:
            plan.add_manifest(top)
            runnable = top
        if image.names:
            repo_digests = dict(image.repo_digests)
            for ref in image.names:
                ann = {IMAGE_NAME: str(ref)}
                if ref.tag is not None:
                    ann[REF_NAME] = ref.tag
                if ref in repo_digests:
                    ann[REPO_DIGEST] = str(repo_digests[ref])
                plan.entries.append(top.descriptor(annotations=ann))
        else:
            plan.entries.append(top.descriptor())
        tags = [ref for ref in image.names if ref.tag is not None]
        plan.docker.append(
            {
                "Config": blob_name(runnable.config.digest),
                "RepoTags": [ref.familiar for ref in tags],
                "Layers": [blob_name(layer.digest) for layer in runnable.layers],
            }
        )
        if runnable.layers:
            for ref in tags:  # Docker's legacy file: familiar name -> tag -> top layer id
                plan.repositories.setdefault(ref.familiar_name, {})[ref.tag] = runnable.layers[-1].digest.hex
    for digest in plan.blobs:
        plan.documents.pop(digest, None)  # a manifest that is also a layer/config blob is copied once
    return plan


def _tar_info(name: str, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.mode = 0o644
    return info


def _copy_blob(tar: tarfile.TarFile, source: BlobSource, desc: Descriptor) -> None:
    reader = source.open(desc.digest, desc.size)
    try:
        tar.addfile(_tar_info(blob_name(desc.digest), desc.size), reader)
        if isinstance(reader, VerifyingReader):
            reader.verify_rest()  # reads to EOF: digest and size checked before the next entry
    finally:
        reader.close()


def write_archive(out: BinaryIO, images: Sequence[ArchiveImage], source: BlobSource) -> None:
    """Write ``images`` as a tar of an OCI layout plus ``manifest.json``/``repositories`` to ``out``.

    Deterministic: the same images give the same bytes. On any error the stream is incomplete;
    the caller writes to a temporary file and renames it only after success.
    """
    if not images:
        raise InvalidInput("nothing to save: no images given")
    try:
        _write_tar(out, _plan(images, source), source)
    except OSError as exc:
        raise StoreError(f"write image archive: {exc.strerror or exc}") from None


def _write_tar(out: BinaryIO, plan: _Plan, source: BlobSource) -> None:
    digests = [*plan.blobs, *plan.documents]
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
        layout = canonical({"imageLayoutVersion": LAYOUT_VERSION})
        tar.addfile(_tar_info("oci-layout", len(layout)), io.BytesIO(layout))
        tar.addfile(_tar_info("blobs", directory=True))
        for alg in sorted({d.algorithm for d in digests}):
            tar.addfile(_tar_info(f"blobs/{alg}", directory=True))
        for desc in plan.blobs.values():
            _copy_blob(tar, source, desc)
        for digest, raw in plan.documents.items():
            tar.addfile(_tar_info(blob_name(digest), len(raw)), io.BytesIO(raw))
        for name, data in (
            ("index.json", plan.index_json().raw),
            ("manifest.json", canonical(plan.docker)),
            ("repositories", canonical(plan.repositories)),
        ):
            tar.addfile(_tar_info(name, len(data)), io.BytesIO(data))


def _atomic_write(path: Path, data: bytes | None = None, stream: BinaryIO | None = None) -> None:
    """Write ``data`` (or all of ``stream``) to ``path`` atomically; an OSError becomes a StoreError."""
    try:
        with atomic_writer(str(path), 0o644) as f:
            if data is not None:
                f.write(data)
            else:
                assert stream is not None
                while chunk := stream.read(COPY_CHUNK):
                    f.write(chunk)
    except OSError as exc:
        raise StoreError(f"write {path}: {exc.strerror or exc}") from None


def _file_matches(path: Path, desc: Descriptor) -> bool:
    """True when ``path`` holds exactly the bytes of ``desc`` (re-hashed, never trusted by size)."""
    try:
        with open(path, "rb", buffering=0) as f:
            VerifyingReader(f, desc.digest, desc.size, f"blob {path}").verify_rest()
        return True
    except (FileNotFoundError, IntegrityError):
        return False


def write_layout_dir(path: str | os.PathLike[str], images: Sequence[ArchiveImage], source: BlobSource) -> None:
    """Write or extend the OCI layout directory at ``path`` (what ``skopeo copy ... oci:DIR`` makes).

    Blobs already there are re-hashed and rewritten if they do not match. ``index.json`` is
    replaced atomically, last; earlier entries whose ``ref.name`` is not reused are kept.
    """
    root = Path(path)
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / "blobs").mkdir(exist_ok=True)
    except OSError as exc:
        raise StoreError(f"create OCI layout {root}: {exc.strerror or exc}") from None
    previous: list[Descriptor] = []
    if (root / "index.json").exists():
        check_layout_version((root / "oci-layout").read_bytes() if (root / "oci-layout").exists() else None)
        previous = list(Index.parse((root / "index.json").read_bytes()).manifests)
    plan = _plan(images, source)
    index = plan.index_json()
    for desc in plan.blobs.values():
        target = root / blob_name(desc.digest)
        target.parent.mkdir(exist_ok=True)
        if not _file_matches(target, desc):
            reader = source.open(desc.digest, desc.size)
            try:
                _atomic_write(target, stream=reader)
            finally:
                reader.close()
    for digest, raw in plan.documents.items():
        target = root / blob_name(digest)
        target.parent.mkdir(exist_ok=True)
        if not _file_matches(target, Descriptor(MediaType.OCI_MANIFEST, digest, len(raw))):
            _atomic_write(target, raw)
    taken = {d.annotation_map.get(REF_NAME) for d in index.manifests} - {None}
    kept = [d for d in previous if d.annotation_map.get(REF_NAME) not in taken or REF_NAME not in d.annotation_map]
    kept = [d for d in kept if d not in index.manifests]
    _atomic_write(root / "oci-layout", canonical({"imageLayoutVersion": LAYOUT_VERSION}))
    _atomic_write(root / "index.json", Index.build(kept + list(index.manifests)).raw)
