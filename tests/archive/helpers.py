"""Tar building blocks for the archive tests, made with the stdlib's ``tarfile`` writer (an independent
implementation from the one under test), so hostile layers can be written member by member."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path


def member(name: str, kind: bytes = tarfile.REGTYPE, *, data: bytes = b"", mode: int = 0o644,
           linkname: str = "", major: int = 0, minor: int = 0, uid: int = 0, gid: int = 0,
           mtime: int = 1_700_000_000, pax: dict[str, str] | None = None) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = mtime
    info.linkname = linkname
    info.devmajor, info.devminor = major, minor
    info.size = len(data) if kind in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
    if pax:
        info.pax_headers = dict(pax)
    return info, data


def build(*members: tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def f(name: str, data: bytes = b"x", **kw):
    return member(name, tarfile.REGTYPE, data=data, **kw)


def d(name: str, **kw):
    kw.setdefault("mode", 0o755)
    return member(name, tarfile.DIRTYPE, **kw)


def sym(name: str, target: str, **kw):
    kw.setdefault("mode", 0o777)
    return member(name, tarfile.SYMTYPE, linkname=target, **kw)


def hard(name: str, target: str, **kw):
    return member(name, tarfile.LNKTYPE, linkname=target, **kw)


def chardev(name: str, major: int, minor: int, **kw):
    return member(name, tarfile.CHRTYPE, major=major, minor=minor, **kw)


def tree(root: Path) -> dict[str, tuple]:
    """A comparable view of a tree: path -> (type, mode, uid, gid, size, link or data, rdev, mtime)."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                body: object = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                body = p.read_bytes()
            else:
                body = None
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                        st.st_size if stat.S_ISREG(st.st_mode) else 0, body, st.st_rdev,
                        None if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode) else int(st.st_mtime))
    return out
