"""Write a tar of a tree that is reached through directory fds, never through a path the host resolves.

``cp`` packs a file or directory found inside a container's root (or on the host) with
:class:`TreeWriter`: every child is opened relative to its parent's fd with ``O_NOFOLLOW``, so a
symlink in the tree is stored as a symlink and never followed out of the root. The entries use the
layer tar format of :mod:`layers.archive.tarformat` (sorted names, numeric owners, hardlinks for a
second path to an inode). ``owner`` rewrites every uid/gid (``docker cp`` without ``-a``).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

from layers.archive import tarformat as tf

__all__ = ["TreeWriter"]

_CHUNK = 1 << 20
_SKIP_XATTRS = ("trusted.", "security.selinux")


class TreeWriter:
    """``add(parent_fd, name, arcname)`` appends one node (a directory with its whole subtree);
    ``close()`` ends the archive. ``arcname`` "" adds a directory's children only."""

    def __init__(self, out: BinaryIO, owner: tuple[int, int] | None = None) -> None:
        self._out = out
        self._owner = owner
        self._inodes: dict[tuple[int, int], str] = {}

    def close(self) -> None:
        self._out.write(tf.end_of_archive())
        flush = getattr(self._out, "flush", None)
        if flush is not None:
            flush()

    def add(self, parent_fd: int, name: str, arcname: str) -> None:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISSOCK(mode):
            return
        uid, gid = self._owner if self._owner is not None else (st.st_uid, st.st_gid)
        common = dict(name=arcname, mode=stat.S_IMODE(mode), uid=uid, gid=gid, mtime=max(int(st.st_mtime), 0),
                      xattrs=_xattrs(parent_fd, name))
        if stat.S_ISDIR(mode):
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
            try:
                if arcname:
                    self._out.write(tf.encode(tf.Entry(type=tf.DIR, **common)))
                for child in sorted(os.listdir(fd), key=os.fsencode):
                    self.add(fd, child, f"{arcname}/{child}" if arcname else child)
            finally:
                os.close(fd)
        elif stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1:
                first = self._inodes.get(key)
                if first is not None:
                    self._out.write(tf.encode(tf.Entry(type=tf.LNK, linkname=first, **common)))
                    return
                self._inodes[key] = arcname
            self._file(parent_fd, name, tf.Entry(type=tf.REG, size=st.st_size, **common))
        elif stat.S_ISLNK(mode):
            link = os.readlink(name, dir_fd=parent_fd)
            self._out.write(tf.encode(tf.Entry(type=tf.SYM, linkname=link, **common)))
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            self._out.write(tf.encode(tf.Entry(type=tf.CHR if stat.S_ISCHR(mode) else tf.BLK,
                                               devmajor=os.major(st.st_rdev), devminor=os.minor(st.st_rdev),
                                               **common)))
        elif stat.S_ISFIFO(mode):
            self._out.write(tf.encode(tf.Entry(type=tf.FIFO, **common)))

    def _file(self, parent_fd: int, name: str, entry: tf.Entry) -> None:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        try:
            self._out.write(tf.encode(entry))
            left = entry.size
            while left:
                data = os.read(fd, min(left, _CHUNK))
                if not data:  # shrank while read: pad with zeros, as the header promised the size
                    self._out.write(b"\x00" * left)
                    break
                left -= len(data)
                self._out.write(data)
        finally:
            os.close(fd)
        self._out.write(tf.padding(entry.size))


def _xattrs(parent_fd: int, name: str) -> tuple[tuple[str, bytes], ...]:
    path = f"/proc/self/fd/{parent_fd}/{name}"  # the fd's directory itself, then ``name`` not followed
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM, errno.ENOENT):
            return ()
        raise
    out = []
    for key in sorted(names):
        if key.startswith(_SKIP_XATTRS):
            continue
        try:
            out.append((key, os.getxattr(path, key, follow_symlinks=False)))
        except OSError as exc:
            if exc.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
                raise
    return tuple(out)
