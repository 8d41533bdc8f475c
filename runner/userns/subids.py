"""Subordinate id ranges from ``/etc/subuid`` and ``/etc/subgid`` (shadow's format).

Each line is ``owner:start:count`` where ``owner`` is a user name or a numeric uid; a user's
ranges are the lines naming either. Malformed lines are skipped, as shadow's tools skip them.
"""

from __future__ import annotations

from layers.value import frozen

__all__ = ["IdRange", "subordinate_ranges"]


@frozen
class IdRange:
    """``count`` ids on the host starting at ``start``."""

    start: int
    count: int


def subordinate_ranges(path: str, name: str | None, uid: int) -> tuple[IdRange, ...]:
    """The ranges in ``path`` owned by ``name`` or by the numeric ``uid``, in file order; () when
    the file is missing or has none."""
    owners = {str(uid)} | ({name} if name else set())
    out: list[IdRange] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return ()
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) != 3 or parts[0] not in owners:
            continue
        try:
            start, count = int(parts[1]), int(parts[2])
        except ValueError:
            continue
        if start >= 0 and count > 0:
            out.append(IdRange(start, count))
    return tuple(out)
