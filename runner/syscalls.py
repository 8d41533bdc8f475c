"""Thin ctypes wrappers over the Linux system calls the sandbox needs and Python lacks.

Each wrapper raises :class:`OSError` with the errno and a message naming the call and its target,
exactly as ``os`` functions do; callers turn those into :class:`runner.errors.SandboxError`.
Only x86_64 and aarch64 syscall numbers are listed (``pivot_root`` has no libc wrapper).
"""

from __future__ import annotations

import ctypes
import os

__all__ = [
    "mount", "umount2", "pivot_root", "unshare", "setns", "sethostname", "prctl", "set_process_title",
    "capget_bounding", "capset", "set_no_new_privs", "set_dumpable", "set_child_subreaper",
    "set_keepcaps", "set_pdeathsig", "is_child_subreaper", "cap_last_cap", "statfs_type",
    "MS_RDONLY", "MS_NOSUID", "MS_NODEV", "MS_NOEXEC", "MS_REMOUNT", "MS_BIND", "MS_REC",
    "MS_PRIVATE", "MS_SLAVE", "MS_STRICTATIME", "MS_RELATIME", "MS_NOATIME", "MS_NODIRATIME",
    "MS_SYNCHRONOUS", "MS_DIRSYNC", "MS_MANDLOCK", "MS_SHARED", "MS_UNBINDABLE", "MNT_DETACH",
    "CLONE_NEWNS", "CLONE_NEWUTS", "CLONE_NEWIPC", "CLONE_NEWPID", "CLONE_NEWNET",
    "CLONE_NEWCGROUP", "CLONE_NEWUSER", "OVERLAYFS_SUPER_MAGIC",
]

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

OVERLAYFS_SUPER_MAGIC = 0x794C7630  # statfs f_type of an overlayfs (linux/magic.h)

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

# one handle per process is fine: ctypes.CDLL is immutable after load and is inherited over fork
def _load_libc() -> ctypes.CDLL:
    try:  # the soname directly: find_library() runs ldconfig in a subprocess, ~10 ms per start
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        from ctypes.util import find_library  # here: it imports subprocess and shutil, which the shim does not need

        return ctypes.CDLL(find_library("c"), use_errno=True)


_libc = _load_libc()
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.statfs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long


def _check(ret: int, what: str) -> int:
    """Raise ``OSError(errno, strerror, what)`` for a failed call: ``strerror`` stays the bare reason."""
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), what)
    return ret


def _b(value: str | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return os.fsencode(value)


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    """mount(2). ``data`` is the comma-separated option string passed to the filesystem."""
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
           f"mount {fstype or source or ''} on {target}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    nr = _SYS_PIVOT_ROOT.get(os.uname().machine)
    if nr is None:
        raise OSError(38, f"pivot_root: unsupported architecture {os.uname().machine}")
    _libc.syscall.argtypes = [ctypes.c_long, ctypes.c_char_p, ctypes.c_char_p]
    _check(_libc.syscall(nr, _b(new_root), _b(put_old)), f"pivot_root {new_root}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), f"unshare {flags:#x}")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def statfs_type(path: str) -> int:
    """statfs(2)'s ``f_type`` of the filesystem holding ``path`` (its magic number, linux/magic.h)."""
    buf = ctypes.create_string_buffer(256)           # struct statfs is 120 bytes; f_type comes first
    _check(_libc.statfs(_b(path), buf), f"statfs {path}")
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), f"sethostname {name!r}")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl {option}")


def set_process_title(title: bytes) -> None:
    """Show ``title`` as this process's ``/proc/<pid>/cmdline`` and ``comm``: the argv area is
    overwritten in place (the interpreter keeps its own copy of the arguments), which needs no
    privilege, unlike PR_SET_MM. Used by ``--init``'s PID 1, a fork of the shim, whose command line
    would otherwise show the container the host's interpreter path, store root and container id."""
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    start, end = int(fields[45]), int(fields[46])         # arg_start, arg_end (fields 48, 49)
    size = end - start
    if size > 0:
        ctypes.memmove(start, title[:size - 1].ljust(size, b"\0"), size)
    name = ctypes.create_string_buffer(title[:15])
    _check(_libc.prctl(15, ctypes.addressof(name), 0, 0, 0), "prctl PR_SET_NAME")


def set_no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_dumpable(on: bool) -> None:
    prctl(PR_SET_DUMPABLE, 1 if on else 0)


def set_child_subreaper() -> None:
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def is_child_subreaper() -> bool:
    """Whether the calling process is a child subreaper (``PR_GET_CHILD_SUBREAPER``)."""
    value = ctypes.c_int(0)
    _check(_libc.prctl(37, ctypes.addressof(value), 0, 0, 0), "prctl PR_GET_CHILD_SUBREAPER")
    return bool(value.value)


def set_keepcaps(on: bool) -> None:
    prctl(PR_SET_KEEPCAPS, 1 if on else 0)


def set_pdeathsig(sig: int) -> None:
    prctl(PR_SET_PDEATHSIG, sig)


def cap_last_cap() -> int:
    """The highest capability number this kernel knows (``/proc/sys/kernel/cap_last_cap``)."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def capget_bounding(cap: int) -> bool:
    return prctl(PR_CAPBSET_READ, cap) == 1


def capbset_drop(cap: int) -> None:
    prctl(PR_CAPBSET_DROP, cap)


def ambient_clear() -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def ambient_raise(cap: int) -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) for the calling thread; each argument is a 64-bit capability mask."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(header), data), "capset")
