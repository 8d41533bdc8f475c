"""Lifecycle operations: ``create``, ``start``, ``restart``, ``pause``, ``unpause``, ``rm``, ``prune``,
``rename``, and the reaper of what killed supervisors left.

Every function takes a :class:`runner.state.ContainerStore` and a container reference (name, full
id or unique id prefix). Status changes go through :meth:`ContainerStore.move` (the state machine
of :mod:`runner.records`); an operation that does not fit the current state raises
:class:`runner.errors.StateConflict` with a message such as ``container web1 is not running``.
Pause and unpause use PID 1's freezer cgroup (:mod:`runner.cgroupview`).
"""

from __future__ import annotations

import os
import signal as _signal

from layers.errors import InvalidInput, PybuildError

from . import records as r
from .errors import ContainerNotFound, StateConflict
from .records import ContainerConfig, ContainerInfo
from .resources import cleanup_cgroup, join_namespaces, release_resources, setup_network
from .reaping import reap_abandoned
from .state import ContainerStore, pause_point
from .stopping import send_signal, stop, wait

__all__ = ["create", "start", "restart", "pause", "unpause", "remove", "prune", "rename", "reap_abandoned"]


def create(store: ContainerStore, config: ContainerConfig, *, supervisor: int | None = None) -> ContainerConfig:
    """Record a new container in state ``created``. ``config.id`` must be fresh (see :func:`records.new_id`)."""
    from .restart import parse_restart_policy

    parse_restart_policy(config.restart_policy)      # reject a bad policy before anything is written
    if config.auto_remove and config.restart_policy not in ("no", ""):
        raise InvalidInput("--rm and --restart cannot be combined: a removed container cannot restart")
    return store.create(config, supervisor=supervisor)


def start(store: ContainerStore, ref: str, *, shim=None) -> ContainerInfo:
    """Start a created or exited container under a fresh shim; return once its process runs.

    ``shim``: a :class:`runner.shim_client.PendingShim` started earlier (``run -d --init`` and
    ``compose up`` start one before they look up the image); without it this process forks the
    shim (:func:`runner.shim_client.spawn`: a single-threaded caller, a container without ``--init``)
    or starts one here."""
    from .shim_client import spawn

    cfg = store.resolve(ref)
    store.wait_shim_gone(cfg.id)
    with store.lock(cfg.id):
        cur = store.status(cfg.id)
        if cur.live:
            raise StateConflict(f"container {cfg.name} is already {cur.status}", container=cfg.name,
                                current=cur.status, wanted=r.RUNNING)
        if cur.restarting or store.shim_pid(cfg.id) is not None:
            raise StateConflict(f"container {cfg.name} is restarting: stop it first", container=cfg.name,
                                current=cur.status, wanted=r.RUNNING)
        r.check_transition(cfg.name, cur.status, r.RUNNING)
        raw = store.read_state(cfg.id)
        if raw.supervised:          # its shim died (crash, reboot): clear what it held, settle the record
            release_resources(store, cfg)
            cleanup_cgroup(store, cfg)
            store.move(cfg.id, cfg.name, cur.status, pid=0, exit_code=cur.exit_code,
                       finished_at=cur.finished_at, shim_pid=0, error="")
        elif raw.error and raw.status == r.EXITED:
            store.move(cfg.id, cfg.name, r.EXITED, error="")     # the last start's error is history
        store.request_stop(cfg.id, False)
        # this process holds the container until the shim takes over (it records itself at its
        # start): if we are killed in between, reap_abandoned frees the network attached here
        store.write_shim(cfg.id, os.getpid())
        cfg = setup_network(store, join_namespaces(store, cfg))
    pause_point("run-start-shim")  # a test hook: created, network attached, no shim yet
    try:
        spawn(store.root, store.state_dir, cfg.id, shim=shim, fork=not cfg.init)
    except PybuildError:
        if store.shim_pid(cfg.id) in (None, os.getpid()):
            release_resources(store, cfg)
            if store.shim_pid(cfg.id) == os.getpid():
                store.clear_shim(cfg.id)
        raise
    return ContainerInfo(cfg, store.status(cfg.id))


