"""A running container seen from the host through its PID 1's cgroups: freeze, processes, usage
(the processes' ``ps`` facts are :mod:`runner.procinfo`).

Works from ``/proc/<pid>/cgroup`` alone, so it needs no record of how the sandbox named the
cgroups: cgroup v1 controllers (``freezer``, ``pids``, ``memory``, ``cpuacct``), and the v2 unified
hierarchy (mounted at ``/sys/fs/cgroup/unified`` on hybrid hosts, ``/sys/fs/cgroup`` on pure v2).
The root of a hierarchy is never treated as the container's (that would act on the whole host).
Stdlib only.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

from layers.value import frozen

from .errors import CgroupError

__all__ = ["cgroup_paths", "freeze", "container_pids", "namespace_zombies", "usage", "usage_many", "Usage", "Window"]

_V2_ROOTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")


def cgroup_paths(pid: int) -> dict[str, str]:
    """controller -> absolute cgroup directory of ``pid`` (v1 controllers, and ``""`` for v2)."""
    raw = _read(f"/proc/{pid}/cgroup")
    if raw is None:
        raise CgroupError(f"process {pid} is gone")
    out: dict[str, str] = {}
    for line in raw.decode().splitlines():
        _, ctrls, path = line.split(":", 2)
        if ctrls == "":
            out[""] = _mount("", "") + path
        for c in ctrls.split(","):
            if c and not c.startswith("name="):
                out[c] = _mount(c, ctrls) + path
    return out


_MOUNTS: dict[tuple[str, str], str] = {}


def _mount(controller: str, ctrls: str) -> str:
    """Where ``controller`` (of the ``ctrls`` hierarchy; ``""`` for v2) is mounted, looked up once per
    process: the mounts do not move while a command runs, and a hundred containers share them."""
    key = (controller, ctrls)
    d = _MOUNTS.get(key)
    if d is None:
        if controller == "":
            d = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
        else:
            d = os.path.join("/sys/fs/cgroup", controller)
            if not os.path.isdir(d):
                d = os.path.join("/sys/fs/cgroup", ctrls)     # co-mounted, e.g. cpu,cpuacct
        _MOUNTS[key] = d
    return d


def _read(path: str) -> bytes | None:
    """The whole of a small kernel file (one ``open``, ``read`` until EOF, ``close``), None if unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _is_root(path: str) -> bool:
    p = path.rstrip("/")
    return p in _V2_ROOTS or os.path.dirname(p) == "/sys/fs/cgroup"


def freeze(pid: int, frozen: bool) -> None:
    """Freeze or thaw every process in ``pid``'s cgroup; waits until v1 reports the new state."""
    paths = cgroup_paths(pid)
    v1 = paths.get("freezer")
    if v1 and not _is_root(v1) and os.path.exists(os.path.join(v1, "freezer.state")):
        target = os.path.join(v1, "freezer.state")
        want = b"FROZEN" if frozen else b"THAWED"
        with open(target, "wb") as f:
            f.write(want)
        for _ in range(500):                  # FREEZING -> FROZEN is asynchronous
            with open(target, "rb") as f:
                if f.read().strip() == want:
                    return
            time.sleep(0.01)
        raise CgroupError(f"{target}: did not reach {want.decode()} within 5s")
    v2 = paths.get("")
    if v2 and not _is_root(v2) and os.path.exists(os.path.join(v2, "cgroup.freeze")):
        with open(os.path.join(v2, "cgroup.freeze"), "w") as f:
            f.write("1" if frozen else "0")
        return
    raise CgroupError(f"process {pid}: no freezer cgroup of its own to {'pause' if frozen else 'unpause'} it with")


def container_pids(pid: int) -> list[int]:
    """Host pids of every process in the cgroup of ``pid`` (pids, memory or v2 hierarchy; else ``[pid]``)."""
    paths = cgroup_paths(pid)
    for key in ("pids", "memory", ""):
        d = paths.get(key)
        if d and not _is_root(d) and os.path.exists(os.path.join(d, "cgroup.procs")):
            with open(os.path.join(d, "cgroup.procs")) as f:
                return sorted(int(x) for x in f.read().split())
    return [pid]


