"""The container side of :func:`runner.sandbox.start`: stage1 and init, up to the ``execve`` of the target.

Both run in children forked by the caller and never return. *stage1* (host pid namespace) joins a
given netns, unshares the namespaces, forks init and reaps; *init* (PID 1 of the new pid namespace)
joins the cgroup, prepares the rootfs and pivots into it, sets hostname, rlimits, terminal, user,
groups, capabilities, no_new_privs and seccomp, closes inherited fds and execs. Each step is named in
the one-line error sent over the sync socket (``{"error": ..., "code": N}``); see
:mod:`runner.sandbox` for the protocol.

Every module init needs after ``pivot_root`` is imported here, before the fork.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import resource
import signal
import socket
import struct
import termios

from . import cgroups, rootfs
from . import init as _pyinit
from . import syscalls as sc
from .caps import mask as caps_mask
from .errors import ExecFailed, SandboxError
from .ocispec import Capabilities, Process, Rlimit, Spec
from .process import wait_status
from .procsandbox import kill_leftovers
from .signals import FORWARDED_SIGNALS
from .terminal import open_pty
from .userns.groups import set_groups

__all__ = ["stage1", "NS_FLAGS"]

NS_FLAGS = {"mount": sc.CLONE_NEWNS, "uts": sc.CLONE_NEWUTS, "ipc": sc.CLONE_NEWIPC,
            "network": sc.CLONE_NEWNET, "pid": sc.CLONE_NEWPID}
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def _send(sock: socket.socket, msg: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(msg).encode()
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.send(data)


def _fail(sock: socket.socket, message: str, code: int = 125) -> None:
    """Report a setup failure to the caller and leave without running any Python cleanup."""
    try:
        _send(sock, {"error": message, "code": code})
    finally:
        os._exit(code)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, ifr))[1]
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def _set_rlimits(rlimits: tuple[Rlimit, ...]) -> None:
    for rl in rlimits:
        number = getattr(resource, rl.type, None)
        if number is None:
            raise SandboxError(f"process.rlimits: unknown rlimit {rl.type!r}")
        _, caller_hard = resource.getrlimit(number)
        hard = rl.hard if caller_hard == resource.RLIM_INFINITY else min(rl.hard, caller_hard)
        soft = min(rl.soft, hard)
        resource.setrlimit(number, (soft, hard))


def _set_identity(process: Process, last_cap: int) -> None:
    user = process.user
    uid, gid = user.uid, user.gid
    caps = process.capabilities or Capabilities()
    # a capability the caller lacks cannot be granted; --privileged means "all the caller has"
    have = sum(1 << cap for cap in range(last_cap + 1) if sc.capget_bounding(cap))
    bounding = caps_mask(caps.bounding, last_cap) & have
    for cap in range(last_cap + 1):
        if have & (1 << cap) and not bounding & (1 << cap):
            sc.capbset_drop(cap)
    sc.set_keepcaps(True)
    set_groups(user.additional_gids)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    sc.set_keepcaps(False)
    sc.capset(caps_mask(caps.effective, last_cap) & bounding,
              caps_mask(caps.permitted, last_cap) & bounding,
              caps_mask(caps.inheritable, last_cap) & bounding)
    sc.ambient_clear()
    for name in caps.ambient:
        sc.ambient_raise(caps_mask([name], last_cap).bit_length() - 1)


def _init(spec: Spec, sock: socket.socket, cg: cgroups.Cgroup, stdio: tuple[int, int, int],
          new_cgroupns: bool, new_netns: bool, filter_program) -> None:
    """PID 1 of the container up to exec. Never returns."""
    step = "start"
    try:
        step = "reset signal dispositions"
        # Python ignores SIGPIPE/SIGXFSZ and stage1 ignores the forwarded ones; exec would keep SIG_IGN
        _pyinit.reset_signals()
        step = "make non-dumpable"
        sc.set_dumpable(False)
        os.umask(0o022)
        step = "join cgroup"
        cg.join(0)
        if new_cgroupns:
            step = "unshare cgroup namespace"
            sc.unshare(sc.CLONE_NEWCGROUP)
        process = spec.process
        rootfs.prepare_rootfs(spec, cg.version)
        if spec.hostname:
            step = "set hostname"
            sc.sethostname(spec.hostname)
        if new_netns:
            step = "bring up loopback"
            _loopback_up()
        step = "set rlimits"
        _set_rlimits(process.rlimits)
        step = "set up stdio"
        os.setsid()
        if process.terminal:
            master, slave = open_pty()
            _send(sock, {"tty": True}, [master])
            os.close(master)
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            for fd in (0, 1, 2):
                os.dup2(slave, fd)
            if slave > 2:
                os.close(slave)
        else:
            for target, fd in enumerate(stdio):
                os.dup2(fd, target)
        cwd = process.cwd
        step = f"create working directory {cwd}"
        os.makedirs(cwd, mode=0o755, exist_ok=True)
        if filter_program is not None and not process.no_new_privileges:
            # without no_new_privs the filter can only go in while CAP_SYS_ADMIN is still held (runc's order)
            step = "load seccomp filter"
            filter_program.load(set_no_new_privs=False)
            filter_program = None
        step = "set user and capabilities"
        _set_identity(process, sc.cap_last_cap())
        if process.no_new_privileges:
            step = "set no_new_privs"
            sc.set_no_new_privs()
        step = f"change to working directory {cwd}"
        os.chdir(cwd)
        if filter_program is not None:
            step = "load seccomp filter"
            filter_program.load()
        step = "close inherited file descriptors"
        keep = sock.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, 1 << 20)
        env = process.env_map()
        args = list(process.args)
        step = f"exec {args[0]!r}"
        path = _find_executable(args[0], env.get("PATH", ""))
        with_init = spec.annotation("org.pybuild.init") == "true"
    except SandboxError as exc:
        _fail(sock, str(exc), getattr(exc, "exit_code", 125))
    except OSError as exc:
        _fail(sock, f"container init: {step}: {exc.strerror or exc}")
    except BaseException as exc:  # a bug; still report it as one line and leave
        _fail(sock, f"container init: {step}: {type(exc).__name__}: {exc}")
    if with_init:
        try:
            sc.set_process_title(b"pybuild-init")
        except OSError:
            pass                    # cosmetic (and the host paths it hides are not secrets)
        _pyinit.run(lambda: os.execve(path, args, env), prctl=sc.prctl)
    try:
        os.execve(path, args, env)
    except OSError as exc:
        code = 127 if exc.errno in (errno.ENOENT, errno.ENOTDIR) else 126
        _fail(sock, f"exec {args[0]!r}: {exc.strerror}", code)
    os._exit(127)


def _find_executable(name: str, path_var: str) -> str:
    """``name`` looked up as execvp would (``PATH`` when it has no slash); ExecFailed with 127/126."""
    candidates = [name] if "/" in name else [os.path.join(d or ".", name) for d in path_var.split(":")]
    denied = False
    for candidate in candidates:
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
            denied = True
    if denied:
        raise ExecFailed(f"exec {name!r}: permission denied", 126)
    if "/" in name and os.path.isdir(name):
        raise ExecFailed(f"exec {name!r}: is a directory", 126)
    raise ExecFailed(f"exec {name!r}: executable file not found in $PATH" if "/" not in name
                     else f"exec {name!r}: no such file or directory", 127)


def stage1(spec: Spec, sock: socket.socket, cg: cgroups.Cgroup, stdio: tuple[int, int, int],
            die_with_parent: bool, parent: int, filter_program, direct: bool) -> None:
    """The namespace parent. Never returns."""
    try:
        if die_with_parent and not direct:
            sc.set_pdeathsig(signal.SIGKILL)
            if os.getppid() != parent:
                os._exit(1)
        signal.set_wakeup_fd(-1)        # the caller's forwarder pipe is not ours to write
        for sig in FORWARDED_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        # an inherited SIG_IGN for SIGCHLD makes the kernel reap init at once: no exit status to wait for
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sc.set_dumpable(False)
        flags, new_cgroupns, new_netns = 0, False, False
        for ns in spec.linux.namespaces:
            kind = ns.type
            if kind == "cgroup":
                new_cgroupns = True
            elif kind in ("network", "pid", "ipc") and ns.path:
                # join it; a joined PID namespace holds the children forked from here on
                fd = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
                sc.setns(fd, NS_FLAGS[kind])
                os.close(fd)
            else:
                flags |= NS_FLAGS[kind]
                new_netns = new_netns or kind == "network"
        sc.unshare(flags)
        own_pidns = bool(flags & sc.CLONE_NEWPID)
        sc.set_child_subreaper()
        pid = os.fork()
    except OSError as exc:
        _fail(sock, f"container stage1: {exc.strerror or exc}")
    except BaseException as exc:
        _fail(sock, f"container stage1: {type(exc).__name__}: {exc}")
    if pid == 0:
        if die_with_parent and not direct:
            sc.set_pdeathsig(signal.SIGKILL)
        _init(spec, sock, cg, stdio, new_cgroupns, new_netns, filter_program)
    code = 255
    try:
        _send(sock, {"pid": pid})
        sock.close()
        if direct:
            os._exit(0)
        # the waiter keeps nothing of the caller's open: a pipe's read end held here would keep the
        # container's writes from failing once the caller closes it (run | head)
        os.closerange(3, 1 << 20)
        code = wait_status(pid)
        if not own_pidns:
            # no PID namespace to die with init (no process sandbox, --pid host): what init left
            # behind is killed here, as runc signals a host-pid container's processes at its end
            kill_leftovers()
        while True:  # reap the orphans the kernel hands to this subreaper as the namespace dies
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break
            except InterruptedError:
                continue
    finally:
        os._exit(code)
