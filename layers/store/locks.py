"""Advisory file locks (``flock``) that make concurrent pybuild processes safe.

Locks live in ``<root>/locks/`` (and beside ingests) and are held on an open descriptor, so the
kernel drops them when a process dies (even by SIGKILL): a crash never leaves the store locked.

GC deletes lock files it no longer needs while it holds them; :meth:`FileLock.acquire` therefore
checks, once it has the lock, that its descriptor is still the file at ``path`` and retries on a
fresh file otherwise (the usual flock-and-unlink protocol), so two processes never believe they
hold "the same" lock on two different inodes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from typing import Iterator

from layers.errors import StoreError

__all__ = ["FileLock", "locked", "held_by_other"]

_POLL = 0.01


class FileLock:
    """An ``flock`` on ``path`` (created 0600). Exclusive unless ``shared``; not re-entrant."""

    def __init__(self, path: str, *, shared: bool = False) -> None:
        self.path = path
        self.shared = shared
        self._fd: int | None = None

    def acquire(self, timeout: float | None = None) -> bool:
        """Take the lock; wait at most ``timeout`` seconds (``None`` = forever). False on timeout."""
        op = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise StoreError(f"lock {self.path}: {exc.strerror}") from None
            try:
                while True:
                    try:
                        fcntl.flock(fd, op | (0 if deadline is None else fcntl.LOCK_NB))
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            os.close(fd)
                            return False
                        time.sleep(_POLL)
            except OSError as exc:
                os.close(fd)
                raise StoreError(f"lock {self.path}: {exc.strerror}") from None
            if _same_file(fd, self.path):
                self._fd = fd
                return True
            os.close(fd)  # GC removed the file while we waited: lock the new one

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _same_file(fd: int, path: str) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


@contextlib.contextmanager
def locked(path: str, *, shared: bool = False, timeout: float | None = None, what: str = "") -> Iterator[None]:
    """Hold a lock on ``path``; raise :class:`StoreError` naming ``what`` on timeout."""
    lock = FileLock(path, shared=shared)
    if not lock.acquire(timeout):
        raise StoreError(f"{what or path}: still locked by another pybuild process after {timeout:g}s")
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def held_by_other(path: str) -> Iterator[bool]:
    """True while another process holds (any) lock on ``path``; else False, and for the length of the
    block this process holds it exclusively (so the caller may remove what it guards, and the file).
    A missing file is not held. Does not create the file."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield True
            return
        yield False
    finally:
        os.close(fd)
