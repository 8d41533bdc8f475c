"""Container lifecycle, the library under ``pybuild run -d``, ``ps``, ``stop``, ``rm``...: one import
for callers, re-exporting the modules that do the work:

    runner.records     ContainerConfig, ContainerState, the state machine (values, stdlib only)
    runner.state       ContainerStore: records on disk, locks, every state move
    runner.livestate   a container's live state: its supervisor (shim.json), stop-requested
    runner.resources   network, overlay rootfs, volumes, cgroup: taken and released in one place
    runner.lifecycle   create, start, restart, pause, unpause, remove, prune, rename, reap_abandoned
    runner.stopping    parse_signal, kill, wait, stop
    runner.fromimage   create_from_image, run_detached
    runner.foreground  run_foreground (``pybuild run`` without ``-d``)
    runner.listing     list_containers, top, stats
    runner.details     details: what inspect shows, as typed facts (pybuild.views renders them)
    runner.shim        the per-container supervisor process; runner.shim_client starts it

Nothing in the runner imports this module.
"""

from __future__ import annotations

from .errors import StateConflict, WaitTimeout
from .fromimage import create_from_image, random_name, run_detached
from .lifecycle import create, pause, prune, reap_abandoned, remove, rename, restart, start, unpause
from .details import ContainerDetails, details
from .listing import Stats, all_match, list_containers, stats, stats_many, top
from .records import ContainerConfig, ContainerInfo, ContainerState
from .resources import prepare_volumes, release_resources, rootfs_paths, setup_network, volume_users
from .state import ContainerStore
from .stopping import kill, parse_signal, stop, wait

__all__ = [
    "create", "start", "stop", "kill", "remove", "pause", "unpause", "restart", "wait", "details",
    "list_containers", "top", "stats", "stats_many", "rename", "prune", "parse_signal", "release_resources",
    "reap_abandoned", "prepare_volumes", "rootfs_paths", "setup_network", "volume_users",
    "create_from_image", "run_detached", "random_name", "all_match", "ContainerDetails",
    "ContainerInfo", "ContainerConfig", "ContainerState", "ContainerStore", "Stats",
    "WaitTimeout", "StateConflict",
]
