"""Signals, ``kill``, ``wait`` and ``stop``: ending a container's process and waiting for its record.

Signals go to the container's PID 1 as seen from the host (``state.pid``, recorded by its
supervisor), and only while that pid is in the container's cgroup. ``stop`` and ``kill`` write the
``stop-requested`` marker first so the shim does not restart what the user stopped; the supervisor
records the exit, these functions only wait for it.
"""

from __future__ import annotations

import os
import signal as _signal
import time

from layers.errors import InvalidInput

from . import records as r
from .errors import ContainerNotFound, StateConflict, WaitTimeout
from .records import ContainerConfig
from .state import ContainerStore, pid_in_container

__all__ = ["parse_signal", "send_signal", "kill", "wait", "stop", "WaitTimeout"]


def parse_signal(text: str | int) -> int:
    """``SIGTERM``, ``TERM``, ``term`` or ``15`` -> 15; raise InvalidInput for anything else."""
    if isinstance(text, int):
        return text
    t = str(text).strip().upper()
    if t.isdigit():
        n = int(t)
        if 0 < n < 65:
            return n
    else:
        name = t if t.startswith("SIG") else "SIG" + t
        sig = getattr(_signal.Signals, name, None) if name in _signal.Signals.__members__ else None
        if sig is not None:
            return int(sig)
    raise InvalidInput(f"invalid signal {text!r}: use a name such as SIGTERM or a number")


def send_signal(cfg: ContainerConfig, pid: int, sig: int) -> None:
    """Signal the container's PID 1, but only if ``pid`` still is the container's (``pid_in_container``): a pid
    recorded before an unnoticed exit may have been reused by an unrelated host process."""
    if cfg.launcher != "host":
        try:
            if not pid_in_container(pid, cfg.id):
                return
        except FileNotFoundError:
            return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def kill(store: ContainerStore, ref: str, sig: str | int = "SIGKILL") -> ContainerConfig:
    """Send ``sig`` to the container's PID 1. The shim will not restart a container killed this way."""
    from . import cgroupview

    signum = parse_signal(sig)
    cfg = store.resolve(ref)
    with store.lock(cfg.id):
        cur = store.status(cfg.id)
        if not cur.live or cur.pid <= 0:
            raise StateConflict(f"container {cfg.name} is not running", container=cfg.name,
                                current=cur.status, wanted=r.EXITED)
        if signum in (_signal.SIGKILL, _signal.SIGTERM, _signal.SIGINT, _signal.SIGQUIT):
            store.request_stop(cfg.id)
        store.event(cfg, "kill", signal=signum)     # before the signal: its "die" comes after
        send_signal(cfg, cur.pid, signum)
        if cur.status == r.PAUSED:
            cgroupview.freeze(cur.pid, False)       # a frozen task only takes the signal once thawed
    return cfg


def wait(store: ContainerStore, ref: str, *, timeout: float | None = None, poll: float = 0.02,
         for_shim: bool = True) -> int:
    """Block until the container is not running (and its shim is done); return its exit code.

    Raises :class:`WaitTimeout` after ``timeout`` seconds; a container removed meanwhile reads 0."""
    cfg = store.resolve(ref)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            cur = store.status(cfg.id)
        except ContainerNotFound:
            return 0             # removed meanwhile (--rm, or rm by someone else)
        shim_alive = store.shim_pid(cfg.id) is not None
        if cur.status in (r.EXITED, r.CREATED, r.DEAD) and (not for_shim or not shim_alive):
            return cur.exit_code
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeout(f"container {cfg.name}: still {cur.status} after {timeout:.0f}s")
        # sleep until the process this waits for ends (PID 1, else the shim) rather than a fixed poll;
        # at most 1 s at a time, so a state change without an exit (or a reused pid) is seen
        watched = cur.pid if cur.live and cur.pid > 0 else (shim_alive and store.shim_pid(cfg.id)) if for_shim else None
        remaining = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
        if watched and _wait_pid_exit(watched, remaining):
            time.sleep(0.002)           # it ended: its record follows within a few ms
        else:
            time.sleep(min(poll, remaining))


def stop(store: ContainerStore, ref: str, timeout: float | None = None) -> ContainerConfig:
    """Send the stop signal, wait up to ``timeout`` (default: the container's), then SIGKILL; wait for exit.

    Stopping a container that is not running is not an error (Docker's behaviour); a restart in
    back-off is cancelled.
    """
    from . import cgroupview

    cfg = store.resolve(ref)
    t = cfg.stop_timeout if timeout is None else timeout
    pidfd = None
    with store.lock(cfg.id):
        cur = store.status(cfg.id)
        store.request_stop(cfg.id)
        if cur.live and cur.pid > 0:
            pidfd = _open_pidfd(cur.pid)
            store.event(cfg, "kill", signal=parse_signal(cfg.stop_signal))
            send_signal(cfg, cur.pid, parse_signal(cfg.stop_signal))
            if cur.status == r.PAUSED:
                cgroupview.freeze(cur.pid, False)
    if not cur.live and cur.status != r.RESTARTING:
        return cfg
    try:
        try:
            wait(store, cfg.id, timeout=t, for_shim=False)
        except WaitTimeout:
            cur = store.status(cfg.id)
            if cur.pid > 0:
                store.event(cfg, "kill", signal=int(_signal.SIGKILL))
                send_signal(cfg, cur.pid, _signal.SIGKILL)
        wait(store, cfg.id, timeout=max(30.0, t), for_shim=False)   # the shim tears down after this
        if pidfd is not None:
            # without a shim, the record reads "exited" once PID 1 has left its cgroup, which is a
            # moment before the kernel finishes its exit: return only when it has
            _wait_fd(pidfd, max(30.0, t))
    finally:
        if pidfd is not None:
            os.close(pidfd)
    store.event(cfg, "stop")
    return cfg


def _wait_pid_exit(pid: int, timeout: float | None) -> bool:
    """Block until process ``pid`` (any process, not only a child) has ended or ``timeout`` passed;
    True if it ended. A pidfd needs Linux 5.3; without one this returns False at once (the caller polls)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (AttributeError, OSError):
        return False
    try:
        return _wait_fd(fd, timeout)
    finally:
        os.close(fd)


def _open_pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (Linux 5.3+), or None if it is gone or the kernel has none."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _wait_fd(fd: int, timeout: float | None) -> bool:
    """Block until ``fd`` (a pidfd: its process has exited) is readable or ``timeout`` passed."""
    import select

    ready, _, _ = select.select([fd], [], [], timeout)
    return bool(ready)
