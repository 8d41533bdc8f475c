"""Leases: what a live pybuild process is creating or using, written down so GC keeps it.

GC and the store's writers meet at ``<root>/locks/gc.lock``: GC holds it exclusively while it marks
and sweeps; a writer holds it shared only for the instant it makes something visible or decides to
rely on something (an ingest's rename into ``blobs/``, "this blob is there, I will use it", resolving
an image name, choosing a snapshot). Inside :meth:`Store.lease`, each of those instants also appends
the object to the process's lease file ``<root>/leases/<pid>-<random>`` (one line: ``blob``, ``doc``
or ``snap`` and a digest), which GC reads as roots: ``blob`` keeps that blob, ``doc`` a manifest or
index and everything it references, ``snap`` the snapshot of that diff_id.

The owner holds an exclusive ``flock`` on its lease file for the lease's life; GC removes a lease file
nobody holds (its process died), so a SIGKILL never pins anything for long. GC therefore never waits
for a whole pull or build, only for those instants.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from typing import Iterator

from layers.digest import Digest
from layers.errors import InvalidInput, StoreError

from .locks import FileLock, held_by_other

__all__ = ["Leases", "KINDS", "read_roots"]

KINDS = ("blob", "doc", "snap")


class _LeaseFile:
    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, f"{os.getpid()}-{os.urandom(6).hex()}")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._seen: set[tuple[str, Digest]] = set()
        self._mutex = threading.Lock()
        self._owner = os.getpid()  # a forked child that unwinds our frames must not end our lease

    def add(self, kind: str, digest: Digest) -> None:
        with self._mutex:
            if (kind, digest) in self._seen or self._fd is None:
                return
            try:
                os.write(self._fd, f"{kind} {digest}\n".encode())
            except OSError as exc:
                raise StoreError(f"lease {self.path}: {exc.strerror}") from None
            self._seen.add((kind, digest))

    def close(self) -> None:
        with self._mutex:
            if self._fd is None:
                return
            if os.getpid() == self._owner:
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass
            os.close(self._fd)
            self._fd = None


class Leases:
    """The store's lease bookkeeping: ``guard()`` (the shared GC lock), ``hold()`` (``Store.lease``),
    ``keep(kind, digest)`` (record into the active lease, if any)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.dir = os.path.join(root, "leases")
        self.gc_lock_path = os.path.join(root, "locks", "gc.lock")
        self._mutex = threading.Lock()
        self._active: _LeaseFile | None = None
        self._depth = 0
        self._gc = threading.local()  # .on: this thread holds the GC lock exclusively (gc.collect)

    @property
    def collecting(self) -> bool:
        return getattr(self._gc, "on", False)

    @collecting.setter
    def collecting(self, value: bool) -> None:
        self._gc.on = value

    def guard(self) -> FileLock | contextlib.nullcontext:
        """A fresh shared hold on the GC lock: GC cannot run while it is held (keep it short).
        Inside this thread's own GC it is a no-op (a second flock would wait for ourselves)."""
        if self.collecting:
            return contextlib.nullcontext()
        return FileLock(self.gc_lock_path, shared=True)

    @property
    def active(self) -> bool:
        return self._active is not None

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """A lease for this process (nested and threaded uses share one)."""
        with self._mutex:
            if self._depth == 0:
                with self.guard():  # GC must not see the file before its owner has locked it
                    try:
                        os.makedirs(self.dir, mode=0o700, exist_ok=True)
                        self._active = _LeaseFile(self.dir)
                    except OSError as exc:
                        raise StoreError(f"store {self.root}: create a lease: {exc.strerror}") from None
            self._depth += 1
        try:
            yield
        finally:
            with self._mutex:
                self._depth -= 1
                if self._depth == 0 and self._active is not None:
                    self._active.close()
                    self._active = None

    def keep(self, kind: str, digest: Digest) -> None:
        """Record ``digest`` in the active lease; call it while holding :meth:`guard`."""
        lease = self._active
        if lease is not None:
            lease.add(kind, digest)


def read_roots(root: str) -> tuple[dict[str, set[Digest]], list[str]]:
    """Under the exclusive GC lock: the roots of every live lease, and the stale lease files removed."""
    roots: dict[str, set[Digest]] = {k: set() for k in KINDS}
    stale: list[str] = []
    base = os.path.join(root, "leases")
    try:
        names = sorted(os.listdir(base))
    except FileNotFoundError:
        return roots, stale
    for name in names:
        path = os.path.join(base, name)
        with held_by_other(path) as live:
            if not live:
                try:
                    os.unlink(path)
                    stale.append(name)
                except FileNotFoundError:
                    pass
                continue
            try:
                with open(path, "r", errors="replace") as f:
                    text = f.read()
            except FileNotFoundError:
                continue
        for line in text.splitlines():
            kind, _, value = line.partition(" ")
            if kind not in roots:
                continue
            try:
                roots[kind].add(Digest.parse(value.strip()))
            except InvalidInput:
                continue  # a torn last line cannot happen (one write per line), but never trust a file
    return roots, stale
