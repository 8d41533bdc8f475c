"""``layers.archive.sniff_stream``: a stream that cannot seek (a pipe, as stdin is for ``import -`` and
``cp -``) is told by its magic and still read whole, the sniffed bytes included."""

from __future__ import annotations

import gzip
import os
import threading

import pytest
import zstandard

from layers.archive import sniff_stream

BODY = bytes(range(256)) * 40


def _pipe(data: bytes):
    """A reader of ``data`` through a real pipe (unseekable; reads may come back short)."""
    r, w = os.pipe()

    def feed() -> None:
        with open(w, "wb", buffering=0) as out:
            for i in range(0, len(data), 3):      # trickle: the 4 magic bytes arrive in two reads
                out.write(data[i:i + 3])

    threading.Thread(target=feed, daemon=True).start()
    return open(r, "rb", buffering=0)


@pytest.mark.parametrize("data, want", [
    (gzip.compress(BODY), "gzip"),
    (zstandard.ZstdCompressor().compress(BODY), "zstd"),
    (BODY, None),
    (b"\x1f", None),                # shorter than any magic
    (b"", None),
])
def test_sniffed_and_nothing_lost(data, want):
    with _pipe(data) as raw:
        head, found = sniff_stream(raw)
        assert found == want
        assert head.read() == data


def test_reads_in_pieces_across_the_peeked_bytes():
    data = gzip.compress(BODY)
    with _pipe(data) as raw:
        head, _ = sniff_stream(raw)
        got = b""
        while chunk := head.read(3):
            got += chunk
        assert got == data
