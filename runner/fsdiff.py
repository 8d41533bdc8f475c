"""``diff``: what a container changed in its filesystem, read from its overlay upper dir.

Docker's kinds: ``A`` added, ``C`` changed, ``D`` deleted, one :class:`Change` per path, sorted by
path. Read without mounting anything:

* a whiteout (a 0/0 character device, :func:`layers.archive.pack.is_whiteout`) is ``D``;
* anything else in the upper dir is ``C`` when a lower dir (the image's snapshots, top-most first,
  in overlayfs form) has that path, else ``A``;
* an opaque directory (``trusted.overlay.opaque=y``: made where a directory was deleted) is ``C``
  when the image had it, and each path the image had below it that the upper dir does not hold
  again is ``D``. Docker reports such a directory as ``D`` followed by ``A`` lines; this says
  what happened to each path instead.

Mount stubs are left out (:func:`mount_stubs`): the empty files and directories the sandbox made in
the upper dir as mount points (``/etc/hostname``, ``/etc/resolv.conf``...), as Docker keeps them in
its init layer; a directory whose only entries are stubs is left out too.
"""

from __future__ import annotations

import os
import posixpath
import stat

from layers.archive.pack import is_opaque, is_whiteout
from layers.value import frozen

from .resources import rootfs_paths
from .state import ContainerStore

__all__ = ["Change", "diff", "mount_stubs", "ADDED", "CHANGED", "DELETED"]

ADDED, CHANGED, DELETED = "A", "C", "D"


@frozen(slots=True)
class Change:
    kind: str       # "A", "C" or "D"
    path: str       # absolute, inside the container

    def __str__(self) -> str:
        return f"{self.kind} {self.path}"


class _Lowers:
    """Path lookups through the image's lower dirs as overlayfs merges them."""

    def __init__(self, dirs: list[str]) -> None:
        self.dirs = dirs

    def stat(self, rel: str) -> tuple[os.stat_result, str] | None:
        """The merged lower entry at ``rel`` and the lower dir it comes from, or None."""
        parts = rel.split("/")
        for d in self.dirs:
            hidden = False
            for i in range(1, len(parts) + 1):
                p = os.path.join(d, *parts[:i])
                try:
                    st = os.lstat(p)
                except (FileNotFoundError, NotADirectoryError):
                    break
                if is_whiteout(st) or (i < len(parts) and not stat.S_ISDIR(st.st_mode)):
                    hidden = True
                    break
                if i == len(parts):
                    return st, p
                if is_opaque(p):
                    # nothing below this directory comes from the dirs under ``d``
                    hidden = not os.path.lexists(os.path.join(d, *parts))
                    if hidden:
                        break
            if hidden:
                return None
        return None

    def children(self, rel: str) -> set[str]:
        out: set[str] = set()
        for d in self.dirs:
            p = os.path.join(d, rel)
            try:
                names = os.listdir(p)
            except OSError:
                names = []
            for n in names:
                if self.stat(f"{rel}/{n}" if rel else n) is not None:
                    out.add(n)
        return out


def _lstat_in(upper: str, rel: str) -> os.stat_result | None:
    """``lstat`` of ``rel`` under ``upper`` with no symlink followed on the way (the container wrote
    the upper dir), or None."""
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        try:
            st = os.lstat(os.path.join(upper, *parts[:i]))
        except (FileNotFoundError, NotADirectoryError):
            return None
        if i < len(parts) and not stat.S_ISDIR(st.st_mode):
            return None
    return st


def _empty(upper: str, rel: str, st: os.stat_result) -> bool:
    if stat.S_ISREG(st.st_mode):
        return st.st_size == 0
    return stat.S_ISDIR(st.st_mode) and not os.listdir(os.path.join(upper, rel))


def mount_stubs(store: ContainerStore, cfg) -> frozenset[str]:
    """Paths (relative, no leading ``/``) in container ``cfg``'s upper dir that are only mount points
    its sandbox made: an empty file or directory at a mount destination the image does not have,
    and the directories the image does not have that hold nothing else."""
    upper = rootfs_paths(store, cfg.id).upper
    lowers = _Lowers(list(cfg.lowerdirs))
    found: set[str] = set()
    for m in cfg.spec.mounts:
        rel = posixpath.normpath("/" + m.destination).lstrip("/")
        st = _lstat_in(upper, rel) if rel else None
        if st is not None and _empty(upper, rel, st) and lowers.stat(rel) is None:
            found.add(rel)
    todo = {posixpath.dirname(p) for p in found} - {""}
    while todo:
        rel = max(todo, key=lambda p: p.count("/"))
        todo.discard(rel)
        st = _lstat_in(upper, rel)
        if st is None or not stat.S_ISDIR(st.st_mode) or lowers.stat(rel) is not None:
            continue
        if all(f"{rel}/{n}" in found for n in os.listdir(os.path.join(upper, rel))):
            found.add(rel)
            if posixpath.dirname(rel):
                todo.add(posixpath.dirname(rel))
    return frozenset(found)


def diff(store: ContainerStore, ref: str) -> list[Change]:
    """The changes of container ``ref`` against its image, sorted by path."""
    cfg = store.resolve(ref)
    upper = rootfs_paths(store, cfg.id).upper
    lowers = _Lowers(list(cfg.lowerdirs))
    stubs = mount_stubs(store, cfg)
    out: list[Change] = []

    def walk(rel: str) -> bool:
        """Report what is below ``rel``; True when everything there was left out (stubs only)."""
        base = os.path.join(upper, rel) if rel else upper
        try:
            names = sorted(os.listdir(base), key=os.fsencode)
        except FileNotFoundError:
            return False
        left_out = 0
        for name in names:
            child = f"{rel}/{name}" if rel else name
            path = os.path.join(base, name)
            st = os.lstat(path)
            if child in stubs:
                left_out += 1
                continue
            if is_whiteout(st):
                out.append(Change(DELETED, "/" + child))
                continue
            had = lowers.stat(child) is not None
            if stat.S_ISDIR(st.st_mode):
                if had and is_opaque(path):
                    for gone in lowers.children(child) - set(os.listdir(path)):
                        out.append(Change(DELETED, f"/{child}/{gone}"))
                if walk(child) and had:
                    left_out += 1
                    continue
            out.append(Change(CHANGED if had else ADDED, "/" + child))
        return bool(names) and left_out == len(names)

    walk("")
    out.sort(key=lambda c: os.fsencode(c.path))
    return out
