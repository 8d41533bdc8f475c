"""COPY/ADD: put files into a mounted root (an overlay whose upper dir becomes the layer).

Docker's rules: a directory source contributes its contents; a destination ending in ``/`` (or one
that is a directory in the image, or several sources) is a directory; files keep their mode and
mtime, and are owned by 0:0 unless ``--chown``; ``--chmod`` sets the mode of everything copied.
Destination paths are resolved inside the root (a ``/bin -> usr/bin`` link in the image is followed,
never out of the root). ADD unpacks a local tar archive (through :func:`layers.archive.extract`)
and downloads URLs, checking ``--checksum``.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat

from layers.value import frozen
from runner.rootfs import resolve_in_root

from ..errors import BuildError

__all__ = ["CopyItem", "Ownership", "copy_items", "select_in_root", "write_file"]


@frozen
class Ownership:
    uid: int | None = None  # None: keep 0 (COPY) - ownership of the source is never kept
    gid: int | None = None
    mode: int | None = None  # --chmod


@frozen
class CopyItem:
    """``source`` is a host path (context file or a path in a stage's mounted root); ``target`` is the
    path relative to the destination (``""``: the destination itself, when it names a file)."""

    source: str
    target: str


def select_in_root(root: str, pattern: str) -> list[CopyItem]:
    """COPY --from sources in another stage's root: resolved inside it; wildcards in the last part."""
    import fnmatch

    pattern = "/" + pattern.lstrip("/")
    directory, base = posixpath.split(pattern)
    if any(c in base for c in "*?["):
        host_dir = resolve_in_root(root, directory)
        names = sorted(n for n in _listdir(host_dir) if fnmatch.fnmatchcase(n, base))
        if not names:
            raise FileNotFoundError(pattern)
        out: list[CopyItem] = []
        for n in names:
            p = os.path.join(host_dir, n)
            out.extend(_expand(p, n + "/" if os.path.isdir(p) and not os.path.islink(p) else n, True))
        return out
    host = resolve_in_root(root, pattern)
    if not os.path.lexists(host):
        raise FileNotFoundError(pattern)
    return _expand(host, "", False)


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _expand(host: str, target: str, wildcard: bool) -> list[CopyItem]:
    if os.path.isdir(host) and not os.path.islink(host):
        out = []
        for dirpath, dirnames, filenames in os.walk(host):
            dirnames.sort()
            rel = os.path.relpath(dirpath, host)
            for name in dirnames + sorted(filenames):
                r = name if rel == "." else f"{rel}/{name}"
                out.append(CopyItem(os.path.join(dirpath, name), r))
        return out
    return [CopyItem(host, target if not wildcard else posixpath.basename(host))]


def _dest_is_dir(root: str, dest: str, items: list[CopyItem], sources: int) -> bool:
    if dest.endswith("/") or sources > 1:
        return True
    if any(i.target for i in items):
        return True
    host = resolve_in_root(root, dest)
    return os.path.isdir(host)


def _mkdirs(root: str, path: str, own: Ownership, created_mode: int = 0o755) -> str:
    """Create ``path`` inside ``root`` (each missing dir owned by the --chown owner or root)."""
    host = resolve_in_root(root, path)
    if os.path.isdir(host):
        return host
    parent = posixpath.dirname(path.rstrip("/")) or "/"
    if parent != path:
        _mkdirs(root, parent, own)
    host = resolve_in_root(root, path)
    if os.path.lexists(host) and not os.path.isdir(host):
        raise BuildError(f"cannot create directory {path}: a file is in the way")
    if not os.path.lexists(host):
        os.mkdir(host, created_mode)
        os.lchown(host, own.uid or 0, own.gid or 0)
    return host


def _apply(host: str, st: os.stat_result, own: Ownership) -> None:
    os.lchown(host, own.uid or 0, own.gid or 0)
    if not stat.S_ISLNK(st.st_mode):
        mode = own.mode if own.mode is not None else stat.S_IMODE(st.st_mode)
        os.chmod(host, mode)
        os.utime(host, ns=(st.st_atime_ns, st.st_mtime_ns))
    else:
        os.utime(host, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _place(source: str, host_dest: str, own: Ownership, follow: bool) -> None:
    st = os.stat(source) if follow else os.lstat(source)
    if os.path.lexists(host_dest) and (os.path.isdir(host_dest) != stat.S_ISDIR(st.st_mode)
                                      or os.path.islink(host_dest)):
        if os.path.isdir(host_dest) and not os.path.islink(host_dest):
            shutil.rmtree(host_dest)
        else:
            os.unlink(host_dest)
    if stat.S_ISDIR(st.st_mode):
        if not os.path.isdir(host_dest):
            os.mkdir(host_dest, 0o755)
    elif stat.S_ISLNK(st.st_mode):
        if os.path.lexists(host_dest):
            os.unlink(host_dest)
        os.symlink(os.readlink(source), host_dest)
    elif stat.S_ISREG(st.st_mode):
        tmp = host_dest + ".pybuild-tmp"
        shutil.copyfile(source, tmp)  # sendfile/copy_file_range in the kernel
        os.replace(tmp, host_dest)
    else:
        return  # sockets, fifos, devices in a context are skipped, as Docker does
    _apply(host_dest, st, own)


def copy_items(root: str, items: list[CopyItem], dest: str, own: Ownership, *, sources: int = 1) -> None:
    """Copy ``items`` to ``dest`` (absolute, inside ``root``). Directories of items come before their
    contents (as :func:`select_in_root` and the context's selection list them)."""
    dest_dir = _dest_is_dir(root, dest, items, sources)
    if dest_dir:
        _mkdirs(root, dest.rstrip("/") or "/", own)
    else:
        _mkdirs(root, posixpath.dirname(dest) or "/", Ownership())
    dirs_to_fix: list[tuple[str, os.stat_result]] = []
    for item in items:
        if dest_dir:
            target = item.target or posixpath.basename(item.source)
            rel = posixpath.join(dest, target)
        else:
            rel = dest
        parent = posixpath.dirname(rel.rstrip("/")) or "/"
        if parent.rstrip("/") != dest.rstrip("/"):
            _mkdirs(root, parent, own)
        # the parent is resolved inside the root; the last component itself is never followed
        host = os.path.join(resolve_in_root(root, posixpath.dirname(rel.rstrip("/")) or "/"),
                            posixpath.basename(rel.rstrip("/")))
        _place(item.source, host, own, False)  # callers resolve a top-level link inside its own root
        st = os.lstat(item.source)
        if stat.S_ISDIR(st.st_mode):
            dirs_to_fix.append((host, st))
    for host, st in reversed(dirs_to_fix):  # directory mtimes after their contents were written
        os.utime(host, ns=(st.st_atime_ns, st.st_mtime_ns))


def write_file(root: str, dest: str, content: bytes, own: Ownership, mode: int = 0o644) -> None:
    """A heredoc source (``COPY <<EOF /path``): one file with ``content``."""
    if dest.endswith("/"):
        raise BuildError(f"heredoc destination {dest} must name a file")
    _mkdirs(root, posixpath.dirname(dest) or "/", Ownership())
    host = os.path.join(resolve_in_root(root, posixpath.dirname(dest) or "/"), posixpath.basename(dest))
    if os.path.isdir(host) and not os.path.islink(host):
        raise BuildError(f"heredoc destination {dest} is a directory")
    if os.path.lexists(host):
        os.unlink(host)
    fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    os.lchown(host, own.uid or 0, own.gid or 0)
    os.chmod(host, own.mode if own.mode is not None else mode)
