"""Pack a directory (or an overlayfs upper dir) into a layer tar, compressed, both digests in one pass.

The walk is sorted by name at every level (byte order), so the same tree gives the same bytes.
Kept: regular files, directories, symlinks, hardlinks (the second path of an inode becomes a link
to the first), char and block devices, fifos, modes with setuid/setgid/sticky bits, numeric
owners, xattrs (``user.*``, ``security.*``; never ``trusted.*``). Sockets are skipped, as Docker does.

With ``overlay_upper=True`` the tree is read as an overlayfs upper dir: a 0/0 char device is a
whiteout and becomes ``.wh.<name>``; a directory marked ``trusted.overlay.opaque=y`` (rootless: ``user.``) gets a
``.wh..wh..opq`` entry, unless ``lowerdirs`` are given and none of them has a directory there
(then nothing is hidden and the marker would be spurious).

``timestamp`` (SOURCE_DATE_EPOCH) clamps every mtime to at most that value, as BuildKit's
``rewrite-timestamp`` does; whiteouts get it too (or 0 when it is not given).

The pieces other tree walkers share (``cp``'s fd walk, ``diff``'s read of an upper dir):
:func:`node_entry` (a stat -> the tar entry, hardlinks included), :func:`read_xattrs` (what a
layer keeps), :func:`is_whiteout` and :func:`is_opaque` (overlayfs' marks).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from typing import BinaryIO, Sequence

from layers.digest import Digest
from layers.errors import InvalidInput, LayerError
from layers.mediatype import MediaType
from layers.value import frozen

from . import tarformat as tf
from .compression import Compressor

__all__ = ["PackResult", "pack", "node_entry", "read_xattrs", "is_whiteout", "is_opaque"]

_CHUNK = 1 << 20
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
# overlay metadata: trusted.* (root), user.overlay.* (rootless overlay), user.fuseoverlayfs.* (fuse-overlayfs)
_SKIP_XATTR_PREFIXES = ("trusted.", "security.selinux", "user.overlay.", "user.fuseoverlayfs.")
_UNSUPPORTED_OVERLAY = ("overlay.redirect", "overlay.metacopy")


@frozen(slots=True)
class PackResult:
    """What :func:`pack` wrote: ``diff_id`` (the plain tar's digest), ``digest``/``size`` of the blob."""

    diff_id: Digest
    digest: Digest
    size: int
    media_type: str


class _Sink:
    """Tar bytes in: hashed (diff_id), compressed, hashed again (digest) and written to ``out``.

    With compression, the compressor (ISA-L and zstd release the GIL), the second hash and the writes
    run in one worker thread, fed in order through a short queue, while the caller reads the next
    files: the same bytes as doing it inline, about a third less wall time on a large layer."""

    _DEPTH = 4
    threaded = True  # False: compress inline (the same bytes; tests compare the two)

    def __init__(self, out: BinaryIO, compression: str | None) -> None:
        self._out = out
        self._comp = Compressor(compression)
        self._plain = hashlib.sha256()
        self._packed = hashlib.sha256()
        self.size = 0
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._queue = None
        self._worker = None
        self._error: BaseException | None = None
        if compression is not None and self.threaded:
            import queue
            import threading

            self._queue = queue.Queue(self._DEPTH)
            self._worker = threading.Thread(target=self._work, name="pack-compress", daemon=True)
            self._worker.start()

    def write(self, data: bytes) -> None:
        # small headers are batched so the compressor and hashes see large buffers
        self._pending.append(data)
        self._pending_len += len(data)
        if self._pending_len >= _CHUNK:
            self._drain()

    def _drain(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending, self._pending_len = [], 0
        self._plain.update(data)
        if self._queue is None:
            self._emit(self._comp.compress(data))
            return
        if self._error is not None:
            raise self._error
        self._queue.put(data)

    def _work(self) -> None:
        try:
            while (data := self._queue.get()) is not None:
                if self._error is None:  # after a failure, only drain the queue so the caller never blocks
                    self._emit(self._comp.compress(data))
            if self._error is None:
                self._emit(self._comp.flush())
        except BaseException as exc:  # handed to the caller at its next write or at close
            self._error = exc
            while self._queue.get() is not None:
                pass

    def _emit(self, packed: bytes) -> None:
        if packed:
            self._packed.update(packed)
            self._out.write(packed)
            self.size += len(packed)

    def close(self) -> tuple[Digest, Digest]:
        self._drain()
        if self._queue is None:
            self._emit(self._comp.flush())
        else:
            self._stop()
            if self._error is not None:
                raise self._error
        return Digest("sha256", self._plain.hexdigest()), Digest("sha256", self._packed.hexdigest())

    def _stop(self) -> None:
        """End the worker (after what is queued) and wait for it; idempotent."""
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._worker = None


def read_xattrs(path: str, *, overlay: bool = False, missing_ok: bool = False) -> tuple[tuple[str, bytes], ...]:
    """The xattrs a layer keeps of ``path`` (not followed), sorted; none where the filesystem has none,
    or with ``missing_ok`` where ``path`` is gone. ``overlay``: a redirect_dir/metacopy mark is a LayerError."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM) or (missing_ok and exc.errno == errno.ENOENT):
            return ()
        raise
    if overlay and any(n.endswith(_UNSUPPORTED_OVERLAY) for n in names):
        raise LayerError(f"pack {path}: overlayfs redirect_dir or metacopy is on (the upper dir is not a plain diff)")
    out = []
    for name in sorted(names):
        if name.startswith(_SKIP_XATTR_PREFIXES):
            continue
        try:
            out.append((name, os.getxattr(path, name, follow_symlinks=False)))
        except OSError as exc:
            if exc.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
                raise
    return tuple(out)


def is_whiteout(st: os.stat_result) -> bool:
    """An overlayfs whiteout: a 0/0 character device."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str) -> bool:
    """Whether directory ``path`` is an overlayfs opaque directory (``trusted.``/``user.overlay.opaque=y``,
    or fuse-overlayfs's ``user.fuseoverlayfs.opaque``)."""
    for attr in ("trusted.overlay.opaque", "user.overlay.opaque", "user.fuseoverlayfs.opaque"):
        try:
            if os.getxattr(path, attr, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False


def node_entry(name: str, st: os.stat_result, *, uid: int, gid: int, mtime: int,
               xattrs: tuple[tuple[str, bytes], ...], linkname: str = "",
               inodes: dict[tuple[int, int], str]) -> tf.Entry | None:
    """The tar entry of the node ``st`` stored as ``name`` (``linkname``: a symlink's target), or None
    for a socket (not kept, as Docker does). A regular file with more than one link whose inode
    ``inodes`` already holds is a hardlink to that first name; a new one is added to ``inodes``."""
    mode = st.st_mode
    common = dict(name=name, mode=stat.S_IMODE(mode), uid=uid, gid=gid, mtime=mtime, xattrs=xattrs)
    if stat.S_ISDIR(mode):
        return tf.Entry(type=tf.DIR, **common)
    if stat.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1:
            first = inodes.get(key)
            if first is not None:
                return tf.Entry(type=tf.LNK, linkname=first, **common)
            inodes[key] = name
        return tf.Entry(type=tf.REG, size=st.st_size, **common)
    if stat.S_ISLNK(mode):
        return tf.Entry(type=tf.SYM, linkname=linkname, **common)
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return tf.Entry(type=tf.CHR if stat.S_ISCHR(mode) else tf.BLK, devmajor=os.major(st.st_rdev),
                        devminor=os.minor(st.st_rdev), **common)
    if stat.S_ISFIFO(mode):
        return tf.Entry(type=tf.FIFO, **common)
    return None


class _Walker:
    def __init__(self, root: str, sink: _Sink, overlay: bool, lowerdirs: Sequence[str] | None,
                 timestamp: int | None, marker_files: bool = False) -> None:
        self.marker_files = overlay and marker_files
        self.root = root
        self.sink = sink
        self.overlay = overlay
        self.lowerdirs = list(lowerdirs) if lowerdirs is not None else None
        self.timestamp = timestamp
        self.inodes: dict[tuple[int, int], str] = {}

    def _mtime(self, st: os.stat_result) -> int:
        mtime = int(st.st_mtime)
        if self.timestamp is not None and mtime > self.timestamp:
            return self.timestamp
        return max(mtime, 0)

    def _lower_has_dir(self, rel: str) -> bool:
        if self.lowerdirs is None:
            return True
        return any(os.path.isdir(os.path.join(d, rel)) and not os.path.islink(os.path.join(d, rel))
                   for d in self.lowerdirs)

    def walk(self, rel: str) -> None:
        base = os.path.join(self.root, rel) if rel else self.root
        try:
            names = sorted(os.listdir(base), key=os.fsencode)
        except OSError as exc:
            raise LayerError(f"pack {base}: {exc.strerror}") from None
        marked = self.marker_files and _OPAQUE in names and os.path.isfile(os.path.join(base, _OPAQUE))
        if marked:  # fuse-overlayfs: the marker file, and a 0/0 node hiding a lower one of that name
            names.remove(_OPAQUE)
            hider = os.path.join(base, _OPAQUE[len(_WHITEOUT):])
            if _OPAQUE[len(_WHITEOUT):] in names and stat.S_ISCHR(os.lstat(hider).st_mode):
                names.remove(_OPAQUE[len(_WHITEOUT):])
        if self.overlay and rel and (marked or is_opaque(base)) and self._lower_has_dir(rel):
            self.sink.write(tf.encode(tf.Entry(name=f"{rel}/{_OPAQUE}", type=tf.REG, mode=0o644,
                                               mtime=self.timestamp or 0)))
        for name in names:
            child = f"{rel}/{name}" if rel else name
            self.member(child, os.path.join(base, name))

    def member(self, rel: str, path: str) -> None:
        st = os.lstat(path)
        mode = st.st_mode
        if self.overlay and is_whiteout(st):
            head, _, name = rel.rpartition("/")
            wh = f"{head}/{_WHITEOUT}{name}" if head else f"{_WHITEOUT}{name}"
            self.sink.write(tf.encode(tf.Entry(name=wh, type=tf.REG, mode=0o644, mtime=self.timestamp or 0)))
            return
        if stat.S_ISSOCK(mode):
            return
        if self.marker_files and os.path.basename(rel).startswith(_WHITEOUT) and stat.S_ISREG(mode):
            self.sink.write(tf.encode(tf.Entry(name=rel, type=tf.REG, mode=0o644, mtime=self.timestamp or 0)))
            return
        if os.path.basename(rel).startswith(_WHITEOUT):
            raise LayerError(f"pack {path}: a file name starting with {_WHITEOUT!r} cannot be stored in a layer")
        entry = node_entry(rel, st, uid=st.st_uid, gid=st.st_gid, mtime=self._mtime(st),
                           xattrs=read_xattrs(path, overlay=self.overlay),
                           linkname=os.readlink(path) if stat.S_ISLNK(mode) else "", inodes=self.inodes)
        if entry is None:
            return
        if entry.type == tf.REG:
            self._file(path, entry)
            return
        self.sink.write(tf.encode(entry))
        if entry.type == tf.DIR:
            self.walk(rel)

    def _file(self, path: str, entry: tf.Entry) -> None:
        self.sink.write(tf.encode(entry))
        left = entry.size
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            while left:
                data = os.read(fd, min(left, _CHUNK))
                if not data:
                    raise LayerError(f"pack {path}: the file shrank while it was being read")
                left -= len(data)
                self.sink.write(data)
        finally:
            os.close(fd)
        self.sink.write(tf.padding(entry.size))


def pack(source_dir: str, out: BinaryIO, *, overlay_upper: bool = False, timestamp: int | None = None,
         compression: str | None = "gzip", lowerdirs: Sequence[str] | None = None,
         marker_files: bool = False) -> PackResult:
    """Write ``source_dir``'s tree as a layer to ``out``; see the module docstring for what is kept.

    ``marker_files`` (an upper dir written by fuse-overlayfs without privileges): ``.wh..wh..opq`` and
    ``.wh.<name>`` regular files are its opaque and whiteout markers, packed as such, not refused.
    The root directory itself is not an entry (as Docker's layers have none). ``out`` needs only
    ``write``; the result carries the plain tar's digest (diff_id) and the written blob's digest.
    """
    if timestamp is not None and timestamp < 0:
        raise InvalidInput(f"timestamp {timestamp} is before 1970")
    if not os.path.isdir(source_dir):
        raise LayerError(f"pack {source_dir}: not a directory")
    sink = _Sink(out, compression)
    try:
        _Walker(os.path.abspath(source_dir), sink, overlay_upper, lowerdirs, timestamp, marker_files).walk("")
        sink.write(tf.end_of_archive())
        diff_id, digest = sink.close()
    finally:
        sink._stop()  # a failed walk: the worker ends before ``out`` goes back to the caller
    return PackResult(diff_id, digest, sink.size, MediaType.layer_type(compression))
