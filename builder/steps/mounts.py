"""Host-side preparation of ``RUN --mount`` sources: each function is a context manager that yields the
host path the sandbox binds (or ``None`` when there is nothing to mount) and undoes its work on exit.

* ``type=bind`` from the context: the source is resolved inside the context (a ``link -> /etc`` in the
  context never exposes the host's ``/etc``), shown through an overlay whose upper dir holds whiteouts
  for what ``.dockerignore`` leaves out, so ignored files stay invisible; writes (``rw``) land in that
  throw-away upper dir and never reach the user's files, as BuildKit discards them.
* ``type=cache``: a persistent directory per ``id`` under ``<root>/cache/mounts``; ``sharing=shared``
  users run together, ``locked`` waits for exclusive use, ``private`` gets a fresh directory while the
  shared one is busy. ``uid``/``gid``/``mode`` apply when the directory is created. No ``source=``
  subpaths (the race of BuildKit CVE-2024-23651 lives there).
* ``type=secret``: staged to a private 0700 directory outside the rootfs with the asked mode and owner.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import posixpath
import shutil
import stat
import tempfile
from collections.abc import Iterator

from ..errors import BuildError

__all__ = ["cache_dir", "context_bind", "stage_secret"]


def _whiteout(upper: str, rel: str, lower: str) -> None:
    """A 0/0 char device at ``upper/rel``; parent dirs copy the lower's owner and mode (an upper dir's
    attributes are what the merged view shows)."""
    parts = rel.split("/")
    for i in range(1, len(parts)):
        sub = "/".join(parts[:i])
        path = os.path.join(upper, sub)
        if not os.path.isdir(path):
            st = os.lstat(os.path.join(lower, sub))
            os.mkdir(path)
            os.chown(path, st.st_uid, st.st_gid)
            os.chmod(path, stat.S_IMODE(st.st_mode))
    os.mknod(os.path.join(upper, rel), stat.S_IFCHR | 0o000, os.makedev(0, 0))


def _hidden(context, rel_root: str, host_root: str) -> list[str]:
    """Paths under ``host_root`` (context-relative ``rel_root``) that the context leaves out, relative to
    ``host_root``, topmost only (a hidden directory hides what is under it)."""
    tree = context.tree()
    prefix = rel_root + "/" if rel_root else ""
    keep_dirs = set()
    for path in tree:
        parts = path.split("/")
        for i in range(1, len(parts)):
            keep_dirs.add("/".join(parts[:i]))  # parents of included paths stay visible
    hidden: list[str] = []
    for dirpath, dirnames, filenames in os.walk(host_root):
        rel_dir = os.path.relpath(dirpath, host_root)
        rel_dir = "" if rel_dir == "." else rel_dir
        descend = []
        for name in sorted(dirnames) + sorted(filenames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            ctx_rel = prefix + rel
            if ctx_rel in tree:
                if name in dirnames and not os.path.islink(os.path.join(dirpath, name)):
                    descend.append(name)
            elif name in dirnames and ctx_rel in keep_dirs:
                descend.append(name)
            else:
                hidden.append(rel)
        dirnames[:] = descend
    return hidden


@contextlib.contextmanager
def context_bind(context, source: str, work: str, readonly: bool = True) -> Iterator[str]:
    """The host path to bind for ``--mount=type=bind,source=SOURCE`` from the build context. A file is
    bound as it is when the mount is read-only, else a private copy (its writes go with the copy)."""
    from runner.rootfs import OverlayMount, resolve_in_root

    rel = posixpath.normpath("/" + (source or ".")).lstrip("/")
    host = resolve_in_root(context.root, rel)  # a symlink is followed, but only inside the context
    real_rel = os.path.relpath(host, context.root)
    real_rel = "" if real_rel == "." else real_rel.replace(os.sep, "/")
    if real_rel and real_rel not in context.tree():
        raise FileNotFoundError(source)
    st = os.stat(host)
    base = tempfile.mkdtemp(prefix="bind-", dir=work)
    try:
        if not stat.S_ISDIR(st.st_mode):
            if readonly:
                yield host
                return
            copy = os.path.join(base, posixpath.basename(rel) or "file")
            shutil.copy2(host, copy)
            yield copy
            return
        lower = host
        if any(c in host for c in ",:"):  # overlayfs cannot take such a lowerdir: bind it somewhere plain
            from runner import syscalls as sc

            lower = os.path.join(base, "src")
            os.mkdir(lower)
            sc.mount(host, lower, None, sc.MS_BIND)
        upper, ovl_work, target = (os.path.join(base, n) for n in ("upper", "work", "root"))
        os.mkdir(upper)
        os.chown(upper, st.st_uid, st.st_gid)
        os.chmod(upper, stat.S_IMODE(st.st_mode))
        if context.ignore.patterns:
            for hidden in _hidden(context, real_rel, host):
                _whiteout(upper, hidden, host)
        try:
            with OverlayMount([lower], upper, ovl_work, target) as root:
                yield root
        finally:
            if lower != host:
                from runner import syscalls as sc

                sc.umount2(lower, sc.MNT_DETACH)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _lock(path: str, mode: int) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _fresh(path: str, uid: int | None, gid: int | None, mode: int | None) -> None:
    """Give a just-made directory the owner and mode the mount asks for."""
    os.chown(path, uid or 0, gid or 0)
    os.chmod(path, mode if mode is not None else 0o755)


@contextlib.contextmanager
def cache_dir(mounts_dir: str, mount, work: str) -> Iterator[str]:
    """The directory behind ``--mount=type=cache`` (``mount`` is an :class:`~builder.instructions.Mount`),
    held with the lock its ``sharing`` asks for while the step runs."""
    os.makedirs(mounts_dir, mode=0o700, exist_ok=True)
    name = hashlib.sha256(mount.id.encode()).hexdigest()
    path = os.path.join(mounts_dir, name)
    lock_path = os.path.join(mounts_dir, name + ".lock")
    if mount.sharing == "private":
        try:
            fd = _lock(lock_path, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            private = tempfile.mkdtemp(prefix="cache-", dir=work)
            _fresh(private, mount.uid, mount.gid, mount.mode)
            try:
                yield private
            finally:
                shutil.rmtree(private, ignore_errors=True)
            return
    else:
        fd = _lock(lock_path, fcntl.LOCK_EX if mount.sharing == "locked" else fcntl.LOCK_SH)
    try:
        try:
            os.mkdir(path, 0o700)  # atomic: of two builds making it at once, one does
            _fresh(path, mount.uid, mount.gid, mount.mode)
        except FileExistsError:
            pass
        if os.path.islink(path) or not os.path.isdir(path):
            raise BuildError(f"cache mount {mount.id!r}: {path} is not a directory")
        yield path
    finally:
        os.close(fd)  # releases the lock


def stage_secret(data: bytes, directory: str, name: str, mode: int, uid: int | None, gid: int | None) -> str:
    """Write a secret to a private directory for a bind mount (never into the rootfs)."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    dest = os.path.join(directory, hashlib.sha256(name.encode()).hexdigest()[:16])
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chown(dest, uid or 0, gid or 0)
    os.chmod(dest, mode)
    return dest
