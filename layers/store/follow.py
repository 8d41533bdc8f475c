"""Unpack a layer while its blob is downloaded: ``store.snapshots.follow(layer, diff_id)``.

A pull writes a layer blob into its ingest; :class:`FollowUnpack` reads that ingest file behind the
writer (:class:`GrowingFile`: reads wait for bytes the writer has announced) and extracts it in a thread
into ``snapshots/.tmp-<hex>-<random>``, under the snapshot's lock, exactly as
:meth:`SnapshotStore.ensure` would extract the stored blob later. Contract:

* nothing is visible until :meth:`FollowUnpack.complete`, which the caller calls only after the
  ingest committed the blob (its digest and size checked); complete then waits for the extractor,
  checks the diff_id against the config's and publishes the tree as ``ensure`` does (rename, then the
  ``ready`` marker). The extractor reads bytes ``[0, size)`` of the very file the ingest hashed, never
  past what the writer announced;
* every failure (a bad layer, a full disk, a wrong diff_id, an ingest restarted or dropped), an
  :meth:`abort` and leaving the block without ``complete`` remove the temporary tree: the snapshot is
  then unpacked from the stored blob at first use, where a bad layer is reported as ever;
* when the snapshot is ready already or another process holds its lock (it is unpacking it), following
  does nothing;
* a process killed mid-way leaves a ``.tmp-`` dir whose lock is free: GC and fsck remove it.
"""

from __future__ import annotations

import os
import shutil
import threading
from typing import Callable

from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.errors import LayerError, PybuildError
from layers.mediatype import MediaType

from .locks import FileLock

__all__ = ["FollowUnpack", "GrowingFile"]

_CHUNK = 1 << 20


class GrowingFile:
    """A reader of a file another thread appends to. The writer calls :meth:`grew` with the bytes now in
    the file, :meth:`end` with the final size, or :meth:`fail`; :meth:`read` waits for bytes, returns
    ``b""`` only at the announced end and raises :class:`LayerError` once failed (or when the file holds
    fewer bytes than announced: the writer truncated it)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._pos = 0
        self._avail = 0
        self._end: int | None = None
        self._failed = False
        self._cond = threading.Condition()

    @property
    def announced(self) -> int:
        return self._avail

    def grew(self, size: int) -> None:
        with self._cond:
            if size > self._avail:
                self._avail = size
                self._cond.notify_all()

    def end(self, size: int) -> None:
        with self._cond:
            self._avail = max(self._avail, size)
            self._end = size
            self._cond.notify_all()

    def fail(self) -> None:
        with self._cond:
            self._failed = True
            self._cond.notify_all()

    def read(self, n: int = -1) -> bytes:
        n = _CHUNK if n is None or n < 0 else n
        with self._cond:
            while not self._failed and self._pos >= self._avail and self._end is None:
                self._cond.wait()
            if self._failed:
                raise LayerError("unpack while downloading: abandoned")
            limit = self._avail if self._end is None else min(self._avail, self._end)
            n = min(n, limit - self._pos)
        if n <= 0:
            return b""
        data = os.pread(self._fd, n, self._pos)
        if len(data) < n:
            raise LayerError("unpack while downloading: the file is shorter than announced")
        self._pos += len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        os.close(self._fd)


class FollowUnpack:
    """One layer followed into a snapshot; a context manager (see the module docstring).

    ``writer(ingest)`` at the start of every download attempt: the ingest's write function, wrapped to
    announce each write; ``complete(size)`` after the ingest's commit."""

    def __init__(self, snapshots, layer: Descriptor, diff_id: Digest) -> None:
        self._snaps = snapshots
        self.layer = layer
        self.diff_id = diff_id
        self._lock: FileLock | None = None
        self._file: GrowingFile | None = None
        self._inode: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None
        self._tmp: str | None = None
        self._result: Digest | BaseException | None = None
        self._skipped: list[str] = []  # device nodes a rootless unpack skipped: noted once published
        self._dead = False
        self.path: str | None = None
        """The published snapshot's lowerdir once :meth:`complete` succeeded."""

    def __enter__(self) -> "FollowUnpack":
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()

    # -- writer side -------------------------------------------------------------------------------

    def writer(self, ingest) -> Callable[[bytes], object]:
        """Start (or, on a retry that resumes the same file, keep) following ``ingest``; its write
        function, which also announces what it wrote. Following stops when this cannot be done."""
        if not self._dead:
            try:
                self._attach(ingest.path, ingest.offset)
            except (OSError, PybuildError):  # cannot follow (a full disk, say): unpacked at first use
                self.abort()
        if self._dead or self._file is None:
            return ingest.write
        file = self._file

        def write(data: bytes) -> int:
            n = ingest.write(data)
            file.grew(ingest.written)
            return n

        return write

    def _attach(self, path: str, have: int) -> None:
        if self._file is not None:  # a retry: the same file, resumed at or past what was announced?
            st = os.stat(path)
            if (st.st_dev, st.st_ino) != self._inode or have < self._file.announced:
                self.abort()  # restarted or replaced: the extractor's bytes are not the new file's
            else:
                self._file.grew(have)
            return
        try:
            compression = MediaType.compression(self.layer.media_type)
        except KeyError:
            self._dead = True
            return
        snaps = self._snaps
        leases = snaps.blobs.leases
        if leases.active:
            with leases.guard():
                leases.keep("snap", self.diff_id)
        lock = FileLock(snaps.lock_path(self.diff_id.hex))
        if snaps.ready(self.diff_id) or not lock.acquire(timeout=0):
            self._dead = True
            return
        self._lock = lock
        if snaps.ready(self.diff_id):
            self.abort()
            return
        snaps.remove(self.diff_id.hex)  # debris of an interrupted unpack (renamed aside, then removed)
        self._tmp = snaps.temp_dir(self.diff_id)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        st = os.fstat(fd)
        self._inode = (st.st_dev, st.st_ino)
        self._file = GrowingFile(fd)
        self._file.grew(have)
        dest = os.path.join(self._tmp, "fs")
        self._thread = threading.Thread(target=self._extract, args=(dest, compression),
                                        name=f"unpack-{self.diff_id.hex[:12]}", daemon=True)
        self._thread.start()

    def _extract(self, dest: str, compression: str | None) -> None:
        from layers import archive

        try:
            self._result = archive.extract(self._file, dest, compression=compression, mode="overlay",
                                           what=f"layer {self.layer.digest}", on_skipped=self._skipped.extend)
        except BaseException as exc:  # handed to complete(), which falls back to unpacking at first use
            self._result = exc

    # -- the end -----------------------------------------------------------------------------------

    def complete(self, size: int) -> str | None:
        """The blob is committed with ``size`` bytes (digest checked): wait for the extractor, check
        the diff_id, publish the snapshot; its path, or None when following failed or never started."""
        if self._dead or self._file is None or self._thread is None:
            self.abort()
            return None
        self._file.end(size)
        self._thread.join()
        if not isinstance(self._result, Digest) or self._result != self.diff_id:
            self.abort()
            return None
        tmp, self._tmp = self._tmp, None
        try:
            self.path = self._snaps.publish(tmp, self.diff_id)
        finally:
            self.abort()  # closes the file, releases the lock
        if self._skipped:
            self._snaps.note_skipped(self.layer, tuple(self._skipped))
        return self.path

    def abort(self) -> None:
        """Stop following; remove the temporary tree (a published snapshot stays)."""
        self._dead = True
        if self._file is not None:
            self._file.fail()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
