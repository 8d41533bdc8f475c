"""The tar format, both ways: one :class:`Entry` value <-> header blocks (ustar + PAX, read GNU too).

Writing (:func:`encode`) follows what Go's ``archive/tar`` does for image layers: a ustar header
when every field fits, else a PAX extended header (``path``, ``linkpath``, big numbers, sorted
``SCHILY.xattr.*`` records); empty user and group names; integer mtimes. The bytes depend only on
the :class:`Entry`, so the same tree gives the same layer digest.

Reading (:func:`decode_header`, :func:`parse_pax`) checks the header checksum, accepts ustar,
GNU and v7 headers, octal and base-256 numbers, PAX and GNU long names; the stream walk and its
limits live in :mod:`layers.archive.reader`.
"""

from __future__ import annotations

from dataclasses import field

from layers.errors import LayerError
from layers.value import frozen

__all__ = ["BLOCK", "Entry", "encode", "end_of_archive", "padding", "decode_header", "parse_pax", "RawHeader",
           "REG", "LNK", "SYM", "CHR", "BLK", "DIR", "FIFO"]

BLOCK = 512

REG, LNK, SYM, CHR, BLK, DIR, FIFO = b"0", b"1", b"2", b"3", b"4", b"5", b"6"
PAX, PAX_GLOBAL, GNU_LONGNAME, GNU_LONGLINK = b"x", b"g", b"L", b"K"

_USTAR_MAGIC = b"ustar\x0000"
_GNU_MAGIC = b"ustar  \x00"


@frozen(slots=True)
class Entry:
    """One tar member. ``name`` has no leading ``/`` and no trailing ``/``; ``xattrs`` are sorted pairs."""

    name: str
    type: bytes
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime: int = 0
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = field(default_factory=tuple)
    uname: str = ""
    gname: str = ""


def _enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _octal(value: int, width: int) -> bytes | None:
    """``width`` bytes: zero-padded octal digits and a NUL, or None when the value does not fit."""
    if value < 0 or value >= 8 ** (width - 1):
        return None
    return b"%0*o\x00" % (width - 1, value)


def _pax_record(key: str, value: bytes) -> bytes:
    body = b" " + _enc(key) + b"=" + value + b"\n"
    n = len(body) + 1
    while len(b"%d" % n) + len(body) != n:
        n += 1
    return b"%d" % n + body


def _header(name: bytes, mode: int, uid: int, gid: int, size: int, mtime: int, typeflag: bytes,
            linkname: bytes, uname: bytes, gname: bytes, devmajor: int, devminor: int) -> bytes:
    fields = [
        name.ljust(100, b"\x00"),
        _octal(mode, 8), _octal(uid, 8), _octal(gid, 8), _octal(size, 12), _octal(mtime, 12),
        b" " * 8, typeflag, linkname.ljust(100, b"\x00"), _USTAR_MAGIC,
        uname.ljust(32, b"\x00"), gname.ljust(32, b"\x00"),
        _octal(devmajor, 8), _octal(devminor, 8), b"\x00" * 155, b"\x00" * 12,
    ]
    block = bytearray(b"".join(fields))  # type: ignore[arg-type]
    assert len(block) == BLOCK
    block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block)


def encode(entry: Entry) -> bytes:
    """The header block(s) of ``entry``: a PAX header first when a field does not fit ustar."""
    name = _enc(entry.name + ("/" if entry.type == DIR and entry.name else ""))
    link = _enc(entry.linkname)
    uname, gname = _enc(entry.uname), _enc(entry.gname)
    pax: dict[str, bytes] = {}
    if len(name) > 100 or not name.isascii():
        pax["path"] = name
        name = name[:100]
    if len(link) > 100 or not link.isascii():
        pax["linkpath"] = link
        link = link[:100]
    if len(uname) > 32 or not uname.isascii():
        pax["uname"], uname = uname, b""
    if len(gname) > 32 or not gname.isascii():
        pax["gname"], gname = gname, b""
    numbers = {"uid": (entry.uid, 8), "gid": (entry.gid, 8), "size": (entry.size, 12), "mtime": (entry.mtime, 12)}
    values = {}
    for key, (value, width) in numbers.items():
        if value < 0:
            raise LayerError(f"tar entry {entry.name}: negative {key} {value}")
        if _octal(value, width) is None:
            pax[key] = b"%d" % value
            value = 0
        values[key] = value
    for key, value in ((k, v) for k, v in (("devmajor", entry.devmajor), ("devminor", entry.devminor))):
        if _octal(value, 8) is None:
            raise LayerError(f"tar entry {entry.name}: {key} {value} does not fit a tar header")
    for key, value in entry.xattrs:
        pax["SCHILY.xattr." + key] = value
    out = b""
    if pax:
        records = b"".join(_pax_record(k, pax[k]) for k in sorted(pax))
        base = name.rstrip(b"/").rsplit(b"/", 1)
        pax_name = (base[0] + b"/PaxHeaders.0/" + base[1] if len(base) == 2 else b"PaxHeaders.0/" + base[0])[:100]
        out = _header(pax_name, 0o644, 0, 0, len(records), 0, PAX, b"", b"", b"", 0, 0)
        out += records + padding(len(records))
    return out + _header(name, entry.mode & 0o7777, values["uid"], values["gid"], values["size"], values["mtime"],
                         entry.type, link, uname, gname, entry.devmajor, entry.devminor)


