"""Seccomp: pybuild's default profile (runtime-spec ``linux.seccomp`` form) compiled with libseccomp via ctypes.

The default profile is a deny-list, not Docker's allow-list: it refuses with ``EPERM`` the system
calls Docker's profile refuses to a container without extra capabilities (mount and the new mount
API, namespaces: ``unshare``/``setns``/``clone`` with ``CLONE_NEW*`` flags, keyrings, kernel modules,
kexec, bpf, perf, ``open_by_handle_at``, clock and swap changes, ``reboot``, ``ptrace``-like memory
access...), and answers ``clone3`` with ``ENOSYS`` so libc falls back to ``clone`` where flags can be
checked. When ``libseccomp.so.2`` is absent :func:`available` is False and the sandbox runs without a
filter; ``pybuild inspect`` should say so (``status()``).
"""

from __future__ import annotations

import ctypes
import errno
import functools

from .errors import SandboxError
from .ocispec import Seccomp, SeccompArg, SyscallRule

__all__ = ["available", "status", "default_profile", "device_node_rules", "compile_profile", "Filter"]

_ACT_ALLOW = 0x7FFF0000
_ACT_KILL_PROCESS = 0x80000000
_ACT_KILL = 0x00000000
_ACT_TRAP = 0x00030000
_ACT_LOG = 0x7FFC0000
_ACT_ERRNO = 0x00050000
_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
        "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}

_DENIED = (
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
    "finit_module", "fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms", "init_module", "ioperm",
    "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mount", "mount_setattr",
    "move_mount", "name_to_handle_at", "nfsservctl", "open_by_handle_at", "open_tree", "perf_event_open",
    "pivot_root", "process_vm_readv", "process_vm_writev", "query_module", "quotactl", "quotactl_fd",
    "reboot", "request_key", "setns", "settimeofday", "stime", "swapoff", "swapon", "sysfs", "_sysctl",
    "umount", "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
)
_CLONE_NS_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


@functools.lru_cache(maxsize=1)
def _lib():
    try:  # the soname first: find_library() runs ldconfig in a subprocess
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError:
        from ctypes.util import find_library  # here: it imports subprocess and shutil

        name = find_library("seccomp")
        if name is None:
            return None
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError:
            return None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCmp)]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    return lib


def available() -> bool:
    return _lib() is not None


def status() -> str:
    """One word for ``inspect``: ``default`` (filter applied) or ``unavailable (no libseccomp)``."""
    return "default" if available() else "unavailable (libseccomp.so.2 not found)"


def default_profile() -> Seccomp:
    """pybuild's default profile as a runtime-spec ``linux.seccomp`` value."""
    eperm = {"action": "SCMP_ACT_ERRNO", "errno_ret": errno.EPERM}
    syscalls = [SyscallRule(names=_DENIED, **eperm)]
    syscalls += [SyscallRule(names=("clone",), args=(SeccompArg(0, f, "SCMP_CMP_MASKED_EQ", f),), **eperm)
                 for f in _CLONE_NS_FLAGS]
    syscalls.append(SyscallRule(names=("clone3",), action="SCMP_ACT_ERRNO", errno_ret=errno.ENOSYS))
    return Seccomp(default_action="SCMP_ACT_ALLOW",
                   architectures=("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"),
                   syscalls=tuple(syscalls))


