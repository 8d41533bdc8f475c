"""The per-container shim: what conmon is to Podman and containerd-shim to Docker.

``pybuild run -d`` / ``start`` fork it once the container's record is ready (:func:`run_forked`, from
:func:`runner.shim_client.fork_shim`); a caller with threads, and an ``--init`` container, spawn
``python -S -m runner.shim ROOT STATE_DIR READY_FD GO_FD`` instead
(:class:`runner.shim_client.PendingShim`). Either way the shim reads the container id on GO_FD. The shim:

1. double-forks and calls ``setsid`` so it belongs to no terminal and to no CLI process: killing the
   CLI (even with SIGKILL) leaves it and the container running (SECURITY.md case 22, moby#15397);
2. sets ``PR_SET_CHILD_SUBREAPER`` so every process the sandbox leaves behind is re-parented to it
   and reaped here, never by the host's init;
3. starts the container through ``runner.sandbox.start`` with pipes as stdout/stderr (stdin is
   ``/dev/null``), writes what arrives to the JSON-lines log (:mod:`runner.logs`), and reports
   ``ok <pid>`` or ``error <message>`` on READY_FD, then closes it: the CLI returns at once;
4. records the exit code and time, then carries out the restart policy
   (``no | on-failure[:N] | always | unless-stopped``) with exponential backoff (100 ms doubling, at
   most 60 s, reset after 10 s of running). A ``stop-requested`` marker (written by ``stop``/``kill``
   /``rm -f``) means no restart;
5. with ``--rm``, removes the container when it ends for good; then exits.

While a run lasts, a container without published ports or a health check is supervised by the
resident loop of :mod:`runner.shimloop`: once the run is recorded ``running`` and the CLI told, this
process ``execve``s into ``python -I -S`` running that loop alone (about 3 MiB of private memory
instead of 7), which records the exit and ``execve``s back (``--resume``) for steps 4 and 5. The pid,
its start time, its children and the subreaper flag survive both: for everyone else it is one shim.

Port proxies (``runner.network``) run in the shim's selector loop, so they die with the container
and never outlive it holding the port (moby#7856): before the first start the shim calls
``runner.network.start_proxies(request)`` (``name``, ``ports`` and ``network`` as the record's JSON
dicts), and expects objects with ``register(selector)`` (adding fds whose ``key.data`` is a callable
``(fileobj, mask) -> None``) and ``close()``. A busy port is reported on READY_FD before the
container starts.

Imports are the stdlib, :mod:`runner.records`, :mod:`runner.state`, :mod:`runner.resources` (overlay,
volumes and network are taken and released there, as by every other supervisor), :mod:`runner.logfile`,
:mod:`runner.shimprocs` and the sandbox (loaded while the shim waits for its id); nothing of the image store, nor of the CLI
side that starts shims (:mod:`runner.shim_client`, :mod:`runner.lifecycle`). The shim's memory is measured in
``bench/lifecycle.py`` (RSS, PSS and private).
"""

from __future__ import annotations

import os
import selectors
import signal
import sys
import time
from dataclasses import replace

from layers.errors import PybuildError

from . import records as st
from .errors import ShimFailed
from .logfile import LogWriter
from .records import PublishedPort
from .resources import release_resources, rootfs_paths
from .restart import RestartPolicy, parse_restart_policy
from .shimloop import drain, read_output, reap
from .shimprocs import HostProcess, ResumedProcess, SandboxProcess, detach, read_line, shim_env
from .state import ContainerStore

__all__ = ["main", "Shim", "parse_restart_policy", "RestartPolicy"]

BACKOFF_START = 0.1
BACKOFF_MAX = 60.0
BACKOFF_RESET_AFTER = 10.0


def _noop(signum, frame) -> None:
    pass


# ---------------------------------------------------------------------------------------------

