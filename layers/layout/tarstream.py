"""One streaming pass over an image tar (plain or gzip/bzip2/xz/zstd compressed): every file goes to
the blob store while it is hashed (one named ``blobs/<alg>/<hex>`` must hash to its name), metadata
documents are kept in memory, links are recorded and followed only inside the archive."""

from __future__ import annotations

import posixpath
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

import zstandard

from layers.digest import Digest
from layers.errors import IntegrityError, InvalidDigest, InvalidDocument
from layers.jsonutil import MAX_DOCUMENT_SIZE

from .base import KIND, BlobStore

__all__ = ["Ingested", "ingest_tar"]

_BLOB_PATH = re.compile(r"blobs/([a-z0-9]+)/([a-f0-9]+)")
_META = frozenset({"oci-layout", "index.json", "manifest.json", "repositories"})


@dataclass
class Ingested:
    """What one pass over a tar left behind: metadata documents and where each file's blob went."""

    meta: dict[str, bytes] = field(default_factory=dict)
    files: dict[str, tuple[Digest, int]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def blob(self, name: str, what: str) -> tuple[Digest, int]:
        """The blob stored for archive path ``name``, following symlinks and hardlinks inside the archive."""
        seen: set[str] = set()
        current = _clean_name(name, what)
        while current in self.links:
            if current in seen:
                raise InvalidDocument(KIND, what, f"{name!r} is a link loop")
            seen.add(current)
            current = self.links[current]
        try:
            return self.files[current]
        except KeyError:
            raise InvalidDocument(KIND, what, f"names {name!r}, which is not a file in the archive") from None


def _clean_name(name: str, what: str = "") -> str:
    """An archive member name as a relative, normalised path; ``..`` or absolute names are refused."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise InvalidDocument(KIND, what or name, f"path {name[:200]!r} leaves the archive")
    return "/".join(parts)


def _link_target(name: str, member: tarfile.TarInfo) -> str:
    """Where a symlink or hardlink member points, as an archive path; links out of the archive are refused."""
    target = member.linkname
    if member.issym() and not target.startswith("/"):
        target = posixpath.join(posixpath.dirname(name), target)
    normal = posixpath.normpath(target) if target else ""
    if not target or target.startswith("/") or normal == ".." or normal.startswith("../"):
        raise InvalidDocument(KIND, name, f"link to {member.linkname[:200]!r} leaves the archive")
    return normal


class _Prefixed:
    """A read-only stream that first returns ``head`` (bytes already read to sniff it), then ``rest``."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data + self._rest.read(n - len(data)) if len(data) < n else data
        return self._rest.read(n)


def _open_tar(stream: BinaryIO) -> tarfile.TarFile:
    """A streaming tar reader; a gzip, bzip2, xz or zstd compressed archive (``docker save | gzip``) is inflated."""
    head = b""
    while len(head) < 4:
        chunk = stream.read(4 - len(head))
        if not chunk:
            break
        head += chunk
    source: BinaryIO = _Prefixed(head, stream)  # type: ignore[assignment]
    if head == b"\x28\xb5\x2f\xfd":
        source = zstandard.ZstdDecompressor(max_window_size=1 << 27).stream_reader(source, read_across_frames=True)
    try:
        return tarfile.open(fileobj=source, mode="r|*")
    except tarfile.TarError as exc:
        raise InvalidDocument(KIND, "", f"is not a tar archive: {exc}") from None


def ingest_tar(stream: BinaryIO, store: BlobStore) -> Ingested:
    got = Ingested()
    tar = _open_tar(stream)
    try:
        for member in tar:
            name = _clean_name(member.name)
            if member.isdir() or not name:
                continue
            if member.issym() or member.islnk():
                got.links[name] = _link_target(name, member)
                continue
            if not member.isreg():
                raise InvalidDocument(KIND, name, "is neither a file, a directory nor a link")
            if name in got.files or name in got.meta:
                raise InvalidDocument(KIND, name, "appears twice in the archive")
            data = tar.extractfile(member)
            assert data is not None
            if name in _META:
                if member.size > MAX_DOCUMENT_SIZE:
                    raise InvalidDocument(KIND, name, f"is {member.size} bytes, more than {MAX_DOCUMENT_SIZE}")
                got.meta[name] = data.read()
                continue
            if posixpath.basename(name) in ("json", "VERSION"):
                continue  # legacy docker-archive per-layer metadata: superseded by manifest.json
            got.files[name] = _put(store, name, data, member.size)
    except (tarfile.TarError, zlib.error, zstandard.ZstdError) as exc:
        raise InvalidDocument(KIND, "", f"is a broken tar: {exc}") from None
    except EOFError:
        raise InvalidDocument(KIND, "", "ends in the middle of an entry (truncated)") from None
    finally:
        tar.close()
    return got


def _put(store: BlobStore, name: str, data: BinaryIO, size: int) -> tuple[Digest, int]:
    """Store one archive file; one named ``blobs/<alg>/<hex>`` must hash to its name."""
    expected = None
    m = _BLOB_PATH.fullmatch(name)
    if m:
        try:
            expected = Digest(m.group(1), m.group(2))
        except InvalidDigest:
            expected = None  # not a digest name: stored by content like any other file
    if expected is not None and store.has(expected):
        return expected, size
    try:
        return store.put_stream(data, expected=expected, size=size)
    except IntegrityError as exc:
        raise IntegrityError(f"archive member {name}: {exc}") from None
