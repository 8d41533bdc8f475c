"""pybuild's PID 1 for ``--init``: forwards signals, reaps zombies, exits with the child's code.

Why: a process that finds itself PID 1 gets no default signal actions (SIGTERM is ignored unless
it installs a handler) and inherits every orphan in the namespace, which it must reap or they stay
zombies. ``docker-init`` (tini) and ``catatonit`` exist for that; this is ours, not a copy.

How it gets into the container (design choice): a busybox image has no Python, and we cannot ship a
static binary, so we do not *put* an init in the image. The sandbox's own PID 1 process, a fork of
the Python that set up the namespaces, calls :func:`run` at the point where it would ``execve`` the
user command: ``run`` forks once more, the child (PID 2) ``exec``s the user command, and PID 1 stays
as the reaper running only this module's loop. Safety (CVE-2019-5736, CVE-2024-21626): before ``run``
is reached the sandbox has pivoted into the container root, dropped capabilities and set
no_new_privs; ``run`` itself marks the process non-dumpable, so container processes (which lack
CAP_SYS_PTRACE) cannot open ``/proc/1/exe`` (the host's Python binary), ``/proc/1/mem`` or
``/proc/1/fd``, and it closes every fd above 2 so no host file or directory stays reachable. No
import happens after the pivot (the host's library directory is gone then): this module uses only
``os`` and ``signal``, and the sandbox imports it before ``pivot_root``.

Behaviour (tini's defaults): every catchable signal except SIGCHLD is forwarded to the child; when
the child exits, PID 1 exits with the child's status (``128 + n`` if it was killed by signal ``n``),
and the kernel then kills whatever else is left in the namespace. Orphans are reaped as their
SIGCHLD arrives.
"""

from __future__ import annotations

import os
import signal

__all__ = ["run", "reset_signals", "FORWARDED"]

_UNCATCHABLE = {signal.SIGKILL, signal.SIGSTOP}
# synchronous faults are about PID 1 itself, not something to forward
_NOT_FORWARDED = _UNCATCHABLE | {signal.SIGCHLD, signal.SIGSEGV, signal.SIGBUS, signal.SIGILL,
                                 signal.SIGFPE, signal.SIGABRT, signal.SIGTRAP, signal.SIGSYS}
FORWARDED = frozenset(s for s in signal.valid_signals() if s not in _NOT_FORWARDED)
_PR_SET_DUMPABLE = 4


def reset_signals() -> None:
    """Every signal disposition back to default and an empty signal mask: what a process about to
    ``execve`` a container command must hand on. ``SIG_IGN`` and the mask survive ``execve``, so
    Python's own ignored SIGPIPE/SIGXFSZ, or a launcher's ignored SIGHUP or blocked SIGTERM, would
    otherwise make the command deaf to them (handlers are reset by ``execve`` itself)."""
    for s in signal.valid_signals():
        if s not in _UNCATCHABLE and s < signal.SIGRTMIN:
            try:
                signal.signal(s, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _status_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _set_nondumpable(prctl) -> None:
    if prctl is not None:
        prctl(_PR_SET_DUMPABLE, 0)


def run(exec_child, *, prctl=None, close_fds: bool = True) -> "None":
    """Become the reaping, signal-forwarding PID 1; ``exec_child()`` runs in the forked child and must exec.

    ``prctl`` is a callable ``prctl(option, arg)`` (the sandbox passes ``runner.syscalls.prctl``,
    already loaded); with it PID 1 marks itself non-dumpable. Never returns: exits with the
    child's code.
    """
    _set_nondumpable(prctl)
    signal.set_wakeup_fd(-1)          # a fork of the shim inherits its wakeup fd: not ours to write
    if close_fds:
        os.closerange(3, _max_fd())
    sigset = set(FORWARDED) | {signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, sigset)
    # every disposition back to default: an inherited SIG_IGN (Python ignores SIGPIPE and SIGXFSZ,
    # launchers often ignore SIGINT/SIGTERM) would survive execve and make the child deaf to it
    for s in sigset:
        try:
            signal.signal(s, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    child = os.fork()
    if child == 0:
        try:
            reset_signals()
            exec_child()
        finally:
            os._exit(127)
    code = 0
    while True:
        info = signal.sigwaitinfo(sigset)
        if info.si_signo != signal.SIGCHLD:
            try:
                os.kill(child, info.si_signo)
            except ProcessLookupError:
                pass
            continue
        while True:        # SIGCHLD coalesces: reap everything that is ready
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                break
            if pid == child:
                code = _status_code(status)
                os._exit(code)


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        return 65536