def namespace_zombies(pid: int, known: set[int]) -> list[int]:
    """Zombies of ``pid``'s PID namespace (not the host's): an exited task leaves its cgroup at
    once, so ``cgroup.procs`` never lists the zombies a PID 1 fails to reap; ``ps`` inside would."""
    try:
        ns = os.readlink(f"/proc/{pid}/ns/pid")
        if ns == os.readlink("/proc/self/ns/pid"):
            return []
    except OSError:
        return []
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in known:
            continue
        try:
            if os.readlink(f"/proc/{name}/ns/pid") != ns:
                continue
            with open(f"/proc/{name}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    out.append(int(name))
        except OSError:
            continue                            # gone while we looked
    return out


@frozen
class Usage:
    cpu_percent: float          # over the sampling interval; 100 = one core
    memory_usage: int
    memory_limit: int           # 0: unlimited
    pids: int
    net_rx: int = 0             # bytes received/sent on the network namespace's interfaces but lo
    net_tx: int = 0
    block_read: int = 0         # bytes read/written on block devices (blkio / io cgroup stats)
    block_write: int = 0


def _read_int(path: str) -> int | None:
    raw = _read(path)
    if not raw:
        return None
    try:
        return int(raw.split(None, 1)[0])
    except (ValueError, IndexError):
        return None                                     # "max", or empty


def _cpu_ns(paths: dict[str, str], missing: int | None = 0) -> int | None:
    """CPU time of a cgroup in ns (v1 ``cpuacct.usage``, v2 ``cpu.stat``'s ``usage_usec``); ``missing`` if unreadable."""
    for key in ("cpuacct", "cpu"):
        if key in paths:
            v = _read_int(paths[key] + "/cpuacct.usage")
            if v is not None:
                return v
    if "" in paths:
        raw = _read(paths[""] + "/cpu.stat")
        for line in (raw or b"").splitlines():
            k, _, v = line.partition(b" ")
            if k == b"usage_usec":
                return int(v) * 1000
    return missing


def usage(pid: int, interval: float = 0.5) -> Usage:
    """Sample CPU over ``interval`` seconds, and read memory and pid counts now."""
    result = usage_many([pid], interval)[0]
    if result is None:
        raise CgroupError(f"process {pid} is gone")
    return result


def usage_many(pids: list[int], interval: float = 0.5) -> list[Usage | None]:
    """:func:`usage` of several containers' PID 1s over one shared ``interval`` (one sleep, not one
    per container); None for a pid that is gone."""
    window = Window(interval)
    window.add(pids)
    return window.close()


#: Where :mod:`runner.cgroups` puts every container's cgroup, below each hierarchy's root: ``pybuild/<id>``.
CONTAINERS_PARENT = "pybuild"


class Window:
    """One CPU sampling window shared by several containers, as Docker's CPU % needs two samples of
    the container's CPU time and the host's (``/proc/stat``) over the same interval.

    Created, it takes the first sample: the host's CPU time, and at the same moment that of every
    cgroup below :data:`CONTAINERS_PARENT` (one directory listing; the containers are not known yet,
    so the caller can read its records inside the window). :meth:`add` names the PID 1s to report:
    a PID 1 whose CPU cgroup was sampled then keeps that first sample; any other (a cgroup elsewhere,
    or created since) is sampled when added, with a host sample of its own, and its window runs
    ``interval`` from then. :meth:`close` reads the other figures, waits for what is left of the
    window, then takes the second sample. Work done between creation and :meth:`close` is inside
    the window, not added to it."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._start = time.monotonic()
        self._s0, self._cpus = _system_ns()
        self._early: dict[str, int] = {}        # CPU cgroup dir -> its CPU time at _s0
        for key, root in (("cpuacct", _mount("cpuacct", "cpu,cpuacct")), ("", _mount("", ""))):
            parent = os.path.join(root, CONTAINERS_PARENT)
            try:
                names = os.listdir(parent)
            except OSError:
                continue
            for name in names:
                d = parent + "/" + name
                ns = _cpu_ns({key: d}, missing=None)
                if ns is not None:
                    self._early[d] = ns
        self._pids: list[int] = []
        self._paths: list[dict[str, str] | None] = []
        self._first: list[tuple[int, int]] = []     # per pid: (its CPU time, the host's) at its first sample
        self._end = self._start + interval
        self.early_hits = 0                         # added PID 1s that kept the sample taken at creation

    def add(self, pids: list[int]) -> None:
        """Report these PID 1s too (in :meth:`close`'s order)."""
        host_now = None
        for pid in pids:
            try:
                paths: dict[str, str] | None = cgroup_paths(pid)
            except CgroupError:
                paths = None
            first = (0, 0)
            if paths is not None:
                d = _cpu_dir(paths)
                if d is not None and d in self._early:
                    first = (self._early[d], self._s0)
                    self.early_hits += 1
                else:
                    if host_now is None:
                        host_now = _system_ns()[0]
                        self._end = max(self._end, time.monotonic() + self._interval)
                    first = (_cpu_ns(paths), host_now)
            self._pids.append(pid)
            self._paths.append(paths)
            self._first.append(first)

    def close(self) -> list[Usage | None]:
        """Per added pid its :class:`Usage` (CPU % over the window), None for a pid that is gone."""
        now = [None if p is None else _now(pid, p, 0.0) for pid, p in zip(self._pids, self._paths)]
        left = self._end - time.monotonic()
        if left > 0:
            time.sleep(left)
        c1 = [_cpu_ns(p) if p is not None else 0 for p in self._paths]
        s1, _ = _system_ns()
        return [None if u is None else
                replace(u, cpu_percent=round(_cpu_percent(b - c0, s1 - s0, self._cpus), 2))
                for u, (c0, s0), b in zip(now, self._first, c1)]


def _cpu_dir(paths: dict[str, str]) -> str | None:
    """The cgroup directory :func:`_cpu_ns` reads first."""
    for key in ("cpuacct", "cpu", ""):
        if key in paths:
            return paths[key]
    return None


def _cpu_percent(cpu_delta: int, system_delta: int, online_cpus: int) -> float:
    """Docker's CPU %: the container's CPU time over the host's, times the online CPUs (100% = one
    core): ``calculateCPUPercentUnix`` of the docker CLI, with moby's system usage."""
    if cpu_delta <= 0 or system_delta <= 0:
        return 0.0
    return cpu_delta / system_delta * online_cpus * 100.0


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _system_ns() -> tuple[int, int]:
    """moby's ``getSystemCPUUsage``: the first seven fields of ``/proc/stat``'s ``cpu`` line (user,
    nice, system, idle, iowait, irq, softirq) in nanoseconds; and the online CPUs (its ``cpuN`` lines)."""
    raw = _read("/proc/stat")
    if not raw:
        return 0, 0
    lines = raw.split(b"\n")
    ticks = sum(int(x) for x in lines[0].split()[1:8])
    cpus = sum(1 for line in lines[1:] if line.startswith(b"cpu"))
    return ticks * 1_000_000_000 // _CLK_TCK, cpus


def _memory(paths: dict[str, str]) -> tuple[int, int]:
    """Memory used and the limit (0: none), as ``docker stats`` shows them: the cgroup's usage less
    its inactive page cache (v1 ``total_inactive_file``, v2 ``inactive_file`` of ``memory.stat``),
    which the kernel reclaims first."""
    if "memory" in paths:
        d, key = paths["memory"], b"\ntotal_inactive_file "
        mem = _read_int(d + "/memory.usage_in_bytes") or 0
        lim = _read_int(d + "/memory.limit_in_bytes") or 0
    elif "" in paths:
        d, key = paths[""], b"\ninactive_file "
        mem = _read_int(d + "/memory.current") or 0
        lim = _read_int(d + "/memory.max") or 0
    else:
        return 0, 0
    cache = 0
    stat = _read(d + "/memory.stat")
    if stat:
        at = (b"\n" + stat).find(key)                 # the key at a line's start
        if at >= 0:
            value = stat[at + len(key) - 1:].split(b"\n", 1)[0]
            try:
                cache = int(value)
            except ValueError:
                cache = 0
    if lim >= 1 << 60:                           # v1's "unlimited" is a huge page-aligned number
        lim = 0
    return (mem - cache if cache < mem else mem), lim


def _now(pid: int, paths: dict[str, str], cpu: float) -> Usage:
    mem, lim = _memory(paths)
    pids = _read_int(paths["pids"] + "/pids.current") if "pids" in paths else None
    if pids is None:
        pids = len(container_pids(pid))
    rx, tx = _net_io(pid)
    rd, wr = _block_io(paths)
    return Usage(round(cpu, 2), mem, lim, pids, rx, tx, rd, wr)


_HOST_NET: list[int] = []


def _net_io(pid: int) -> tuple[int, int]:
    """Received and sent bytes of ``pid``'s network namespace, loopback left out (as Docker); 0, 0
    for a container on the host's network."""
    try:
        if not _HOST_NET:
            _HOST_NET.append(os.stat("/proc/1/ns/net").st_ino)
        if os.stat(f"/proc/{pid}/ns/net").st_ino == _HOST_NET[0]:
            return 0, 0                                 # the host's network: Docker shows 0B / 0B
    except OSError:
        return 0, 0
    raw = _read(f"/proc/{pid}/net/dev")
    rx = tx = 0
    for line in (raw or b"").split(b"\n")[2:]:
        name, _, counters = line.partition(b":")
        fields = counters.split()
        if name.strip() != b"lo" and len(fields) >= 9:
            rx, tx = rx + int(fields[0]), tx + int(fields[8])
    return rx, tx


def _block_io(paths: dict[str, str]) -> tuple[int, int]:
    """Bytes read and written: v1 ``blkio.throttle.io_service_bytes``, v2 ``io.stat``."""
    read = write = 0
    try:
        if "blkio" in paths:
            for line in (_read(paths["blkio"] + "/blkio.throttle.io_service_bytes") or b"").split(b"\n"):
                parts = line.split()
                if len(parts) == 3:
                    if parts[1] == b"Read":
                        read += int(parts[2])
                    elif parts[1] == b"Write":
                        write += int(parts[2])
        elif "" in paths:
            for line in (_read(paths[""] + "/io.stat") or b"").split(b"\n"):
                for kv in line.split()[1:]:
                    k, _, v = kv.partition(b"=")
                    if k == b"rbytes":
                        read += int(v)
                    elif k == b"wbytes":
                        write += int(v)
    except ValueError:
        pass
    return read, write
