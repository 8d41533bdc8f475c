"""layers.fstree.remove_tree: removes what it owns, never what a symlink points at."""

from __future__ import annotations

import os

import pytest

from layers.fstree import remove_tree


def _tree(base):
    (base / "a" / "b").mkdir(parents=True)
    (base / "a" / "b" / "f").write_text("x")
    (base / "a" / "g").write_text("y")
    os.mkfifo(base / "a" / "fifo")
    return base


def test_removes_a_tree_and_leaves_symlink_targets(tmp_path):
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep" / "file").write_text("precious")
    tree = _tree(tmp_path / "t")
    os.symlink(outside / "keep", tree / "a" / "b" / "dirlink")      # a symlink to a directory
    os.symlink(outside / "keep" / "file", tree / "filelink")
    os.symlink(tmp_path / "nowhere", tree / "dangling")
    remove_tree(str(tree))
    assert not os.path.lexists(tree)
    assert (outside / "keep" / "file").read_text() == "precious"


def test_missing_path_file_and_symlink_at_top(tmp_path):
    remove_tree(str(tmp_path / "missing"))                    # not an error
    (tmp_path / "f").write_text("z")
    remove_tree(str(tmp_path / "f"))
    assert not (tmp_path / "f").exists()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "inside").write_text("kept")
    os.symlink(tmp_path / "d", tmp_path / "top")
    remove_tree(str(tmp_path / "top"))                        # the link goes, not what it names
    assert not os.path.lexists(tmp_path / "top")
    assert (tmp_path / "d" / "inside").read_text() == "kept"


def test_errors_raise_unless_ignored(tmp_path):
    tree = _tree(tmp_path / "t")
    # an immutable file cannot be unlinked, even by root (chattr +i through the ioctl)
    import fcntl
    import struct

    victim = tree / "a" / "g"
    fd = os.open(victim, os.O_RDONLY)
    FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_IMMUTABLE_FL = 0x80086601, 0x40086602, 0x10
    flags = struct.unpack("l", fcntl.ioctl(fd, FS_IOC_GETFLAGS, b"\0" * 8))[0]
    fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("l", flags | FS_IMMUTABLE_FL))
    try:
        with pytest.raises(OSError):
            remove_tree(str(tree))
        remove_tree(str(tree), ignore_errors=True)            # removes what it can, raises nothing
        assert victim.exists() and not (tree / "a" / "b").exists()
    finally:
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("l", flags))
        os.close(fd)
    remove_tree(str(tree))
    assert not tree.exists()
