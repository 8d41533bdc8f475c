"""Forwarding the caller's signals to a container's PID 1: :class:`SignalForwarder`."""

from __future__ import annotations

import os
import signal

from .process import ContainerProcess
from .terminal import copy_winsize

__all__ = ["SignalForwarder", "FORWARDED_SIGNALS"]

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                     signal.SIGUSR2)


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
                copy_winsize(self.winsize_fd, self.proc.pty_master)
        elif self.proc is None:
            self.pending.append(sig)
        else:
            self.proc.signal(sig)

    def attach(self, proc: ContainerProcess) -> None:
        """Forward to ``proc`` from now on (and the signals that came before it started)."""
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