def padding(size: int) -> bytes:
    """The zero bytes that follow ``size`` bytes of member data up to the next block."""
    return b"\x00" * (-size % BLOCK)


def end_of_archive() -> bytes:
    """Two zero blocks, as Go's writer ends an archive (no padding to a 10 KiB record)."""
    return b"\x00" * (2 * BLOCK)


# -- reading ---------------------------------------------------------------------------------------


@frozen(slots=True)
class RawHeader:
    """One decoded header block, before PAX / GNU long-name records are applied."""

    name: bytes
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    type: bytes
    linkname: bytes
    uname: bytes
    gname: bytes
    devmajor: int
    devminor: int


def _cstr(raw: bytes) -> bytes:
    end = raw.find(b"\x00")
    return raw if end < 0 else raw[:end]


def _number(raw: bytes, what: str, where: str) -> int:
    if raw and raw[0] & 0x80:
        if raw[0] == 0xFF:
            raise LayerError(f"tar entry {where}: negative {what}")
        value = raw[0] & 0x7F
        for b in raw[1:]:
            value = (value << 8) | b
        return value
    text = _cstr(raw).strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise LayerError(f"tar entry {where}: {what} field {raw!r} is not an octal number") from None


def decode_header(block: bytes, index: int) -> RawHeader:
    """Decode one non-zero header block (the ``index``-th); a bad checksum is a LayerError."""
    stored = _number(block[148:156], "checksum", f"#{index}")
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
    if stored != unsigned:  # the signed sum (old tars) only when needed: it is the slow one
        signed = sum((b - 256 if b > 127 else b) for b in block[:148] + block[156:]) + 8 * 32
        if stored != signed:
            raise LayerError(f"tar header #{index}: bad checksum (not a tar, or corrupt)")
    name = _cstr(block[0:100])
    where = name[:200].decode("utf-8", "replace") or f"#{index}"
    magic = block[257:265]
    if magic == _USTAR_MAGIC or (magic[:6] == b"ustar\x00"):
        prefix = _cstr(block[345:500])
        if prefix:
            name = prefix + b"/" + name
    elif magic != _GNU_MAGIC and magic.strip(b"\x00"):
        raise LayerError(f"tar entry {where}: unknown header format {magic!r}")
    typeflag = block[156:157]
    if typeflag == b"\x00":
        typeflag = DIR if name.endswith(b"/") else REG
    return RawHeader(
        name=name,
        mode=_number(block[100:108], "mode", where),
        uid=_number(block[108:116], "uid", where),
        gid=_number(block[116:124], "gid", where),
        size=_number(block[124:136], "size", where),
        mtime=_number(block[136:148], "mtime", where),
        type=typeflag,
        linkname=_cstr(block[157:257]),
        uname=_cstr(block[265:297]),
        gname=_cstr(block[297:329]),
        devmajor=_number(block[329:337], "devmajor", where),
        devminor=_number(block[337:345], "devminor", where),
    )


def parse_pax(data: bytes, where: str) -> dict[str, bytes]:
    """PAX records ``"%d key=value\\n"``; values stay bytes (xattrs are binary)."""
    out: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # some writers pad the record block with NULs
            break
        space = data.find(b" ", pos)
        if space < 0:
            raise LayerError(f"tar entry {where}: malformed PAX record")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise LayerError(f"tar entry {where}: malformed PAX record length") from None
        end = pos + length
        if length <= space - pos + 1 or end > len(data) or data[end - 1:end] != b"\n":
            raise LayerError(f"tar entry {where}: malformed PAX record")
        key, eq, value = data[space + 1:end - 1].partition(b"=")
        if not eq:
            raise LayerError(f"tar entry {where}: PAX record without '='")
        out[key.decode("utf-8", "surrogateescape")] = value
        pos = end
    return out
