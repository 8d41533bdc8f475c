"""``layers.archive.pack``: what is kept, determinism, timestamps, and overlayfs upper dirs on a real overlay."""

from __future__ import annotations

import ctypes
import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
import zstandard

from layers.archive import extract, pack
from layers.digest import Digest
from layers.errors import LayerError

from .helpers import tree

ROOT = os.geteuid() == 0


def make_tree(root: Path) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("box\n")
    (root / "bin").mkdir()
    (root / "bin" / "busybox").write_bytes(b"\x7fELF" + os.urandom(3000))
    os.chmod(root / "bin" / "busybox", 0o4755)
    os.link(root / "bin" / "busybox", root / "bin" / "sh")
    (root / "bin" / "ls").symlink_to("busybox")
    (root / "tmp").mkdir()
    os.chmod(root / "tmp", 0o1777)
    (root / "empty").write_bytes(b"")
    os.mkfifo(root / "fifo")
    (root / ("n" * 150)).write_text("long name")
    (root / "ünï").write_text("unicode")
    os.setxattr(root / "etc" / "hostname", "user.note", b"\x00\xffbinary")
    if ROOT:
        (root / "dev").mkdir()
        os.mknod(root / "dev" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.chown(root / "etc" / "hostname", 1000, 1001)


def test_round_trip_keeps_everything(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    make_tree(src)
    out.mkdir()
    buf = io.BytesIO()
    res = pack(str(src), buf, compression="gzip")
    assert res.size == len(buf.getvalue()) and res.digest == Digest.from_bytes(buf.getvalue())
    assert res.diff_id == Digest.from_bytes(gzip.decompress(buf.getvalue()))
    assert extract(io.BytesIO(buf.getvalue()), str(out), compression="gzip") == res.diff_id
    assert tree(out) == tree(src)
    assert os.stat(out / "bin" / "sh").st_ino == os.stat(out / "bin" / "busybox").st_ino
    assert os.getxattr(out / "etc" / "hostname", "user.note") == b"\x00\xffbinary"


def test_readable_by_an_independent_tar_reader(tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    buf = io.BytesIO()
    pack(str(src), buf, compression=None)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["bin/sh"].islnk() and members["bin/sh"].linkname == "bin/busybox"
        assert members["bin/busybox"].mode == 0o4755
        assert members["bin/ls"].issym() and members["bin/ls"].linkname == "busybox"
        assert members["tmp"].isdir() and members["tmp"].mode == 0o1777
        assert members["fifo"].isfifo()
        assert tar.extractfile(members["n" * 150]).read() == b"long name"
        assert tar.extractfile(members["ünï"]).read() == b"unicode"
        assert members["etc/hostname"].pax_headers["SCHILY.xattr.user.note"].encode("utf-8", "surrogateescape") \
            == b"\x00\xffbinary"
        names = [m.name for m in tar.getmembers()]
    assert names == sorted(names, key=lambda n: n.encode().split(b"/"))
    assert "" not in names and "." not in names


def test_sorted_and_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    make_tree(a)
    # the same tree copied (other inodes, creation order by cp's readdir order)
    b.mkdir()
    assert os.system(f"cp -a {a}/. {b}/") == 0
    for comp in (None, "gzip", "zstd"):
        r1, r2 = pack(str(a), io.BytesIO(), compression=comp), pack(str(b), io.BytesIO(), compression=comp)
        assert (r1.diff_id, r1.digest) == (r2.diff_id, r2.digest), comp


def test_timestamp_clamps_mtimes(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "new").write_text("x")
    (src / "old").write_text("y")
    os.utime(src / "old", (100, 100))
    buf = io.BytesIO()
    pack(str(src), buf, compression=None, timestamp=1000)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        assert {m.name: m.mtime for m in tar.getmembers()} == {"new": 1000, "old": 100}
    os.utime(src / "new")  # touched again: same layer under the same timestamp
    assert pack(str(src), io.BytesIO(), compression="gzip", timestamp=1000).digest == \
        pack(str(src), io.BytesIO(), compression="gzip", timestamp=1000).digest


def test_zstd_output_is_a_valid_frame(tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    buf = io.BytesIO()
    res = pack(str(src), buf, compression="zstd")
    plain = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(buf.getvalue()), read_across_frames=True).read()
    assert Digest.from_bytes(plain) == res.diff_id
    assert res.media_type == "application/vnd.oci.image.layer.v1.tar+zstd"


def test_sockets_are_skipped_and_whiteout_names_refused(tmp_path):
    import socket

    src = tmp_path / "src"
    src.mkdir()
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(src / "sock"))
    (src / "file").write_text("x")
    buf = io.BytesIO()
    pack(str(src), buf, compression=None)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        assert tar.getnames() == ["file"]
    s.close()
    (src / ".wh.sneaky").write_text("x")
    with pytest.raises(LayerError, match="cannot be stored"):
        pack(str(src), io.BytesIO())


# -- overlayfs upper dirs ------------------------------------------------------------------------------

def _mount(source: str, target: str, fstype: str, data: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(source.encode(), target.encode(), fstype.encode(), 0, data.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _umount(target: str) -> None:
    ctypes.CDLL(None, use_errno=True).umount2(target.encode(), 0)


@pytest.fixture
def overlay(tmp_path):
    if not ROOT:
        pytest.skip("mounting overlayfs needs root")
    lower, upper, work, merged = (tmp_path / n for n in ("lower", "upper", "work", "merged"))
    for p in (lower, upper, work, merged):
        p.mkdir()
    (lower / "etc" / "conf.d").mkdir(parents=True)
    (lower / "etc" / "conf.d" / "a.conf").write_text("a")
    (lower / "etc" / "passwd").write_text("root")
    (lower / "var" / "cache").mkdir(parents=True)
    (lower / "var" / "cache" / "junk").write_text("junk")
    (lower / "keep").write_text("keep")
    try:
        _mount("overlay", str(merged), "overlay", f"lowerdir={lower},upperdir={upper},workdir={work}")
    except OSError as exc:
        pytest.skip(f"overlayfs cannot be mounted here: {exc}")
    yield lower, upper, merged
    _umount(str(merged))


def test_overlay_upper_becomes_whiteouts_and_opaque_dirs(overlay, tmp_path):
    lower, upper, merged = overlay
    os.unlink(merged / "etc" / "passwd")                       # whiteout
    import shutil

    shutil.rmtree(merged / "var" / "cache")                    # dir removed then made again: opaque
    (merged / "var" / "cache").mkdir()
    (merged / "var" / "cache" / "fresh").write_text("fresh")
    (merged / "newdir").mkdir()                                # a new dir: no opaque marker
    (merged / "newdir" / "f").write_text("f")
    (merged / "etc" / "conf.d" / "b.conf").write_text("b")     # copy-up of the parent dir
    buf = io.BytesIO()
    res = pack(str(upper), buf, compression=None, overlay_upper=True, lowerdirs=[str(lower)])
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        names = tar.getnames()
    assert "etc/.wh.passwd" in names
    assert "var/cache/.wh..wh..opq" in names and "var/cache/fresh" in names
    assert not any(n.startswith("newdir/.wh.") for n in names)
    assert "etc/conf.d/b.conf" in names and "etc/conf.d/a.conf" not in names
    assert not any("trusted.overlay" in k for m in tarfile.open(fileobj=io.BytesIO(buf.getvalue())).getmembers()
                   for k in m.pax_headers)
    # applied on top of the lower tree the layer gives the merged view
    applied = tmp_path / "applied"
    os.system(f"cp -a {lower} {applied}")
    assert extract(io.BytesIO(buf.getvalue()), str(applied), mode="apply") == res.diff_id
    assert tree(applied) == tree(merged)
    # and as a snapshot it stacks under overlayfs to the same view again (SECURITY.md case 7)
    snap, view = tmp_path / "snap", tmp_path / "view"
    snap.mkdir(), view.mkdir()
    extract(io.BytesIO(buf.getvalue()), str(snap), mode="overlay")
    _mount("overlay", str(view), "overlay", f"lowerdir={snap}:{lower}")
    try:
        assert tree(view) == tree(merged)
    finally:
        _umount(str(view))


def test_spurious_opaque_marker_is_dropped_without_a_lower_dir(overlay):
    lower, upper, merged = overlay
    (merged / "brand-new").mkdir()
    os.setxattr(upper / "brand-new", "trusted.overlay.opaque", b"y")   # as some kernels mark new dirs
    buf = io.BytesIO()
    pack(str(upper), buf, compression=None, overlay_upper=True, lowerdirs=[str(lower)])
    assert "brand-new/.wh..wh..opq" not in tarfile.open(fileobj=io.BytesIO(buf.getvalue())).getnames()
    buf = io.BytesIO()
    pack(str(upper), buf, compression=None, overlay_upper=True)    # no lowerdirs: kept, to be safe
    assert "brand-new/.wh..wh..opq" in tarfile.open(fileobj=io.BytesIO(buf.getvalue())).getnames()


def test_compressing_in_a_worker_gives_the_inline_bytes_and_its_errors(tmp_path, monkeypatch):
    """The compressor runs in a worker thread fed in order: the blob is byte for byte what compressing
    inline makes; a failing writer's error reaches the caller and the worker is gone."""
    import threading

    import importlib

    pack_module = importlib.import_module("layers.archive.pack")

    src = tmp_path / "src"
    make_tree(src)
    (src / "big").write_bytes(os.urandom(3 << 20) + bytes(5 << 20))  # several chunks through the queue
    for comp in ("gzip", "zstd"):
        buf = io.BytesIO()
        res = pack(str(src), buf, compression=comp)
        monkeypatch.setattr(pack_module._Sink, "threaded", False)  # the inline path, for reference
        inline = io.BytesIO()
        assert pack(str(src), inline, compression=comp) == res
        monkeypatch.undo()
        assert buf.getvalue() == inline.getvalue() and res.digest == Digest.from_bytes(buf.getvalue()), comp

    class DiskFull(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def write(self, data) -> int:
            self.calls += 1
            if self.calls == 2:
                raise OSError(28, "No space left on device")
            return len(data)

    out = DiskFull()
    with pytest.raises(OSError, match="No space"):
        pack(str(src), out, compression="gzip")
    assert not [t for t in threading.enumerate() if t.name == "pack-compress"]
    assert out.calls == 2  # nothing written after the failure
