"""``pybuild exec``: run another process inside a running container.

The new process joins the container's cgroups (its pid is written to every ``cgroup.procs`` of the
container's PID 1) and namespaces (``setns`` on ``/proc/<pid1>/ns/{ipc,uts,net,pid,cgroup,mnt}``,
mount last), then forks once more so it is really inside the PID namespace, and the grandchild
applies the container's process settings (``user``, capabilities from the spec's bounding set,
no_new_privs) and ``exec``s the command at once: no Python is left running inside the container
(CVE-2019-5736), and every fd above 2 is closed first (CVE-2024-21626).

The intermediate child waits for the grandchild and exits with its code, so the CLI's exit code
is the command's. With ``tty`` a pseudo-terminal is allocated and relayed by the CLI.
"""

from __future__ import annotations

import errno
import os
import signal

from layers.errors import InvalidInput, PybuildError
from layers.value import frozen

from .userns.groups import set_groups
from . import records as st
from .errors import StateConflict
from .ocispec import Spec, User
from .state import ContainerStore

__all__ = ["ExecOptions", "exec_in", "run_probe"]

_NS_ORDER = ("ipc", "uts", "net", "pid", "cgroup", "mnt")


@frozen
class ExecOptions:
    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    user: str | None = None
    workdir: str | None = None
    tty: bool = False
    interactive: bool = False
    detach: bool = False
    timeout: float = 0.0            # > 0: the command's process group is killed after this many seconds


def _user(user: str | None, spec_user: User, resolve_user) -> tuple[int, int, list[int]]:
    """``-u`` resolved against the container's own /etc (we are chrooted into it), else the spec's user."""
    if user is None:
        return spec_user.uid, spec_user.gid, list(spec_user.additional_gids)
    r = resolve_user(user, "/etc")
    return r[0], r[1], list(r[2])


