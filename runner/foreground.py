"""``pybuild run`` without ``-d``: this process supervises the container itself.

:func:`run_foreground` records the container (so ``ps``/``inspect``/``stop`` see it), attaches its
network, mounts the overlay rootfs and volumes (:mod:`runner.resources`), runs the sandbox with this
process's stdio (or a pty with ``-t``), forwards signals, records the exit and, with ``--rm``,
removes the container. It returns the container's exit code; it neither prints nor exits.

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
from .records import ContainerConfig
from .resources import mount_rootfs, release_resources, setup_network
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
    monitor = 0             # the pid of the health checks' process (runner.health.spawn_monitor)
    try:
        cfg = setup_network(cstore, cfg)
        if on_network is not None:
            on_network(cfg)
        overlay = mount_rootfs(cstore, cfg)
        stdin = None if opts.interactive or opts.tty else os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        with sandbox.SignalForwarder() as forwarder:
            try:
                proc = sandbox.start(cfg.spec, container_id=cfg.id, state_dir=cstore.state_dir, stdin=stdin)
            finally:
                if stdin is not None:
                    os.close(stdin)
            forwarder.attach(proc)
            try:
                started = time.time()
                cstore.move(cfg.id, cfg.name, r.RUNNING, pid=proc.pid, started_at=started,
                            shim_pid=os.getpid(), health=r.Health() if cfg.healthcheck else None)
                if cfg.healthcheck is not None:
                    from .health import spawn_monitor

                    monitor = spawn_monitor(cstore, cfg.id, cfg.healthcheck, cfg.spec, proc.pid, started)
            finally:
                code = sandbox.foreground(proc, forward_input=opts.interactive)
    finally:
        if monitor:
            from .health import stop_monitor

            stop_monitor(monitor)
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
