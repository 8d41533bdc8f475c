"""``pybuild run`` without ``-d``: this process supervises the container itself.

:func:`run_foreground` records the container (so ``ps``/``inspect``/``stop`` see it), attaches its
network, mounts the overlay rootfs and volumes (:mod:`runner.resources`), runs the sandbox with this
process's stdin (or a pty with ``-t``), forwards signals, records the exit and, with ``--rm``,
removes the container. The container's stdout and stderr (a pty's output, as stdout) go through
pipes to a :class:`runner.logs.LogTee`, which writes them to this process's stdout and stderr and
into the container's log, so ``logs`` shows them afterwards, as it does for a detached run. It
returns the container's exit code; it neither prints nor exits.

This process is the container's supervisor: its pid is the record's ``shim.json`` from before the
record is visible until everything is released, so if it is killed (the container dies with it) the
next pybuild that touches containers frees what it held (:func:`runner.lifecycle.reap_abandoned`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from . import records as r
from .errors import ContainerNotFound
from .fromimage import create_from_image
from .logfile import LogWriter
from .logtee import LogTee
from .records import ContainerConfig
from .resources import join_namespaces, mount_rootfs, release_resources, setup_network
from .state import ContainerStore

__all__ = ["run_foreground"]


def run_foreground(cstore: ContainerStore, images, image_ref: str, opts, *,
                   on_network: Callable[[ContainerConfig], None] | None = None) -> int:
    """Create a container from ``image_ref`` (``opts``: a ``runner.options.RunOptions``), run it in
    this process and return its exit code.

    ``on_network``: called with the config once the network is attached, before the container
    starts (the CLI tells the user what the network setup noted)."""
    from . import sandbox

    cfg = create_from_image(cstore, images, image_ref, opts, supervisor=os.getpid())
    overlay = None
    code: int | None = None
    proc = None
    monitor = 0                         # the pid of the health checks' process (runner.health.spawn_monitor)
    tee = None
    feeds: list[int] = []               # pipe write ends this process still holds
    try:
        cfg = setup_network(cstore, join_namespaces(cstore, cfg))
        if on_network is not None:
            on_network(cfg)
        overlay = mount_rootfs(cstore, cfg)
        tee, feeds = _start_tee(cstore, cfg, opts.tty)
        stdin = None if opts.interactive or opts.tty else os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        with sandbox.SignalForwarder() as forwarder:
            try:
                proc = sandbox.start(cfg.spec, container_id=cfg.id, state_dir=cstore.state_dir, stdin=stdin,
                                     stdout=None if opts.tty else feeds[0], stderr=None if opts.tty else feeds[1])
            finally:
                if stdin is not None:
                    os.close(stdin)
                if not opts.tty:        # the container holds its own copies
                    _close_all(feeds)
            forwarder.attach(proc)
            try:
                started = time.time()
                cstore.move(cfg.id, cfg.name, r.RUNNING, pid=proc.pid, started_at=started,
                            shim_pid=os.getpid(), health=r.Health() if cfg.healthcheck else None)
                if cfg.healthcheck is not None:
                    from .health import spawn_monitor

                    monitor = spawn_monitor(cstore, cfg.id, cfg.healthcheck, cfg.spec, proc.pid, started)
            finally:
                try:
                    code = sandbox.foreground(proc, forward_input=opts.interactive,
                                              stdout_fd=feeds[0] if opts.tty else 1)
                finally:
                    _close_all(feeds)
    finally:
        if monitor:
            from .health import stop_monitor

            stop_monitor(monitor)
        _close_all(feeds)
        if tee is not None:
            tee.join(sync=not opts.rm)  # end of file: the container and all it started are gone
        if overlay is not None:
            overlay.unmount()
        release_resources(cstore, cfg)
        _record_exit(cstore, cfg, code, proc)
        if opts.rm:
            try:
                sandbox.cleanup(cfg.id, cstore.state_dir)
                cstore.remove(cfg.id)
            except ContainerNotFound:
                pass                    # removed meanwhile (rm -f from another shell)
    return code


def _start_tee(cstore: ContainerStore, cfg: ContainerConfig, tty: bool) -> tuple[LogTee, list[int]]:
    """Pipes for the container's output and the :class:`LogTee` that relays them to this process's
    stdout/stderr and into the container's log; the write ends (stdout, stderr; one for a pty,
    whose output the relay writes there and the log keeps as stdout)."""
    writer = LogWriter(cstore.log_path(cfg.id), max_size=cfg.log_max_size, max_files=cfg.log_max_files)
    sources: dict[int, tuple[str, int]] = {}
    feeds: list[int] = []
    try:
        for stream, dest in (("stdout", 1),) if tty else (("stdout", 1), ("stderr", 2)):
            read_end, write_end = os.pipe2(os.O_CLOEXEC)
            sources[read_end] = (stream, dest)
            feeds.append(write_end)
    except OSError:
        _close_all(feeds)
        _close_all(list(sources))
        writer.close(sync=False)
        raise
    return LogTee(writer, sources), feeds


def _close_all(fds: list[int]) -> None:
    """Close every fd in ``fds`` and empty the list (closing twice is harmless)."""
    while fds:
        os.close(fds.pop())


def _record_exit(cstore: ContainerStore, cfg: ContainerConfig, code: int | None, proc) -> None:
    """Record the exit (or a start that failed after the record went live) and end the supervision."""
    try:
        with cstore.lock(cfg.id):
            health = cstore.read_state(cfg.id).health
            if code is not None:
                cstore.move(cfg.id, cfg.name, r.EXITED, pid=0, exit_code=code, finished_at=time.time(),
                            oom_killed=code == 137 and _oom(proc), shim_pid=0, health=health and health.stopped())
            elif cstore.read_state(cfg.id).live:
                cstore.move(cfg.id, cfg.name, r.EXITED, pid=0, exit_code=255, finished_at=time.time(),
                            shim_pid=0)
            cstore.clear_shim(cfg.id)
    except ContainerNotFound:
        pass                            # removed meanwhile (rm -f from another shell)


def _oom(proc) -> bool:
    try:
        return proc.oom_killed()
    except OSError:
        return False