def _merge_env(base: tuple[str, ...], extra: tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in list(base) + list(extra):
        k, sep, v = item.partition("=")
        if not k:
            raise InvalidInput(f"exec -e {item!r}: empty variable name")
        if sep:
            env[k] = v
        elif k in os.environ:
            env[k] = os.environ[k]
    return env


def _child(pid1: int, spec: Spec, opts: ExecOptions, stdio: tuple[int, int, int]) -> None:
    """Runs in the forked child; never returns."""
    # everything is imported before setns/chroot: the host's library files are out of reach after
    import fcntl
    import termios

    from . import caps as capmod
    from . import syscalls
    from .cgroupview import cgroup_paths as _cgroup_paths
    from .init import reset_signals
    from .spec import resolve_user

    code = 125
    try:
        # this Python process enters the container's mount namespace and cgroup: nothing in there
        # may open its /proc entries (its exe is the host's interpreter), and it holds only stdio
        syscalls.set_dumpable(False)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)    # an inherited SIG_IGN: no status to wait for
        for target, fd in enumerate(stdio):
            if fd != target:
                os.dup2(fd, target)
        os.closerange(3, 65536)
        for ctrl, path in _cgroup_paths(pid1).items():
            procs = os.path.join(path, "cgroup.procs")
            if os.path.exists(procs) and path.rstrip("/") not in (
                    "/sys/fs/cgroup/unified", "/sys/fs/cgroup/" + ctrl):
                try:
                    with open(procs, "w") as f:
                        f.write(str(os.getpid()))
                except OSError:
                    pass          # v1 named/empty hierarchies may refuse; the rest still hold
        fds = []
        for ns in _NS_ORDER:
            target = f"/proc/{pid1}/ns/{ns}"
            if os.readlink(target) == os.readlink(f"/proc/self/ns/{ns}"):
                continue
            fds.append(os.open(target, os.O_RDONLY | os.O_CLOEXEC))
        root_fd = os.open(f"/proc/{pid1}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        for fd in fds:
            syscalls.setns(fd, 0)
            os.close(fd)
        os.fchdir(root_fd)
        os.chroot(".")
        os.close(root_fd)
        proc = spec.process
        uid, gid, groups = _user(opts.user, proc.user, resolve_user)
        env = _merge_env(proc.env, opts.env)
        cwd = opts.workdir or proc.cwd or "/"
        caps = proc.capabilities.bounding if proc.capabilities is not None else ()
        gchild = os.fork()
        if gchild == 0:
            code = 126
            os.setsid()
            if opts.tty:
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            os.chdir(cwd)
            keep = capmod.mask(caps)
            for c in range(syscalls.cap_last_cap() + 1):
                if not keep & (1 << c):
                    syscalls.capbset_drop(c)
            set_groups(groups)
            os.setgid(gid)
            os.setuid(uid)
            eff = keep if uid == 0 else 0
            syscalls.capset(eff, eff, 0)
            if proc.no_new_privileges:
                syscalls.set_no_new_privs()
            reset_signals()        # nothing of the caller's signal state reaches the command
            try:
                os.execvpe(opts.args[0], list(opts.args), env)
            except OSError as exc:       # as Docker: 127 not found, 126 found but not runnable
                code = 127 if exc.errno in (errno.ENOENT, errno.ENOTDIR) else 126
                raise
        if opts.detach:
            os._exit(0)
        if opts.timeout > 0:
            signal.signal(signal.SIGALRM, lambda *_: _kill_group(gchild))
            signal.setitimer(signal.ITIMER_REAL, opts.timeout)
        _, status = os.waitpid(gchild, 0)
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
    except FileNotFoundError as exc:
        os.write(2, f"pybuild: exec {opts.args[0]}: {exc.strerror}\n".encode())
    except PybuildError as exc:
        os.write(2, f"pybuild: exec: {exc}\n".encode())
    except OSError as exc:
        os.write(2, f"pybuild: exec in container: {exc}\n".encode())
    finally:
        os._exit(code)


def _kill_group(pid: int) -> None:
    """SIGKILL ``pid``'s process group (it called setsid), or ``pid`` alone before it has."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def run_probe(pid1: int, spec: Spec, args: tuple[str, ...], out: int, timeout: float) -> int:
    """Fork a process that runs ``args`` in the container of ``pid1`` as ``exec`` does (its cgroups
    and namespaces, the spec's user, capabilities and environment), stdout and stderr on ``out``,
    killed after ``timeout`` seconds. Returns the forked pid, whose exit code is the command's (the
    caller reaps it); the caller's signal handlers and wakeup fd do not reach it."""
    pid = os.fork()
    if pid == 0:
        try:
            signal.set_wakeup_fd(-1)
            for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
                signal.signal(s, signal.SIG_DFL)
            devnull = os.open(os.devnull, os.O_RDONLY)
        except BaseException:
            os._exit(125)
        _child(pid1, spec, ExecOptions(args=args, timeout=timeout), (devnull, out, out))
    return pid


def exec_in(store: ContainerStore, ref: str, opts: ExecOptions) -> int:
    """Run ``opts.args`` in the running container ``ref``; return its exit code (0 at once if detached)."""
    if not opts.args:
        raise InvalidInput("exec: no command given")
    cfg = store.resolve(ref)
    cur = store.status(cfg.id)
    if cur.status == st.PAUSED:
        raise StateConflict(f"container {cfg.name} is paused: unpause it first", container=cfg.name,
                            current=cur.status)
    if cur.status != st.RUNNING or cur.pid <= 0:
        raise StateConflict(f"container {cfg.name} is not running", container=cfg.name, current=cur.status)
    master = -1
    if opts.tty:
        master, slave = os.openpty()
        stdio = (slave, slave, slave)
    else:
        devnull = os.open(os.devnull, os.O_RDONLY)
        stdio = (0 if opts.interactive else devnull, 1, 2)
    if opts.detach:
        null = os.open(os.devnull, os.O_RDWR)
        stdio = (null, null, null)
    exec_id, command = os.urandom(32).hex(), " ".join(opts.args)
    store.event(cfg, f"exec_create: {command}", execID=exec_id)    # Docker's exec events
    pid = os.fork()
    if pid == 0:
        _child(cur.pid, cfg.spec, opts, stdio)
    store.event(cfg, f"exec_start: {command}", execID=exec_id)
    for fd in set(stdio) - {0, 1, 2}:
        os.close(fd)
    if master >= 0:
        _relay_tty(master, pid, opts.interactive)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    code = 128 - code if code < 0 else code
    if not opts.detach:
        store.event(cfg, "exec_die", execID=exec_id, exitCode=code)
    return code


def _relay_tty(master: int, pid: int, interactive: bool) -> None:
    """Copy stdin -> pty and pty -> stdout until the pty closes; raw mode while stdin is a terminal."""
    import selectors
    import termios
    import tty

    old = None
    if interactive and os.isatty(0):
        old = termios.tcgetattr(0)
        tty.setraw(0)
    sel = selectors.DefaultSelector()
    sel.register(master, selectors.EVENT_READ)
    if interactive:
        sel.register(0, selectors.EVENT_READ)
    try:
        while True:
            for key, _ in sel.select():
                if key.fd == master:
                    try:
                        data = os.read(master, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        return
                    os.write(1, data)
                else:
                    data = os.read(0, 65536)
                    if not data:
                        sel.unregister(0)
                        continue
                    os.write(master, data)
    finally:
        if old is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, old)
        os.close(master)
