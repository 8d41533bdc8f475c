"""Image records: reference -> manifest (or index) digest, in one atomic index file under a lock.

``<root>/images/index.json`` maps full references (``docker.io/library/busybox:latest``, or
``name@sha256:...``) to ``{"digest", "id", "created"}``, plus ``"index"`` for one platform's image
pulled out of a multi-platform index: ``digest`` is that platform's manifest (what runs, pushes and
saves), ``index`` the digest the registry served for the name, the image's repo digest as Docker
shows it (``RepoDigests``, ``images --digests``) and a name it is found by (``repo@<index digest>``).
The image id is the config digest, as Docker prints it (short = 12 hex); an index record's id is its
host-platform image's config.
``"dangling"`` maps the manifest digest of an image without a name (``commit`` or ``build`` without
one, or the image a name was moved away from) to ``{"id", "created"}``: Docker's ``<none>:<none>``.
Such an image is found by its id (full, ``sha256:`` or a unique prefix) or its digest, listed by
``images``, kept from GC, and loses its record when it is tagged, removed or pruned.
Every change is read-modify-write under ``<root>/locks/images.lock`` and lands by atomic rename.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any, Callable, Iterator

from layers import events
from layers.atomic import write_atomic
from layers.config import ImageConfig
from layers.descriptor import Descriptor, Platform
from layers.digest import Digest
from layers.errors import InvalidDocument, InvalidInput, InvalidReference, NotFound, PybuildError, StoreError
from layers.index import Index
from layers.manifest import Manifest, parse_document
from layers.reference import Reference
from layers.value import frozen

from .blobs import BlobStore
from .locks import locked

__all__ = ["ImageRecord", "Image", "ImageSummary", "ImageStore", "MAX_DOCUMENT"]

MAX_DOCUMENT = 8 << 20
_HEXPREFIX = re.compile(r"(?:sha256:)?[0-9a-f]{1,64}")


@frozen(slots=True)
class ImageRecord:
    """One name (or, for a lookup by id/digest, no name) pointing at a manifest or index; ``index``: the
    multi-platform index a one-platform pull took ``manifest_digest`` out of (None otherwise)."""

    name: str | None
    manifest_digest: Digest
    id: Digest
    created: float
    index: Digest | None = None

    @property
    def repo_digest(self) -> Digest:
        """The digest the registry served for the name (Docker's repo digest): the index's when the
        image was taken out of one, else the manifest's (or the index's the record points at)."""
        return self.index or self.manifest_digest

    @property
    def digest(self) -> Digest:
        return self.manifest_digest

    @property
    def reference(self) -> Reference | None:
        return Reference.parse(self.name) if self.name else None

    @property
    def short_id(self) -> str:
        return self.id.short


@frozen(slots=True)
class Image:
    """A loaded, verified image: its manifest, config and (if it was tagged as one) the index."""

    manifest: Manifest
    config: ImageConfig
    index: Index | None = None
    record: ImageRecord | None = None

    @property
    def digest(self) -> Digest:
        """The digest the image is known by: the index's if there is one, else the manifest's."""
        return (self.index or self.manifest).digest

    @property
    def id(self) -> Digest:
        return self.config.digest

    @property
    def layers(self) -> tuple[Descriptor, ...]:
        return self.manifest.layers

    @property
    def size(self) -> int:
        """Compressed size: manifest + config + layers, as ``docker images`` shows it."""
        return self.manifest.size + self.manifest.config.size + sum(d.size for d in self.manifest.layers)


@frozen(slots=True)
class ImageSummary:
    """A record as ``images`` lists it: its creation time and compressed size (``""`` and 0 when the
    image cannot be loaded; fsck reports that, the list still shows the name)."""

    record: ImageRecord
    created: str
    size: int
    platforms: tuple[str, ...] = ()  # an index's runnable entries (``linux/arm64``); () for one image
    missing: int = 0                 # how many of them are not in the store (a one-platform pull)
    entries: tuple[Descriptor, ...] = ()  # an index's runnable entries, each with platform, digest and size


def _read_document(blobs: BlobStore, digest: Digest) -> Manifest | Index:
    try:
        return parse_document(blobs.read_bytes(digest, MAX_DOCUMENT))
    except NotFound:
        raise NotFound(f"manifest {digest}: not in the store") from None


class ImageStore:
    """``store.images``: resolve, tag, untag, list, load."""

    def __init__(self, root: str, blobs: BlobStore) -> None:
        self.root = root
        self.blobs = blobs
        self._index_path = os.path.join(root, "images", "index.json")
        self._lock_path = os.path.join(root, "locks", "images.lock")

    # -- the index file --------------------------------------------------------------------------

    def _read(self) -> dict[str, dict[str, Any]]:
        return self._read_body()[0]

    def _read_body(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        try:
            with open(self._index_path, "rb") as f:
                body = json.load(f)
        except FileNotFoundError:
            return {}, {}
        except ValueError as exc:
            raise InvalidDocument("image index", self._index_path, f"is not JSON: {exc}") from None
        images = body.get("images") if isinstance(body, dict) else None
        if not isinstance(images, dict):
            raise InvalidDocument("image index", "images", f"{self._index_path}: missing or not an object")
        dangling = body.get("dangling", {})
        if not isinstance(dangling, dict):
            raise InvalidDocument("image index", "dangling", f"{self._index_path}: not an object")
        return images, dangling

    def _write(self, images: dict[str, dict[str, Any]], dangling: dict[str, dict[str, Any]]) -> None:
        body: dict[str, Any] = {"version": 1, "images": images}
        if dangling:
            body["dangling"] = dangling
        data = json.dumps(body, indent=1, sort_keys=True).encode()
        try:
            write_atomic(self._index_path, data + b"\n", 0o600)
        except OSError as exc:
            raise StoreError(f"write image index {self._index_path}: {exc.strerror}") from None

    def _mutate(self, change: Callable[[dict[str, dict[str, Any]], dict[str, dict[str, Any]]], Any]) -> Any:
        """``change(images, dangling)`` applied under the lock and written back."""
        with locked(self._lock_path, timeout=60, what="image index"):
            images, dangling = self._read_body()
            result = change(images, dangling)
            self._write(images, dangling)
            return result

    @staticmethod
    def _record(name: str | None, entry: dict[str, Any]) -> ImageRecord:
        try:
            index = entry.get("index")
            return ImageRecord(name, Digest.parse(entry["digest"]), Digest.parse(entry["id"]),
                               float(entry.get("created", 0)), Digest.parse(index) if index is not None else None)
        except (KeyError, TypeError, ValueError, PybuildError) as exc:
            raise InvalidDocument("image index", f"images[{name!r}]", f"bad record: {exc}") from None

    # -- queries ---------------------------------------------------------------------------------

    def list(self) -> list[ImageRecord]:
        """Every named record, newest first."""
        out = [self._record(name, entry) for name, entry in self._read().items()]
        out.sort(key=lambda r: (-r.created, r.name or ""))
        return out

    def dangling(self) -> list[ImageRecord]:
        """Every image without a name (``name`` None), newest first."""
        return self._dangling_records(self._read_body()[1])

    def _dangling_records(self, dangling: dict[str, dict[str, Any]]) -> list[ImageRecord]:
        out = [self._record(None, {**entry, "digest": digest}) for digest, entry in dangling.items()]
        out.sort(key=lambda r: (-r.created, str(r.manifest_digest)))
        return out

    def records(self) -> list[ImageRecord]:
        """Named and unnamed records together, newest first."""
        images, dangling = self._read_body()
        out = [self._record(name, entry) for name, entry in images.items()] + self._dangling_records(dangling)
        out.sort(key=lambda r: (-r.created, r.name or ""))
        return out

    def summaries(self, repository: str | None = None) -> list[ImageSummary]:
        """Every record, named or not (newest first), with its creation time and size; with
        ``repository``, only named ones whose repository is that (familiar ``busybox`` or full
        ``docker.io/library/busybox``)."""
        out = []
        for rec in self.records():
            ref = rec.reference
            if repository and (ref is None or repository not in (ref.familiar_name, ref.name)):
                continue
            try:
                image = self.load(rec, lazy=True)  # a lazy layer's size is its descriptor's, as for any layer
                entries = image.index.images() if image.index is not None else ()
                present = tuple(str(d.platform) for d in entries if d.platform is not None and self.blobs.has(d.digest))
                out.append(ImageSummary(rec, image.config.created, image.size, present, len(entries) - len(present),
                                        tuple(d for d in entries if d.platform is not None)))
            except PybuildError:
                out.append(ImageSummary(rec, "", 0))
        return out

    def names_for(self, digest: Digest) -> list[str]:
        """Names whose record points at ``digest`` (manifest/index digest, repo digest or image id)."""
        return [r.name for r in self.records_for(digest) if r.name]

    def records_for(self, digest: Digest) -> list[ImageRecord]:
        """Named records that point at ``digest`` (manifest/index digest, repo digest or image id), newest first."""
        return [r for r in self.list() if digest in (r.manifest_digest, r.id, r.index)]

    def resolve(self, name_or_id: str) -> ImageRecord:
        """A record for ``name[:tag]``, a full reference, ``name@digest``, ``sha256:...`` or a unique id prefix.

        Inside a lease, the image it names is kept from GC from this instant on."""
        leases = self.blobs.leases
        if not leases.active:
            return self._resolve(name_or_id)
        with leases.guard():
            record = self._resolve(name_or_id)
            leases.keep("doc", record.manifest_digest)
        return record

    def _resolve(self, name_or_id: str) -> ImageRecord:
        text = name_or_id.strip()
        if not text:
            raise InvalidReference("empty image name")
        records = self.records()
        # a full digest: an image id or a manifest/index digest
        if text.startswith(("sha256:", "sha512:")):
            digest = Digest.parse(text) if len(text.split(":", 1)[1]) in (64, 128) else None
            if digest is not None:
                for r in records:
                    if digest in (r.id, r.manifest_digest, r.index):
                        return r
                if self.blobs.has(digest):
                    return self._unnamed(digest)
                raise NotFound(f"no such image: {text}")
        elif not re.fullmatch(r"[0-9a-f]{64}", text):
            try:
                ref = Reference.parse(text)
            except InvalidInput:
                ref = None
            if ref is not None:
                entry = self._read().get(str(ref))
                if entry is not None:
                    return self._record(str(ref), entry)
                if ref.digest is not None:
                    for r in records:  # the image by its manifest digest or its repo digest, in that repo
                        if ref.digest in (r.manifest_digest, r.index) and r.reference and r.reference.name == ref.name:
                            return r
                    if self.blobs.has(ref.digest):
                        return self._unnamed(ref.digest, str(ref))
        if _HEXPREFIX.fullmatch(text):
            prefix = text.removeprefix("sha256:")
            ids = {r.id for r in records if r.id.hex.startswith(prefix)}
            if len(ids) == 1:
                want = ids.pop()
                return next(r for r in records if r.id == want)
            if len(ids) > 1:
                raise InvalidInput(f"image id prefix {text!r} is ambiguous: {len(ids)} images match")
        raise NotFound(f"no such image: {text}")

    def _unnamed(self, digest: Digest, name: str | None = None) -> ImageRecord:
        doc = _read_document(self.blobs, digest)
        return ImageRecord(name, digest, self._image_id(doc), 0.0)

    # -- loading ---------------------------------------------------------------------------------

    def _image_id(self, doc: Manifest | Index) -> Digest:
        if isinstance(doc, Index):
            doc = self._select(doc)
        return doc.config.digest

    def _select(self, index: Index, platform: Platform | None = None) -> Manifest:
        want = platform or Platform.host()
        try:
            desc = index.select(want)
        except NotFound:
            if platform is not None:
                raise
            desc = None
        if platform is None and (desc is None or not self.blobs.has(desc.digest)):
            # no platform asked: the host's image when it is here, else the first one that is (an index
            # pulled for another platform, or whose host image is still coming down)
            have = [d for d in index.images() if self.blobs.has(d.digest)]
            if not have:
                raise NotFound(f"index {index.digest}: no image for {want} in the store") from None
            desc = have[0]
        doc = _read_document(self.blobs, desc.digest)
        if not isinstance(doc, Manifest):
            raise InvalidDocument("index", "manifests", f"{desc.digest} is a nested index; not supported")
        return doc

    def load(self, record_or_digest: ImageRecord | Digest | str, *, platform: Platform | None = None,
             lazy: bool = False) -> Image:
        """The image's manifest and config, verified; every layer blob must be present with its size
        (``lazy``: a layer may be absent, known only by digest until something fetches it).
        Inside a lease, the image is kept from GC from this instant on."""
        leases = self.blobs.leases
        if not leases.active:
            return self._load(record_or_digest, platform, lazy)
        with leases.guard():
            image = self._load(record_or_digest, platform, lazy)
            leases.keep("doc", image.digest)  # the index's when it was one, which keeps the manifest too
        return image

    def missing_layers(self, name: str) -> list[Descriptor]:
        """The layers of the stored image ``name`` (of each image of an index that the store holds)
        whose blobs the store lacks, known only lazily (a build's cache hits, a lazy base pull): a
        stat per layer."""
        image = self.load(self.resolve(name), lazy=True)
        manifests = [image.manifest]
        if image.index is not None:
            manifests = [self.load(d.digest, lazy=True).manifest for d in image.index.images()
                         if self.blobs.has(d.digest)]
        return [d for m in manifests for d in m.layers if not self.blobs.has(d.digest)]

    def _load(self, record_or_digest: ImageRecord | Digest | str, platform: Platform | None, lazy: bool = False) -> Image:
        if isinstance(record_or_digest, ImageRecord):
            digest, record = record_or_digest.manifest_digest, record_or_digest
        else:
            digest = record_or_digest if isinstance(record_or_digest, Digest) else Digest.parse(record_or_digest)
            record = None
        doc = _read_document(self.blobs, digest)
        index = doc if isinstance(doc, Index) else None
        manifest = self._select(doc, platform) if isinstance(doc, Index) else doc
        try:
            raw = self.blobs.read_bytes(manifest.config.digest, MAX_DOCUMENT)
        except NotFound:
            raise NotFound(f"image {digest}: config {manifest.config.digest} is not in the store") from None
        config = ImageConfig.parse(raw)
        if len(config.diff_ids) != len(manifest.layers):
            raise InvalidDocument("image", "rootfs.diff_ids",
                                  f"{len(config.diff_ids)} diff_ids for {len(manifest.layers)} layers in {manifest.digest}")
        for layer in manifest.layers:
            try:
                have = self.blobs.size(layer.digest)
            except NotFound:
                if lazy:
                    continue
                raise NotFound(f"image {digest}: layer {layer.digest} is not in the store") from None
            if have != layer.size:
                raise InvalidDocument("image", "layers", f"blob {layer.digest} is {have} bytes, the manifest says {layer.size}")
        return Image(manifest, config, index, record)

    # -- changes ---------------------------------------------------------------------------------

    def tag(self, ref: Reference | str, manifest_digest: Digest | str | Manifest | Index, *,
            lazy: bool = False, index: Digest | None = None) -> ImageRecord:
        """Point ``ref`` at a manifest or index already in the store (checked; ``lazy``: its layers may be
        known by digest only, fetched later from a recorded source); the new record. ``index``: the
        registry's multi-platform index the manifest was taken out of (the name's repo digest)."""
        if isinstance(ref, str):
            ref = Reference.parse(ref)
        if isinstance(manifest_digest, (Manifest, Index)):
            manifest_digest = manifest_digest.digest
        elif isinstance(manifest_digest, str):
            manifest_digest = Digest.parse(manifest_digest)
        name = str(ref)

        def change(images: dict[str, dict[str, Any]], dangling: dict[str, dict[str, Any]]) -> None:
            old = images.get(name)
            images[name] = entry
            dangling.pop(entry["digest"], None)
            if old is not None and old.get("digest") != entry["digest"] \
                    and not any(e.get("digest") == old.get("digest") for e in images.values()):
                # the name moved on: the image it left keeps no name (Docker's <none>:<none>)
                dangling[old["digest"]] = {"id": old.get("id"), "created": old.get("created", 0)}

        with self.blobs.lease_lock():  # GC must not sweep between our check and the record landing
            image_id = self._load(manifest_digest, None, lazy).id
            entry = {"digest": str(manifest_digest), "id": str(image_id), "created": time.time()}
            if index is not None and index != manifest_digest:
                entry["index"] = str(index)
            self._mutate(change)
        events.emit(self.root, "image", "tag", str(image_id), name=events.familiar(name))
        return self._record(name, entry)

    def add_dangling(self, manifest_digest: Digest | Manifest | Index, *, lazy: bool = False) -> ImageRecord:
        """Record the image ``manifest_digest`` (already in the store, checked; ``lazy`` as for :meth:`tag`)
        without a name, unless a name already points at it; the record it is known by."""
        if isinstance(manifest_digest, (Manifest, Index)):
            manifest_digest = manifest_digest.digest
        key = str(manifest_digest)

        def change(images: dict[str, dict[str, Any]], dangling: dict[str, dict[str, Any]]) -> ImageRecord:
            for name, e in images.items():
                if e.get("digest") == key:
                    return self._record(name, e)
            dangling[key] = entry
            return self._record(None, {**entry, "digest": key})

        with self.blobs.lease_lock():
            entry = {"id": str(self._load(manifest_digest, None, lazy).id), "created": time.time()}
            return self._mutate(change)

    def remove_dangling(self, manifest_digests: list[Digest]) -> list[ImageRecord]:
        """Forget these unnamed images (absent ones are ignored); the records removed."""
        def change(images: dict[str, dict[str, Any]], dangling: dict[str, dict[str, Any]]) -> list[ImageRecord]:
            out = []
            for d in manifest_digests:
                entry = dangling.pop(str(d), None)
                if entry is not None:
                    out.append(self._record(None, {**entry, "digest": str(d)}))
            return out

        removed = self._mutate(change)
        for rec in removed:
            events.emit(self.root, "image", "delete", str(rec.id))
        return removed

    def untag(self, ref: Reference | str) -> ImageRecord:
        """Remove one name; the record it had. NotFound if the name is not there."""
        name = str(Reference.parse(ref) if isinstance(ref, str) else ref)

        def change(images: dict[str, dict[str, Any]], _dangling: dict[str, dict[str, Any]]) -> ImageRecord:
            entry = images.pop(name, None)
            if entry is None:
                raise NotFound(f"no such image: {name}")
            return self._record(name, entry)

        record = self._mutate(change)
        events.emit(self.root, "image", "untag", str(record.id), name=events.familiar(name))
        return record

    def remove_names(self, names: list[str]) -> None:
        """Remove several names at once (missing ones are ignored)."""
        def change(images: dict[str, dict[str, Any]], _dangling: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
            return [(n, entry["id"]) for n in names if (entry := images.pop(n, None)) is not None]

        for name, image_id in self._mutate(change):
            events.emit(self.root, "image", "untag", image_id, name=events.familiar(name))

    def referenced(self) -> Iterator[Digest]:
        """Every manifest/index digest a record (named or not) points at."""
        for r in self.records():
            yield r.manifest_digest
