"""A container's filesystem as one directory, whether it runs or not (``cp``, ``export``, ``commit``).

:func:`container_root` yields the merged view of a container's overlay (its image's snapshots as
lower dirs, its upper dir on top):

* a running or paused container: its own overlay mount (``<container>/rootfs``), used as it is;
* a created or exited one: the same overlay, mounted for the duration of the block in a mount
  namespace private to this process (unshared once, propagation made private), so nothing is
  visible to, or left behind on, the host if the process dies. The container's lock is held
  across the block, so a ``start`` waits for it instead of mounting the same upper dir twice.

The path handed out is a host path: callers never resolve container paths against it with the
host's resolution; they use :class:`layers.archive.inroot.Root` (every path and symlink resolved
as if the directory were ``/``). Volumes and the ``/etc`` files bound into a running container are
not part of the view (``docker export`` leaves volumes out as well).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

from layers.value import frozen

from .errors import SandboxError, StateConflict
from .records import ContainerConfig
from .resources import rootfs_paths
from .state import ContainerStore

__all__ = ["ContainerRoot", "container_root"]

_private = False


@frozen(slots=True)
class ContainerRoot:
    """``path``: the merged root of container ``config``; ``running``: it is the live mount."""

    config: ContainerConfig
    path: str
    running: bool


def _private_mounts() -> None:
    """Move this process into its own mount namespace whose mounts propagate nowhere (once)."""
    global _private
    if _private:
        return
    from . import syscalls as sc

    try:
        sc.unshare(sc.CLONE_NEWNS)  # EINVAL in a process with threads: callers are single-threaded CLIs
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    except OSError as exc:
        raise SandboxError(f"a private mount namespace for the container's filesystem: {exc.strerror}") from None
    _private = True


@contextlib.contextmanager
def container_root(store: ContainerStore, ref: str) -> Iterator[ContainerRoot]:
    """The merged root of container ``ref`` for the block (see the module docstring)."""
    cfg = store.resolve(ref)
    paths = rootfs_paths(store, cfg.id)
    cur = store.status(cfg.id)
    if cur.live:
        if not os.path.ismount(paths.rootfs):
            raise StateConflict(f"container {cfg.name} is {cur.status} but its root filesystem is not mounted",
                                container=cfg.name, current=cur.status, wanted=cur.status)
        yield ContainerRoot(cfg, paths.rootfs, True)
        return
    from .rootfs import OverlayMount

    store.wait_shim_gone(cfg.id)      # a stopped container's shim may still be releasing its mounts
    with store.lock(cfg.id):
        cur = store.status(cfg.id)
        if cur.live or store.shim_pid(cfg.id) is not None or os.path.ismount(paths.rootfs):
            raise StateConflict(f"container {cfg.name} is starting or stopping: try again",
                                container=cfg.name, current=cur.status, wanted=cur.status)
        if not cfg.lowerdirs:
            raise StateConflict(f"container {cfg.name} has no image filesystem (host launcher)",
                                container=cfg.name, current=cur.status, wanted=cur.status)
        _private_mounts()
        base = tempfile.mkdtemp(prefix="view-", dir=store.dir(cfg.id))
        try:
            target = os.path.join(base, "root")
            with OverlayMount(list(cfg.lowerdirs), paths.upper, paths.work, target) as root:
                yield ContainerRoot(cfg, root, False)
        finally:
            shutil.rmtree(base, ignore_errors=True)
