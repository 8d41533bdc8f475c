"""What pull and push need of the local store, as small protocols (go-containerregistry style: the
client names the few methods it calls; :class:`layers.store.Store` satisfies them, and so can a test
double). Nothing here is implemented; the store's own docstrings hold the full contracts.

* :class:`BlobIngest`: one verified write (``layers.store.blobs.Ingest``), resumable from ``offset``;
* :class:`ContentStore`: blobs by digest (``layers.store.blobs.BlobStore``);
* :class:`ImageTagger`: names a stored manifest or index (``layers.store.images.ImageStore``);
* :class:`Snapshots`: unpacked layers (``layers.store.snapshots.SnapshotStore``), used by a pull with
  ``unpack``; :class:`SnapshotFollow` unpacks a layer while its ingest is written
  (``layers.store.follow.FollowUnpack``);
* :class:`LocalStore`: these together, a root for mount hints, and a GC lease.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import BinaryIO, Callable, Protocol

from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.reference import Reference

__all__ = ["BlobIngest", "ContentStore", "ImageTagger", "LocalStore", "SnapshotFollow", "Snapshots"]


class BlobIngest(Protocol):
    """A write into the store, used as a context manager. ``offset``: bytes an interrupted ingest of
    the same expected digest already holds (write only the rest, or :meth:`restart`); ``present``: the
    blob got stored meanwhile (writing is unnecessary); ``written``: bytes written so far."""

    offset: int
    written: int
    present: bool

    def __enter__(self) -> BlobIngest: ...

    def __exit__(self, *exc: object) -> object: ...

    def write(self, data: bytes) -> int:
        """Append ``data`` (hashed as it is written)."""

    def restart(self) -> None:
        """Drop what an earlier attempt wrote; start from byte 0."""

    def commit(self) -> Digest:
        """Check digest (and size when expected) and make the blob visible; its digest."""


class ContentStore(Protocol):
    """Blobs by digest. The store computes and checks digests; readers verify at EOF."""

    def has(self, digest: Digest) -> bool: ...

    def open(self, digest: Digest, size: int | None = None) -> AbstractContextManager[BinaryIO]:
        """A reader that fails at EOF unless the bytes hash to ``digest`` (and count ``size``)."""

    def read_bytes(self, digest: Digest, max_size: int) -> bytes:
        """The whole blob, verified; refused when larger than ``max_size``."""

    def ingest(self, expected: Digest | None = None, size: int | None = None) -> BlobIngest:
        """A new write; with ``expected``, resumable and checked against it on commit."""

    def put_bytes(self, data: bytes, expected: Digest | None = None) -> Digest:
        """Store ``data`` (idempotent); a wrong ``expected`` is an error."""


class ImageTagger(Protocol):
    """Names for stored images."""

    def tag(self, ref: Reference, manifest_digest: Digest, *, lazy: bool = False,
            index: Digest | None = None) -> object:
        """Point ``ref`` at the stored manifest or index ``manifest_digest`` (``lazy``: its layers may come
        later; ``index``: the registry's index it was taken out of, the name's repo digest)."""


class SnapshotFollow(Protocol):
    """Unpacks one layer from its ingest as the ingest is written; a context manager whose exit drops
    whatever was not published. Nothing is visible before :meth:`complete`."""

    def __enter__(self) -> SnapshotFollow: ...

    def __exit__(self, *exc: object) -> object: ...

    def writer(self, ingest: BlobIngest) -> Callable[[bytes], object]:
        """At the start of each download attempt: the function to write the blob's bytes with."""

    def complete(self, size: int) -> object:
        """After the ingest's commit (digest and size checked): finish, check and publish the snapshot."""


class Snapshots(Protocol):
    """Unpacked layers by diff_id."""

    def follow(self, layer: Descriptor, diff_id: Digest) -> SnapshotFollow: ...

    def ensure(self, layer: Descriptor, diff_id: Digest) -> str:
        """The layer unpacked (from the stored blob, unless ready already)."""


class LocalStore(Protocol):
    """The local store as pull and push use it. ``root`` is where cross-repository mount hints are
    kept (:class:`registry_client.sources.SourceIndex`); :meth:`lease` keeps what this process
    writes or relies on safe from GC while it is held."""

    root: str
    blobs: ContentStore
    images: ImageTagger
    snapshots: Snapshots

    def lease(self) -> AbstractContextManager[None]: ...
