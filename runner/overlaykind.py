"""Which overlay a process mounts, decided in one place: native overlayfs as root, native overlayfs
with ``userxattr`` in a rootless user namespace (Linux >= 5.11), or fuse-overlayfs (:mod:`.fuseoverlay`)
where the kernel cannot or ``PYBUILD_OVERLAY=fuse-overlayfs`` asks. ``pybuild info`` prints it."""

from __future__ import annotations

import os

from .errors import SandboxError

__all__ = ["OVERLAY_KINDS", "overlay_kind", "overlay_options", "uses_fuse"]


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
