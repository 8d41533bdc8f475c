"""Starting a shim (:mod:`runner.shim`) from the CLI side: :func:`spawn`, :func:`fork_shim` and
:class:`PendingShim`.

Two ways, one shim. A single-threaded caller forks itself (:func:`fork_shim`): the child already has
the interpreter and the modules a start needs, so a start costs no interpreter start (~50 ms of CPU
less per ``run -d``); it hands the running container to the resident loop by ``execve``, so nothing
of the CLI stays. A caller with threads (``compose up`` starts services in parallel; a fork would copy
locks other threads hold) and ``--init`` containers (their PID 1 is a fork of the shim and stays
one: of a fresh interpreter it holds a few MiB, of the CLI it would hold click and the image store)
start ``python -S -m runner.shim`` instead (:class:`PendingShim`), as early as they can.

Kept apart from the shim itself so that ``start`` does not load the shim's supervisor code (a forked
child imports it), and the shim never imports the lifecycle operations that start it.
"""

from __future__ import annotations

import os
import selectors
import signal
import sys
import time

from .errors import ShimFailed

__all__ = ["PendingShim", "spawn", "fork_shim", "can_fork"]


class PendingShim:
    """A shim process started before its container exists; :meth:`start` hands it the container.

    ``pybuild run -d`` starts one first thing, so the shim's detaching and imports (a fork, ``fork``:
    ~20 ms; a fresh interpreter: ~50 ms) run on the other core while the CLI looks up the image and
    writes the record. ``fork`` needs a caller running no other thread (:func:`can_fork`) and holding
    no lock. :meth:`close` (or leaving the ``with`` block) without :meth:`start` makes it exit with
    nothing written.
    """

    def __init__(self, root: str, state_dir: str, *, fork: bool = False) -> None:
        self.root, self.state_dir = root, state_dir
        self._proc = None
        self._pid = 0
        self._ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        go_r, self._go_w = os.pipe2(os.O_CLOEXEC)
        try:
            if fork:
                self._pid = _fork(root, state_dir, ready_w, go_r, (self._ready_r, self._go_w))
            else:
                self._proc = _spawn(root, state_dir, ready_w, go_r)
        except BaseException:
            for fd in (self._ready_r, self._go_w):
                os.close(fd)
            raise
        finally:
            os.close(ready_w)
            os.close(go_r)

    def start(self, cid: str, *, timeout: float = 60.0) -> int:
        """Give the shim container ``cid`` and wait until its process runs; return its pid.

        Raises :class:`~runner.errors.ShimFailed` with the shim's message when it could not start.
        """
        try:
            os.write(self._go_w, cid.encode() + b"\n")
        except BrokenPipeError:
            pass                  # the shim is gone: reported below as exited without starting it
        self.close()
        fd, self._ready_r = self._ready_r, -1
        return _read_ready(fd, cid, timeout, self.state_dir)

    def close(self) -> None:
        """Without a container handed over, the shim exits (EOF on its GO_FD). Reaps the process
        this one started, which exits at its first fork (the shim lives on, re-parented)."""
        if self._go_w >= 0:
            os.close(self._go_w)
            self._go_w = -1
        if self._proc is not None:
            self._proc.wait()
            self._proc = None
        if self._pid:
            try:
                os.waitpid(self._pid, 0)
            except ChildProcessError:             # reaped already: SIGCHLD ignored in this process
                pass
            self._pid = 0

    def __enter__(self) -> "PendingShim":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        if self._ready_r >= 0:
            os.close(self._ready_r)
            self._ready_r = -1


