"""Open directories inside a root as if it were ``/``: symlinks followed, never out of the root.

:class:`Root` resolves a relative path against a directory file descriptor. On Linux >= 5.6 it is
one ``openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`` call, which the kernel makes race-free;
elsewhere a component-by-component walk with ``O_NOFOLLOW`` does the same clamping (an absolute
link restarts at the root, ``..`` at the root stays there). Nothing here ever hands out a path that
the host would resolve on its own: callers use the returned fds with the ``*at`` calls
(``dir_fd=``), so a symlink planted by a layer cannot redirect a write (SECURITY.md cases 2-5).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import stat

__all__ = ["Root", "split"]

_MAX_LINKS = 40
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437, "armv7l": 437, "ppc64le": 437, "s390x": 437, "riscv64": 437}


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def _libc_syscall():
    libc = ctypes.CDLL(None, use_errno=True)
    fn = libc.syscall
    fn.restype = ctypes.c_long
    return fn


def split(path: str) -> list[str]:
    """The components of a path, without empty and ``.`` parts."""
    return [p for p in path.split("/") if p not in ("", ".")]


class Root:
    """A directory that paths are resolved in. ``close()`` (or ``with``) releases its fd.

    ``use_openat2=False`` forces the portable walk (tests run both).
    """

    def __init__(self, path: str, *, use_openat2: bool | None = None) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        number = _SYS_OPENAT2.get(platform.machine())
        self._syscall = None
        if use_openat2 is not False and number is not None:
            self._syscall = (_libc_syscall(), number)
            if not self._probe():
                self._syscall = None
        if use_openat2 and self._syscall is None:
            os.close(self.fd)
            raise OSError(errno.ENOSYS, "openat2 is not available")

    def _probe(self) -> bool:
        try:
            os.close(self._openat2(".", os.O_PATH | os.O_DIRECTORY))
        except OSError as exc:
            if exc.errno in (errno.ENOSYS, errno.EPERM, errno.EINVAL):  # old kernel, or seccomp says no
                return False
            raise
        return True

    @property
    def uses_openat2(self) -> bool:
        return self._syscall is not None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Root":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- resolution ------------------------------------------------------------------------------

    def _openat2(self, rel: str, flags: int) -> int:
        fn, number = self._syscall  # type: ignore[misc]
        how = _OpenHow(flags | os.O_CLOEXEC, 0, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
        fd = fn(number, self.fd, os.fsencode(rel or "."), ctypes.byref(how), ctypes.sizeof(how))
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), rel)
        return fd

    def open_dir(self, rel: str) -> int:
        """An ``O_RDONLY`` fd of directory ``rel`` (symlinks resolved in the root). ENOENT/ENOTDIR as OSError."""
        if self._syscall is not None:
            return self._openat2(rel, os.O_RDONLY | os.O_DIRECTORY)
        return self._walk(split(rel))

    def _walk(self, parts: list[str]) -> int:
        stack = [os.dup(self.fd)]
        links = 0
        try:
            while parts:
                part = parts.pop(0)
                if part == "..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                    continue
                st = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    links += 1
                    if links > _MAX_LINKS:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), part)
                    target = os.readlink(part, dir_fd=stack[-1])
                    if target.startswith("/"):
                        while len(stack) > 1:
                            os.close(stack.pop())
                    parts[:0] = split(target)
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), part)
                stack.append(os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                     dir_fd=stack[-1]))
            return stack.pop()
        finally:
            for fd in stack:
                os.close(fd)

    def make_dirs(self, rel: str, mode: int = 0o755, _links: int = 0) -> int:
        """Like :meth:`open_dir`, creating missing directories (``mode``) on the way, inside the root.

        A dangling symlink on the way is followed as the kernel would inside the root: the
        directories are made where it points (clamped to the root), as ``mkdir -p`` in a chroot does.
        """
        try:
            return self.open_dir(rel)
        except FileNotFoundError:
            pass
        parts = split(rel)
        if not parts:
            raise OSError(errno.ENOENT, "root directory is gone", self.path)
        if _links > _MAX_LINKS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), rel)
        head = "/".join(parts[:-1])
        parent = self.make_dirs(head, mode, _links)
        try:
            try:
                os.mkdir(parts[-1], mode, dir_fd=parent)
            except FileExistsError:
                st = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    target = os.readlink(parts[-1], dir_fd=parent)
                    where = target if target.startswith("/") else f"{head}/{target}"
                    os.close(parent)
                    parent = -1
                    return self.make_dirs(where.lstrip("/"), mode, _links + 1)
        finally:
            if parent >= 0:
                os.close(parent)
        return self.open_dir(rel)