def _action(name: str, errno_ret: int | None) -> int:
    if name == "SCMP_ACT_ALLOW":
        return _ACT_ALLOW
    if name == "SCMP_ACT_ERRNO":
        return _ACT_ERRNO | ((errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return _ACT_KILL
    if name == "SCMP_ACT_KILL_PROCESS":
        return _ACT_KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return _ACT_TRAP
    if name == "SCMP_ACT_LOG":
        return _ACT_LOG
    raise SandboxError(f"linux.seccomp: unsupported action {name!r}")


class Filter:
    """A compiled filter (a libseccomp context). Build it before forking; :meth:`load` in the child."""

    def __init__(self, ctx: int) -> None:
        self._ctx = ctx

    def load(self, *, set_no_new_privs: bool = True) -> None:
        """Install the filter. ``set_no_new_privs=False`` (``no-new-privileges:false``) keeps libseccomp
        from setting no_new_privs itself; the caller must then still hold CAP_SYS_ADMIN."""
        if not set_no_new_privs:
            ret = _lib().seccomp_attr_set(self._ctx, 3, 0)       # SCMP_FLTATR_CTL_NNP
            if ret < 0:
                raise OSError(-ret, "seccomp_attr_set")
        ret = _lib().seccomp_load(self._ctx)
        if ret < 0:
            raise OSError(-ret, "seccomp_load")

    def release(self) -> None:
        if self._ctx:
            _lib().seccomp_release(self._ctx)
            self._ctx = 0


def device_node_rules() -> tuple[SyscallRule, ...]:
    """Rules refusing ``mknod``/``mknodat`` of block and character devices (``EPERM``).

    Added on cgroup v2 hosts, where pybuild attaches no device-cgroup eBPF program: without them
    CAP_MKNOD would let a container make and open ``/dev/sda``. The standard nodes in ``/dev`` are
    created before the filter is loaded.
    """
    rules = []
    for kind in (0o060000, 0o020000):             # S_IFBLK, S_IFCHR
        for name, index in (("mknod", 1), ("mknodat", 2)):
            rules.append(SyscallRule(names=(name,), action="SCMP_ACT_ERRNO", errno_ret=errno.EPERM,
                                     args=(SeccompArg(index, 0o170000, "SCMP_CMP_MASKED_EQ", kind),)))
    return tuple(rules)


def compile_profile(profile: Seccomp | None, *, deny_device_nodes: bool = False) -> Filter | None:
    """Compile a runtime-spec seccomp profile for the native architecture; None if there is none.

    ``deny_device_nodes`` adds :func:`device_node_rules` (the sandbox sets it on cgroup v2).

    Raises :class:`SandboxError` when the profile asks for a filter and libseccomp is missing, or
    a rule is malformed. Unknown syscall names are skipped (the kernel may not have them).
    """
    if profile is None:
        return None
    lib = _lib()
    if lib is None:
        raise SandboxError("linux.seccomp: libseccomp.so.2 is not installed; cannot apply the filter")
    ctx = lib.seccomp_init(_action(profile.default_action, profile.default_errno_ret))
    if not ctx:
        raise SandboxError("linux.seccomp: seccomp_init failed")
    filt = Filter(ctx)
    try:
        # other ABIs of this CPU (x86 and x32 on x86_64) get the same rules; without them libseccomp
        # kills any process that uses them, and with them the rules cannot be bypassed through them
        for arch in profile.architectures:
            token = lib.seccomp_arch_resolve_name(arch.removeprefix("SCMP_ARCH_").lower().encode())
            if token:
                ret = lib.seccomp_arch_add(ctx, token)
                if ret < 0 and -ret not in (errno.EEXIST, errno.EINVAL):
                    raise SandboxError(f"linux.seccomp.architectures {arch}: {errno.errorcode.get(-ret, -ret)}")
        rules = profile.syscalls + (device_node_rules() if deny_device_nodes else ())
        for i, rule in enumerate(rules):
            action = _action(rule.action, rule.errno_ret)
            arr = (_ArgCmp * max(1, len(rule.args)))()
            for j, a in enumerate(rule.args):
                op = _OPS.get(a.op)
                if op is None:
                    raise SandboxError(f"linux.seccomp.syscalls[{i}].args[{j}].op: unknown {a.op!r}")
                arr[j] = _ArgCmp(a.index, op, a.value, a.value_two or 0)
            for name in rule.names:
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr < 0:
                    continue
                ret = lib.seccomp_rule_add_array(ctx, action, nr, len(rule.args), arr)
                if ret < 0:
                    raise SandboxError(f"linux.seccomp.syscalls[{i}] {name}: {errno.errorcode.get(-ret, -ret)}")
    except BaseException:
        filt.release()
        raise
    return filt
