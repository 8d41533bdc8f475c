"""Atomic file writes: temp file in the same directory, fsync, rename, fsync the directory.

A reader sees either the old file or the whole new one, never a torn write, and after
:func:`write_atomic` returns the new content survives a power cut. The one implementation for every
room (the store, the builder's cache, container and network records); the shim imports it, so it
loads nothing beyond ``os`` and ``contextlib``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

TYPE_CHECKING = False       # not typing's: the shim imports this module, and typing costs 2 MiB
if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = ["write_atomic", "atomic_writer", "fsync_dir", "temp_name"]


def temp_name(path: str) -> str:
    """A fresh hidden name next to ``path`` (same directory, so a rename is atomic)."""
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.tmp-{os.getpid()}-{os.urandom(6).hex()}")


def fsync_dir(path: str) -> None:
    """fsync a directory so a rename or unlink in it is durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: str, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Yield a binary file; on a clean exit it replaces ``path`` atomically and durably, on error
    it is removed and ``path`` is as it was."""
    tmp = temp_name(str(path))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)             # the umask does not decide a record's mode
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(os.path.dirname(str(path)) or ".")


def write_atomic(path: str, data: bytes, mode: int = 0o600, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically; the directory must exist.

    ``durable=False`` skips the fsyncs: for files rebuilt at every start (a container's /etc files),
    whose readers must never see half a file but which a crash may take back to the previous version.
    """
    tmp = temp_name(str(path))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, mode)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(os.path.dirname(str(path)) or ".")
