"""Finishing what a killed pybuild left undone (:func:`reap_abandoned`), which every command that
touches containers does first: it imports the heavier modules only when a container needs it, so
``ps`` on a store with nothing to reap stays light."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from layers.errors import PybuildError

from . import records as r
from .errors import ContainerNotFound
from .state import ContainerStore, pid_in_container

__all__ = ["reap_abandoned"]


def reap_abandoned(store: ContainerStore, *,
                   on_error: Callable[[str, Exception], None] | None = None) -> list[str]:
    """Finish what a killed pybuild left undone; return the ids of the containers handled.

    A foreground ``pybuild run`` is its container's supervisor (its pid is in ``shim.json`` from
    before the record is visible, as a shim's is for a detached one). Killed with SIGKILL it can
    neither unmount the overlay, remove the cgroup, tear the network down, record the exit nor,
    with ``--rm``, remove the record; the container itself dies with it (pdeathsig). Every pybuild
    command that touches containers calls this first, as a build reaps the work dirs of killed
    builds: for each container whose supervisor is gone and whose PID 1 no longer runs, it frees the
    network, overlay and cgroup (killing anything still in it), settles a live record as exited
    (code 255: nobody saw the exit), clears ``shim.json`` and removes ``--rm`` containers. A detached
    container whose shim was killed while its PID 1 still runs is left as it is (``stop``, ``rm`` and
    ``start`` handle it), and so is every container whose supervisor lives. Rootless, a store with no
    container left whose pasta/slirp4netns still runs (a pybuild killed while it set a network up) has
    it stopped. Costs a ``stat`` per container (and one more) when there is nothing to do. A container that cannot be cleaned up is skipped and
    reported to ``on_error(container_id, error)``.
    """
    store.collect_half_removed()
    done = []
    ids = store.ids()
    if not ids and os.path.exists(os.path.join(store.root, "networks", ".rootless", "usernet.json")):
        from .network.attach import release_rootless     # only when there is work: the network room is heavy

        try:
            release_rootless(store.root)
        except (PybuildError, OSError) as exc:
            if on_error is not None:
                on_error("(network)", exc)
    for cid in ids:
        if not store.supervisor_gone(cid):
            continue
        try:
            with store.lock(cid):
                if not store.supervisor_gone(cid):
                    continue                # handled by another pybuild, or a new supervisor took over
                raw = store.read_state(cid)
                if raw.live and raw.pid > 0 and pid_in_container(raw.pid, cid):
                    continue
                cfg = store.load_config(cid)
                from .resources import cleanup_cgroup, release_resources   # only when there is work

                release_resources(store, cfg)
                cleanup_cgroup(store, cfg)
                if raw.supervised:
                    code = raw.exit_code if raw.status == r.RESTARTING else 255
                    store.move(cid, cfg.name, r.EXITED, pid=0, exit_code=code,
                               finished_at=raw.finished_at or time.time(),
                               error=raw.error or "its pybuild or shim was killed")
                store.clear_shim(cid)
            if cfg.auto_remove:
                store.remove(cid)
        except ContainerNotFound:
            continue                        # removed meanwhile
        except (PybuildError, OSError) as exc:
            if on_error is not None:
                on_error(cid, exc)
            continue
        done.append(cid)
    return done
