"""Layer archives: pack a tree into a layer, extract a layer safely, compress and re-encode.

* :func:`pack` (``layers.archive.pack``): a directory or an overlayfs upper dir -> a sorted,
  deterministic layer tar, compressed; diff_id and blob digest in one pass (:class:`PackResult`).
* :func:`extract`: a layer stream -> a directory, every path resolved inside it (SECURITY.md cases
  1-12); ``mode="apply"`` deletes what whiteouts hide, ``mode="overlay"`` keeps them in overlayfs
  form for a snapshot. Returns the diff_id.
* :func:`open_decompressed`, :class:`Compressor`, :func:`recompress`, :func:`sniff`,
  :func:`sniff_stream`: gzip (python-isal) and zstd, streaming, capped.

The tar format itself (:mod:`.tarformat`), the streaming reader (:mod:`.reader`) and the in-root
path resolution (:mod:`.inroot`) are the private pieces these stand on.
"""

from .compression import COMPRESSIONS, Compressor, open_decompressed, recompress, sniff, sniff_stream
from .extract import MAX_LAYER_SIZE, extract
from .pack import PackResult, pack

__all__ = ["COMPRESSIONS", "Compressor", "MAX_LAYER_SIZE", "PackResult", "extract", "open_decompressed", "pack",
           "recompress", "sniff", "sniff_stream"]
