"""The content-addressed blob store: ``<root>/blobs/<alg>/<hex>``, written only through ingests.

Contract (as umoci's CAS, without go-containerregistry's trust in the caller):

* every write goes to ``<root>/ingest/`` while being hashed, is fsynced, checked against the
  digest and size the caller expects (if any), made read-only and renamed into place;
* a caller-given digest is a claim to check, never a name to trust;
* every read goes through :class:`~layers.digest.VerifyingReader` (digest and size at EOF);
* an ingest of an expected digest is resumable: the bytes an interrupted ingest left are kept,
  re-hashed on the next attempt and reported as :attr:`Ingest.offset`; an exclusive lock per
  digest keeps two processes from writing the same ingest file at once (and GC away from it);
* the rename into ``blobs/`` happens under the shared GC lock and, inside :meth:`Store.lease`, is
  recorded in the process's lease, as is every ``has()`` that answers yes (see :mod:`.leases`);
* a full disk is a :class:`StoreError` naming the store, what was written, the space it needs and
  the space free; the partial bytes are dropped at once (a full disk does not stay full).
"""

from __future__ import annotations

import errno
import hashlib
import os
from typing import BinaryIO, Iterator

from layers.atomic import fsync_dir
from layers.digest import Digest, VerifyingReader
from layers.errors import IntegrityError, InvalidInput, NotFound, StoreError

from .leases import Leases
from .locks import FileLock
from .space import NOSPACE, no_space

__all__ = ["BlobStore", "Ingest"]

_CHUNK = 1 << 20


