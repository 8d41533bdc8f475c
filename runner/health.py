"""The shim's health checker: runs a container's HEALTHCHECK (or ``--health-*``) while it runs.

One probe at a time, as moby's health monitor does: every ``interval`` (``start_interval`` while the
container is still starting within its ``start_period``), a forked child enters the container as
``exec`` does (:func:`runner.exec.run_probe`) and runs the check; its first 4 KiB of output, exit code
and times go into ``state.json`` through :meth:`runner.state.ContainerStore.record_health` (under the
container's lock). A probe that outlives ``timeout`` is killed and counts as a failure with exit code
-1. A failing check never touches the container: it only reports. No probe runs while it is paused.

The shim drives a :class:`HealthMonitor` from its selector loop: :meth:`HealthMonitor.wait` bounds the
select timeout, :meth:`HealthMonitor.tick` starts probes and collects the ones the shim reaped. The
shim stays single-threaded and its memory flat: the probe's work happens in the forked child. A
foreground ``run`` (whose process is busy relaying the terminal) forks a process for the monitor
instead (:func:`spawn_monitor`), which ends with it.
"""

from __future__ import annotations

import os
import selectors
import signal
import time

from . import records as st
from .records import HealthConfig, HealthResult
from .shimloop import drain, reap

__all__ = ["HealthMonitor", "MAX_OUTPUT", "spawn_monitor", "stop_monitor"]

MAX_OUTPUT = 4096           # Docker keeps this much of a probe's output


class HealthMonitor:
    """Health checks of one run of a container (PID 1 ``pid1``, started at epoch ``started_at``)."""

    def __init__(self, store, cid: str, check: HealthConfig, spec, pid1: int, started_at: float,
                 sel: selectors.BaseSelector) -> None:
        self.store, self.cid, self.check, self.spec, self.pid1 = store, cid, check, spec, pid1
        self.started_at = started_at
        self.sel = sel
        self.argv = check.argv()
        self.timeout = check.effective("timeout")
        self.probe_pid = 0
        self.probe_fd = -1
        self.output = b""
        self.probe_start = 0.0        # epoch, for the log
        self.probe_clock = 0.0        # monotonic, for the timeout
        self.next_at = time.monotonic() + self._interval()

    def _interval(self) -> float:
        health = self.store.read_state(self.cid).health
        starting = health is None or health.status == st.STARTING
        if starting and time.time() - self.started_at < self.check.start_period:
            return self.check.effective("start_interval")
        return self.check.effective("interval")

    def wait(self) -> float:
        """Seconds until the monitor has something to do."""
        if self.probe_pid:
            return max(0.0, min(self.probe_clock + self.timeout + 1.0 - time.monotonic(), 1.0))
        return max(0.0, self.next_at - time.monotonic())

    def tick(self, exited: dict[int, int]) -> None:
        """Collect a reaped probe (``exited``: pid -> exit code, as the shim reaps), kill one that
        outlived its timeout by far, or start the next one when due."""
        now = time.monotonic()
        if self.probe_pid:
            if self.probe_pid in exited:
                self._finish(exited.pop(self.probe_pid))
            elif now > self.probe_clock + self.timeout + 1.0:   # the child's own timer did not do it
                try:
                    os.kill(self.probe_pid, signal.SIGKILL)
                except OSError:
                    pass
        elif now >= self.next_at:
            self._start()

    def _start(self) -> None:
        from .exec import run_probe

        if self.store.read_state(self.cid).status != st.RUNNING:   # paused: try again later
            self.next_at = time.monotonic() + self._interval()
            return
        r, w = os.pipe2(os.O_CLOEXEC)
        self.probe_start, self.probe_clock, self.output = time.time(), time.monotonic(), b""
        try:
            self.probe_pid = run_probe(self.pid1, self.spec, self.argv, w, self.timeout)
        except OSError as exc:
            os.close(r)
            self.probe_pid = 0
            self._record(-1, f"cannot start the health check: {exc}")
            return
        finally:
            os.close(w)
        os.set_blocking(r, False)
        self.probe_fd = r
        self.sel.register(r, selectors.EVENT_READ, self._on_output)

    def _on_output(self, fd: int, mask: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.output = (self.output + data)[:MAX_OUTPUT]
        else:
            self._close_output()

    def _close_output(self) -> None:
        if self.probe_fd >= 0:
            self.sel.unregister(self.probe_fd)
            os.close(self.probe_fd)
            self.probe_fd = -1

    def _finish(self, code: int) -> None:
        if self.probe_fd >= 0:                 # what is left in the pipe (a process it left may keep it open)
            self._on_output(self.probe_fd, selectors.EVENT_READ)
            self._close_output()
        elapsed = time.monotonic() - self.probe_clock
        self.probe_pid = 0
        output = self.output.decode(errors="replace")
        if code == 128 + signal.SIGKILL and elapsed >= self.timeout:
            code, output = -1, f"Health check exceeded timeout ({_seconds(self.timeout)})"
        self._record(code, output)

    def _record(self, code: int, output: str) -> None:
        self.store.record_health(self.cid, HealthResult(self.probe_start, time.time(), code, output), self.check)
        self.next_at = time.monotonic() + self._interval()

    def close(self) -> None:
        """The container ended: kill a running probe (the shim reaps it) and drop its pipe."""
        if self.probe_pid:
            try:
                os.kill(self.probe_pid, signal.SIGKILL)
            except OSError:
                pass
            self.probe_pid = 0
        self._close_output()


def spawn_monitor(store, cid: str, check: HealthConfig, spec, pid1: int, started_at: float) -> int:
    """Fork a process that runs the health checks of the container whose PID 1 is ``pid1`` until
    :func:`stop_monitor` (or the death of its parent) ends it; returns its pid. It holds none of the
    caller's fds, signal handlers or process group (terminal signals are the caller's to forward)."""
    parent = os.getpid()
    # SIGTERM blocked across the fork: the child starts with the caller's Python handlers (a
    # signal forwarder), so a stop_monitor right after the fork must wait until it has its own
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        pid = os.fork()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        raise
    if pid:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        return pid
    code = 0
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):            # never hold the caller's stdio (a reader waits for its EOF)
            os.dup2(null, fd)
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGTERM, _terminate)
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                    signal.SIGUSR2, signal.SIGWINCH, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.closerange(3, 65536)
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        sel = selectors.DefaultSelector()
        sel.register(wake_r, selectors.EVENT_READ, drain)
        monitor = HealthMonitor(store, cid, check, spec, pid1, started_at, sel)
        exited: dict[int, int] = {}
        try:
            while os.getppid() == parent:
                for key, mask in sel.select(timeout=min(1.0, monitor.wait())):
                    key.data(key.fileobj, mask)
                reap(exited)
                monitor.tick(exited)
                exited.clear()
        finally:
            monitor.close()
    except SystemExit:
        pass
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def stop_monitor(pid: int, timeout: float = 5.0) -> None:
    """End a :func:`spawn_monitor` process (and a probe it runs) and reap it: SIGTERM, then SIGKILL
    if it has not exited within ``timeout`` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return
            time.sleep(0.01)
    except (OSError, ChildProcessError):
        pass


def _terminate(signum, frame) -> None:
    raise SystemExit(0)


def _seconds(value: float) -> str:
    """Go's duration spelling of whole and fractional seconds: ``30s``, ``1.5s``, ``500ms``."""
    if value < 1:
        return f"{value * 1000:g}ms"
    return f"{value:g}s"