class Shim:
    """One container's supervisor. Runs in the double-forked shim process."""

    def __init__(self, store: ContainerStore, cid: str, ready_fd: int) -> None:
        self.store = store
        self.cid = cid
        self.ready_fd = ready_fd
        self.config = store.load_config(cid)
        self.policy = parse_restart_policy(self.config.restart_policy)
        self.sel = selectors.DefaultSelector()
        self.proxies: list = []
        self.children_exited: dict[int, int] = {}
        self.health = None           # a runner.health.HealthMonitor while a checked container runs
        self._delay = BACKOFF_START  # the restart back-off
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.log = LogWriter(store.log_path(cid), max_size=self.config.log_max_size,
                             max_files=self.config.log_max_files)

    # -- readiness
    def _ready(self, message: str) -> None:
        if self.ready_fd >= 0:
            try:
                os.write(self.ready_fd, message.encode() + b"\n")
            except OSError:
                pass            # the CLI is gone (killed): nobody to tell
            os.close(self.ready_fd)
            self.ready_fd = -1

    # -- signals: SIGCHLD wakes the selector; those a shim must not die of get no-op handlers
    def _install_signals(self) -> None:
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        # no-op handlers, not SIG_IGN: an ignored disposition would survive the container's execve
        for s in (signal.SIGHUP, signal.SIGINT, signal.SIGPIPE, signal.SIGTTOU, signal.SIGTTIN):
            signal.signal(s, _noop)
        self.sel.register(self._wake_r, selectors.EVENT_READ, self._on_wake)

    def _on_wake(self, fd: int, mask: int) -> None:
        drain(fd, mask)
        self._reap()

    def _reap(self) -> None:
        reap(self.children_exited)

    # -- proxies (runner.network): bound before the first start, closed when the shim ends
    def _start_proxies(self) -> None:
        if not self.config.ports:
            return
        from types import SimpleNamespace

        from . import network

        # the network room's hook takes the record's JSON shape (ports and attachment as dicts)
        request = SimpleNamespace(name=self.config.name, ports=tuple(p.to_dict() for p in self.config.ports),
                                  network=self.config.network.to_dict())
        self.proxies = list(network.start_proxies(request))
        bound: list[PublishedPort] = []
        for p in self.proxies:
            p.register(self.sel)
            bound += [PublishedPort.from_dict(m.to_dict()) for m in p.mappings]
        if bound and tuple(bound) != tuple(self.config.ports):   # host port 0 became a real port
            self.config = self.store.update_config(replace(self.config, ports=tuple(bound)))

    def _close_proxies(self) -> None:
        for p in self.proxies:
            p.close()
        self.proxies = []

    # -- one run of the container
    def _launch(self, out_w: int, err_w: int):
        if self.config.launcher == "host":
            return HostProcess(self.config.spec, out_w, err_w)
        return SandboxProcess(self.config, self.store, out_w, err_w)

    def _pump(self, stream: str):
        def on_read(fd: int, mask: int) -> None:
            data = read_output(fd)
            if data:
                self.log.write(stream, data)
            elif data is not None:
                self.sel.unregister(fd)
                os.close(fd)
                self._open_pipes.discard(fd)
        return on_read

    def run_once(self, first: bool) -> int | None:
        """Start the container, pump its output until it exits; return its exit code (None: start failed)."""
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        try:
            proc = self._launch(out_w, err_w)
        except (PybuildError, OSError) as exc:
            for fd in (out_r, out_w, err_r, err_w):
                os.close(fd)
            msg = str(exc) or exc.__class__.__name__
            self.store.move(self.cid, self.config.name, st.EXITED, pid=0, exit_code=127,
                            finished_at=time.time(), error=msg)
            if first:
                self._ready(f"error {msg}")
            return None
        os.close(out_w)
        os.close(err_w)
        self._open_pipes = set()
        pty = getattr(proc, "pty_master", None)
        streams = [(out_r, "stdout"), (err_r, "stderr")]
        if pty is not None:          # -t: the terminal carries both streams; it is logged as stdout
            for fd in (out_r, err_r):
                os.close(fd)
            streams = [(pty, "stdout")]
        for fd, stream in streams:
            os.set_blocking(fd, False)
            self._open_pipes.add(fd)
            self.sel.register(fd, selectors.EVENT_READ, self._pump(stream))
        started = time.time()
        check = self.config.healthcheck
        self.store.move(self.cid, self.config.name, st.RUNNING, pid=proc.pid, started_at=started,
                        finished_at=None, exit_code=0, error="", shim_pid=os.getpid(),
                        health=st.Health() if check else None)
        if first:
            self._ready(f"ok {proc.pid}")
        self._hand_over(proc, streams, started)         # returns only if the execve failed
        if first:
            self._warm_up()
        if check is not None:
            from .health import HealthMonitor

            self.health = HealthMonitor(self.store, self.cid, check, self.config.spec, proc.pid, started, self.sel)
        try:
            code = self._loop_until_exit(proc.wait_pid)
        finally:
            if self.health is not None:
                self.health.close()
                self.health = None
        finished = time.time()
        self.log.flush()
        self._after_exit(proc, code, started, finished, proc.oom_killed(), recorded=False)
        return code

    def _after_exit(self, proc, code: int, started: float, finished: float, oom: bool, *, recorded: bool) -> None:
        # the exit is recorded first: `stop` returns on it, while the cgroup and overlay go; whatever
        # comes next (rm, start, wait) waits for this shim to be gone, so it never sees them half-released
        if not recorded:
            with self.store.lock(self.cid):
                health = self.store.read_state(self.cid).health
                self.store.move(self.cid, self.config.name, st.EXITED, pid=0, exit_code=code,
                                finished_at=finished, oom_killed=oom, health=health and health.stopped())
        try:
            proc.cleanup()
        except (PybuildError, OSError) as exc:
            print(f"shim {self.cid[:12]}: cleanup: {exc}", file=sys.stderr)
        self._last_run = finished - started

    # -- the resident loop (runner.shimloop): the run is handed over by execve, and back at its end
    def _hand_over(self, proc, streams: list[tuple[int, str]], started: float) -> None:
        """Replace this interpreter by the shim loop, which supervises the run in a fraction of the
        memory (:mod:`runner.shimloop`). Returns only if the execve failed: supervise it here then."""
        from .shimloop import HANDOVER_SIGNALS, exec_loop, write_handover

        doc = {"root": self.store.root, "state_dir": self.store.state_dir, "cid": self.cid,
               "wait_pid": proc.wait_pid, "started": started, "streams": [[fd, s] for fd, s in streams],
               "log_path": self.log.path, "log_max_size": self.log.max_size, "log_max_files": self.log.max_files,
               "oom_file": proc.oom_file(), "overlay": proc.overlay_mounted, "delay": self._delay,
               "cgroups": proc.cgroup_paths(), "rootfs": rootfs_paths(self.store, self.cid).rootfs,
               "ports": [list(p) for proxy in self.proxies for p in proxy.hand_over()],
               "target_ip": self.proxies[0].target_ip if self.proxies else "", "health": None,
               "lc_all": os.environ.get("LC_ALL")}
        if (check := self.config.healthcheck) is not None:
            doc["health"] = {"pid1": proc.pid, "timeout": check.effective("timeout"), "start_period": check.start_period,
                             "interval": check.effective("interval"), "start_interval": check.effective("start_interval")}
        fd = write_handover(doc)
        self.log.close(sync=False)
        old = signal.pthread_sigmask(signal.SIG_BLOCK, HANDOVER_SIGNALS)
        try:
            for pipe, _ in streams:
                os.set_inheritable(pipe, True)
            exec_loop(fd)
        except OSError as exc:
            print(f"shim {self.cid[:12]}: cannot start the shim loop, supervising in full: {exc}", file=sys.stderr)
            for pipe in [p for p, _ in streams] + [p[0] for p in doc["ports"]]:
                os.set_inheritable(pipe, False)
            os.close(fd)
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
            self.log._open()

    def resume(self, doc: dict) -> None:
        """Carry on after the shim loop ended a run (``doc``: its handover document, with the exit)."""
        self._install_signals()
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        self._delay = doc["delay"]
        if "abort" in doc:
            self.abort(doc["abort"])
            return
        if doc.get("port_fds"):       # the published ports, still bound: served here from now on
            from . import network

            ports = [network.PortMapping.from_dict(p.to_dict()) for p in self.config.ports]
            self.proxies = [network.PortProxy.adopt(ports, self.config.network.to_dict().get("ip"), doc["port_fds"])]
            for p in self.proxies:
                p.register(self.sel)
        proc = ResumedProcess(self.config, self.store, doc["overlay"])
        self._after_exit(proc, doc["code"], doc["started"], doc["finished"], doc["oom"], recorded=doc["recorded"])
        self._carry_on(doc["code"])

    def _warm_up(self) -> None:
        """Import what the teardown needs while the container runs, so ``stop``/``rm`` do not wait for it."""
        if self.config.network_mode not in ("host", "none") and self.config.launcher != "host":
            from . import network  # noqa: F401

    def _loop_until_exit(self, pid: int) -> int:
        self._reap()
        while pid not in self.children_exited:
            wait = 1.0 if self.health is None else min(1.0, self.health.wait())
            for key, mask in self.sel.select(timeout=wait):
                key.data(key.fileobj, mask)
            self._reap()
            if self.health is not None:
                self.health.tick(self.children_exited)
        code = self.children_exited.pop(pid)
        # the rest of the container's processes die with its PID 1; drain what they wrote, briefly
        deadline = time.monotonic() + 1.0
        while self._open_pipes and time.monotonic() < deadline:
            for key, mask in self.sel.select(timeout=0.1):
                key.data(key.fileobj, mask)
        for fd in list(self._open_pipes):
            self.sel.unregister(fd)
            os.close(fd)
        self._open_pipes = set()
        self.children_exited.clear()
        return code

    def _sleep_unless_stopped(self, delay: float) -> bool:
        """Back off for ``delay`` seconds, serving proxies; False if a stop was requested meanwhile."""
        end = time.monotonic() + delay
        while (left := end - time.monotonic()) > 0:
            if self.store.stop_requested(self.cid):
                return False
            for key, mask in self.sel.select(timeout=min(left, 0.05)):
                key.data(key.fileobj, mask)
            self._reap()
        return not self.store.stop_requested(self.cid)

    def run(self) -> None:
        self._install_signals()
        try:
            self._start_proxies()
        except (PybuildError, OSError) as exc:
            msg = str(exc) or exc.__class__.__name__
            self.store.move(self.cid, self.config.name, st.EXITED, error=msg, exit_code=127,
                            finished_at=time.time())
            self._ready(f"error {msg}")
            self._finish()
            return
        self._carry_on(self.run_once(True))

    def _carry_on(self, code: int | None) -> None:
        """After a run ended with ``code`` (None: it did not start): restart it as the policy says, or finish."""
        while code is not None:
            cur = self.store.read_state(self.cid)
            stopped = self.store.stop_requested(self.cid)
            self.config = self.store.load_config(self.cid)   # ``update`` may have changed the policy, limits
            self.policy = parse_restart_policy(self.config.restart_policy)
            if not self.policy.should_restart(code, cur.restart_count, stopped):
                break
            if self._last_run >= BACKOFF_RESET_AFTER:
                self._delay = BACKOFF_START
            self.store.move(self.cid, self.config.name, st.RESTARTING, restart_count=cur.restart_count + 1)
            if not self._sleep_unless_stopped(self._delay):
                break
            self._delay = min(self._delay * 2, BACKOFF_MAX)
            code = self.run_once(False)
        self._finish()

    def abort(self, message: str) -> None:
        """Last resort after an unexpected error: kill the container, record why, tell a waiting CLI."""
        self._ready(f"error {message}")
        cur = self.store.read_state(self.cid)
        if cur.pid > 0 and self.config.launcher != "host":
            from . import sandbox

            sandbox.cleanup(self.cid, self.store.state_dir)      # SIGKILLs everything in its cgroup
        if cur.status != st.DEAD:
            self.store.move(self.cid, self.config.name, st.EXITED, pid=0, exit_code=255,
                            finished_at=time.time(), error=message)
        self._finish()

    def _finish(self) -> None:
        self._close_proxies()
        self.log.close()
        with self.store.lock(self.cid):
            if self.store.read_state(self.cid).restarting:       # stopped during the back-off
                self.store.move(self.cid, self.config.name, st.EXITED)
        try:
            release_resources(self.store, self.config)
        except (PybuildError, OSError) as exc:
            print(f"shim {self.cid[:12]}: release resources: {exc}", file=sys.stderr)
        if self.config.auto_remove:
            self.store.remove(self.cid)
        else:
            try:
                os.unlink(os.path.join(self.store.live_dir(self.cid), "shim.json"))
            except FileNotFoundError:
                pass


