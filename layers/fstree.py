"""Remove a directory tree: the one way pybuild's rooms delete a tree they own.

:func:`remove_tree` walks with directory descriptors (``os.fwalk``), so a symlink inside the tree is
removed, never followed, even if something swaps a directory for a symlink meanwhile (as
``shutil.rmtree``'s descriptor-based walk guarantees). Imports ``os`` and ``stat`` only: ``shutil``
loads ``fnmatch``, ``bz2`` and ``lzma`` (~1.7 ms), which ``rm`` and ``run --rm`` would pay for
nothing at every call.
"""

from __future__ import annotations

import os
import stat

__all__ = ["remove_tree"]


def remove_tree(path: str, *, ignore_errors: bool = False) -> None:
    """Remove ``path`` and everything under it (a file or symlink at ``path`` is unlinked).

    A missing ``path`` is not an error. Raises the first :class:`OSError` met, after which part of
    the tree may be gone; ``ignore_errors`` removes what it can and raises nothing."""
    try:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(mode):
            os.unlink(path)
            return
        _remove_below(path, ignore_errors)
        os.rmdir(path)
    except OSError:
        if not ignore_errors:
            raise


def _remove_below(path: str, ignore_errors: bool) -> None:
    # a directory the walk cannot open keeps its entries: its rmdir below fails (ENOTEMPTY) and
    # says so; a symlink to a directory is listed in ``dirs`` and never entered
    for _top, dirs, files, dir_fd in os.fwalk(path, topdown=False, follow_symlinks=False):
        for name in files:
            _quietly(ignore_errors, os.unlink, name, dir_fd=dir_fd)
        for name in dirs:             # emptied already (bottom-up), or a symlink to a directory
            try:
                os.rmdir(name, dir_fd=dir_fd)
            except NotADirectoryError:
                _quietly(ignore_errors, os.unlink, name, dir_fd=dir_fd)
            except OSError:
                if not ignore_errors:
                    raise


def _quietly(ignore_errors: bool, op, name: str, *, dir_fd: int) -> None:
    try:
        op(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except OSError:
        if not ignore_errors:
            raise