def restart(store: ContainerStore, ref: str, timeout: float | None = None) -> ContainerInfo:
    stop(store, ref, timeout)
    info = start(store, ref)
    store.event(info.config, "restart")
    return info


def pause(store: ContainerStore, ref: str) -> ContainerConfig:
    """Freeze every process of a running container."""
    from . import cgroupview

    cfg = store.resolve(ref)
    with store.lock(cfg.id):
        cur = store.status(cfg.id)
        if cur.status == r.PAUSED:
            raise StateConflict(f"container {cfg.name} is already paused", container=cfg.name,
                                current=cur.status, wanted=r.PAUSED)
        if cur.status != r.RUNNING:
            raise StateConflict(f"container {cfg.name} is not running", container=cfg.name,
                                current=cur.status, wanted=r.PAUSED)
        cgroupview.freeze(cur.pid, True)
        store.move(cfg.id, cfg.name, r.PAUSED)
    return cfg


def unpause(store: ContainerStore, ref: str) -> ContainerConfig:
    """Thaw a paused container."""
    from . import cgroupview

    cfg = store.resolve(ref)
    with store.lock(cfg.id):
        cur = store.status(cfg.id)
        if cur.status != r.PAUSED:
            raise StateConflict(f"container {cfg.name} is not paused", container=cfg.name,
                                current=cur.status, wanted=r.RUNNING)
        cgroupview.freeze(cur.pid, False)
        store.move(cfg.id, cfg.name, r.RUNNING)
    return cfg


def remove(store: ContainerStore, ref: str, *, force: bool = False, volumes: bool = False) -> ContainerConfig:
    """Remove a container; with ``force`` a running one is killed first. ``volumes``: anonymous
    volumes (they live in the container's directory and go with it)."""
    from . import cgroupview

    cfg = store.resolve(ref)
    cur = store.status(cfg.id)
    if cur.supervised:
        if not force:
            raise StateConflict(f"container {cfg.name} is {cur.status}: stop it first or use rm -f",
                                container=cfg.name, current=cur.status, wanted="removed")
        store.request_stop(cfg.id)
        if cur.pid > 0:
            send_signal(cfg, cur.pid, _signal.SIGKILL)
            if cur.status == r.PAUSED:
                cgroupview.freeze(cur.pid, False)
    wait(store, cfg.id, timeout=30.0)
    with store.lock(cfg.id):
        if store.shim_pid(cfg.id) is not None:
            raise StateConflict(f"container {cfg.name}: its shim is still running", container=cfg.name,
                                current=cur.status, wanted="removed")
        raw = store.read_state(cfg.id)
        try:
            if raw.supervised or raw.status in (r.DEAD, r.CREATED) or store.supervisor_gone(cfg.id):
                # its shim did not finish (killed, reboot, failed removal), or a start was killed
                # after the network was attached: free what it held (idempotent)
                release_resources(store, cfg)
                cleanup_cgroup(store, cfg)
        except (PybuildError, OSError) as exc:
            # Docker's "Dead": removal failed half-way; rm -f can be retried
            store.move(cfg.id, cfg.name, r.DEAD, error=str(exc))
            raise
    store.remove(cfg.id)
    return cfg


def prune(store: ContainerStore) -> list[tuple[ContainerConfig, int]]:
    """Remove every container that is not running; return what was removed, each with the bytes
    its upper dir held (Docker's reclaimed space)."""
    from .listing import apparent_size
    from .resources import rootfs_paths

    gone = []
    for cfg in store.configs():
        cur = store.status(cfg.id)
        if cur.status in (r.CREATED, r.EXITED, r.DEAD) and store.shim_pid(cfg.id) is None:
            size = apparent_size(rootfs_paths(store, cfg.id).upper)
            gone.append((remove(store, cfg.id), size))
    return gone


def rename(store: ContainerStore, ref: str, new_name: str) -> ContainerConfig:
    cfg = store.resolve(ref)
    return store.rename(cfg.id, new_name)
