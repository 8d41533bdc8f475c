"""Whether overlayfs can use a directory as its upper dir, and the error that says what to do when not.

The kernel refuses an overlayfs upper dir on another overlayfs ("not supported as upperdir", EINVAL
from mount). That is where a store ends up inside a container when it is not on a volume: the
container's own root filesystem is an overlay. :func:`check_upper_dir` finds it with one
``statfs`` before any work; :class:`runner.rootfs.OverlayMount` calls :func:`explain` when a mount
fails, so the same advice replaces the kernel's bare "Invalid argument".
"""

from __future__ import annotations

from . import syscalls as sc
from .errors import SandboxError

__all__ = ["upper_dir_problem", "upper_dir_message", "check_upper_dir", "explain", "VOLUME_HINT"]

VOLUME_HINT = ("put the store on a volume: e.g. podman run -v pybuild-store:/home/pybuild/.local/share/pybuild ..., "
               "a Kubernetes emptyDir there, or --root DIR on a mounted volume")


def upper_dir_problem(path: str) -> str | None:
    """Why overlayfs cannot use a directory on ``path``'s filesystem as an upper dir ("is on ..."), or None. A path
    that cannot be examined (it does not exist yet) is not a problem here."""
    try:
        kind = sc.statfs_type(path)
    except OSError:
        return None
    if kind == sc.OVERLAYFS_SUPER_MAGIC:
        return "is on an overlay filesystem (a container's own root?), which overlay cannot use as an upper dir"
    return None


def upper_dir_message(path: str, what: str = "the store") -> str | None:
    """One line naming ``path``, the problem and the fix when ``path`` cannot hold upper dirs; else None."""
    problem = upper_dir_problem(path)
    return None if problem is None else f"{what} {path} {problem}; {VOLUME_HINT}"


def check_upper_dir(path: str, what: str = "the store") -> None:
    """Raise :class:`SandboxError` with :func:`upper_dir_message` when ``path`` cannot hold upper dirs."""
    message = upper_dir_message(path, what)
    if message is not None:
        raise SandboxError(message)


def explain(upper: str, exc: OSError) -> str:
    """The message for a failed overlay mount whose upper dir is ``upper``: the advice when the
    upper dir's filesystem is the reason, else the system's reason."""
    problem = upper_dir_problem(upper)
    if problem is not None:
        return f"upper dir {upper} {problem}; {VOLUME_HINT}"
    return exc.strerror or str(exc)
