"""Write a tar of a tree that is reached through directory fds, never through a path the host resolves.

``cp`` packs a file or directory found inside a container's root (or on the host) with
:class:`TreeWriter`: every child is opened relative to its parent's fd with ``O_NOFOLLOW``, so a
symlink in the tree is stored as a symlink and never followed out of the root. The entries are
:func:`layers.archive.pack.node_entry`'s, as in a layer (sorted names, numeric owners, the xattrs a
layer keeps, hardlinks for a second path to an inode). ``owner`` rewrites every uid/gid (``docker cp``
without ``-a``).
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from layers.archive import tarformat as tf
from layers.archive.pack import node_entry, read_xattrs

__all__ = ["TreeWriter"]

_CHUNK = 1 << 20


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
        # xattrs through /proc: the fd's directory itself, then ``name`` not followed
        entry = node_entry(arcname, st, uid=uid, gid=gid, mtime=max(int(st.st_mtime), 0),
                           xattrs=read_xattrs(f"/proc/self/fd/{parent_fd}/{name}", missing_ok=True),
                           linkname=os.readlink(name, dir_fd=parent_fd) if stat.S_ISLNK(mode) else "",
                           inodes=self._inodes)
        if entry is None:
            return
        if entry.type == tf.DIR:
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
            try:
                if arcname:
                    self._out.write(tf.encode(entry))
                for child in sorted(os.listdir(fd), key=os.fsencode):
                    self.add(fd, child, f"{arcname}/{child}" if arcname else child)
            finally:
                os.close(fd)
        elif entry.type == tf.REG:
            self._file(parent_fd, name, entry)
        else:
            self._out.write(tf.encode(entry))

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

