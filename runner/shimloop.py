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

The handover document (a memfd, both ways) is in ``marshal``'s format (:func:`write_handover`). Imports
are modules built into the interpreter, ``select`` and :mod:`runner.logfile` (not :mod:`json` nor
``_json``, :mod:`signal`, :mod:`selectors`, ``__future__``; :mod:`runner.shimrecord` only at the exit,
:mod:`runner.shimproxy` only with published ports). What a running loop costs above a bare interpreter,
and why it stays above 8 MiB RSS, is measured in ``docs/LIFECYCLE.md`` (issue 18); a test holds it
there (``test_a_running_loop_holds_little_more_than_a_bare_interpreter``).
"""

import os
import sys
import time

import _signal
import marshal
import select

from .logfile import LogWriter

__all__ = ["main", "exec_loop", "HANDOVER_SIGNALS", "RESUME_BOOT", "drain", "reap", "read_output",
           "write_handover", "read_handover", "STILL_STARTING"]

#: blocked across each ``execve`` between the two halves of the shim, handled again on the other side
HANDOVER_SIGNALS = (_signal.SIGCHLD, _signal.SIGHUP, _signal.SIGINT, _signal.SIGPIPE, _signal.SIGTTOU,
                    _signal.SIGTTIN)
#: what the interpreter that :func:`exec_loop` starts runs (from a compiled file, so without a parse):
#: ``sys.argv`` is ``[boot file, "runner.shimloop", dir holding runner, boot fd, handover fd]``
RESUME_BOOT = "import sys; sys.path[:0] = sys.argv[2:3]; from runner.shimloop import main; main(sys.argv[3:])"
#: the environment the loop's interpreter starts with, beside the full shim's: the C locale is built
#: into the C library, where C.UTF-8 (what Python coerces a C locale to) maps a locale file and a
#: charset cache (0.15 MiB); the loop reads and writes bytes only, and puts the full shim's
#: ``LC_ALL`` back (handover ``lc_all``) before it starts anything
LOOP_ENV = {"LC_ALL": "C"}

#: a health probe's exit status when the container's health is still ``starting`` after it
#: (:mod:`runner.healthprobe`): the loop then keeps to ``start_interval`` within ``start_period``
STILL_STARTING = 10


def write_handover(doc: dict) -> int:
    """An inheritable memfd holding ``doc`` (dicts, lists, str, int, float, bool, None) for the other
    half of the shim, read from the start with :func:`read_handover`. It is ``marshal``'s format (built
    into the interpreter, so neither side loads a JSON module): both sides are the same interpreter, and
    the document lives only in this process's memfd, from one ``execve`` to the next."""
    fd = os.memfd_create("pybuild-shim", 0)
    view = memoryview(marshal.dumps(doc))
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def read_handover(fd: int) -> dict:
    """The document of :func:`write_handover`'s memfd ``fd`` (which stays open)."""
    size = os.lseek(fd, 0, os.SEEK_END)
    os.lseek(fd, 0, os.SEEK_SET)
    data = os.read(fd, size)
    while len(data) < size:
        data += os.read(fd, size - len(data))
    return marshal.loads(data)


def exec_loop(fd: int) -> None:
    """Replace this process by the loop's interpreter (``python -I -S``, :data:`LOOP_ENV`), handing it
    the memfd ``fd`` of :func:`write_handover`, with ``lc_all`` (this process's ``LC_ALL``, or None)
    in it. :data:`RESUME_BOOT` runs compiled, from a memfd of its own: the interpreter parses and
    compiles nothing, and keeps none of its compiler's code and memory. Raises ``OSError`` if the
    ``execve`` failed (nothing is left open then)."""
    from _frozen_importlib_external import MAGIC_NUMBER

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    boot = os.memfd_create("pybuild-shim-boot", 0)
    try:
        # a .pyc file: magic, flags (0: checked by nothing else), 8 unused bytes, the code object
        view = memoryview(MAGIC_NUMBER + bytes(12) + marshal.dumps(compile(RESUME_BOOT, "<shim loop>", "exec")))
        while view:
            view = view[os.write(boot, view):]
        os.execve(sys.executable, [sys.executable, "-I", "-S", f"/proc/self/fd/{boot}", "runner.shimloop", here,
                                   str(boot), str(fd)], dict(os.environ, **LOOP_ENV))
    finally:
        os.close(boot)


# ---------------------------------------------------------------------------------------------
# small pieces the full shim (runner.shim) and the health monitor (runner.health) use too

def drain(fd: int, events: int) -> None:
    """Empty the non-blocking wake-up pipe ``fd`` (a signal handler's ``set_wakeup_fd``)."""
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def reap(exited: "dict[int, int]") -> None:
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


