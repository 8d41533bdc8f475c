"""``import``: turn a root filesystem tarball into a one-layer image in the store (like ``docker import``).

The input (plain, gzip or zstd tar, detected by magic; a file or a pipe) is read once: the
uncompressed bytes are hashed for the diff_id, walked by :class:`layers.archive.reader.TarReader`
(a truncated or garbled tar is refused), and compressed with :class:`layers.archive.Compressor`
straight into an ingest. Config and
manifest follow; the name is tagged last, inside a lease, so a crash at any step leaves only
unreferenced blobs (GC fodder) and never a broken record.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import BinaryIO, Callable

from layers import events
from layers.archive import MAX_LAYER_SIZE, Compressor, open_decompressed, sniff_stream
from layers.archive.reader import TarReader
from layers.config import History, ImageConfig, format_time
from layers.descriptor import Descriptor, Platform
from layers.digest import Digest
from layers.errors import InvalidInput, LayerError
from layers.manifest import Manifest
from layers.mediatype import MediaType
from layers.reference import Reference
from layers.value import frozen

from .pause import pause_point

__all__ = ["import_rootfs", "ImportResult"]

_CHUNK = 1 << 20


@frozen
class ImportResult:
    manifest: Manifest
    config: ImageConfig
    reference: Reference


class _Tee:
    """Passes the uncompressed tar through to its reader and the compressed form to ``sink``."""

    def __init__(self, src: BinaryIO, sink, compression: str | None) -> None:
        self._src = src
        self._sink = sink
        self._comp = Compressor(compression)
        self._first = True

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n if n and n > 0 else _CHUNK)
        if data:
            out = self._comp.compress(data)
            if out:
                self._sink(out)
            if self._first:
                self._first = False
                pause_point("import-layer-write")
        return data

    def flush(self) -> None:
        tail = self._comp.flush()
        if tail:
            self._sink(tail)


def _store_layer(stream: BinaryIO, sink, compression: str | None) -> Digest:
    """Walk the tarball (any compression, by magic) once: check it is a tar, compress it into ``sink``;
    the diff_id. The layer is the user's tar byte for byte, as ``docker import`` keeps it."""
    head, found = sniff_stream(stream)
    plain = open_decompressed(head, found, MAX_LAYER_SIZE, "rootfs tarball")
    tee = _Tee(plain, sink, compression)
    reader = TarReader(tee, "rootfs tarball")
    members = sum(1 for _ in reader.entries())
    if members == 0:
        raise LayerError("rootfs tarball: the archive holds no files")
    tee.flush()
    return reader.digest()


# -- import ----------------------------------------------------------------------------------------


def import_rootfs(store, stream: BinaryIO, ref: Reference | str, *,
                  edit: Callable[[ImageConfig], ImageConfig] | None = None, message: str = "",
                  compression: str | None = "gzip", source: str = "-",
                  platform: Platform | None = None) -> ImportResult:
    """Store ``stream`` (a rootfs tar, any compression) as a one-layer image named ``ref``.

    ``edit`` (``import --change``: :func:`builder.changes.apply_changes`) turns the new image's empty
    config into the finished one; it runs before the store is touched, so its errors change nothing."""
    if isinstance(ref, str):
        ref = Reference.parse(ref)
    if ref.digest is not None:
        raise InvalidInput(f"import: {ref} names a digest; give NAME[:TAG]")
    now = format_time(datetime.now(timezone.utc))
    base = ImageConfig.new(platform or Platform.host(), created=now)
    if edit is not None:
        base = edit(base)
    media_type = MediaType.layer_type(compression)
    with store.lease():
        with store.blobs.ingest() as ing:
            diff_id = _store_layer(stream, ing.write, compression)
            layer_digest = ing.commit()
            layer_size = ing.written
        history = History(created=now, created_by=f"pybuild import {source}", comment=message or "")
        config = base.with_layer(diff_id, history)
        pause_point("import-config")
        config_digest = store.blobs.put_bytes(config.raw)
        manifest = Manifest.build(
            Descriptor(MediaType.OCI_CONFIG, config_digest, len(config.raw)),
            [Descriptor(media_type, layer_digest, layer_size)],
        )
        store.blobs.put_bytes(manifest.raw, expected=manifest.digest)
        pause_point("import-tag")
        store.images.tag(ref, manifest.digest)
    events.emit(store.root, "image", "import", str(config_digest), name=events.familiar(str(ref)))
    return ImportResult(manifest, config, ref)
