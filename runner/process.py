"""A started container as the caller sees it: :class:`ContainerProcess`, and :func:`foreground`."""

from __future__ import annotations

import os
import select
import signal
from dataclasses import dataclass, field

from .cgroups import Cgroup
from .terminal import drain, relay_pty

__all__ = ["ContainerProcess", "foreground", "wait_status"]


@dataclass
class ContainerProcess:
    """A started container. ``pid`` is init's host pid; ``pty_master`` is set when the spec asks for a terminal.

    ``wakeup_fd`` is set while a :class:`SignalForwarder` is attached: readable after any signal, so
    :func:`foreground` can wait without sleeping through one.
    """

    pid: int
    container_id: str
    cgroup: Cgroup
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
            self.exit_code = wait_status(self.waiter)
            self.oom = self.cgroup.oom_killed()
            self.cgroup.destroy()
            if self.pty_master is not None:
                os.close(self.pty_master)
                self.pty_master = None
        return self.exit_code

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer acted in the container (recorded at exit)."""
        return self.oom if self.exit_code is not None else self.cgroup.oom_killed()


def wait_status(pid: int) -> int:
    """Wait for child ``pid``; its exit code, 128+N when killed by signal N (255 if it is not ours)."""
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
                drain(wake)
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


def foreground(proc: ContainerProcess, *, stdin_fd: int = 0, stdout_fd: int = 1, forward_input: bool = True) -> int:
    """Wait for a started container in the foreground; the exit code. Kills it if interrupted.

    With a pty, copies the container's terminal to ``stdout_fd`` and, with ``forward_input``
    (``-i``), ``stdin_fd`` to it (the caller's terminal then is raw). Signals are the caller's
    business (:class:`SignalForwarder`); with one attached, the wait wakes for every signal, so its
    handler runs even when the signal came just before the wait or on another thread.
    """
    try:
        if proc.pty_master is not None:
            relay_pty(proc.pty_master, stdin_fd, stdout_fd, forward_input=forward_input,
                      wakeup_fd=proc.wakeup_fd)
        _await_exit(proc)
        return proc.wait()
    finally:
        if proc.exit_code is None:
            proc.signal(signal.SIGKILL)
            proc.wait()
