"""The one adapter over ``fuse-overlayfs`` (Debian's package): the rootless overlay where the kernel
cannot mount overlayfs in a user namespace (Linux < 5.11), or when ``PYBUILD_OVERLAY=fuse-overlayfs``.

``mount`` starts ``fuse-overlayfs`` (it daemonizes once the mount is up); ``unmount`` is a plain
``umount2`` (root of the user namespace owns the mount). In an upper dir fuse-overlayfs writes
whiteouts as 0/0 character devices and opaque directories as ``user.fuseoverlayfs.opaque``; the layer
packer reads both (``layers.archive.pack``).
"""

from __future__ import annotations

import shutil
import subprocess

from .errors import SandboxError

__all__ = ["available", "mount"]


def available() -> bool:
    """Whether ``fuse-overlayfs`` is installed and ``/dev/fuse`` can be opened."""
    import os

    return shutil.which("fuse-overlayfs") is not None and os.access("/dev/fuse", os.R_OK | os.W_OK)


def mount(options: str, target: str, pass_fds: tuple[int, ...] = ()) -> None:
    """``fuse-overlayfs -o OPTIONS TARGET`` (``lowerdir=...[,upperdir=...,workdir=...]``); ``pass_fds``
    keeps lower dirs given as ``/proc/self/fd/N`` open in it under the same numbers."""
    exe = shutil.which("fuse-overlayfs")
    if exe is None:
        raise SandboxError("rootless overlay: fuse-overlayfs is not installed (apt-get install fuse-overlayfs)")
    try:
        done = subprocess.run([exe, "-o", options, target], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=60, pass_fds=pass_fds)
    except OSError as e:
        raise SandboxError(f"fuse-overlayfs: {e.strerror}") from None
    if done.returncode:
        lines = done.stdout.decode(errors="replace").strip().splitlines()
        raise SandboxError(f"fuse-overlayfs on {target}: {lines[-1] if lines else 'exit ' + str(done.returncode)}")
