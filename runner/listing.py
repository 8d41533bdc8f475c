"""Looking at containers: ``ps`` (listing with filters), ``top`` and ``stats`` (``inspect``'s facts
are :mod:`runner.details`).

``top`` and ``stats`` read PID 1's cgroups (:mod:`runner.cgroupview`).
"""

from __future__ import annotations

from dataclasses import dataclass

from layers.errors import InvalidInput, PybuildError

from . import records as st
from .errors import ContainerNotFound, StateConflict
TYPE_CHECKING = False           # ps imports this module: top's process records are loaded by top
if TYPE_CHECKING:
    from .procinfo import Process
from .records import ContainerConfig, ContainerInfo, ContainerState
from .state import ContainerStore

__all__ = ["list_containers", "all_match", "top", "stats", "stats_many", "Stats", "ContainerSize",
           "container_size", "apparent_size", "host_memory"]


def list_containers(store: ContainerStore, *, all: bool = False, filters: tuple[str, ...] = (),
                    last: int = -1) -> list[ContainerInfo]:
    """Containers newest first; only running/paused ones unless ``all``. Filters: ``key=value`` with
    keys id, name, status, label, ancestor, exited, health. ``last`` > 0 keeps the ``last`` most
    recently created (of every state, as ``docker ps -n``)."""
    if last > 0:
        all = True
    parsed = []
    for f in filters:
        key, sep, value = f.partition("=")
        if not sep or key not in ("id", "name", "status", "label", "ancestor", "exited", "health"):
            raise InvalidInput(f"invalid filter {f!r}: use id=, name=, status=, label=, ancestor=, exited= "
                               "or health=")
        if key == "health" and value not in ("starting", "healthy", "unhealthy", "none"):
            raise InvalidInput(f"invalid filter {f!r}: health is starting, healthy, unhealthy or none")
        parsed.append((key, value))
    out = []
    for cfg in store.configs():
        try:
            cur = store.status(cfg.id)
        except ContainerNotFound:
            continue
        if not all and not cur.supervised \
                and not any(k in ("status", "exited") for k, _ in parsed):
            continue
        if all_match(cfg, cur, parsed):
            out.append(ContainerInfo(cfg, cur))
    out.sort(key=lambda i: i.config.created, reverse=True)
    return out[:last] if last > 0 else out


@dataclass(frozen=True, slots=True)
class ContainerSize:
    """``docker ps -s``: bytes the container wrote (its overlay upper dir) and those plus its image's."""

    rw: int
    virtual: int


def apparent_size(path: str) -> int:
    """Bytes of the files under ``path`` as Docker counts them: apparent sizes of everything but
    directories, a hard-linked inode once; 0 when ``path`` is missing."""
    import os

    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirs, files in os.walk(path):
        for n in files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            try:
                s = os.lstat(os.path.join(dirpath, n))
            except OSError:
                continue
            if s.st_nlink > 1:
                if (s.st_dev, s.st_ino) in seen:
                    continue
                seen.add((s.st_dev, s.st_ino))
            total += s.st_size
    return total


def container_size(store: ContainerStore, cfg: ContainerConfig) -> ContainerSize:
    """What container ``cfg`` wrote (its upper dir) and that plus its image's layers."""
    from .resources import rootfs_paths

    rw = apparent_size(rootfs_paths(store, cfg.id).upper)
    return ContainerSize(rw, rw + sum(apparent_size(d) for d in cfg.lowerdirs))


def all_match(cfg: ContainerConfig, cur: ContainerState, filters: list[tuple[str, str]]) -> bool:
    for key, value in filters:
        if key == "id" and not cfg.id.startswith(value):
            return False
        if key == "name" and value not in cfg.name:
            return False
        if key == "status" and cur.status != value:
            return False
        if key == "exited" and (cur.status != st.EXITED or str(cur.exit_code) != value):
            return False
        if key == "health" and (cur.health.status if cur.health else "none") != value:
            return False
        if key == "ancestor" and value not in (cfg.image, cfg.image_id):
            return False
        if key == "label":
            k, _, v = value.partition("=")
            if k not in cfg.labels or (v and cfg.labels[k] != v):
                return False
    return True


def top(store: ContainerStore, ref: str) -> list[Process]:
    """The container's processes (host PIDs) with what ``ps -ef`` shows of them."""
    from . import procinfo

    cfg = store.resolve(ref)
    cur = store.status(cfg.id)
    if cur.status not in (st.RUNNING, st.PAUSED):
        raise StateConflict(f"container {cfg.name} is not running", current=cur.status)
    return procinfo.processes(cur.pid)


@dataclass(frozen=True)
class Stats:
    """One ``stats`` sample. ``memory_limit`` is the memory cgroup's limit, or the host's memory
    when that is unlimited (or larger), as Docker shows it; 0 for a container that is not running."""

    id: str
    name: str
    cpu_percent: float
    memory_usage: int
    memory_limit: int
    pids: int
    net_rx: int = 0
    net_tx: int = 0
    block_read: int = 0
    block_write: int = 0


def host_memory() -> int:
    """The host's total memory in bytes (``MemTotal`` of ``/proc/meminfo``), 0 if unreadable."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def stats(store: ContainerStore, ref: str, *, interval: float = 0.5) -> Stats:
    """CPU % over ``interval`` (100% = one core), memory usage and limit, pid count, from cgroups."""
    result = stats_many(store, [ref], interval=interval)[0]
    if isinstance(result, PybuildError):
        raise result
    return result


def stats_many(store: ContainerStore, refs: list[str] | None, *,
               interval: float = 0.5) -> list[Stats | PybuildError]:
    """:func:`stats` of several containers, sampled over one shared ``interval``; per ref its
    figures or the error resolving it. A container that is not running (or ends meanwhile) reads 0.
    ``refs`` None: every container ``ps`` lists (each record read once)."""
    from . import cgroupview

    live: dict[int, int] = {}                   # index in refs -> PID 1
    if refs is None:
        infos = list_containers(store)
        targets: list[ContainerConfig | PybuildError] = [i.config for i in infos]
        live = {n: i.state.pid for n, i in enumerate(infos) if i.state.status in (st.RUNNING, st.PAUSED)
                and i.state.pid > 0}
    else:
        targets = store.resolve_many(refs)
    for i, t in enumerate(targets if refs is not None else ()):
        if not isinstance(t, PybuildError):
            try:
                cur = store.status(t.id)
            except PybuildError as exc:
                targets[i] = exc
                continue
            if cur.status in (st.RUNNING, st.PAUSED) and cur.pid > 0:
                live[i] = cur.pid
    usages = dict(zip(live, cgroupview.usage_many(list(live.values()), interval)))
    total = host_memory() if usages else 0
    out: list[Stats | PybuildError] = []
    for i, t in enumerate(targets):
        u = usages.get(i)
        if isinstance(t, PybuildError):
            out.append(t)
        elif u is None:
            out.append(Stats(t.id, t.name, 0.0, 0, 0, 0))
        else:
            limit = min(u.memory_limit, total) if u.memory_limit and total else (u.memory_limit or total)
            out.append(Stats(t.id, t.name, u.cpu_percent, u.memory_usage, limit, u.pids,
                             u.net_rx, u.net_tx, u.block_read, u.block_write))
    return out
