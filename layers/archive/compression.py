"""Layer compression: gzip (python-isal, zlib as a fallback) and zstd, streaming, with caps.

Contracts:

* :func:`open_decompressed` returns a reader of the uncompressed bytes that raises
  :class:`~layers.errors.LayerError` when the data is broken or truncated, and as soon as more
  than ``limit`` bytes come out (a gzip or zstd bomb stops at the cap, SECURITY.md case 10).
  zstd frames that ask for a window above 128 MiB are refused.
* :class:`Compressor` gives the same bytes for the same input on every machine: gzip at a fixed
  level with a zero header mtime, zstd at level 3 in its multi-threaded mode (whose output does
  not depend on the number of worker threads).
* :func:`sniff` tells gzip, zstd or plain from the first bytes; :func:`sniff_stream` does it for a
  stream that cannot seek (stdin, a pipe) and hands back a reader that still returns every byte.
"""

from __future__ import annotations

import os
import zlib
from typing import BinaryIO

from layers.errors import InvalidInput, LayerError

__all__ = ["COMPRESSIONS", "MAX_WINDOW", "Compressor", "open_decompressed", "sniff", "sniff_stream", "recompress"]

#: The layer compressions pybuild reads and writes (``None`` is a plain tar).
COMPRESSIONS = ("gzip", "zstd", None)
#: The largest zstd window accepted (what ``zstd --long=27`` writes; Docker's limit too).
MAX_WINDOW = 1 << 27

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = 1 << 20
GZIP_LEVEL = 1
ZSTD_LEVEL = 3


def sniff(head: bytes) -> str | None:
    """``"gzip"``, ``"zstd"`` or ``None`` from a stream's first four bytes."""
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return None


def sniff_stream(raw: BinaryIO) -> tuple[BinaryIO, str | None]:
    """``raw``'s compression (:func:`sniff` of its first four bytes) and a reader of all of ``raw``,
    those bytes included: ``raw`` is only read, never seeked."""
    head = _Head(raw)
    return head, sniff(head.peek(4))


class _Head:
    """A reader whose first bytes can be looked at without losing them (stdin does not seek)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._head = b""

    def peek(self, n: int) -> bytes:
        while len(self._head) < n:
            more = self._raw.read(n - len(self._head))
            if not more:
                break
            self._head += more
        return self._head[:n]

    def read(self, n: int = -1) -> bytes:
        if not self._head:
            return self._raw.read(n)
        if n is None or n < 0:
            out, self._head = self._head + self._raw.read(), b""
            return out
        out, self._head = self._head[:n], self._head[n:]
        return out


def _check(compression: str | None) -> None:
    if compression not in COMPRESSIONS:
        raise InvalidInput(f"unknown compression {compression!r} (want gzip, zstd or none)")


class Compressor:
    """Streaming compressor: ``compress(data) -> bytes`` as often as needed, then ``flush()`` once."""

    def __init__(self, compression: str | None) -> None:
        _check(compression)
        self.compression = compression
        if compression == "gzip":
            try:
                from isal import isal_zlib

                self._obj = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 31)
            except ImportError:  # pragma: no cover - isal is a dependency; zlib keeps pybuild working without it
                self._obj = zlib.compressobj(6, zlib.DEFLATED, 31)
        elif compression == "zstd":
            import zstandard

            threads = max(1, min(4, os.cpu_count() or 1))
            self._obj = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=threads).compressobj()
        else:
            self._obj = None

    def compress(self, data: bytes | memoryview) -> bytes:
        return self._obj.compress(data) if self._obj is not None else bytes(data)

    def flush(self) -> bytes:
        return self._obj.flush() if self._obj is not None else b""


class _Capped:
    """Counts what a decoder yields; a LayerError past ``limit`` or on a decoder error."""

    def __init__(self, inner, errors: tuple[type[BaseException], ...], limit: int, what: str,
                 kind: str = "compressed") -> None:
        self._inner = inner
        self._kind = kind
        self._errors = errors
        self._limit = limit
        self._what = what
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        n = _CHUNK if n is None or n < 0 else n
        try:
            data = self._inner.read(min(n, self._limit + 1 - self.count) or 1)
        except EOFError:
            raise LayerError(f"{self._what}: broken {self._kind} data: it ends early (truncated)") from None
        except self._errors as exc:
            raise LayerError(f"{self._what}: broken {self._kind} data: {exc}") from None
        self.count += len(data)
        if self.count > self._limit:
            raise LayerError(f"{self._what}: decompresses to more than {self._limit} bytes (the cap)")
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._inner.close()


def open_decompressed(stream: BinaryIO, compression: str | None, limit: int, what: str = "layer") -> BinaryIO:
    """A reader of the uncompressed bytes of ``stream``; at most ``limit`` of them (see module doc)."""
    _check(compression)
    if compression == "gzip":
        try:
            from isal import igzip as gz
            from isal.isal_zlib import error as gz_error
        except ImportError:  # pragma: no cover
            import gzip as gz

            gz_error = zlib.error
        return _Capped(gz.GzipFile(fileobj=_Plain(stream), mode="rb"), (OSError, gz_error, zlib.error), limit, what,
                       "gzip")
    if compression == "zstd":
        import zstandard

        reader = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW).stream_reader(
            stream, read_across_frames=True, closefd=False)
        return _Capped(reader, (zstandard.ZstdError, OSError), limit, what, "zstd")
    return _Capped(_Plain(stream), (OSError,), limit, what)


class _Plain:
    """Any object with ``read`` as the raw stream decoders want (``readinto`` too); closing it is a no-op."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def read(self, n: int = -1) -> bytes:
        return self._stream.read(n)

    def readinto(self, buf) -> int:
        data = self._stream.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass


def recompress(src: BinaryIO, store, from_compression: str | None, to_compression: str | None,
               limit: int = 1 << 40) -> tuple[object, int]:
    """Re-encode one layer blob read from ``src`` into ``store`` (same uncompressed bytes, so the same
    diff_id); returns ``(digest, size)`` of the new blob. ``store`` is a blob store (``ingest()``)."""
    plain = open_decompressed(src, from_compression, limit)
    comp = Compressor(to_compression)
    with store.blobs.ingest() as ing:
        while chunk := plain.read(_CHUNK):
            out = comp.compress(chunk)
            if out:
                ing.write(out)
        tail = comp.flush()
        if tail:
            ing.write(tail)
        written = ing.written
        digest = ing.commit()
    return digest, written
