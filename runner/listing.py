"""Looking at containers: ``ps`` (listing with filters), ``top`` and ``stats`` (``inspect``'s facts
are :mod:`runner.details`).

``top`` and ``stats`` read PID 1's cgroups (:mod:`runner.cgroupview`).
"""

from __future__ import annotations

from layers.errors import InvalidInput, PybuildError
from layers.value import frozen

from . import records as st
from .errors import ContainerNotFound, StateConflict
TYPE_CHECKING = False           # ps imports this module: top's process records are loaded by top
if TYPE_CHECKING:
    from .cgroupview import Window
    from .procinfo import Process
from .records import ContainerConfig, ContainerInfo, ContainerState
from .state import ContainerStore

__all__ = ["list_containers", "all_match", "top", "stats", "stats_many", "StatsWindow", "Stats", "ContainerSize",
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


@frozen(slots=True)
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


@frozen
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
    ``refs`` None: every container ``ps`` lists, newest first (each record read once)."""
    from .cgroupview import Window

    return StatsWindow(store, refs, Window(interval)).close()


class StatsWindow:
    """:func:`stats_many` in two steps, so a caller can do its own work inside the CPU window.

    ``window`` is a :class:`runner.cgroupview.Window` the caller opened (as early as it could: it
    samples every container's cgroup at once). Created, this resolves the containers and reads their
    states, a PID 1 each, which it adds to the window; :meth:`close` reads the records and the other
    figures inside the window, waits for what is left of it, takes the second sample and returns what
    :func:`stats_many` returns. With ``refs`` None the containers are the ones ``ps`` lists, and
    their configs are read only inside the window."""

    def __init__(self, store: ContainerStore, refs: list[str] | None, window: Window) -> None:
        self._store = store
        self._listing = refs is None
        self._targets: list[ContainerConfig | PybuildError | str] = []
        live: dict[int, int] = {}                   # index in targets -> PID 1
        if refs is None:
            for cid in store.ids():
                try:
                    cur = store.status(cid)
                except ContainerNotFound:
                    continue                        # removed while we listed
                if cur.supervised:                  # what `ps` lists: running, paused, restarting
                    if cur.status in (st.RUNNING, st.PAUSED) and cur.pid > 0:
                        live[len(self._targets)] = cur.pid
                    self._targets.append(cid)
        else:
            self._targets = list(store.resolve_many(refs))
            for i, t in enumerate(self._targets):
                if isinstance(t, PybuildError):
                    continue
                try:
                    cur = store.status(t.id)
                except PybuildError as exc:
                    self._targets[i] = exc
                    continue
                if cur.status in (st.RUNNING, st.PAUSED) and cur.pid > 0:
                    live[i] = cur.pid
        self._live = list(live)
        self._window = window
        window.add(list(live.values()))

    def close(self) -> list[Stats | PybuildError]:
        """Per container its :class:`Stats` (or, for a ref, the error resolving it)."""
        targets: list[ContainerConfig | PybuildError | None] = []
        for t in self._targets:
            if isinstance(t, str):
                try:
                    t = self._store.load_config(t)
                except ContainerNotFound:
                    t = None                        # removed since its state was read
            targets.append(t)
        total = host_memory() if self._live else 0
        usages = dict(zip(self._live, self._window.close()))
        out: list[tuple[float, Stats | PybuildError]] = []
        for i, t in enumerate(targets):
            u = usages.get(i)
            if t is None:
                continue
            if isinstance(t, PybuildError):
                out.append((0.0, t))
            elif u is None:
                out.append((t.created, Stats(t.id, t.name, 0.0, 0, 0, 0)))
            else:
                limit = min(u.memory_limit, total) if u.memory_limit and total else (u.memory_limit or total)
                out.append((t.created, Stats(t.id, t.name, u.cpu_percent, u.memory_usage, limit, u.pids,
                                             u.net_rx, u.net_tx, u.block_read, u.block_write)))
        if self._listing:
            out.sort(key=lambda row: row[0], reverse=True)      # as `ps`: newest first
        return [s for _, s in out]
