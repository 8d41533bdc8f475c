"""``cp``: copy files between a container's filesystem and the host, with ``docker cp``'s archive rules.

Both sides are handled the same way: a path is resolved in a root with
:class:`layers.archive.inroot.Root` (the container's merged root from :mod:`runner.fsview`, or the
host's ``/``), so a symlink inside a container is resolved as if the container's root were ``/``
and never leads to the host. The source is packed by :class:`runner.fstar.TreeWriter` from
directory fds, and unpacked by :func:`layers.archive.extract` into a directory fd of the
destination, which confines every entry to that directory.

Docker's rules (``docker cp`` reference):

* SRC a file: DEST an existing directory -> ``DEST/<name>``; DEST an existing file -> overwritten;
  DEST missing -> saved as DEST (its parent must exist; a DEST ending in ``/`` must exist).
* SRC a directory: DEST missing -> created with SRC's contents; DEST an existing directory -> SRC is
  copied into it, or only its contents when SRC ends in ``/.``; DEST a file -> an error.
* ``-L`` (``follow``): a symlink SRC is copied as what it points to (resolved in its own root);
  without it, the link itself is copied. A SRC ending in ``/`` or ``/.`` follows a final link too.
* ``-a`` (``archive``): uid/gid are kept; without it files copied into a container belong to root
  (0:0) and files copied out to the user running ``cp``.
* ``-`` on either side: a tar stream (``archive_from_container`` writes one, ``extract_into_container``
  reads one, plain or compressed, into a DEST that must be a directory).
* A container path at or under a bind mount or a named volume (``-v``, ``--mount``, an image's
  VOLUME) is the mount's source, as the container sees it, running or not: the longest destination
  that holds the path wins, and the rest of the path is resolved inside the source (never out of
  it). A read-only mount refuses a copy into it. File binds the sandbox makes (``/etc/hosts``...) and
  tmpfs mounts are not followed: they are the container's root filesystem's.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
import threading
from typing import BinaryIO, Callable

from layers.archive.inroot import Root
from layers.errors import InvalidInput, NotFound
from layers.value import frozen

from .fstar import TreeWriter
from .fsview import container_root
from .state import ContainerStore

__all__ = ["archive_from_container", "copy_from_container", "copy_into_container", "extract_into_container"]

_MAX_LINKS = 40


@frozen(slots=True)
class _Source:
    parent_fd: int      # the directory holding it (closed by the caller)
    name: str           # its name there ("." for a root)
    base: str           # the name its copy gets ("" for a root or a ``/.`` source: contents only)
    is_dir: bool


def _rel(path: str) -> str:
    return posixpath.normpath("/" + path).lstrip("/")


def _host(path: str) -> str:
    """A host path made absolute, keeping the trailing ``/`` or ``/.`` that the rules look at."""
    return path if path.startswith("/") else os.path.join(os.getcwd(), path)


@frozen(slots=True)
class _Place:
    """Where a container path lives: ``root`` (the container's merged root or a mount's source
    directory), ``path`` in it ("" for a mount point itself, named ``name``), and whether that is a
    read-only mount."""

    root: str
    path: str
    name: str = ""
    readonly: bool = False


def _place(view, path: str) -> _Place:
    """The container path ``path`` through the mounts of ``view.config`` (see the module docstring)."""
    norm = "/" + _rel(path)
    best = None
    for m in view.config.spec.mounts:
        if not m.is_bind or not m.source:
            continue
        dest = "/" + _rel(m.destination)
        if (norm == dest or norm.startswith(dest.rstrip("/") + "/")) and os.path.isdir(m.source) \
                and (best is None or len(dest) > len(best[0])):
            best = (dest, m)
    if best is None:
        return _Place(view.path, path)
    dest, mount = best
    rest = norm[len(dest):] if dest != "/" else norm
    suffix = "/." if path.endswith("/.") else "/" if path.endswith("/") else ""
    inner = (rest or "/") + suffix if (rest or suffix) else ""
    return _Place(mount.source, inner, posixpath.basename(dest), "ro" in mount.options)


def _source(root: Root, path: str, follow: bool, where: str, top: str = "") -> _Source:
    """``top``: the name a copy of the root itself gets when ``path`` is "" (a mount point)."""
    contents = path in (".", "/") or path.endswith(("/.", "/"))
    follow_last = follow or path.endswith(("/.", "/"))
    rel = _rel(path)
    for _ in range(_MAX_LINKS):
        if not rel:
            return _Source(os.dup(root.fd), ".", "" if contents else top, True)
        head, name = posixpath.split(rel)
        try:
            pfd = root.open_dir(head)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"{where}: no such file or directory") from None
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            os.close(pfd)
            raise NotFound(f"{where}: no such file or directory") from None
        if stat.S_ISLNK(st.st_mode) and follow_last:
            target = os.readlink(name, dir_fd=pfd)
            os.close(pfd)
            rel = _rel(target if target.startswith("/") else posixpath.join(head, target))
            continue
        is_dir = stat.S_ISDIR(st.st_mode)
        if contents and not is_dir:
            os.close(pfd)
            raise InvalidInput(f"{where}: not a directory")
        return _Source(pfd, name, "" if contents else name, is_dir)
    raise InvalidInput(f"{where}: too many levels of symbolic links")


def _target(root: Root, path: str, src: _Source, where: str) -> tuple[int, str]:
    """The directory fd to unpack into and the name the source gets there ("": its contents only)."""
    rel = _rel(path)
    slash = path.endswith("/")
    head, base = posixpath.split(rel)
    try:
        fd = root.open_dir(rel)
    except NotADirectoryError:
        if src.is_dir:
            raise InvalidInput(f"{where}: cannot copy a directory to a file") from None
        if slash:
            raise InvalidInput(f"{where}: not a directory") from None
    except FileNotFoundError:
        if slash and not src.is_dir:
            raise NotFound(f"{where}: no such directory") from None
    else:
        return fd, src.base
    try:
        return root.open_dir(head), base
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"{where}: no such directory: {'/' + head}") from None


def _unpack(produce: Callable[[BinaryIO], None], dir_fd: int, what: str) -> None:
    """``produce`` writes a tar in a thread; it is extracted into ``dir_fd`` as it comes."""
    from layers.archive import extract

    r, w = os.pipe()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            with open(w, "wb", buffering=1 << 16) as out:
                produce(out)
        except BrokenPipeError:
            pass                        # the reader stopped: its error is the one reported
        except BaseException as exc:    # re-raised in the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=run, name="cp-pack", daemon=True)
    thread.start()
    try:
        with open(r, "rb") as inp:
            extract(inp, f"/proc/self/fd/{dir_fd}", what=what)
    finally:
        thread.join()
    if failed:
        raise failed[0]


def _pack(src: _Source, arcname: str, owner: tuple[int, int] | None) -> Callable[[BinaryIO], None]:
    def produce(out: BinaryIO) -> None:
        writer = TreeWriter(out, owner)
        writer.add(src.parent_fd, src.name, arcname)
        writer.close()
    return produce


def _copy(src_root: Root, src_path: str, src_where: str, dst_root: Root, dst_path: str, dst_where: str,
          follow: bool, owner: tuple[int, int] | None, top: str = "") -> None:
    src = _source(src_root, src_path, follow, src_where, top)
    try:
        fd, name = _target(dst_root, dst_path, src, dst_where)
        try:
            _unpack(_pack(src, name, owner), fd, f"copy of {src_where}")
        finally:
            os.close(fd)
    finally:
        os.close(src.parent_fd)


def _writable(place: _Place, where: str) -> _Place:
    if place.readonly:
        raise InvalidInput(f"{where}: the mounted volume is marked read-only")
    return place


def _fail(exc: OSError, where: str):
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        from layers.errors import StoreError

        return StoreError(f"{where}: no space left on device")
    return InvalidInput(f"{where}: {exc.strerror or exc}")


def copy_from_container(store: ContainerStore, ref: str, src: str, dest: str, *, archive: bool = False,
                        follow: bool = False) -> None:
    """``cp CONTAINER:SRC DEST``: SRC in the container to the host path DEST."""
    with container_root(store, ref) as view:
        place = _place(view, src)
        with Root(place.root) as croot, Root("/") as host:
            owner = None if archive else (os.getuid(), os.getgid())
            where = f"{view.config.name}:{src}"
            try:
                _copy(croot, place.path, where, host, _host(dest), dest, follow, owner, place.name)
            except OSError as exc:
                raise _fail(exc, where) from None


def copy_into_container(store: ContainerStore, ref: str, src: str, dest: str, *, archive: bool = False,
                        follow: bool = False) -> None:
    """``cp SRC CONTAINER:DEST``: the host path SRC into the container at DEST."""
    with container_root(store, ref) as view:
        place = _writable(_place(view, dest), f"{view.config.name}:{dest}")
        with Root(place.root) as croot, Root("/") as host:
            owner = None if archive else (0, 0)
            where = f"{view.config.name}:{dest}"
            try:
                _copy(host, _host(src), src, croot, place.path, where, follow, owner)
            except OSError as exc:
                raise _fail(exc, where) from None


def archive_from_container(store: ContainerStore, ref: str, src: str, out: BinaryIO, *,
                           follow: bool = False) -> None:
    """``cp CONTAINER:SRC -``: a tar of SRC (named by its base name, or its contents for ``/.``) to ``out``."""
    with container_root(store, ref) as view, Root((place := _place(view, src)).root) as croot:
        where = f"{view.config.name}:{src}"
        try:
            source = _source(croot, place.path, follow, where, place.name)
            try:
                _pack(source, source.base, None)(out)
            finally:
                os.close(source.parent_fd)
        except OSError as exc:
            raise _fail(exc, where) from None


def extract_into_container(store: ContainerStore, ref: str, stream: BinaryIO, dest: str) -> None:
    """``cp - CONTAINER:DEST``: a tar (plain, gzip or zstd) read from ``stream`` into directory DEST."""
    from layers.archive import extract, sniff_stream

    with container_root(store, ref) as view, \
            Root((place := _writable(_place(view, dest), f"{view.config.name}:{dest}")).root) as croot:
        where = f"{view.config.name}:{dest}"
        try:
            fd = croot.open_dir(_rel(place.path))
        except FileNotFoundError:
            raise NotFound(f"{where}: no such directory") from None
        except NotADirectoryError:
            raise InvalidInput(f"{where}: destination must be a directory") from None
        try:
            head, compression = sniff_stream(stream)
            extract(head, f"/proc/self/fd/{fd}", compression=compression, what=f"tar for {where}")
        except OSError as exc:
            raise _fail(exc, where) from None
        finally:
            os.close(fd)

