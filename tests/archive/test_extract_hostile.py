"""SECURITY.md cases 1-12 against ``layers.archive.extract``, in both resolver modes.

Every test writes a canary outside the destination and checks it afterwards. The layers are made
with the stdlib's tarfile writer (or raw bytes), never with the code under test.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from layers.archive import extract
from layers.archive.inroot import Root
from layers.errors import LayerError

from .helpers import build, chardev, d, f, hard, member, sym

ROOT = os.geteuid() == 0


def _openat2_available(tmp: Path) -> bool:
    try:
        Root(str(tmp), use_openat2=True).close()
    except OSError:
        return False
    return True


@pytest.fixture(params=["openat2", "walk"])
def resolver(request, tmp_path: Path):
    if request.param == "openat2" and not _openat2_available(tmp_path):
        pytest.skip("this kernel has no openat2 (Linux < 5.6): only the portable walk runs")
    return request.param == "openat2"


@pytest.fixture
def box(tmp_path: Path):
    """(dest, canary dir) with a canary file and dir beside dest."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "canary").write_text("untouched")
    os.chmod(outside / "canary", 0o600)
    dest = tmp_path / "box" / "root"
    dest.mkdir(parents=True)
    return dest, outside


def run(data: bytes, dest: Path, use_openat2: bool, **kw):
    return extract(io.BytesIO(data), str(dest), use_openat2=use_openat2, **kw)


def assert_canary(outside: Path) -> None:
    assert sorted(os.listdir(outside)) == ["canary"]
    assert (outside / "canary").read_text() == "untouched"
    assert stat.S_IMODE((outside / "canary").stat().st_mode) == 0o600


def nothing_outside(tmp_path: Path) -> list[str]:
    """Entries under tmp_path other than the test's own layout."""
    allowed = {"outside", "outside/canary", "box", "box/root"}
    extra = []
    for dirpath, dirnames, filenames in os.walk(tmp_path):
        for name in dirnames + filenames:
            rel = os.path.relpath(os.path.join(dirpath, name), tmp_path)
            if rel not in allowed and not rel.startswith("box/root/"):
                extra.append(rel)
    return extra


# -- case 1: .. and absolute names -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["../x", "a/../../x", "./../../outside/canary", "a/b/../../../x"])
def test_dotdot_names_are_refused(box, tmp_path, resolver, name):
    dest, outside = box
    with pytest.raises(LayerError, match="climbs out"):
        run(build(d("a"), f(name, b"pwned")), dest, resolver)
    assert_canary(outside)
    assert nothing_outside(tmp_path) == []


def test_absolute_names_land_inside(box, tmp_path, resolver):
    dest, outside = box
    run(build(f("/etc/passwd", b"inside"), f(str(outside / "canary"), b"inside too")), dest, resolver)
    assert (dest / "etc" / "passwd").read_bytes() == b"inside"
    assert (dest / outside.relative_to("/") / "canary").read_bytes() == b"inside too"
    assert_canary(outside)


# -- case 2: a symlink to / then a write through it ------------------------------------------------

def test_write_through_planted_root_symlink(box, tmp_path, resolver):
    dest, outside = box
    target = str(outside)
    run(build(sym("foo", "/"), f("foo/tmp/pwn", b"x"), sym("esc", target), f("esc/new", b"x")), dest, resolver)
    assert_canary(outside)
    assert not os.path.exists("/tmp/pwn")
    # followed as if dest were /: the files are inside dest
    assert (dest / "tmp" / "pwn").read_bytes() == b"x"
    assert (dest / target.lstrip("/") / "new").read_bytes() == b"x"


def test_write_through_symlink_from_an_earlier_layer(box, tmp_path, resolver):
    dest, outside = box
    run(build(sym("etc", str(outside))), dest, resolver)
    run(build(f("etc/canary", b"overwritten")), dest, resolver)
    assert_canary(outside)
    assert (dest / str(outside).lstrip("/") / "canary").read_bytes() == b"overwritten"


def test_file_over_a_symlink_replaces_the_link(box, resolver):
    dest, outside = box
    run(build(sym("victim", str(outside / "canary")), f("victim", b"new")), dest, resolver)
    assert_canary(outside)
    assert not (dest / "victim").is_symlink() and (dest / "victim").read_bytes() == b"new"


# -- case 3: a relative chain that climbs ----------------------------------------------------------

