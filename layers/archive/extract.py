"""Safe layer extraction: every path resolved inside the destination, hostile entries refused.

``extract(stream, dest, compression=..., mode=...)`` reads a layer once, front to back, and returns
its diff_id (sha256 of the uncompressed stream). What it guarantees (SECURITY.md cases 1-12):

* Names: a leading ``/`` or ``./`` is dropped; a ``..`` component is an error, never clamped
  silently. Parents are opened through :class:`~layers.archive.inroot.Root` (symlinks followed as
  if ``dest`` were ``/``), and every create, link, remove and metadata change goes through a
  directory fd with ``O_NOFOLLOW`` semantics, so a symlink planted by this or an earlier layer
  cannot carry a write, a chmod or a hardlink outside ``dest``.
* Hardlinks link to a path inside ``dest`` that must exist (the link itself, never a symlink's
  target, is linked); metadata is never applied through them.
* Devices keep their numbers when running as root; a major above 4095 or a minor above 2**20-1
  (what the kernel can hold) is refused, never truncated. setuid/setgid/sticky bits are kept
  (the stdlib's extraction filters would drop them, which is wrong for a root filesystem).
* Whiteouts: ``.wh.<name>`` and ``.wh..wh..opq``. ``mode="apply"`` deletes what they hide
  (opaque: every child not created by this layer); ``mode="overlay"`` writes them as overlayfs
  does (0/0 char device, ``trusted.overlay.opaque=y``, rootless ``user.overlay.opaque=y``) for a
  snapshot used as a lowerdir. Rootless (in the user namespace): owners outside the id map are a
  LayerError naming the entry and id; device nodes are skipped, and their names handed once to
  the caller's ``on_skipped`` (this module never prints: the CLI says it).
  ``.wh.``, ``.wh..``, ``.wh...`` and names inside a whiteout are invalid layers.
* The same path twice: the later entry wins (a directory over a directory merges).
* ``trusted.*`` xattrs in a layer are ignored (they would steer overlayfs).
* At most ``limit`` uncompressed bytes (bombs stop there); truncation and trailing garbage fail.

On error ``dest`` may hold part of the layer: callers extract into a temporary directory and
rename it when this returns (``store.snapshots`` does), or throw the tree away.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from typing import BinaryIO, Callable

from layers.digest import Digest
from layers.errors import LayerError, StoreError
from layers.store.location import is_rootless, opaque_xattr

from . import tarformat as tf
from .compression import open_decompressed
from .inroot import Root, split
from .reader import TarReader

__all__ = ["extract", "MAX_LAYER_SIZE", "MODES"]

#: The most uncompressed bytes one layer may hold unless the caller says otherwise.
MAX_LAYER_SIZE = 64 << 30
MODES = ("apply", "overlay")

_WH = ".wh."
_OPAQUE = ".wh..wh..opq"
_META = ".wh..wh."
_MAX_MAJOR = (1 << 12) - 1
_MAX_MINOR = (1 << 20) - 1
_NOSPACE = (errno.ENOSPC, errno.EDQUOT)


class _Extractor:
    def __init__(self, root: Root, dest: str, mode: str, what: str) -> None:
        self.root = root
        self.dest = dest
        self.overlay = mode == "overlay"
        self.what = what
        self.as_root = os.geteuid() == 0
        self.skipped_devices: list[str] = []
        self.created: set[tuple[int, int]] = set()
        self.dir_times: list[tuple[str, int]] = []
        self._cache: tuple[str, int] | None = None

    # -- parents ---------------------------------------------------------------------------------

    def _forget(self) -> None:
        if self._cache is not None:
            os.close(self._cache[1])
            self._cache = None

    def parent(self, rel: str, name: str, create: bool = True) -> int | None:
        """A dir fd of ``rel`` (cached, do not close); None when it does not exist and ``create`` is False."""
        if self._cache is not None and self._cache[0] == rel:
            return self._cache[1]
        try:
            fd = self.root.make_dirs(rel) if create else self.root.open_dir(rel)
        except FileNotFoundError:
            if not create:
                return None
            raise LayerError(f"{self.what}: entry {name!r}: its directory {rel!r} cannot be created "
                             "(a dangling symlink on the way)") from None
        except NotADirectoryError:
            if not create:
                return None
            raise LayerError(f"{self.what}: entry {name!r}: a parent of it is not a directory") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise LayerError(f"{self.what}: entry {name!r}: too many symbolic links in its path") from None
            raise
        self._forget()
        self._cache = (rel, fd)
        return fd

    def close(self) -> None:
        self._forget()

    # -- helpers ---------------------------------------------------------------------------------

    def _remove(self, pfd: int, base: str) -> None:
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        self._forget_if_not(pfd)
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(base, dir_fd=pfd)
        else:
            os.unlink(base, dir_fd=pfd)

    def _forget_if_not(self, pfd: int) -> None:
        """Drop the cached parent unless it is ``pfd`` itself (a removal below it cannot stale it)."""
        if self._cache is not None and self._cache[1] != pfd:
            self._forget()

    def _record(self, pfd: int, base: str) -> None:
        if not self.overlay:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
            self.created.add((st.st_dev, st.st_ino))

    def _chown(self, e: tf.Entry, target, **kw) -> None:
        """chown as root; in a rootless user namespace an id outside the map is a clear error."""
        try:
            if isinstance(target, int):
                os.fchown(target, e.uid, e.gid)
            else:
                os.chown(target, e.uid, e.gid, **kw)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            raise LayerError(f"{self.what}: entry {e.name[:200]!r}: owner {e.uid}:{e.gid} is outside this "
                             f"user's id map (rootless; add subordinate ids: usermod --add-subuids/--add-subgids)") from None

    def _owner_mode_times(self, fd: int, e: tf.Entry, *, times: bool = True) -> None:
        if self.as_root:
            self._chown(e, fd)
        os.fchmod(fd, stat.S_IMODE(e.mode))
        if times:
            os.utime(fd, ns=(e.mtime * 10**9, e.mtime * 10**9))

    def _xattrs(self, target, e: tf.Entry, *, follow: bool = True) -> None:
        for key, value in e.xattrs:
            if key.startswith("trusted."):
                continue
            try:
                os.setxattr(target, key, value, follow_symlinks=follow)
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EPERM) or not key.startswith(("security.", "user.")):
                    raise LayerError(f"{self.what}: entry {e.name!r}: set xattr {key}: {exc.strerror}") from None

    def _node_meta(self, pfd: int, base: str, e: tf.Entry) -> None:
        """Owner, mode and times of a node that cannot be opened for writing (device, fifo)."""
        fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            proc = f"/proc/self/fd/{fd}"
            if self.as_root:
                self._chown(e, base, dir_fd=pfd, follow_symlinks=False)
            os.chmod(proc, stat.S_IMODE(e.mode))
            self._xattrs(proc, e)
            os.utime(base, ns=(e.mtime * 10**9,) * 2, dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(fd)

    # -- entries ---------------------------------------------------------------------------------

    def entry(self, e: tf.Entry, reader: TarReader) -> None:
        parts = split(e.name)
        if ".." in parts:
            raise LayerError(f"{self.what}: entry {e.name[:200]!r} climbs out of the layer with '..'")
        if not parts:
            return  # the root directory itself: its metadata belongs to whoever made dest
        for part in parts[:-1]:
            if part.startswith(_WH):
                raise LayerError(f"{self.what}: entry {e.name[:200]!r} lies inside a whiteout")
        rel, base = "/".join(parts[:-1]), parts[-1]
        if base.startswith(_WH):
            self.whiteout(rel, base, e)
            return
        pfd = self.parent(rel, e.name)
        assert pfd is not None
        handler = {tf.DIR: self.directory, tf.REG: self.file, tf.SYM: self.symlink, tf.LNK: self.hardlink,
                   tf.CHR: self.device, tf.BLK: self.device, tf.FIFO: self.fifo}[e.type]
        if e.type == tf.REG:
            self.file(pfd, base, e, reader)
        else:
            handler(pfd, base, e)  # type: ignore[operator]
        if self.skipped_devices and self.skipped_devices[-1] is e.name:
            return  # a device a user namespace cannot create: nothing there to record
        self._record(pfd, base)

    def whiteout(self, rel: str, base: str, e: tf.Entry) -> None:
        if base == _OPAQUE:
            self.opaque(rel, e)
            return
        if base.startswith(_META):
            return  # AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): skipped, as Docker does
        hidden = base[len(_WH):]
        if hidden in ("", ".", ".."):
            raise LayerError(f"{self.what}: entry {e.name[:200]!r} is not a valid whiteout")
        if self.overlay:
            pfd = self.parent(rel, e.name)
            assert pfd is not None
            self._remove(pfd, hidden)
            os.mknod(hidden, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd)
            return
        pfd = self.parent(rel, e.name, create=False)
        if pfd is not None:
            self._remove(pfd, hidden)

    def opaque(self, rel: str, e: tf.Entry) -> None:
        if self.overlay:
            pfd = self.parent(rel, e.name)
            assert pfd is not None
            os.setxattr(pfd, opaque_xattr(), b"y")
            return
        pfd = self.parent(rel, e.name, create=False)
        if pfd is None:
            return
        for child in os.listdir(pfd):
            st = os.stat(child, dir_fd=pfd, follow_symlinks=False)
            if (st.st_dev, st.st_ino) not in self.created:
                self._remove(pfd, child)

    def directory(self, pfd: int, base: str, e: tf.Entry) -> None:
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                self._remove(pfd, base)
                raise FileNotFoundError
        except FileNotFoundError:
            os.mkdir(base, 0o700, dir_fd=pfd)
        fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            self._owner_mode_times(fd, e, times=False)
            self._xattrs(fd, e)
        finally:
            os.close(fd)
        self.dir_times.append(("/".join(split(e.name)), e.mtime))

    def file(self, pfd: int, base: str, e: tf.Entry, reader: TarReader) -> None:
        self._remove(pfd, base)
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd)
        try:
            for chunk in reader.chunks():
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            self._owner_mode_times(fd, e, times=False)
            self._xattrs(fd, e)
            os.utime(fd, ns=(e.mtime * 10**9,) * 2)
        finally:
            os.close(fd)

    def symlink(self, pfd: int, base: str, e: tf.Entry) -> None:
        if not e.linkname:
            raise LayerError(f"{self.what}: entry {e.name[:200]!r}: a symlink with an empty target")
        self._remove(pfd, base)
        self._forget_if_not(pfd)
        os.symlink(e.linkname, base, dir_fd=pfd)
        if self.as_root:
            self._chown(e, base, dir_fd=pfd, follow_symlinks=False)
        self._xattrs(f"/proc/self/fd/{pfd}/{base}", e, follow=False)
        os.utime(base, ns=(e.mtime * 10**9,) * 2, dir_fd=pfd, follow_symlinks=False)

    def hardlink(self, pfd: int, base: str, e: tf.Entry) -> None:
        target = split(e.linkname)
        if not target or ".." in target:
            raise LayerError(f"{self.what}: entry {e.name[:200]!r}: hardlink target {e.linkname[:200]!r} "
                             "is not a path inside the layer")
        if target == split(e.name):
            return  # a link to itself: nothing to do
        try:
            tfd = self.root.open_dir("/".join(target[:-1]))
        except OSError:
            tfd = -1
        try:
            if tfd < 0 or not _exists(tfd, target[-1]):
                raise LayerError(f"{self.what}: entry {e.name[:200]!r}: hardlink target {e.linkname[:200]!r} "
                                 "does not exist in the layer")
            if stat.S_ISDIR(os.stat(target[-1], dir_fd=tfd, follow_symlinks=False).st_mode):
                raise LayerError(f"{self.what}: entry {e.name[:200]!r}: hardlink to a directory")
            self._remove(pfd, base)
            os.link(target[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            if tfd >= 0:
                os.close(tfd)

    def device(self, pfd: int, base: str, e: tf.Entry) -> None:
        if e.devmajor > _MAX_MAJOR or e.devminor > _MAX_MINOR:
            raise LayerError(f"{self.what}: entry {e.name[:200]!r}: device {e.devmajor}:{e.devminor} "
                             f"is out of range (major <= {_MAX_MAJOR}, minor <= {_MAX_MINOR})")
        kind = stat.S_IFCHR if e.type == tf.CHR else stat.S_IFBLK
        self._remove(pfd, base)
        try:
            os.mknod(base, kind | 0o600, os.makedev(e.devmajor, e.devminor), dir_fd=pfd)
        except PermissionError:
            if is_rootless():  # no device nodes in a user namespace: skipped, said once (as buildah)
                self.skipped_devices.append(e.name)
                return
            raise LayerError(f"{self.what}: entry {e.name[:200]!r}: creating device nodes needs root") from None
        self._node_meta(pfd, base, e)

    def fifo(self, pfd: int, base: str, e: tf.Entry) -> None:
        self._remove(pfd, base)
        os.mkfifo(base, 0o600, dir_fd=pfd)
        self._node_meta(pfd, base, e)

    def finish(self) -> None:
        """Directory mtimes, deepest first (creating children changed them)."""
        self._forget()
        for rel, mtime in reversed(self.dir_times):
            try:
                fd = self.root.open_dir(rel)
            except OSError:
                continue  # removed or replaced by a later entry
            try:
                os.utime(fd, ns=(mtime * 10**9,) * 2)
            finally:
                os.close(fd)


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def extract(stream: BinaryIO, dest: str, *, compression: str | None = None, mode: str = "apply",
            limit: int = MAX_LAYER_SIZE, what: str = "layer", use_openat2: bool | None = None,
            on_skipped: Callable[[tuple[str, ...]], None] | None = None) -> Digest:
    """Extract the layer read from ``stream`` into the existing directory ``dest``; its diff_id.

    ``on_skipped`` is called once, after a whole extraction, with the names of the device nodes a
    rootless user namespace could not create (never called when there are none).

    ``compression`` is ``None`` (plain tar), ``"gzip"`` or ``"zstd"``; see the module docstring for
    ``mode`` and the guarantees. Errors: :class:`LayerError` for a bad layer, :class:`StoreError`
    when the disk is full.
    """
    if mode not in MODES:
        raise ValueError(f"extract mode {mode!r}")
    plain = open_decompressed(stream, compression, limit, what)
    if compression is not None:
        plain = _ReadAhead(plain)  # decompression (and the blob's own hash) overlap the file writes
    reader = TarReader(plain, what)
    current = ""
    try:
        with Root(dest, use_openat2=use_openat2) as root:
            ex = _Extractor(root, dest, mode, what)
            try:
                for e in reader.entries():
                    current = e.name
                    ex.entry(e, reader)
                ex.finish()
                if ex.skipped_devices and on_skipped is not None:
                    on_skipped(tuple(ex.skipped_devices))
            finally:
                ex.close()
    except OSError as exc:
        if exc.errno in _NOSPACE:
            raise StoreError(f"extract {what} into {dest}: {exc.strerror} (at {current[:200]!r})") from None
        raise LayerError(f"{what}: entry {current[:200]!r}: {exc.strerror or exc}") from None
    finally:
        if isinstance(plain, _ReadAhead):
            plain.stop()  # joined: nothing reads a file ``stream`` once extract returns
    return reader.digest()


class _ReadAhead:
    """Reads ``inner`` a few MiB ahead in a thread; ``read`` hands the pieces out in order and re-raises
    what the thread met (a LayerError of the decoder, say) where the data would have been."""

    _DEPTH = 8

    def __init__(self, inner) -> None:
        import queue
        import threading

        self._inner = inner
        self._queue: queue.Queue = queue.Queue(self._DEPTH)
        self._stopping = threading.Event()
        self._buf, self._pos, self._eof = b"", 0, False
        self._thread = threading.Thread(target=self._fill, name="extract-read-ahead", daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        try:
            while not self._stopping.is_set():
                data = self._inner.read(1 << 20)
                self._put(data)
                if not data:
                    return
        except BaseException as exc:  # handed to the reader, raised there
            self._put(exc)

    def _put(self, item) -> None:
        import queue

        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def read(self, n: int = -1) -> bytes:
        if self._pos >= len(self._buf):
            if self._eof:
                return b""
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._eof = True
                raise item
            if not item:
                self._eof = True
                return b""
            self._buf, self._pos = item, 0
        end = len(self._buf) if n is None or n < 0 else min(len(self._buf), self._pos + n)
        out = self._buf[self._pos:end]
        self._pos = end
        return out

    def stop(self) -> None:
        """Stop and join the thread. One blocked on a pipe whose writer stalls is left behind after
        a few seconds (a daemon; files, which blobs are, never block)."""
        self._stopping.set()
        self._thread.join(5)
