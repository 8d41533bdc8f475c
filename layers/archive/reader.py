"""A streaming tar reader that hashes every byte it is given (the diff_id) and trusts none of them.

``TarReader(stream).entries()`` yields one :class:`~layers.archive.tarformat.Entry` per member with
PAX and GNU long-name records applied; :meth:`TarReader.chunks` yields the current member's data
(unread data is skipped by the next step). The walk ends at the two zero blocks; whatever follows
must be zero padding. :meth:`TarReader.digest` is the sha256 of every byte of the stream, read to
its end. Truncation anywhere, bad checksums, sparse or unknown member types, oversized PAX or GNU
records and trailing garbage are :class:`~layers.errors.LayerError` (SECURITY.md case 11).
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO, Iterator

from layers.digest import Digest
from layers.errors import LayerError

from . import tarformat as tf

__all__ = ["TarReader", "MAX_META"]

#: The largest PAX or GNU long-name record accepted (names and xattrs, not file data).
MAX_META = 1 << 20
_CHUNK = 1 << 20
_ZERO = b"\x00" * tf.BLOCK
_DATA_TYPES = (tf.REG, b"7")
_MEMBER_TYPES = (tf.REG, tf.LNK, tf.SYM, tf.CHR, tf.BLK, tf.DIR, tf.FIFO)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _pax_int(value: bytes, key: str, where: str) -> int:
    try:
        number = float(value) if b"." in value else int(value)
    except ValueError:
        raise LayerError(f"tar entry {where}: PAX {key} {value[:40]!r} is not a number") from None
    if number < 0:
        raise LayerError(f"tar entry {where}: negative PAX {key}")
    return int(number)


class TarReader:
    """See the module docstring. ``what`` names the stream in error messages."""

    def __init__(self, stream: BinaryIO, what: str = "layer") -> None:
        self._stream = stream
        self._what = what
        self._hash = hashlib.sha256()
        self._buf = b""       # read ahead; bytes before ``_pos`` are consumed (no copy per header)
        self._pos = 0
        self._left = 0        # data bytes of the current member not yet read
        self._pad = 0         # padding after them
        self._count = 0
        self._done = False

    # -- the byte source -------------------------------------------------------------------------

    def _raw(self, n: int) -> bytes:
        data = self._stream.read(n)
        if data:
            self._hash.update(data)
        return data

    def _read(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at EOF)."""
        pos = self._pos
        if len(self._buf) - pos >= n:
            self._pos = pos + n
            return self._buf[pos:pos + n]
        parts = [self._buf[pos:]]
        have = len(parts[0])
        while have < n:
            data = self._raw(max(n - have, _CHUNK))
            if not data:
                break
            parts.append(data)
            have += len(data)
        joined = b"".join(parts)
        self._buf, self._pos = joined, min(n, len(joined))
        return joined[:n]

    def _exact(self, n: int, where: str) -> bytes:
        data = self._read(n)
        if len(data) != n:
            raise LayerError(f"{self._what}: truncated in the middle of {where}")
        return data

    # -- members ---------------------------------------------------------------------------------

    def chunks(self) -> Iterator[bytes]:
        """The current member's data, in pieces of at most 1 MiB."""
        while self._left:
            if self._pos < len(self._buf):
                end = min(len(self._buf), self._pos + self._left)
                piece, self._pos = self._buf[self._pos:end], end
            else:
                piece = self._raw(min(self._left, _CHUNK))
                if len(piece) > self._left:  # pragma: no cover - read(n) never returns more than n
                    piece, self._buf, self._pos = piece[:self._left], piece, self._left
            if not piece:
                raise LayerError(f"{self._what}: truncated in the middle of a file's data")
            self._left -= len(piece)
            yield piece
        if self._pad:
            self._exact(self._pad, "padding")
            self._pad = 0

    def _skip_data(self) -> None:
        for _ in self.chunks():
            pass

    def entries(self) -> Iterator[tf.Entry]:
        pax: dict[str, bytes] = {}
        long_name: bytes | None = None
        long_link: bytes | None = None
        while True:
            self._skip_data()
            block = self._read(tf.BLOCK)
            if not block:
                if pax or long_name is not None or long_link is not None:
                    raise LayerError(f"{self._what}: ends after an extended header, before its member")
                self._done = True
                return  # EOF on a header boundary, without end blocks (as Go's reader accepts)
            if len(block) < tf.BLOCK:
                raise LayerError(f"{self._what}: truncated in the middle of a header")
            if block == _ZERO:
                self._end()
                return
            self._count += 1
            raw = tf.decode_header(block, self._count)
            where = _text(raw.name[:200]) or f"#{self._count}"
            if raw.type in (tf.PAX, tf.PAX_GLOBAL, tf.GNU_LONGNAME, tf.GNU_LONGLINK):
                if raw.size > MAX_META:
                    raise LayerError(f"tar entry {where}: extended header of {raw.size} bytes (the cap is {MAX_META})")
                data = self._exact(raw.size, f"the extended header of {where}")
                self._exact(-raw.size % tf.BLOCK, "padding")
                if raw.type == tf.PAX:
                    pax.update(tf.parse_pax(data, where))
                elif raw.type == tf.GNU_LONGNAME:
                    long_name = data.split(b"\x00", 1)[0]
                elif raw.type == tf.GNU_LONGLINK:
                    long_link = data.split(b"\x00", 1)[0]
                # global PAX headers (git archive's comment) are ignored, as Docker and containerd do
                continue
            entry = self._member(raw, pax, long_name, long_link, where)
            pax, long_name, long_link = {}, None, None
            self._left = entry.size
            self._pad = -entry.size % tf.BLOCK
            yield entry

    def _member(self, raw: tf.RawHeader, pax: dict[str, bytes], long_name: bytes | None,
                long_link: bytes | None, where: str) -> tf.Entry:
        name = pax.get("path", long_name if long_name is not None else raw.name)
        link = pax.get("linkpath", long_link if long_link is not None else raw.linkname)
        where = _text(name[:200]) or where
        if any(k.startswith("GNU.sparse") for k in pax) or raw.type == b"S":
            raise LayerError(f"tar entry {where}: sparse files are not supported in layers")
        typeflag = tf.REG if raw.type == b"7" else raw.type
        if typeflag == tf.REG and name.endswith(b"/"):
            typeflag = tf.DIR  # a v7 archive's directory
        if typeflag not in _MEMBER_TYPES:
            raise LayerError(f"tar entry {where}: unsupported member type {raw.type!r}")
        size = _pax_int(pax["size"], "size", where) if "size" in pax else raw.size
        if typeflag != tf.REG:
            size = 0  # header-only types carry no data, whatever the size field says (as Go reads them)
        xattrs = tuple(sorted((k[len("SCHILY.xattr."):], v) for k, v in pax.items() if k.startswith("SCHILY.xattr.")))
        return tf.Entry(
            name=_text(name),
            type=typeflag,
            mode=raw.mode,
            uid=_pax_int(pax["uid"], "uid", where) if "uid" in pax else raw.uid,
            gid=_pax_int(pax["gid"], "gid", where) if "gid" in pax else raw.gid,
            size=size,
            mtime=_pax_int(pax["mtime"], "mtime", where) if "mtime" in pax else raw.mtime,
            linkname=_text(link),
            devmajor=raw.devmajor,
            devminor=raw.devminor,
            xattrs=xattrs,
            uname=_text(pax.get("uname", raw.uname)),
            gname=_text(pax.get("gname", raw.gname)),
        )

    def _end(self) -> None:
        second = self._read(tf.BLOCK)
        if second and second != _ZERO[: len(second)]:
            raise LayerError(f"{self._what}: a zero block in the middle of the archive, then more entries")
        while True:
            rest = self._read(_CHUNK)
            if not rest:
                break
            if rest.count(0) != len(rest):
                raise LayerError(f"{self._what}: data after the end of the archive")
        self._done = True

    def digest(self) -> Digest:
        """sha256 of the whole stream; only after :meth:`entries` has run to its end."""
        if not self._done:
            raise LayerError(f"{self._what}: read before the end of the archive")
        return Digest("sha256", self._hash.hexdigest())
