"""Space: the one message for a full disk (the store, what was being written, the space needed and
free), and the size helpers every writer uses. What the store occupies (``system df``) is
:mod:`layers.store.usage`.
"""

from __future__ import annotations

import errno
import os

from layers.errors import StoreError

__all__ = ["NOSPACE", "no_space", "human", "free_bytes", "tree_size"]

NOSPACE = (errno.ENOSPC, errno.EDQUOT)


def human(n: float) -> str:
    """Decimal sizes as Docker prints them: ``512B``, ``4.26MB``."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{int(n)}B" if unit == "B" else f"{n:.3g}{unit}"
        n /= 1000
    return f"{n}B"  # unreachable


def free_bytes(path: str) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def tree_size(path: str) -> int:
    """Bytes a directory tree occupies (allocated blocks, not apparent sizes)."""
    total = 0
    for dirpath, dirs, files in os.walk(path):
        for n in files + dirs:
            try:
                total += os.lstat(os.path.join(dirpath, n)).st_blocks * 512
            except OSError:
                pass
    return total


def no_space(root: str, exc: OSError, doing: str, need: str | int) -> StoreError:
    """``store ROOT: No space left on device writing X (needs N, F free)``; ``need`` is a byte count
    or a phrase (``"needs more than 4.2MB"``). Measure after the partial data is gone."""
    if isinstance(need, int):
        need = f"needs {human(need)}"
    elif need.startswith("needs ") and need.split()[-1].isdigit():
        head, _, count = need.rpartition(" ")
        need = f"{head} {human(int(count))}"
    free = free_bytes(root)
    where = f"{human(free)} free" if free is not None else "free space unknown"
    return StoreError(f"store {root}: {exc.strerror or 'No space left on device'} {doing} ({need}, {where})")
