"""A stand-in for ``layers.archive`` (pack/extract over :mod:`tarfile`), used ONLY while the real
module is not in the tree, so the executor can be tested in-process meanwhile. It trusts its input
(these tests build every tar themselves) and is never used once ``layers.archive`` exists."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass


@dataclass(frozen=True)
class PackResult:
    diff_id: object
    digest: object
    size: int
    media_type: str


def pack(source_dir, out, *, overlay_upper=False, timestamp=None, compression="gzip"):
    from layers.digest import Digest

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(source_dir):
            dirnames.sort()
            for name in dirnames + sorted(filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, source_dir)
                st = os.lstat(full)
                if overlay_upper and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    info = tarfile.TarInfo(os.path.join(os.path.dirname(rel), ".wh." + name))
                    info.mtime = timestamp or 0
                    tar.addfile(info)
                    continue
                info = tar.gettarinfo(full, rel)
                info.uname = info.gname = ""
                if timestamp is not None:
                    info.mtime = min(int(info.mtime), timestamp)
                if info.isfile():
                    with open(full, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
    raw = buf.getvalue()
    body = gzip.compress(raw, compresslevel=1, mtime=0)
    out.write(body)
    return PackResult(Digest.from_bytes(raw), Digest.from_bytes(body), len(body),
                      "application/vnd.oci.image.layer.v1.tar+gzip")


def extract(stream, dest, *, compression=None, mode="apply"):
    from layers.digest import Digest

    data = stream.read()
    if compression == "gzip" or data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            base = os.path.basename(member.name)
            if base.startswith(".wh."):
                if mode == "overlay":
                    os.mknod(os.path.join(dest, os.path.dirname(member.name), base[4:]), stat.S_IFCHR, 0)
                continue
            tar.extract(member, dest, filter="tar")
    return Digest.from_bytes(data)


def install() -> bool:
    """Put the stand-in in place when ``layers.archive`` is missing; True when it did."""
    import importlib.util
    import sys

    import layers

    if importlib.util.find_spec("layers.archive") is not None:
        return False
    module = sys.modules[__name__]
    sys.modules["layers.archive"] = module
    layers.archive = module
    return True


def uninstall() -> None:
    import sys

    import layers

    if sys.modules.get("layers.archive") is sys.modules[__name__]:
        del sys.modules["layers.archive"]
        if getattr(layers, "archive", None) is sys.modules[__name__]:
            del layers.archive
