"""``setgroups`` in a user namespace whose ``/proc/self/setgroups`` is ``deny`` (the single-id map).

The kernel refuses ``setgroups`` there; with no supplementary groups asked, dropping them is not
possible but harmless (the process keeps none that are mapped), so it is skipped. Asking for groups
there is a clear error.
"""

from __future__ import annotations

import errno
import os

from ..errors import SandboxError

__all__ = ["set_groups"]


def _denied() -> bool:
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() == "deny"
    except OSError:
        return False


def set_groups(gids) -> None:
    """``os.setgroups(gids)``, tolerating a user namespace where setgroups is denied when ``gids`` is empty."""
    try:
        os.setgroups(list(gids))
    except PermissionError as exc:
        if exc.errno != errno.EPERM or not _denied():
            raise
        if gids:
            raise SandboxError(f"supplementary groups {list(gids)} cannot be set: this rootless user has no "
                               "subordinate gids (setgroups is denied in a single-id user namespace)") from None