def read_output(fd: int) -> "bytes | None":
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

    def __init__(self, doc: dict, pipes: set) -> None:
        h = doc["health"]
        self.pipes, self.sealed = pipes, False
        self.argv = [sys.executable, "-S", "-m", "runner.healthprobe", doc["root"], doc["state_dir"], doc["cid"],
                     str(h["pid1"])]
        self.started, self.lc_all = doc["started"], doc.get("lc_all")
        self.interval, self.start_interval = h["interval"], h["start_interval"]
        self.start_period, self.timeout = h["start_period"], h["timeout"]
        self.probe_pid = 0
        self.probe_clock = 0.0
        self.starting = True          # a run starts with a fresh Health() (runner.shim.Shim.run_once)
        self.next_at = time.monotonic() + self._interval()

    def _interval(self) -> float:
        if self.starting and time.time() - self.started < self.start_period:
            return self.start_interval
        return self.interval

    def wait(self) -> float:
        if self.probe_pid:
            return 1.0
        return max(0.0, self.next_at - time.monotonic())

    def tick(self, exited: "dict[int, int]") -> None:
        if self.probe_pid:
            if self.probe_pid in exited:
                # the probe says whether the health is still `starting` (anything but 0: as good as
                # starting, the state it did not record), without this loop reading state.json
                self.starting = exited.pop(self.probe_pid) != 0
                self.probe_pid = 0
                self.next_at = time.monotonic() + self._interval()
            elif time.monotonic() > self.probe_clock + self.timeout + 30.0:   # its own timers failed
                self.close()
        elif time.monotonic() >= self.next_at:
            if not self.sealed:       # the container's output stays out of the probes (see _Loop.run)
                for fd in self.pipes:
                    os.set_inheritable(fd, False)
                self.sealed = True
            pid = os.fork()
            if pid == 0:
                try:
                    _restore_env(self.lc_all)
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
        # the output pipes came inheritable over the execve, and stay so: the loop starts nothing but
        # health probes, whose fork makes them non-inheritable first (an ioctl here would keep 64 KiB
        # more of the interpreter's code resident in every shim), and execs back only once they are closed
        for fd, stream in self.doc["streams"]:
            self.pipes.add(fd)
            self._add(fd, self._pump(stream))
        if self.doc.get("ports"):
            from .shimproxy import Relay

            for fd, _, _ in self.doc["ports"]:
                os.set_inheritable(fd, False)
            self.relay = Relay(self, self.doc["target_ip"], self.doc["ports"])
        health = _Health(self.doc, self.pipes) if self.doc.get("health") else None
        sys.path_importer_cache.clear()       # the finders' directory listings: what the loop imports is loaded
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
    _restore_env(doc.get("lc_all"))
    _signal.pthread_sigmask(_signal.SIG_BLOCK, HANDOVER_SIGNALS)
    fd = write_handover(doc)
    os.execv(sys.executable, [sys.executable, "-S", "-m", "runner.shim", "--resume", str(fd)])


def _number(text: str) -> int:
    """``int(text)`` for a decimal fd number, without ``int``'s parser (whose first use computes
    tables with libm's ``log``: two more pages of code and data resident for the loop's life)."""
    n = 0
    for c in text:
        n = n * 10 + ord(c) - 48
    return n


def _restore_env(lc_all) -> None:
    """Put the full shim's ``LC_ALL`` (None: unset) back in this process's environment, for what it
    starts: done where something is started (a probe's child, the exit), not while the loop runs."""
    if lc_all is None:
        os.environ.pop("LC_ALL", None)
    else:
        os.environ["LC_ALL"] = lc_all


def main(argv: "list[str]") -> None:
    """``main([BOOT_FD, FD])`` (:data:`RESUME_BOOT`): FD is a memfd with the full shim's handover document."""
    os.close(_number(argv[0]))
    fd = _number(argv[1])
    doc = read_handover(fd)
    os.close(fd)
    back = {"root": doc["root"], "state_dir": doc["state_dir"], "cid": doc["cid"], "started": doc["started"],
            "overlay": doc["overlay"], "delay": doc["delay"], "code": 255, "recorded": False,
            "lc_all": doc.get("lc_all")}
    loop = None
    try:
        loop = _Loop(doc)
        loop.install_signals()
        code = loop.run()
        _restore_env(doc.get("lc_all"))     # the full shim's environment again, for what starts from here
        loop.log.flush()
        finished = time.time()
        # the exit record and the release: loaded now (with _json), for the last moments
        from .shimrecord import _oom_killed, finish_here, record_exit

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
        for fd in loop.pipes if loop is not None else ():      # not into the full shim (inheritable)
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.write(2, f"shim loop: {back['abort']}\n".encode())
        except OSError:
            pass
    _resume(back)
