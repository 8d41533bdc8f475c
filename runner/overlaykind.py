"""Which overlay a process mounts, decided in one place: native overlayfs as root, native overlayfs
with ``userxattr`` in a rootless user namespace (Linux >= 5.11), or fuse-overlayfs (:mod:`.fuseoverlay`)
where the kernel cannot or ``PYBUILD_OVERLAY=fuse-overlayfs`` asks. ``pybuild info`` prints it."""

from __future__ import annotations

import os

from .errors import SandboxError

__all__ = ["OVERLAY_KINDS", "mount_native", "overlay_kind", "overlay_options", "uses_fuse"]


OVERLAY_KINDS = ("native", "native-userxattr", "fuse-overlayfs", "unsupported")


def overlay_kind() -> str:
    """Which overlay this process mounts: ``native`` (root), ``native-userxattr`` (rootless, kernel >=
    5.11: overlay in a user namespace, metadata in ``user.overlay.*``), ``fuse-overlayfs`` (rootless on
    an older kernel, or asked with ``PYBUILD_OVERLAY=fuse-overlayfs``; :mod:`runner.fuseoverlay`), or
    ``unsupported`` (rootless, old kernel, no usable fuse-overlayfs)."""
    from layers.store.location import is_rootless

    asked = os.environ.get("PYBUILD_OVERLAY", "")
    if asked not in ("", "native", "fuse-overlayfs"):
        raise SandboxError(f"PYBUILD_OVERLAY={asked!r}: use native or fuse-overlayfs")
    if not is_rootless():
        if asked == "fuse-overlayfs":
            raise SandboxError("PYBUILD_OVERLAY=fuse-overlayfs: only rootless pybuild uses fuse-overlayfs")
        return "native"
    from . import fuseoverlay
    major, minor = (int(v) for v in os.uname().release.split(".")[:2])
    if asked != "fuse-overlayfs" and (major, minor) >= (5, 11):
        return "native-userxattr"
    return "fuse-overlayfs" if fuseoverlay.available() else "unsupported"


def overlay_options() -> str:
    """Extra overlay mount options for :func:`overlay_kind` (``,userxattr`` rootless)."""
    kind = overlay_kind()
    if kind == "unsupported":
        raise SandboxError(f"rootless overlay needs Linux >= 5.11 (this is {os.uname().release}) or fuse-overlayfs "
                           "with a usable /dev/fuse")
    return ",userxattr" if kind == "native-userxattr" else ""


def uses_fuse() -> bool:
    """Whether overlays are mounted with fuse-overlayfs."""
    return overlay_kind() == "fuse-overlayfs"


def mount_native(target: str, data: str, volatile: bool = False) -> bool:
    """Mount overlayfs at ``target`` with options ``data``; whether it is ``volatile``. A volatile overlay
    (Linux 5.10; on an older kernel the option is dropped) does not send fsync or syncfs to the disk:
    only for a throw-away upper dir (a build step's, whose layer is made durable when it is stored),
    never a container's, which a restart mounts again."""
    import errno

    from . import syscalls as sc

    if volatile:
        try:
            sc.mount("overlay", target, "overlay", 0, data + ",volatile")
            return True
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # a kernel before 5.10 does not know the option
                raise
    sc.mount("overlay", target, "overlay", 0, data)
    return False