class Ingest:
    """One write into the store; a context manager. Use :meth:`write` then :meth:`commit`.

    ``offset`` is how many bytes of an earlier interrupted ingest of the same expected digest
    are already in the file (and hashed): write only the rest, or call :meth:`restart`.
    Leaving the block without a commit keeps an expected-digest ingest for resume; a
    verified-bad ingest (wrong digest or size) is always removed.
    """

    def __init__(self, blobs: "BlobStore", expected: Digest | None, size: int | None) -> None:
        if size is not None and size < 0:
            raise InvalidInput(f"ingest: negative size {size}")
        self._blobs = blobs
        self.expected = expected
        self.size = size
        self.offset = 0
        self.written = 0
        self._fd: int | None = None
        self._algorithm = expected.algorithm if expected else "sha256"
        self._hash = hashlib.new(self._algorithm)
        name = f"{expected.algorithm}-{expected.hex}" if expected else f"anon-{os.urandom(8).hex()}"
        self.path = os.path.join(blobs.root, "ingest", name)
        self._lock = FileLock(self.path + ".lock")
        self._committed: Digest | None = None
        self._hash_only = False
        self.present = False
        """True when the expected blob was already stored once the lock was held: writing is
        unnecessary (a caller may stop here); writes are hashed, not stored, and commit checks them."""

    # -- life cycle ------------------------------------------------------------------------------

    def __enter__(self) -> "Ingest":
        self._lock.acquire()
        try:
            if self.expected is not None and self._blobs.has(self.expected):
                # another process committed it while this one waited for the lock: what is written
                # now is only hashed, and commit checks it as ever
                self._discard()
                self.present = self._hash_only = True
                return self
            self._open()
        except BaseException:
            self._release()
            raise
        return self

    def _open(self) -> None:
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            have = os.fstat(self._fd).st_size
            if self.expected is None or (self.size is not None and have > self.size):
                os.ftruncate(self._fd, 0)
                have = 0
            done = 0
            while done < have:
                chunk = os.pread(self._fd, min(_CHUNK, have - done), done)
                if not chunk:
                    break
                self._hash.update(chunk)
                done += len(chunk)
            os.lseek(self._fd, done, os.SEEK_SET)
            self.offset = self.written = done
        except OSError as exc:
            raise StoreError(f"open ingest {self.path}: {exc.strerror}") from None

    def restart(self) -> None:
        """Drop the bytes an earlier ingest left; write from byte 0."""
        if self._fd is None:  # already dropped (a full disk) or committed: nothing left to drop
            self._hash = hashlib.new(self._algorithm)
            self.offset = self.written = 0
            return
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        self._hash = hashlib.new(self._algorithm)
        self.offset = self.written = 0

    def write(self, data: bytes) -> int:
        """Append ``data``; more bytes than the expected size is an :class:`IntegrityError`."""
        if self._fd is None and not self._hash_only:
            raise StoreError(f"ingest {self.path}: write outside the context or after commit")
        if self.size is not None and self.written + len(data) > self.size:
            self._discard()
            raise IntegrityError(f"blob {self.expected or 'ingest'}: more than the expected {self.size} bytes")
        view = memoryview(data) if self._fd is not None else memoryview(b"")
        while view:
            try:
                n = os.write(self._fd, view)
            except OSError as exc:
                if exc.errno in NOSPACE:
                    raise self._no_space(exc, len(view)) from None
                raise StoreError(f"write ingest {self.path}: {exc.strerror}") from None
            view = view[n:]
        self._hash.update(data)
        self.written += len(data)
        return len(data)

    # file-like surface, so an Ingest can be the ``out`` of a packer or compressor
    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        """Nothing is buffered here; durability comes from :meth:`commit`'s fsync."""

    def commit(self) -> Digest:
        """Check size and digest, fsync, make read-only and rename into ``blobs/``; the digest."""
        if self._committed is not None:
            return self._committed
        if self._fd is None and not self._hash_only:
            raise StoreError(f"ingest {self.path}: commit outside the context")
        got = Digest(self._algorithm, self._hash.hexdigest())
        if self.size is not None and self.written != self.size:
            self._discard()
            raise IntegrityError(f"blob {self.expected or got}: got {self.written} bytes, expected {self.size}")
        if self.expected is not None and got != self.expected:
            self._discard()
            raise IntegrityError(f"blob {self.expected}: content hashes to {got}")
        target = self._blobs.path(got)
        if os.path.isfile(target) and self._blobs.has(got):  # the same bytes are stored: no fsync needed
            self._discard()
            self._committed, self._hash_only = got, False
            return got
        if self._hash_only:
            raise StoreError(f"blob {got}: removed from the store during its ingest; try again")
        try:
            os.fsync(self._fd)
            os.fchmod(self._fd, 0o444)
        except OSError as exc:
            if exc.errno in NOSPACE:
                raise self._no_space(exc, 0) from None
            raise StoreError(f"sync ingest {self.path}: {exc.strerror}") from None
        leases = self._blobs.leases
        try:
            with leases.guard():  # GC sees the blob and the lease entry together, or neither
                os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
                if os.path.exists(target):
                    os.unlink(self.path)  # same bytes are already there
                else:
                    from .pause import pause_point

                    pause_point("blob-rename")
                    os.rename(self.path, target)
                # the file is the blob now: nothing may write to or truncate it through this ingest
                # any more (a full disk failing the lease entry below once truncated a stored blob)
                os.close(self._fd)
                self._fd = None
                self._committed = got
                leases.keep("blob", got)
            fsync_dir(os.path.dirname(target))
        except OSError as exc:
            if exc.errno in NOSPACE and self._committed is not None:
                raise no_space(self._blobs.root, exc, f"recording blob {got} in this command's lease",
                               "needs a few bytes") from None
            raise StoreError(f"rename ingest {self.path} to {target}: {exc.strerror}") from None
        return got

    def _discard(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _no_space(self, exc: OSError, pending: int) -> StoreError:
        """Drop the partial bytes now (a resume cannot help a full disk), then say what would fit."""
        written = self.written
        what = f"blob {self.expected}" if self.expected is not None else "a new blob"
        if self.size is not None:
            need = f"needs {self.size}"
        else:
            need = f"needs more than {written + pending}"
        self._discard()
        return no_space(self._blobs.root, exc, f"writing {what}", need)

    def _release(self) -> None:
        self._lock.release()

    def __exit__(self, exc_type, exc, tb) -> None:
        self._hash_only = False
        try:
            if self._committed is None:
                if self.expected is None or isinstance(exc, IntegrityError) or self.written == 0:
                    self._discard()  # (an empty resumable ingest is nothing to resume)
                elif self._fd is not None:
                    try:
                        os.fsync(self._fd)  # keep what we have for a resume
                    finally:
                        os.close(self._fd)
                        self._fd = None
        finally:
            self._release()


class BlobStore:
    """``store.blobs``: has/path/open/read_bytes/put_bytes/put_stream/ingest over ``<root>/blobs``."""

    def __init__(self, root: str, leases: Leases) -> None:
        self.root = root
        self.leases = leases

    def lease_lock(self) -> FileLock:
        """A fresh shared hold on the GC lock (GC cannot run while it is held; keep it short)."""
        return self.leases.guard()

    def path(self, digest: Digest) -> str:
        return os.path.join(self.root, "blobs", digest.algorithm, digest.hex)

    def has(self, digest: Digest) -> bool:
        """Whether the blob is stored; inside a lease a yes also keeps it from GC from now on."""
        leases = self.leases
        if not leases.active:
            return os.path.isfile(self.path(digest))
        with leases.guard():
            there = os.path.isfile(self.path(digest))
            if there:
                leases.keep("blob", digest)
        return there

    def size(self, digest: Digest) -> int:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest}: not in the store") from None

    def open(self, digest: Digest, size: int | None = None) -> VerifyingReader:
        """A reader that checks digest and size at EOF (size defaults to the file's size)."""
        try:
            f = open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest}: not in the store") from None
        if size is None:
            size = os.fstat(f.fileno()).st_size
        return VerifyingReader(f, digest, size)

    def read_bytes(self, digest: Digest, max_size: int) -> bytes:
        """The whole blob, verified; refuse one larger than ``max_size``."""
        actual = self.size(digest)
        if actual > max_size:
            raise IntegrityError(f"blob {digest}: {actual} bytes, more than the {max_size} allowed here")
        parts = []
        with self.open(digest, actual) as r:
            while chunk := r.read(_CHUNK):  # the reader checks digest and size at EOF
                parts.append(chunk)
        return b"".join(parts)

    def ingest(self, expected: Digest | None = None, size: int | None = None) -> Ingest:
        return Ingest(self, expected, size)

    def put_bytes(self, data: bytes, expected: Digest | None = None) -> Digest:
        """Store ``data``; idempotent. A wrong ``expected`` is an :class:`IntegrityError`."""
        got = Digest.from_bytes(data, expected.algorithm if expected else "sha256")
        if expected is not None and got != expected:
            raise IntegrityError(f"blob {expected}: content hashes to {got}")
        if self.has(got):
            return got
        with self.ingest(got, len(data)) as ing:
            if ing.present:
                return got
            ing.restart()
            ing.write(data)
            return ing.commit()

    def put_stream(self, stream: BinaryIO, expected: Digest | None = None,
                   size: int | None = None) -> tuple[Digest, int]:
        """Copy ``stream`` to the end into the store; ``(digest, size)``."""
        with self.ingest(expected, size) as ing:
            ing.restart()
            while True:
                chunk = stream.read(_CHUNK)
                if not chunk:
                    break
                ing.write(chunk)
            return ing.commit(), ing.written

    def delete(self, digest: Digest) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            pass

    def digests(self) -> Iterator[Digest]:
        """Every blob name on disk (names that are not digests are skipped; fsck reports them)."""
        base = os.path.join(self.root, "blobs")
        for alg in sorted(os.listdir(base)):
            for name in sorted(os.listdir(os.path.join(base, alg))):
                try:
                    yield Digest(alg, name)
                except InvalidInput:
                    continue

    def total_size(self) -> int:
        total = 0
        for d in self.digests():
            try:
                total += os.stat(self.path(d)).st_size
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
        return total