def main(argv: list[str]) -> None:
    """``python -m runner.shim ROOT STATE_DIR READY_FD GO_FD`` (started by ``shim_client.PendingShim``).

    The shim detaches and imports what it needs at once, then waits on GO_FD for its container's id,
    which the CLI sends once the record is written and the network attached: the interpreter's start
    overlaps the CLI's own work. EOF on GO_FD (the CLI failed or was killed before) ends it with
    nothing written anywhere.
    """
    if argv and argv[0] == "--resume":
        _resume(int(argv[1]))
        return
    root, state_dir, ready, go = argv
    _detach_and_wait(root, state_dir, int(ready), int(go))


def run_forked(root: str, state_dir: str, ready_fd: int, go_fd: int) -> None:
    """The shim in a child the CLI forked (:class:`runner.shim_client.PendingShim` with ``fork``):
    no interpreter start, and only the start's imports. Detaches (double fork, ``setsid``, stdio to
    ``/dev/null`` and ``shim.log``), then reads its container's id on ``go_fd`` as :func:`main` does.
    The caller blocks a terminal's signals across the fork; they are unblocked once this process is
    in a session of its own. The running container is handed to :mod:`runner.shimloop` by ``execve``,
    so nothing of the CLI stays in memory. Returns only when the shim is done (the caller exits)."""
    import gc

    gc.freeze()             # the CLI's objects: never collected (nor finalized) in this process
    # what this process execs later (the shim loop's way back, health probes) runs with -S: it finds
    # runner through the module path, as a spawned shim does
    os.environ.update(shim_env())
    os.environ.pop("PYTHONSTARTUP", None)
    _detach_and_wait(root, state_dir, ready_fd, go_fd)