def test_relative_symlink_chain_is_clamped(box, tmp_path, resolver):
    dest, outside = box
    layer = build(d("b"), d("b/c"), sym("b/c/up", "../../.."), sym("a", "b/c/up/../outside"), f("a/canary", b"x"),
                  f("b/c/up/up2/file", b"y"))
    run(layer, dest, resolver)
    assert_canary(outside)
    assert (dest / "outside" / "canary").read_bytes() == b"x"
    assert (dest / "up2" / "file").read_bytes() == b"y"
    assert nothing_outside(tmp_path) == []


def test_symlink_loop_is_an_error(box, resolver):
    dest, outside = box
    with pytest.raises(LayerError, match="symbolic links"):
        run(build(sym("a", "b"), sym("b", "a"), f("a/x", b"x")), dest, resolver)


# -- case 4 and 5: hardlinks -----------------------------------------------------------------------

@pytest.mark.parametrize("target", ["../../outside/canary", "../outside/canary"])
def test_hardlink_climbing_out_is_refused(box, resolver, target):
    dest, outside = box
    with pytest.raises(LayerError, match="not a path inside"):
        run(build(hard("link", target)), dest, resolver)
    assert_canary(outside)
    assert os.stat(outside / "canary").st_nlink == 1


def test_absolute_hardlink_resolves_inside(box, resolver):
    dest, outside = box
    with pytest.raises(LayerError, match="does not exist"):
        run(build(hard("link", str(outside / "canary"))), dest, resolver)
    assert os.stat(outside / "canary").st_nlink == 1
    run(build(f("etc/passwd", b"in"), hard("link", "/etc/passwd")), dest, resolver)
    assert os.stat(dest / "link").st_ino == os.stat(dest / "etc" / "passwd").st_ino
    assert_canary(outside)


def test_hardlink_through_a_symlinked_dir_stays_inside(box, resolver):
    dest, outside = box
    with pytest.raises(LayerError):
        run(build(sym("dir", str(outside)), hard("link", "dir/canary")), dest, resolver)
    assert os.stat(outside / "canary").st_nlink == 1
    assert_canary(outside)


def test_hardlink_to_an_outward_symlink_then_chmod(box, resolver):
    dest, outside = box
    layer = build(sym("s", str(outside / "canary")), hard("h", "s"), f("s", b"x", mode=0o777),
                  d("h2"), hard("h3", "h"), member("h", tarfile.REGTYPE, data=b"", mode=0o4777))
    run(layer, dest, resolver)
    assert_canary(outside)
    # h3 links the symlink itself, not its target
    assert (dest / "h3").is_symlink() and os.readlink(dest / "h3") == str(outside / "canary")


# -- case 6 and 7: whiteouts -----------------------------------------------------------------------

@pytest.mark.parametrize("name", [".wh..", ".wh...", "etc/.wh..", ".wh.", "a/.wh."])
@pytest.mark.parametrize("mode", ["apply", "overlay"])
def test_invalid_whiteouts(tmp_path, resolver, name, mode):
    lower = tmp_path / "lower"
    lower.mkdir()
    (lower / "keep").write_text("lower")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "etc").mkdir()
    (dest / "etc" / "x").write_text("x")
    with pytest.raises(LayerError, match="not a valid whiteout"):
        run(build(d("etc"), f(name, b"")), dest, resolver, mode=mode)
    assert (lower / "keep").read_text() == "lower"
    assert (dest / "etc" / "x").read_text() == "x"


def test_entry_inside_a_whiteout_is_refused(box, resolver):
    dest, _ = box
    with pytest.raises(LayerError, match="inside a whiteout"):
        run(build(f(".wh.dir/file", b"x")), dest, resolver)


def test_whiteout_apply_removes_and_overlay_marks(tmp_path, resolver):
    dest = tmp_path / "apply"
    dest.mkdir()
    (dest / "gone").write_text("x")
    (dest / "dir").mkdir()
    (dest / "dir" / "deep").write_text("x")
    (dest / "link").symlink_to("/etc")
    layer = build(f(".wh.gone", b""), f(".wh.dir", b""), f(".wh.link", b""), f(".wh.never", b""))
    run(layer, dest, resolver, mode="apply")
    assert os.listdir(dest) == []
    assert os.path.isdir("/etc")
    snap = tmp_path / "snap"
    snap.mkdir()
    run(layer, snap, resolver, mode="overlay")
    for name in ("gone", "dir", "link", "never"):
        st = os.lstat(snap / name)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def test_opaque_dir_hides_lower_children_keeps_new_ones(tmp_path, resolver):
    dest = tmp_path / "apply"
    (dest / "etc" / "sub").mkdir(parents=True)
    (dest / "etc" / "old").write_text("lower")
    (dest / "etc" / "sub" / "x").write_text("lower")
    (dest / "other").write_text("kept")
    layer = build(d("etc"), f("etc/.wh..wh..opq", b""), f("etc/new", b"upper"), d("etc/sub2"))
    run(layer, dest, resolver, mode="apply")
    assert sorted(os.listdir(dest / "etc")) == ["new", "sub2"]
    assert (dest / "other").read_text() == "kept"
    # the marker after the new children (a writer that does not sort) keeps them too
    (dest / "etc" / "old2").write_text("lower")
    run(build(f("etc/newer", b"u"), f("etc/.wh..wh..opq", b"")), dest, resolver, mode="apply")
    assert sorted(os.listdir(dest / "etc")) == ["newer"]


