"""The one adapter over ``newuidmap``/``newgidmap`` (Debian's ``uidmap``), setuid helpers that
write a child's ``uid_map``/``gid_map`` with the caller's subordinate ranges.

Only these two programs may write a map wider than the caller's own id; pybuild calls them here
and nowhere else. Without them, a single-id map (``0 <uid> 1``) is written directly, which the
kernel allows an unprivileged process for its own child (after ``setgroups`` is denied).
"""

from __future__ import annotations

import os
import shutil
import subprocess

from ..errors import RuntimeFailure
from .subids import IdRange

__all__ = ["write_maps", "map_lines"]


def map_lines(own: int, ranges: tuple[IdRange, ...]) -> list[tuple[int, int, int]]:
    """Container 0 -> ``own``; container 1.. -> the ranges, in order."""
    rows, inside = [(0, own, 1)], 1
    for r in ranges:
        rows.append((inside, r.start, r.count))
        inside += r.count
    return rows


def _tool(pid: int, tool: str, rows: list[tuple[int, int, int]]) -> None:
    path = shutil.which(tool) or f"/usr/bin/{tool}"
    args = [path, str(pid)] + [str(v) for row in rows for v in row]
    try:
        done = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=30)
    except OSError as e:
        raise RuntimeFailure(f"{tool}: {e.strerror} (install Debian's uidmap package)") from None
    if done.returncode:
        out = done.stdout.decode(errors="replace").strip().splitlines()
        raise RuntimeFailure(f"{tool} {pid} failed: {out[-1] if out else 'exit ' + str(done.returncode)}")


def _direct(pid: int, uid: int, gid: int) -> None:
    try:
        with open(f"/proc/{pid}/setgroups", "w") as f:
            f.write("deny")
        with open(f"/proc/{pid}/uid_map", "w") as f:
            f.write(f"0 {uid} 1\n")
        with open(f"/proc/{pid}/gid_map", "w") as f:
            f.write(f"0 {gid} 1\n")
    except OSError as e:
        raise RuntimeFailure(f"writing the id map of {pid}: {e.strerror}") from None


def write_maps(pid: int, uid: int, gid: int, uids: tuple[IdRange, ...], gids: tuple[IdRange, ...]) -> None:
    """Map ``pid``'s new user namespace: 0 -> ``uid``/``gid``, 1.. -> the subordinate ranges."""
    have = shutil.which("newuidmap") and shutil.which("newgidmap")
    if not uids and not gids and not have:
        _direct(pid, uid, gid)
        return
    _tool(pid, "newuidmap", map_lines(uid, uids))
    _tool(pid, "newgidmap", map_lines(gid, gids))