def _detach_and_wait(root: str, state_dir: str, ready_fd: int, go_fd: int) -> None:
    """Detach, import what a start needs, wait for the container id on ``go_fd`` (EOF: exit with
    nothing written), then supervise that container."""
    nullfd = detach()
    # the CLI's signal mask and an ignored SIGCHLD came with us over fork (and exec): the shim must be
    # woken by SIGCHLD and be able to wait for its children, whatever started the CLI
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    failed = _import_the_start()
    cid = read_line(go_fd)
    os.close(go_fd)
    if not cid:
        os._exit(0)
    _supervise(ContainerStore(root, state_dir), cid, ready_fd, nullfd, failed)


def _import_the_start() -> BaseException | None:
    """Import what starting a container needs; the error, reported only if a container is asked for."""
    try:
        from . import resources, sandbox  # noqa: F401  (before the wait: the start needs them at once)
        from .syscalls import set_child_subreaper  # noqa: F401
    except BaseException as exc:
        return exc
    return None


def _supervise(store: ContainerStore, cid: str, ready_fd: int, nullfd: int, failed: BaseException | None) -> None:
    live = store.live_dir(cid)
    os.makedirs(live, mode=0o700, exist_ok=True)
    # our own stderr goes to a file in the live dir: the CLI's terminal is not ours to keep
    errfd = os.open(os.path.join(live, "shim.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(errfd, 2)
    os.close(nullfd)
    os.close(errfd)
    try:
        if failed is not None:
            raise ShimFailed(f"shim: cannot import the sandbox: {failed}")
        from .syscalls import set_child_subreaper

        set_child_subreaper()
        store.write_shim(cid, os.getpid())
        shim = Shim(store, cid, ready_fd)
    except (PybuildError, OSError) as exc:
        try:
            os.write(ready_fd, f"error shim: {exc}\n".encode())
        except OSError:
            pass
        raise SystemExit(1)
    try:
        shim.run()
    except BaseException as exc:
        # a bug in the shim must not leave an unsupervised container behind
        import traceback

        traceback.print_exc()
        shim.abort(f"shim failed: {type(exc).__name__}: {exc}")
        raise SystemExit(1) from None


def _resume(fd: int) -> None:
    """``python -S -m runner.shim --resume FD`` (FD: a memfd): the shim loop handed back a run that
    ended; release what it held, then restart it or finish, as :meth:`Shim.run` would have."""
    from .shimloop import read_handover

    doc = read_handover(fd)
    os.close(fd)
    store = ContainerStore(doc["root"], doc["state_dir"])
    try:
        shim = Shim(store, doc["cid"], -1)
    except (PybuildError, OSError) as exc:       # the record is gone: nothing left to supervise
        print(f"shim {doc['cid'][:12]}: resume: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    try:
        shim.resume(doc)
    except BaseException as exc:
        import traceback

        traceback.print_exc()
        shim.abort(f"shim failed: {type(exc).__name__}: {exc}")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main(sys.argv[1:])
