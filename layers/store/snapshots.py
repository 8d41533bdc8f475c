"""Unpacked layers, one per diff_id, for overlay lowerdirs: ``<root>/snapshots/<hex>/{fs,ready}``.

A snapshot is extracted by ``layers.archive.extract(mode="overlay")`` into a temporary
directory ``snapshots/.tmp-<hex>-<random>`` under the lock ``locks/snapshot-<hex>.lock``, its diff_id
checked, renamed into place, and only then the ``ready`` marker is written (atomically). A directory
without the marker is debris from a crash: :meth:`SnapshotStore.ensure` rebuilds it and fsck reports
it. GC leaves alone any ``<hex>`` or ``.tmp-<hex>-*`` whose lock is held (an unpack in progress).
"""

from __future__ import annotations

import os
from typing import Callable

from layers.atomic import fsync_dir, write_atomic
from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.errors import IntegrityError, LayerError, StoreError
from layers.mediatype import MediaType

from .blobs import BlobStore
from .locks import locked
from .space import NOSPACE, human, no_space, tree_size

__all__ = ["SnapshotStore"]


def remove_tree(path: str) -> None:
    """Remove a snapshot tree: rename it aside first so a half-removed tree is never mistaken for one."""
    if not os.path.lexists(path):
        return
    trash = os.path.join(os.path.dirname(path), f".trash-{os.urandom(6).hex()}")
    os.rename(path, trash)
    from layers.fstree import remove_tree

    remove_tree(trash)


