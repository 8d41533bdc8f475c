"""The shim's resident loop: what stays in memory while a container runs.

:mod:`runner.shim` does the one-time work (detach, mount the overlay, start the sandbox, record
``running``, tell the CLI) with the whole of ``runner`` loaded, then hands a running container over
by ``execve`` into a fresh ``python -I -S`` running :func:`main`: the same process (pid, start time,
children, ``PR_SET_CHILD_SUBREAPER`` and ``shim.json`` stay valid), without the tens of modules the
start needed. This loop copies the container's output to its log (:class:`runner.logfile.LogWriter`),
reaps whatever is re-parented to it, and when the container's process ends:

1. drains its output (at most 1 s, as :class:`runner.shim.Shim` does), writes out partial lines;
2. records the exit itself (:func:`runner.shimrecord.record_exit`: the container's ``die`` event, then ``state.json``
   moved ``running|paused -> exited`` under the container's lock), so ``stop`` returns without
   waiting for an interpreter start;
3. when the run ended for good (``finish_here``: no restart, no ``--rm``), releases its ports,
   cgroup, overlay and network (loading the network room only now) and exits; otherwise
   ``execve``\\ s back into ``python -S -m runner.shim --resume FD``, which releases what the run
   held, carries out the restart policy (and hands a restarted container over again), or finishes.

Anything it does not recognise (a record another version wrote, a state that is not ``running`` or
``paused``) is left to the full shim, which records the exit the usual way. An unexpected error kills
nothing here: it resumes the full shim, which aborts the container the usual way.

Published ports are served here too (:mod:`runner.shimproxy`, on the sockets the full shim bound);
health checks run in a process of their own per probe (:mod:`runner.healthprobe`), forked when due.

The full shim and the health monitor reap, drain their wake-up pipe and read a container's output
with this module's :func:`reap`, :func:`drain` and :func:`read_output` (the heavy module imports the
light one, never the reverse).

The handover document (a memfd, both ways) is JSON. Imports are modules built into the interpreter,
``select``, ``fcntl`` and ``_json`` (not :mod:`json`, :mod:`signal`, :mod:`selectors` nor anything of
``runner`` but :mod:`runner.logfile`): about 0.1 MiB above a bare interpreter's 2.7 MiB of private
memory, against 7 MiB for the full shim.
"""

from __future__ import annotations

import os
import sys
import time

import _signal
import select

from .logfile import LogWriter
from .shimrecord import _memfd, _oom_killed, _read_all, finish_here, loads, record_exit, state_path

__all__ = ["main", "HANDOVER_SIGNALS", "RESUME_BOOT", "drain", "reap", "read_output"]

#: blocked across each ``execve`` between the two halves of the shim, handled again on the other side
HANDOVER_SIGNALS = (_signal.SIGCHLD, _signal.SIGHUP, _signal.SIGINT, _signal.SIGPIPE, _signal.SIGTTOU,
                    _signal.SIGTTIN)
#: how the full shim starts this loop: ``python -I -S -c RESUME_BOOT <dir holding runner> <fd>``
RESUME_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from runner.shimloop import main; main(sys.argv[2:])"

# ---------------------------------------------------------------------------------------------
# small pieces the full shim (runner.shim) and the health monitor (runner.health) use too

