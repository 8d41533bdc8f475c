"""Advisory file locks (``flock``) that make concurrent pybuild processes safe.

Locks live in ``<root>/locks/`` and are held on an open descriptor, so the kernel drops them
when a process dies (even by SIGKILL): a crash never leaves the store locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from typing import Iterator

from layers.errors import StoreError

__all__ = ["FileLock", "locked"]


class FileLock:
    """An ``flock`` on ``path`` (created 0600). Exclusive unless ``shared``; not re-entrant."""

    def __init__(self, path: str, *, shared: bool = False) -> None:
        self.path = path
        self.shared = shared
        self._fd: int | None = None

    def acquire(self, timeout: float | None = None) -> bool:
        """Take the lock; wait at most ``timeout`` seconds (``None`` = forever). False on timeout."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        op = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, op | (0 if deadline is None else fcntl.LOCK_NB))
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        os.close(fd)
                        return False
                    time.sleep(0.05)
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"lock {self.path}: {exc.strerror}") from None
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


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