@pytest.mark.skipif(not ROOT, reason="trusted.* xattrs and whiteout devices need root")
def test_opaque_in_overlay_mode_is_an_xattr(tmp_path, resolver):
    snap = tmp_path / "snap"
    snap.mkdir()
    run(build(d("etc"), f("etc/.wh..wh..opq", b""), f("etc/new", b"upper")), snap, resolver, mode="overlay")
    assert os.getxattr(snap / "etc", "trusted.overlay.opaque") == b"y"
    assert os.listdir(snap / "etc") == ["new"]


def test_trusted_xattrs_in_a_layer_are_ignored(tmp_path, resolver):
    snap = tmp_path / "snap"
    snap.mkdir()
    run(build(d("etc", pax={"SCHILY.xattr.trusted.overlay.opaque": "y"})), snap, resolver, mode="overlay")
    with pytest.raises(OSError):
        os.getxattr(snap / "etc", "trusted.overlay.opaque")


# -- case 8: devices -------------------------------------------------------------------------------

@pytest.mark.skipif(not ROOT, reason="mknod needs root")
def test_devices_kept_and_absurd_numbers_refused(box, resolver):
    dest, _ = box
    run(build(chardev("dev/null", 1, 3, mode=0o666)), dest, resolver)
    st = os.lstat(dest / "dev" / "null")
    assert stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)
    assert stat.S_IMODE(st.st_mode) == 0o666
    big = build(chardev("dev/big", 2**40, 1), fmt=tarfile.GNU_FORMAT)
    with pytest.raises(LayerError, match="out of range"):
        run(big, dest, resolver)
    with pytest.raises(LayerError, match="out of range"):
        run(build(chardev("dev/big2", 4096, 0)), dest, resolver)
    with pytest.raises(LayerError, match="out of range"):
        run(build(chardev("dev/big3", 1, 1 << 20)), dest, resolver)
    assert not os.path.lexists(dest / "dev" / "big")


# -- case 9: setuid ----------------------------------------------------------------------------------

def test_setuid_and_sticky_bits_survive(box, resolver):
    dest, _ = box
    run(build(f("bin/su", b"\x7fELF", mode=0o4755, uid=0, gid=0), f("bin/wall", b"x", mode=0o2755),
              d("tmp", mode=0o1777)), dest, resolver)
    assert stat.S_IMODE((dest / "bin" / "su").stat().st_mode) == 0o4755
    assert stat.S_IMODE((dest / "bin" / "wall").stat().st_mode) == 0o2755
    assert stat.S_IMODE((dest / "tmp").stat().st_mode) == 0o1777


@pytest.mark.skipif(not ROOT, reason="chown needs root")
def test_owners_and_setuid_after_chown(box, resolver):
    dest, _ = box
    run(build(f("bin/prog", b"x", mode=0o6755, uid=1000, gid=1000)), dest, resolver)
    st = (dest / "bin" / "prog").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, 0o6755)


# -- case 10: bombs ------------------------------------------------------------------------------------

def _gzip_bomb(n: int) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9) as g:
        chunk = b"\x00" * (1 << 20)
        for _ in range(n):
            g.write(chunk)
    return buf.getvalue()


def test_gzip_bomb_stops_at_the_cap(box, resolver):
    dest, _ = box
    bomb = _gzip_bomb(64)  # 64 MiB of zeros in ~64 KiB
    assert len(bomb) < 100_000
    with pytest.raises(LayerError, match="more than 1048576 bytes"):
        run(bomb, dest, resolver, compression="gzip", limit=1 << 20)


def test_gzip_bomb_inside_a_file_entry(box, resolver):
    dest, _ = box
    big = b"\x00" * (8 << 20)
    layer = gzip.compress(build(f("big", big)), compresslevel=9)
    with pytest.raises(LayerError, match="more than"):
        run(layer, dest, resolver, compression="gzip", limit=1 << 20)