def drain(fd: int, events: int) -> None:
    """Empty the non-blocking wake-up pipe ``fd`` (a signal handler's ``set_wakeup_fd``)."""
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def reap(exited: dict[int, int]) -> None:
    """Wait for every child that has ended, without blocking: ``exited[pid]`` = its exit code
    (128 + the signal for one killed by a signal, as a shell reports it)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        exited[pid] = 128 - code if code < 0 else code


def read_output(fd: int) -> bytes | None:
    """One read of a container's output pipe or pty (non-blocking): None when nothing is there
    now, ``b""`` at its end (EIO too: the last holder of a pty's slave side is gone)."""
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return None
    except OSError:
        return b""


# ---------------------------------------------------------------------------------------------
# the loop

def _noop(signum, frame) -> None:
    pass


class _Health:
    """:class:`runner.health.HealthMonitor`'s timing, with each probe in a process of its own
    (:mod:`runner.healthprobe`, forked and exec'd when due, reaped by the loop): one at a time,
    ``start_interval`` while starting within ``start_period``, then ``interval``, from the last
    probe's end."""

    def __init__(self, doc: dict) -> None:
        h = doc["health"]
        self.argv = [sys.executable, "-S", "-m", "runner.healthprobe", doc["root"], doc["state_dir"], doc["cid"],
                     str(h["pid1"])]
        self.state_path = state_path(doc["root"], doc["cid"])
        self.started = doc["started"]
        self.interval, self.start_interval = h["interval"], h["start_interval"]
        self.start_period, self.timeout = h["start_period"], h["timeout"]
        self.probe_pid = 0
        self.probe_clock = 0.0
        self.next_at = time.monotonic() + self._interval()

    def _interval(self) -> float:
        try:
            with open(self.state_path, "rb") as f:
                health = loads(f.read()).get("health")
        except (OSError, ValueError, AttributeError):
            health = None
        starting = not isinstance(health, dict) or health.get("status") == "starting"
        if starting and time.time() - self.started < self.start_period:
            return self.start_interval
        return self.interval

    def wait(self) -> float:
        if self.probe_pid:
            return 1.0
        return max(0.0, self.next_at - time.monotonic())

    def tick(self, exited: dict[int, int]) -> None:
        if self.probe_pid:
            if self.probe_pid in exited:
                del exited[self.probe_pid]
                self.probe_pid = 0
                self.next_at = time.monotonic() + self._interval()
            elif time.monotonic() > self.probe_clock + self.timeout + 30.0:   # its own timers failed
                self.close()
        elif time.monotonic() >= self.next_at:
            pid = os.fork()
            if pid == 0:
                try:
                    os.execv(self.argv[0], self.argv)
                finally:
                    os._exit(127)
            self.probe_pid, self.probe_clock = pid, time.monotonic()

    def close(self) -> None:
        """Kill a running probe process (the loop reaps it); the check it runs dies with the container."""
        if self.probe_pid:
            try:
                os.kill(self.probe_pid, _signal.SIGKILL)
            except OSError:
                pass


class _Loop:
    def __init__(self, doc: dict) -> None:
        self.doc = doc
        self.wait_pid = int(doc["wait_pid"])
        self.exited: dict[int, int] = {}
        self.poll = select.epoll()
        self.handlers: dict[int, object] = {}     # fd -> handler(fd, events)
        self.relay = None                          # runner.shimproxy.Relay: published ports
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.log = LogWriter(doc["log_path"], max_size=int(doc["log_max_size"]), max_files=int(doc["log_max_files"]))
        self.pipes: set[int] = set()

    def install_signals(self) -> None:
        _signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        _signal.signal(_signal.SIGCHLD, _noop)
        # no-op handlers, not SIG_IGN: an ignored disposition would survive the next execve
        for s in (_signal.SIGHUP, _signal.SIGINT, _signal.SIGPIPE, _signal.SIGTTOU, _signal.SIGTTIN):
            _signal.signal(s, _noop)
        self._add(self._wake_r, drain)
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, HANDOVER_SIGNALS)

    def _add(self, fd: int, handler) -> None:
        self.watch(fd, select.EPOLLIN, handler)

    def watch(self, fd: int, events: int, handler) -> None:
        """Call ``handler(fd, events)`` when ``fd`` is ready for ``events`` (0: no longer watch it)."""
        if not events:
            if self.handlers.pop(fd, None) is not None:
                self.poll.unregister(fd)
        elif fd in self.handlers:
            self.poll.modify(fd, events)
            self.handlers[fd] = handler
        else:
            self.poll.register(fd, events)
            self.handlers[fd] = handler

    def _drop(self, fd: int) -> None:
        self.watch(fd, 0, None)
        os.close(fd)

    def _pump(self, stream: str):
        def on_read(fd: int, events: int) -> None:
            data = read_output(fd)
            if data:
                self.log.write(stream, data)
            elif data is not None:
                self._drop(fd)
                self.pipes.discard(fd)
        return on_read

    def _dispatch(self, timeout: float) -> None:
        for fd, events in self.poll.poll(timeout):
            handler = self.handlers.get(fd)
            if handler is not None:
                handler(fd, events)
        if self.relay is not None:
            self.relay.sweep()

    def run(self) -> int:
        for fd, stream in self.doc["streams"]:
            os.set_inheritable(fd, False)
            self.pipes.add(fd)
            self._add(fd, self._pump(stream))
        if self.doc.get("ports"):
            from .shimproxy import Relay

            for fd, _, _ in self.doc["ports"]:
                os.set_inheritable(fd, False)
            self.relay = Relay(self, self.doc["target_ip"], self.doc["ports"])
        health = _Health(self.doc) if self.doc.get("health") else None
        reap(self.exited)
        while self.wait_pid not in self.exited:
            self._dispatch(1.0 if health is None else min(1.0, health.wait()))
            reap(self.exited)
            if health is not None:
                health.tick(self.exited)
        code = self.exited.pop(self.wait_pid)
        if health is not None:
            health.close()
        deadline = time.monotonic() + 1.0
        while self.pipes and (left := deadline - time.monotonic()) > 0:
            self._dispatch(min(left, 0.1))
        for fd in list(self.pipes):
            self._drop(fd)
        self.pipes.clear()
        return code


def _resume(doc: dict) -> None:
    """``execve`` into the full shim with ``doc``; never returns."""
    _signal.pthread_sigmask(_signal.SIG_BLOCK, HANDOVER_SIGNALS)
    fd = _memfd(doc)
    os.execv(sys.executable, [sys.executable, "-S", "-m", "runner.shim", "--resume", str(fd)])


def main(argv: list[str]) -> None:
    """``python -I -S -c RESUME_BOOT DIR FD``: FD is a memfd with the full shim's handover document."""
    fd = int(argv[0])
    doc = loads(_read_all(fd))
    os.close(fd)
    back = {"root": doc["root"], "state_dir": doc["state_dir"], "cid": doc["cid"], "started": doc["started"],
            "overlay": doc["overlay"], "delay": doc["delay"], "code": 255, "recorded": False}
    try:
        loop = _Loop(doc)
        loop.install_signals()
        import gc

        gc.collect()
        gc.freeze()             # what is left lives as long as the loop: the collector need not walk it
        code = loop.run()
        loop.log.flush()
        finished = time.time()
        oom = _oom_killed(doc.get("oom_file"))
        back.update(code=code, finished=finished, oom=oom)
        back["recorded"] = record_exit(doc["root"], doc["cid"], code, finished, oom)
        loop.log.close()
        fds = loop.relay.hand_back() if loop.relay is not None else []
        if back["recorded"] and finish_here(doc, fds):
            return
        back["port_fds"] = fds
    except BaseException as exc:          # a bug here must not leave an unsupervised container
        back["abort"] = f"shim loop failed: {type(exc).__name__}: {exc}"
        try:
            os.write(2, f"shim loop: {back['abort']}\n".encode())
        except OSError:
            pass
    _resume(back)
