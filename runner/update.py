"""``update``: change a container's cgroup limits and restart policy, live and in its record.

The new limits go to the running container's cgroup first (a value the kernel refuses leaves the
record as it was), then into the record's spec, so ``inspect`` shows them and every later start
(``start``, ``restart``, the shim's restart policy) applies them. A stopped container only has
its record changed. Swap stays disabled as at create: ``memory.swap`` follows the memory limit
unless ``--memory-swap`` sets it.
"""

from __future__ import annotations

from dataclasses import replace

from layers.errors import InvalidInput
from layers.store.location import is_rootless
from layers.value import frozen

from . import cgroups
from .errors import CgroupError
from .ocispec import Cpu, Memory, Pids, Resources
from .records import ContainerConfig
from .restart import parse_restart_policy
from .state import ContainerStore

__all__ = ["Limits", "update"]

_MIN_MEMORY = 6 * 1024 * 1024
_PERIOD = 100000


@frozen
class Limits:
    """What ``update`` changes; None leaves a value as it is. ``pids_limit`` 0 or -1: unlimited."""

    memory: int | None = None
    memory_swap: int | None = None
    cpus: float | None = None
    cpu_period: int | None = None
    cpu_quota: int | None = None
    pids_limit: int | None = None
    restart: str | None = None

    def check(self) -> None:
        """Raise :class:`InvalidInput` naming the option for a value Docker would refuse."""
        if self.memory is not None and self.memory < _MIN_MEMORY:
            raise InvalidInput(f"--memory {self.memory}: minimum memory limit is 6MB")
        if self.memory_swap is not None:
            if self.memory_swap == -1:
                raise InvalidInput("--memory-swap -1: pybuild runs containers without swap; "
                                   "give a limit of at least --memory")
            if self.memory is not None and self.memory_swap < self.memory:
                raise InvalidInput("--memory-swap: must be at least --memory (memory plus swap)")
        if self.cpus is not None and (self.cpu_period is not None or self.cpu_quota is not None):
            raise InvalidInput("--cpus conflicts with --cpu-period and --cpu-quota: give one or the other")
        if self.cpus is not None and self.cpus <= 0:
            raise InvalidInput(f"--cpus {self.cpus}: must be greater than 0")
        if self.cpu_period is not None and not 1000 <= self.cpu_period <= 1000000:
            raise InvalidInput(f"--cpu-period {self.cpu_period}: must be between 1000 and 1000000 microseconds")
        if self.cpu_quota is not None and self.cpu_quota != -1 and self.cpu_quota < 1000:
            raise InvalidInput(f"--cpu-quota {self.cpu_quota}: must be at least 1000 microseconds (or -1)")
        if self.restart is not None:
            parse_restart_policy(self.restart)

    @property
    def empty(self) -> bool:
        return all(getattr(self, f) is None for f in self.__dataclass_fields__)


def _resources(old: Resources | None, lim: Limits) -> tuple[Resources, Resources]:
    """(the record's new resources, the part to write to the live cgroup)."""
    old = old or Resources()
    live = Resources()
    memory = old.memory
    if lim.memory is not None or lim.memory_swap is not None:
        limit = lim.memory if lim.memory is not None else (memory.limit if memory else None)
        if limit is None:
            raise InvalidInput("--memory-swap needs a memory limit: give --memory too")
        swap = lim.memory_swap if lim.memory_swap is not None else limit
        if memory is not None and lim.memory_swap is None and memory.swap and memory.limit \
                and memory.swap > memory.limit:
            swap = max(limit, memory.swap)          # keep swap the container was given
        if swap < limit:
            raise InvalidInput(f"--memory-swap: the memory plus swap limit {swap} is below the memory limit {limit}")
        memory = Memory(limit=limit, reservation=memory.reservation if memory else None, swap=swap)
        live = replace(live, memory=Memory(limit=limit, swap=swap))
    cpu = old.cpu
    if lim.cpus is not None:
        cpu = Cpu(quota=int(lim.cpus * _PERIOD), period=_PERIOD)
    elif lim.cpu_period is not None or lim.cpu_quota is not None:
        period = lim.cpu_period or (cpu.period if cpu and cpu.period else _PERIOD)
        quota = lim.cpu_quota if lim.cpu_quota is not None else (cpu.quota if cpu else None)
        cpu = Cpu(quota=quota, period=period)
    if cpu is not old.cpu:
        live = replace(live, cpu=Cpu(quota=cpu.quota or -1, period=cpu.period or _PERIOD))
    pids = old.pids
    if lim.pids_limit is not None:
        pids = Pids(-1 if lim.pids_limit <= 0 else lim.pids_limit)
        live = replace(live, pids=pids)
    return replace(old, memory=memory, cpu=cpu, pids=pids), live


def update(store: ContainerStore, ref: str, limits: Limits) -> ContainerConfig:
    """Apply ``limits`` to container ``ref`` (live if it runs) and record them; the new config.

    Raises :class:`InvalidInput` for a value pybuild cannot honour, :class:`CgroupError` when the
    kernel refuses it (the record is then unchanged)."""
    limits.check()
    cfg = store.resolve(ref)
    if limits.restart is not None and limits.restart.partition(":")[0] != "no" and cfg.auto_remove:
        raise InvalidInput(f"container {cfg.name}: restart policy cannot be updated because "
                           f"AutoRemove (--rm) is enabled for the container")
    with store.lock(cfg.id):
        cfg = store.load_config(cfg.id)
        linux = cfg.spec.linux
        if linux is None:
            raise InvalidInput(f"container {cfg.name}: its spec has no linux section to hold limits")
        resources, live = _resources(linux.resources, limits)
        if live != type(live)() and cfg.launcher != "host" and is_rootless():
            cgroups.check_rootless(live)        # refused now, not at the next start
        if live != type(live)() and store.status(cfg.id).live:
            cg = cgroups.open_existing(cfg.id)
            if cg is None:
                raise CgroupError(f"container {cfg.name}: it runs without a cgroup of its own "
                                  f"(launcher {cfg.launcher}): its limits cannot change")
            cgroups.update(cg, live)
        spec = replace(cfg.spec, linux=replace(linux, resources=resources))
        new = replace(cfg, spec=spec, restart_policy=cfg.restart_policy if limits.restart is None
                      else limits.restart)
        new = store.update_config(new)
    store.event(new, "update")
    return new
