"""What the layout modules share: the blob-store protocols they speak, the image values going in and
out, the annotation names, and the small readers every direction needs."""

from __future__ import annotations

from typing import BinaryIO, Protocol

from layers.config import ImageConfig
from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.errors import InvalidDocument, InvalidInput
from layers.index import Index
from layers.jsonutil import MAX_DOCUMENT_SIZE, load_object
from layers.manifest import Manifest
from layers.reference import Reference
from layers.value import frozen

__all__ = ["ArchiveImage", "BlobSource", "BlobStore", "LoadedImage", "REF_NAME", "IMAGE_NAME", "REPO_DIGEST",
           "LAYOUT_VERSION", "MAX_LAYER_SIZE", "KIND", "COPY_CHUNK", "blob_name", "check_layout_version", "read_blob"]

#: OCI annotation: the reference (pybuild writes the tag) an index entry stands for.
REF_NAME = "org.opencontainers.image.ref.name"
#: containerd's annotation: the full image name, as ``docker save`` writes it beside REF_NAME.
IMAGE_NAME = "io.containerd.image.name"
#: pybuild's annotation beside IMAGE_NAME: the name's repo digest when it is not the entry's own digest
#: (the registry's multi-platform index one platform's image was pulled out of); other tools ignore it.
REPO_DIGEST = "io.pybuild.image.repo-digest"
LAYOUT_VERSION = "1.0.0"
KIND = "image archive"
COPY_CHUNK = 1 << 20
#: Default upper bound on an uncompressed docker-archive layer while its diff_id is checked: a zstd
#: frame of a few bytes can claim terabytes, and hashing stops here instead.
MAX_LAYER_SIZE = 64 << 30


class BlobSource(Protocol):
    """Where blobs are read from: ``open`` returns a reader that fails at EOF on a digest/size mismatch."""

    def open(self, digest: Digest, size: int | None = None) -> BinaryIO: ...


class BlobStore(BlobSource, Protocol):
    """A content-addressed sink. ``put_stream`` computes the digest itself and checks ``expected``/``size``."""

    def has(self, digest: Digest) -> bool: ...

    def put_stream(
        self, stream: BinaryIO, expected: Digest | None = None, size: int | None = None
    ) -> tuple[Digest, int]: ...


@frozen(slots=True)
class ArchiveImage:
    """One image to save: a manifest, or an index (multi-platform), and the names to record.

    An index is saved whole when every entry is in the source; otherwise a new index of the
    runnable entries that are there is saved in its place (as after a one-platform pull).
    """

    manifest: Manifest | Index
    names: tuple[Reference, ...] = ()
    #: (name, repo digest) for names whose repo digest is not the document's own (see REPO_DIGEST)
    repo_digests: tuple[tuple[Reference, Digest], ...] = ()


@frozen(slots=True)
class LoadedImage:
    """An image read from an archive; every blob it references is in the store and verified.

    ``names`` are full references (``docker.io/library/busybox:latest``) when the archive says
    which; ``ref_names`` are bare ``org.opencontainers.image.ref.name`` values (often only a
    tag, as ``skopeo copy ... oci:DIR:TAG`` writes) that the caller may turn into names.
    """

    manifest: Manifest
    config: ImageConfig
    names: tuple[str, ...] = ()
    ref_names: tuple[str, ...] = ()
    index: Index | None = None  # the multi-platform index it was listed by, every image of it loaded
    #: (full name, repo digest) for names the archive gives a repo digest other than the document's own
    repo_digests: tuple[tuple[str, Digest], ...] = ()

    @property
    def document(self) -> "Manifest | Index":
        """What a name should point at: the whole index when there is one, else the manifest."""
        return self.index if self.index is not None else self.manifest

    def tags(self) -> tuple[str, ...]:
        """The full names to give this image in a store, as ``podman load`` chooses them: ``names``;
        else each usable ``ref_names`` value (a bare ``name`` or ``tag`` goes under ``localhost/``);
        else ``localhost/<short config digest>:latest``. Never empty, no duplicates."""
        names = list(self.names)
        for value in self.ref_names if not names else ():
            try:
                names.append(str(Reference.parse(value if (":" in value or "/" in value) else f"localhost/{value}")))
            except InvalidInput:
                continue  # not a reference (a bare digest, a stray annotation): the fallback below
        if not names:
            names = [f"localhost/{self.config.digest.short}:latest"]
        return tuple(dict.fromkeys(names))


def blob_name(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"


def check_layout_version(raw: bytes | None) -> None:
    if raw is None:
        raise InvalidDocument("oci-layout", "", "file is missing")
    body = load_object(raw, "oci-layout")
    version = body.get("imageLayoutVersion")
    if not isinstance(version, str) or not version.startswith("1."):
        raise InvalidDocument("oci-layout", "imageLayoutVersion", f"must be 1.x, got {version!r}")


def read_blob(store: BlobSource, desc: Descriptor, limit: int = MAX_DOCUMENT_SIZE) -> bytes:
    if desc.size > limit:
        raise InvalidDocument(KIND, str(desc.digest), f"document of {desc.size} bytes is larger than {limit}")
    parts = []
    with store.open(desc.digest, desc.size) as reader:
        while chunk := reader.read(COPY_CHUNK):  # to EOF, where the reader checks digest and size
            parts.append(chunk)
    return b"".join(parts)
