"""Launch an OCI runtime spec in a fresh set of namespaces: pybuild's runc.

Process shape (``pybuild`` -> *stage1* -> *init*)::

    caller        creates the cgroup, forks stage1, reads the sync socket, later waits for stage1
    stage1        (host pid ns) dies with the caller; joins a given netns; unshares mount, uts, ipc,
                  net and pid; forks init; is the subreaper of the namespace; waits for init, reaps
                  every orphan, exits with init's status (128+N when killed by signal N).
                  When the caller is itself a child subreaper (the shim), stage1 exits at once
                  instead: init is re-parented to the caller, which waits for ``pid`` and reaps
                  the orphans itself ("direct" mode; nothing then dies with the caller).
    init          (PID 1 in the new pid ns) joins the cgroup, unshares the cgroup ns, prepares the
                  rootfs and pivots into it, sets hostname, rlimits (never above the caller's hard
                  limits), terminal, user and groups, capabilities, no_new_privs, seccomp; closes every
                  fd but 0-2 (runc CVE-2024-21626) and execs the target at once. It is non-dumpable
                  until exec, so the container never sees the Python interpreter (CVE-2019-5736).

The sync socket (``SOCK_SEQPACKET``, close-on-exec) carries small JSON messages: stage1 sends
``{"pid": N}``; init sends ``{"tty": true}`` with the pty master fd attached, or ``{"error": ...,
"code": N}`` on failure. EOF after the pid means the target was executed.

Every module init needs after ``pivot_root`` is imported before the fork.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import resource
import select
import signal
import socket
import struct
import sys
import termios
from dataclasses import dataclass, field

from . import cgroups, rootfs, seccomp
from . import init as _pyinit
from . import syscalls as sc
from .caps import mask as caps_mask
from .errors import ExecFailed, SandboxError
from .ocispec import Capabilities, Process, Rlimit, Spec

__all__ = ["ContainerProcess", "SignalForwarder", "start", "foreground", "execute", "cleanup", "as_spec",
           "FORWARDED_SIGNALS"]

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                     signal.SIGUSR2)

_NS_FLAGS = {"mount": sc.CLONE_NEWNS, "uts": sc.CLONE_NEWUTS, "ipc": sc.CLONE_NEWIPC,
             "network": sc.CLONE_NEWNET, "pid": sc.CLONE_NEWPID}
_TIOCSPTLCK = 0x40045431
_TIOCGPTN = 0x80045430
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


@dataclass
class ContainerProcess:
    """A started container. ``pid`` is init's host pid; ``pty_master`` is set when the spec asks for a terminal.

    ``wakeup_fd`` is set while a :class:`SignalForwarder` is attached: readable after any signal, so
    :func:`foreground` can wait without sleeping through one.
    """

    pid: int
    container_id: str
    cgroup: cgroups.Cgroup
    waiter: int
    pty_master: int | None = None
    wakeup_fd: int | None = None
    exit_code: int | None = field(default=None)
    oom: bool = field(default=False)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the container's PID 1 (ignored when it has already exited)."""
        if self.exit_code is not None:
            return
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self) -> int:
        """Wait for the container to exit and remove its cgroup; the exit code (128+N for signal N)."""
        if self.exit_code is None:
            self.exit_code = _wait_status(self.waiter)
            self.oom = self.cgroup.oom_killed()
            self.cgroup.destroy()
            if self.pty_master is not None:
                os.close(self.pty_master)
                self.pty_master = None
        return self.exit_code

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer acted in the container (recorded at exit)."""
        return self.oom if self.exit_code is not None else self.cgroup.oom_killed()


def _wait_status(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return 255
        except InterruptedError:
            continue
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.WEXITSTATUS(status)


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


def as_spec(spec: Spec | dict) -> Spec:
    """``spec`` as a :class:`Spec`; a dict (a container record's ``config.json`` form) is parsed."""
    return spec if isinstance(spec, Spec) else Spec.from_dict(spec)


def _validate(spec: Spec) -> None:
    """What this sandbox can run, beyond the spec's shape (which :class:`Spec` already checked)."""
    if not spec.process.args:
        raise SandboxError("runtime spec: process.args must not be empty")
    if not os.path.isdir(spec.root.path):
        raise SandboxError(f"runtime spec: root.path {spec.root.path!r} is not a directory")
    for ns in spec.linux.namespaces:
        if ns.type not in (*_NS_FLAGS, "cgroup"):
            raise SandboxError(f"runtime spec: {ns.type} namespaces are not supported")
        if ns.path and ns.type != "network":
            raise SandboxError(f"runtime spec: joining a {ns.type} namespace by path is not supported")
    for field_name, value in (("linux.sysctl", spec.linux.sysctl), ("linux.devices", spec.linux.devices),
                              ("linux.cgroupsPath", spec.linux.cgroups_path)):
        if value:
            raise SandboxError(f"runtime spec: {field_name} is not supported by pybuild's sandbox")


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, ifr))[1]
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def _open_pty() -> tuple[int, int]:
    """A pty pair from the container's own ``/dev/pts`` instance (after pivot_root)."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, _TIOCSPTLCK, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, _TIOCGPTN, struct.pack("I", 0)))[0]
    slave = os.open(f"/dev/pts/{number}", os.O_RDWR | os.O_NOCTTY)
    return master, slave


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
    os.setgroups(list(user.additional_gids))
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
            master, slave = _open_pty()
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


def _stage1(spec: Spec, sock: socket.socket, cg: cgroups.Cgroup, stdio: tuple[int, int, int],
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
            elif kind == "network" and ns.path:
                fd = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
                sc.setns(fd, sc.CLONE_NEWNET)
                os.close(fd)
            else:
                flags |= _NS_FLAGS[kind]
                new_netns = new_netns or kind == "network"
        sc.unshare(flags)
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
        for fd in {*stdio}:
            if fd > 2:
                os.close(fd)
        code = _wait_status(pid)
        while True:  # reap the orphans the kernel hands to this subreaper as the namespace dies
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break
            except InterruptedError:
                continue
    finally:
        os._exit(code)


def _recv(sock: socket.socket) -> tuple[dict | None, list[int]]:
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(sock, 65536, 4)
            break
        except InterruptedError:
            continue
    if not data:
        return None, []
    return json.loads(data), list(fds)


def start(spec: Spec | dict, *, container_id: str, state_dir: str | None = None, stdin=None, stdout=None,
          stderr=None, die_with_parent: bool = True) -> ContainerProcess:
    """Create the container's cgroup and namespaces and exec ``spec.process`` in them.

    ``stdin``/``stdout``/``stderr`` are file objects or fds (default: the caller's own); they are
    ignored when ``process.terminal`` is set (read ``pty_master`` instead). Returns once the target
    has been executed; setup errors raise :class:`SandboxError` (exec errors :class:`ExecFailed`
    with exit code 127/126) with nothing left behind. ``die_with_parent`` kills the container if
    the calling process dies (foreground runs; a shim passes False only if it outlives itself).
    ``state_dir`` is accepted for the contract; the foreground path keeps no files there.
    A dict ``spec`` is parsed with :meth:`Spec.from_dict` first (:class:`InvalidSpec` names a bad field).
    """
    spec = as_spec(spec)
    _validate(spec)
    stdio = tuple(_fileno(s, i) for i, s in enumerate((stdin, stdout, stderr)))
    # the filter is applied where libseccomp exists; seccomp.status() tells inspect when it does not
    filter_program = None
    if seccomp.available():
        filter_program = seccomp.compile_profile(spec.linux.seccomp,
                                                 deny_device_nodes=cgroups.detect_version() == "v2")
    try:
        cg = cgroups.create(container_id, spec.linux.resources)
    except BaseException:
        if filter_program is not None:
            filter_program.release()
        raise
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        direct = sc.is_child_subreaper()
        caller = os.getpid()        # read before the fork: stage1 checks it is still its parent
        stage1 = os.fork()
        if stage1 == 0:
            parent_sock.close()
            _stage1(spec, child_sock, cg, stdio, die_with_parent, caller, filter_program, direct)
        child_sock.close()
        proc: ContainerProcess | None = None
        error: dict | None = None
        while True:
            msg, fds = _recv(parent_sock)
            if msg is None:
                break
            if "pid" in msg:
                proc = ContainerProcess(msg["pid"], container_id, cg, msg["pid"] if direct else stage1)
                if direct:  # stage1 has exited: init is our child from now on
                    _wait_status(stage1)
            elif msg.get("tty") and fds and proc is not None:
                proc.pty_master = fds[0]
            elif "error" in msg:
                error = msg
                for fd in fds:
                    os.close(fd)
    except BaseException:
        cg.kill_all()
        cg.destroy()
        raise
    finally:
        parent_sock.close()
        if filter_program is not None:
            filter_program.release()
    if error is not None or proc is None:
        _wait_status(proc.waiter if proc is not None else stage1)
        cg.destroy()
        if error is None:
            raise SandboxError(f"container {container_id}: the sandbox exited before starting the process")
        if error.get("code") in (126, 127):
            raise ExecFailed(error["error"], error["code"])
        raise SandboxError(error["error"])
    return proc


def _fileno(stream, default: int) -> int:
    if stream is None:
        return default
    if isinstance(stream, int):
        return stream
    return stream.fileno()


def _relay_pty(proc: ContainerProcess, stdin_fd: int, stdout_fd: int, forward_input: bool = True) -> None:
    """Copy between the caller's terminal and the container's pty until the container side closes."""
    master = proc.pty_master
    assert master is not None
    saved = None
    if os.isatty(stdin_fd):
        _copy_winsize(stdin_fd, master)
        if forward_input:
            saved = termios.tcgetattr(stdin_fd)
            import tty

            tty.setraw(stdin_fd, termios.TCSANOW)   # keep input typed before the container started
    watch = [master, stdin_fd] if forward_input else [master]
    if proc.wakeup_fd is not None:
        watch.append(proc.wakeup_fd)
    try:
        while True:
            try:
                ready, _, _ = select.select(watch, [], [])
            except InterruptedError:
                continue
            if proc.wakeup_fd in ready:
                _drain(proc.wakeup_fd)
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError as exc:
                    if exc.errno == errno.EIO:
                        return
                    raise
                if not data:
                    return
                os.write(stdout_fd, data)
            if stdin_fd in ready:
                data = os.read(stdin_fd, 65536)
                if not data:
                    watch.remove(stdin_fd)
                    os.write(master, b"\x04")
                else:
                    os.write(master, data)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _await_exit(proc: ContainerProcess) -> None:
    """Return once ``proc.waiter`` has exited (not reaped), waking for every signal on the way.

    A plain ``os.waitpid`` loses a signal that lands just before it blocks: Python's C handler has
    run, so the call is not interrupted, and the Python handler (the forwarder) waits with it for as
    long as the container runs. The forwarder's wakeup fd is written by that C handler, so a select
    on it and on a pidfd of the waiter cannot miss one; Python runs the handler as select returns.
    """
    wake = proc.wakeup_fd
    if wake is None:
        return
    try:
        pidfd = os.pidfd_open(proc.waiter)
    except (AttributeError, OSError):      # kernel < 5.3: poll the waiter (waitid WNOWAIT leaves it)
        pidfd = None
    try:
        while True:
            watch = [wake] if pidfd is None else [wake, pidfd]
            try:
                ready, _, _ = select.select(watch, [], [], 0.05 if pidfd is None else None)
            except InterruptedError:
                continue
            if wake in ready:
                _drain(wake)
            if pidfd is not None:
                if pidfd in ready:
                    return
            elif os.waitid(os.P_PID, proc.waiter, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return
    except ChildProcessError:
        return
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _copy_winsize(src: int, dst: int) -> None:
    try:
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass


class SignalForwarder:
    """``with SignalForwarder() as fwd:`` forward SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2.

    Handlers are installed on entry (main thread only), *before* the container starts, so a signal
    that arrives while it is being set up is queued and delivered by :meth:`attach`; the previous
    handlers come back on exit. With a pty, SIGWINCH copies the terminal size from ``winsize_fd``.

    A signal mask is inherited over ``fork`` and ``execve``: a launcher that blocks SIGTERM (a
    supervisor waiting in ``sigwait``, a Python parent forking inside ``pthread_sigmask``) would
    leave a handler here that never runs, and the container could then only be stopped by SIGKILL.
    So the forwarded signals are unblocked on entry (a signal already pending is then delivered to
    the handler) and blocked again on exit, as Go's ``signal.Notify`` does for the Docker CLI.
    An inherited SIG_IGN is overridden the same way, by installing the handler.

    Python runs a handler only between bytecodes, so a caller blocked in a system call that the
    signal did not interrupt would not forward it; while active, the forwarder is the process's
    ``signal.set_wakeup_fd`` and :meth:`attach` hands that fd to the container process, so that
    :func:`foreground` waits on it (the previous wakeup fd comes back on exit).
    """

    def __init__(self, winsize_fd: int = 0) -> None:
        self.proc: ContainerProcess | None = None
        self.pending: list[int] = []
        self.previous: dict[int, object] = {}
        self.was_blocked: set[int] = set()
        self.previous_wakeup = -1
        self.wakeup: tuple[int, int] | None = None      # (read, write) ends of the wakeup pipe
        self.winsize_fd = winsize_fd

    def _handle(self, sig: int, _frame) -> None:
        if sig == signal.SIGWINCH:
            if self.proc is not None and self.proc.pty_master is not None:
                _copy_winsize(self.winsize_fd, self.proc.pty_master)
        elif self.proc is None:
            self.pending.append(sig)
        else:
            self.proc.signal(sig)

    def attach(self, proc: ContainerProcess) -> None:
        self.proc = proc
        if self.wakeup is not None:
            proc.wakeup_fd = self.wakeup[0]
        for sig in self.pending:
            proc.signal(sig)
        self.pending.clear()

    def __enter__(self) -> "SignalForwarder":
        handled = (*FORWARDED_SIGNALS, signal.SIGWINCH)
        self.wakeup = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.previous_wakeup = signal.set_wakeup_fd(self.wakeup[1], warn_on_full_buffer=False)
        for sig in handled:
            self.previous[sig] = signal.signal(sig, self._handle)
        # handlers first, then unblock: a signal pending since before we started goes to _handle
        self.was_blocked = set(handled) & signal.pthread_sigmask(signal.SIG_UNBLOCK, handled)
        return self

    def __exit__(self, *exc) -> None:
        if self.was_blocked:
            signal.pthread_sigmask(signal.SIG_BLOCK, self.was_blocked)
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        if self.proc is not None:
            self.proc.wakeup_fd = None
        if self.wakeup is not None:
            signal.set_wakeup_fd(self.previous_wakeup)
            for fd in self.wakeup:
                os.close(fd)
            self.wakeup = None


def foreground(proc: ContainerProcess, *, stdin_fd: int = 0, stdout_fd: int = 1, forward_input: bool = True) -> int:
    """Wait for a started container in the foreground; the exit code. Kills it if interrupted.

    With a pty, copies the container's terminal to ``stdout_fd`` and, with ``forward_input``
    (``-i``), ``stdin_fd`` to it (the caller's terminal then is raw). Signals are the caller's
    business (:class:`SignalForwarder`); with one attached, the wait wakes for every signal, so its
    handler runs even when the signal came just before the wait or on another thread.
    """
    try:
        if proc.pty_master is not None:
            _relay_pty(proc, stdin_fd, stdout_fd, forward_input)
        _await_exit(proc)
        return proc.wait()
    finally:
        if proc.exit_code is None:
            proc.signal(signal.SIGKILL)
            proc.wait()


def execute(spec: Spec | dict, *, container_id: str, state_dir: str | None = None, stdin=None, stdout=None,
            stderr=None, forward_signals: bool = True) -> int:
    """Run ``spec`` in the foreground: :func:`start`, then :func:`foreground`; the exit code.

    This is the builder's entry for RUN steps: give a spec whose root is an :class:`OverlayMount`
    target and whose ``linux.namespaces`` has no ``network`` entry (host networking), e.g.
    ``make_spec(cfg, RunOptions(network="host", ...), rootfs=target, etc_dir=...)``. The cgroup is
    removed before it returns; nothing of the container is left but the overlay's upper dir.
    ``forward_signals`` forwards the caller's SIGINT/SIGTERM/... to the container; Python allows signal
    handlers only in the main thread, so from another thread (parallel build stages) it is skipped.
    """
    spec = as_spec(spec)
    stdin_fd, stdout_fd = _fileno(stdin, 0), _fileno(stdout, 1)
    import threading

    if not forward_signals or threading.current_thread() is not threading.main_thread():
        proc = start(spec, container_id=container_id, state_dir=state_dir, stdin=stdin, stdout=stdout, stderr=stderr)
        return foreground(proc, stdin_fd=stdin_fd, stdout_fd=stdout_fd)
    with SignalForwarder(stdin_fd) as fwd:
        proc = start(spec, container_id=container_id, state_dir=state_dir, stdin=stdin, stdout=stdout, stderr=stderr)
        fwd.attach(proc)
        return foreground(proc, stdin_fd=stdin_fd, stdout_fd=stdout_fd)


def cleanup(container_id: str, state_dir: str | None = None) -> None:
    """Remove what a crashed run of ``container_id`` may have left: its cgroup and processes."""
    cg = cgroups.open_existing(container_id)
    if cg is not None:
        cg.kill_all()
        cg.destroy()