def test_zstd_huge_window_is_refused(box, resolver):
    import zstandard

    dest, _ = box
    params = zstandard.ZstdCompressionParameters.from_level(19, window_log=28)
    comp = zstandard.ZstdCompressor(compression_params=params).compressobj(size=-1)  # size unknown: window kept
    frame = comp.compress(build(f("a", b"x" * 1000))) + comp.flush()
    assert zstandard.get_frame_parameters(frame).window_size == 1 << 28
    with pytest.raises(LayerError, match="broken zstd data"):
        run(frame, dest, resolver, compression="zstd")


# -- case 11: truncation and trailing garbage --------------------------------------------------------

def test_truncated_in_a_file_is_an_error(box, resolver):
    dest, _ = box
    layer = build(f("a", b"y" * 5000))
    with pytest.raises(LayerError, match="truncated"):
        run(layer[:1536], dest, resolver)
    with pytest.raises(LayerError, match="truncated"):
        run(layer[:700], dest, resolver)


def test_truncated_gzip_is_an_error(box, resolver):
    dest, _ = box
    layer = gzip.compress(build(f("a", os.urandom(20000))))
    with pytest.raises(LayerError, match="truncated|broken"):
        run(layer[: len(layer) // 2], dest, resolver, compression="gzip")


def test_data_after_the_end_blocks_is_an_error(box, resolver):
    dest, _ = box
    layer = build(f("a", b"x"))
    assert run(layer + b"\x00" * 4096, dest, resolver)  # zero padding is fine
    with pytest.raises(LayerError, match="after the end"):
        run(layer + b"garbage", dest, resolver)


def test_bad_header_checksum(box, resolver):
    dest, _ = box
    layer = bytearray(build(f("a", b"x")))
    layer[0] ^= 1
    with pytest.raises(LayerError, match="checksum"):
        run(bytes(layer), dest, resolver)


def test_not_a_tar_at_all(box, resolver):
    dest, _ = box
    with pytest.raises(LayerError):
        run(b"hello world" * 100, dest, resolver)


def test_diff_id_covers_every_byte(box, resolver):
    from layers.digest import Digest

    dest, _ = box
    layer = build(f("a", b"x")) + b"\x00" * 512
    assert run(layer, dest, resolver) == Digest.from_bytes(layer)


# -- case 12: the same path twice --------------------------------------------------------------------

def test_same_path_twice_the_later_wins(box, resolver):
    dest, _ = box
    run(build(f("a", b"first"), f("a", b"second", mode=0o600), d("dir"), f("dir/x", b"x"), d("dir", mode=0o700),
              f("swap", b"file"), d("swap"), f("swap/inner", b"i"), d("gone"), f("gone", b"now a file")),
        dest, resolver)
    assert (dest / "a").read_bytes() == b"second" and stat.S_IMODE((dest / "a").stat().st_mode) == 0o600
    assert (dest / "dir" / "x").read_bytes() == b"x"  # a directory over a directory merges
    assert stat.S_IMODE((dest / "dir").stat().st_mode) == 0o700
    assert (dest / "swap" / "inner").read_bytes() == b"i"
    assert (dest / "gone").read_bytes() == b"now a file"


# -- other hostile members -----------------------------------------------------------------------------

def test_sparse_and_unknown_types_are_refused(box, resolver):
    dest, _ = box
    with pytest.raises(LayerError, match="unsupported member type"):
        run(build(member("weird", b"Z")), dest, resolver)
    with pytest.raises(LayerError, match="sparse"):
        run(build(f("s", b"x", pax={"GNU.sparse.major": "1", "GNU.sparse.minor": "0"})), dest, resolver)


def test_parent_that_is_a_file(box, resolver):
    dest, _ = box
    with pytest.raises(LayerError, match="not a directory"):
        run(build(f("a", b"x"), f("a/b", b"y")), dest, resolver)


def test_huge_pax_header_is_refused(box, resolver):
    dest, _ = box
    with pytest.raises(LayerError, match="extended header"):
        run(build(f("a", b"x", pax={"comment": "c" * (2 << 20)})), dest, resolver)


def test_long_and_unicode_names(box, resolver):
    dest, _ = box
    long = "d" * 120 + "/" + "é" * 80 + ".txt"
    gnu = build(f(long, b"gnu"), fmt=tarfile.GNU_FORMAT)
    run(gnu, dest, resolver)
    assert (dest / long).read_bytes() == b"gnu"
    run(build(f(long, b"pax"), sym("l" * 150, "t" * 200)), dest, resolver)
    assert (dest / long).read_bytes() == b"pax"
    assert os.readlink(dest / ("l" * 150)) == "t" * 200