def _read_ready(fd: int, cid: str, timeout: float, state_dir: str) -> int:
    """Read the shim's ``ok <pid>`` or ``error <message>`` line from ``fd`` (closed here)."""
    deadline = time.monotonic() + timeout
    buf = b""
    with os.fdopen(fd, "rb", buffering=0) as f:
        sel = selectors.DefaultSelector()
        sel.register(f, selectors.EVENT_READ)
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(timeout=left):
                raise ShimFailed(f"container {cid[:12]}: the shim did not report within {timeout:.0f}s")
            chunk = f.read(4096)
            if not chunk:
                break
            buf += chunk
    line = buf.decode(errors="replace").strip()
    if line.startswith("ok "):
        return int(line[3:])
    if line.startswith("error "):
        raise ShimFailed(line[6:])
    raise ShimFailed(f"container {cid[:12]}: the shim exited without starting it "
                     f"(see {os.path.join(state_dir, cid, 'shim.log')})")


#: blocked in the CLI across the fork, so a Ctrl-C at its terminal cannot reach the child before it
#: is in a session of its own (it would unwind through the CLI's frames there)
_FORK_BLOCKED = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP}


def can_fork() -> bool:
    """True when this process may fork a shim: it runs no other thread (a fork copies only the
    calling thread, and whatever lock another one held stays held in the child)."""
    threading = sys.modules.get("threading")
    return threading is None or threading.active_count() == 1


def _spawn(root: str, state_dir: str, ready_w: int, go_r: int):
    """``python -S -m runner.shim`` with the two pipe ends; returns its :class:`subprocess.Popen`."""
    import subprocess

    from .shimprocs import shim_env

    env = dict(os.environ)
    env.pop("PYTHONSTARTUP", None)
    # -S: no site module, so no scan of site-packages' .pth files nor an editable install's
    # import hook in a process that lives as long as its container (~2 MiB and ~20 ms less)
    env.update(shim_env())
    return subprocess.Popen(
        [sys.executable, "-S", "-m", "runner.shim", root, state_dir, str(ready_w), str(go_r)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=None,
        pass_fds=(ready_w, go_r), close_fds=True, cwd="/", env=env)


def _fork(root: str, state_dir: str, ready_w: int, go_r: int, ours: tuple[int, int]) -> int:
    """Fork this process into :func:`runner.shim.run_forked` with the two pipe ends (``ours``, this
    side's ends, closed in the child: else it would never see EOF on GO_FD); returns the child's pid
    (it exits at its first fork; the shim lives on in a session of its own)."""
    for stream in (sys.stdout, sys.stderr):       # or the child could write what the CLI buffered
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _FORK_BLOCKED)
    try:
        pid = os.fork()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        raise
    if pid == 0:                                  # never returns into the caller's frames
        code = 1
        try:
            for fd in ours:
                os.close(fd)
            from .shim import run_forked

            run_forked(root, state_dir, ready_w, go_r)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            try:
                import traceback

                traceback.print_exc()             # into shim.log once the shim has one
            except BaseException:
                pass
        finally:
            os._exit(code)
    signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return pid


def fork_shim(root: str, state_dir: str, cid: str, *, timeout: float = 60.0) -> int:
    """Start container ``cid``'s shim as a fork of this process (:func:`runner.shim.run_forked`) and
    wait until the container runs; return its pid. The caller holds no lock (a lock's descriptor
    would be held by the child too) and runs no other thread (:func:`can_fork`). Raises
    :class:`~runner.errors.ShimFailed` with the shim's message when the container could not start."""
    with PendingShim(root, state_dir, fork=True) as pending:
        return pending.start(cid, timeout=timeout)


def spawn(root: str, state_dir: str, cid: str, *, timeout: float = 60.0, shim: PendingShim | None = None,
          fork: bool = True) -> int:
    """Start the shim for container ``cid`` and wait until the container runs; return its pid: hand
    it to the already started ``shim``, else fork one when ``fork`` and :func:`can_fork`, else start
    one. Raises :class:`~runner.errors.ShimFailed` with the shim's message when the container could
    not start."""
    if shim is None and fork and can_fork():
        return fork_shim(root, state_dir, cid, timeout=timeout)
    with shim if shim is not None else PendingShim(root, state_dir) as pending:
        return pending.start(cid, timeout=timeout)