class SnapshotStore:
    """``store.snapshots``: ensure, lowerdirs, list, remove."""

    def __init__(self, root: str, blobs: BlobStore, notes: Callable[[str], None] | None = None) -> None:
        self.root = root
        self.blobs = blobs
        self.notes = notes  # one line each, for the caller to show (a rootless unpack's skipped devices)
        self.base = os.path.join(root, "snapshots")

    def dir(self, diff_id: Digest) -> str:
        return os.path.join(self.base, diff_id.hex)

    def path(self, diff_id: Digest) -> str:
        """The unpacked tree (the lowerdir) of ``diff_id``."""
        return os.path.join(self.dir(diff_id), "fs")

    def ready(self, diff_id: Digest) -> bool:
        return os.path.isfile(os.path.join(self.dir(diff_id), "ready"))

    def lock_path(self, hex_: str) -> str:
        return os.path.join(self.root, "locks", f"snapshot-{hex_}.lock")

    def ensure(self, layer: Descriptor, diff_id: Digest) -> str:
        """A ready unpacked dir for ``layer`` (whose uncompressed digest must be ``diff_id``).
        Inside a lease, GC keeps the snapshot from this instant on."""
        leases = self.blobs.leases
        if leases.active:
            with leases.guard():
                leases.keep("snap", diff_id)
                if self.ready(diff_id):
                    return self.path(diff_id)
        elif self.ready(diff_id):
            return self.path(diff_id)
        from layers import archive

        return self._unpack(layer, diff_id, archive)

    def _unpack(self, layer: Descriptor, diff_id: Digest, archive) -> str:
        import shutil              # here, as in remove_tree: a run of an unpacked image never loads it

        with locked(self.lock_path(diff_id.hex), timeout=600, what=f"snapshot {diff_id}"):
            if self.ready(diff_id):
                return self.path(diff_id)
            remove_tree(self.dir(diff_id))  # debris of an interrupted unpack
            tmp = self.temp_dir(diff_id)
            try:
                try:
                    compression = MediaType.compression(layer.media_type)
                except KeyError:
                    raise LayerError(f"layer {layer.digest}: media type {layer.media_type!r} is not a layer") from None
                with self.blobs.open(layer.digest, layer.size) as reader:
                    got = archive.extract(reader, os.path.join(tmp, "fs"), compression=compression, mode="overlay",
                                          on_skipped=lambda names: self.note_skipped(layer, names))
                    reader.verify_rest()
                if got != diff_id:
                    raise IntegrityError(f"layer {layer.digest}: uncompressed content is {got}, the config says {diff_id}")
            except (StoreError, OSError) as exc:
                written = tree_size(tmp)
                shutil.rmtree(tmp, ignore_errors=True)
                if isinstance(exc, StoreError) or exc.errno in NOSPACE:  # extract's StoreError is a full disk
                    err = exc if isinstance(exc, OSError) else OSError(28, "No space left on device")
                    raise no_space(self.root, err, f"unpacking layer {layer.digest.short} of {human(layer.size)}",
                                   f"needs more than {written}") from None
                raise
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            return self.publish(tmp, diff_id)

    def temp_dir(self, diff_id: Digest) -> str:
        """A new ``.tmp-<hex>-<random>`` dir with an empty ``fs`` (0755) to unpack into; the caller holds
        the snapshot's lock and has removed debris at :meth:`dir` (:func:`remove_tree`)."""
        tmp = os.path.join(self.base, f".tmp-{diff_id.hex}-{os.urandom(4).hex()}")
        try:
            os.makedirs(os.path.join(tmp, "fs"), mode=0o700)
            os.chmod(os.path.join(tmp, "fs"), 0o755)
        except OSError as exc:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
            if exc.errno in NOSPACE:
                raise no_space(self.root, exc, f"unpacking layer {diff_id.short}", 4096) from None
            raise
        return tmp

    def publish(self, tmp: str, diff_id: Digest) -> str:
        """Make ``tmp`` (a tree whose diff_id the caller checked, under the snapshot's lock) the snapshot
        of ``diff_id``: rename it into place, then write the ``ready`` marker; the lowerdir path."""
        final = self.dir(diff_id)
        try:
            os.rename(tmp, final)
            fsync_dir(self.base)
        except OSError:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
            raise
        from .pause import pause_point

        pause_point("snapshot-ready")
        try:
            write_atomic(os.path.join(final, "ready"), f"{diff_id}\n".encode(), 0o600)
        except OSError as exc:
            if exc.errno in NOSPACE:
                remove_tree(final)
                raise no_space(self.root, exc, f"marking snapshot {diff_id.short} ready", 4096) from None
            raise
        return self.path(diff_id)

    def follow(self, layer: Descriptor, diff_id: Digest):
        """A :class:`~.follow.FollowUnpack` that unpacks ``layer`` from its ingest while it is written
        (a pull); see :mod:`.follow` for when the snapshot becomes visible."""
        from .follow import FollowUnpack

        return FollowUnpack(self, layer, diff_id)

    def note_skipped(self, layer: Descriptor, names: tuple[str, ...]) -> None:
        """Report (to ``notes``) the device nodes a rootless unpack of ``layer`` could not create."""
        if self.notes is not None:
            more = f" and {len(names) - 10} more" if len(names) > 10 else ""
            self.notes(f"layer {layer.digest.short}: device nodes cannot be created in a rootless user namespace, "
                       f"skipped: {', '.join(names[:10])}{more}")

    def lowerdirs(self, image) -> list[str]:
        """The image's snapshots, top-most first, as overlayfs wants its lowerdirs."""
        diff_ids = image.config.diff_ids
        dirs = [self.ensure(layer, diff_id) for layer, diff_id in zip(image.manifest.layers, diff_ids)]
        return dirs[::-1]

    def list(self) -> list[tuple[str, bool]]:
        """``(name, ready)`` for every entry under ``snapshots/`` (temporary ones included)."""
        try:
            names = sorted(os.listdir(self.base))
        except FileNotFoundError:
            return []
        return [(n, os.path.isfile(os.path.join(self.base, n, "ready"))) for n in names]

    def remove(self, name: str) -> None:
        remove_tree(os.path.join(self.base, name))

    @staticmethod
    def hex_of(name: str) -> str | None:
        """The diff_id hex an entry of ``snapshots/`` belongs to (``<hex>`` or ``.tmp-<hex>-*``)."""
        if name.startswith(".tmp-"):
            name = name[5:].partition("-")[0]
        return name if len(name) == 64 and all(c in "0123456789abcdef" for c in name) else None

