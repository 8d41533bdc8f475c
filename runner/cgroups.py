"""Container cgroups on cgroup v1 (one directory per controller hierarchy) and pure v2 (one directory).

A container's cgroup is ``pybuild/<container_id>`` below the root of each hierarchy (v1) or of
the unified tree (v2), as Docker's cgroupfs driver places ``docker/<id>``: every pybuild process
finds it from the id alone (``rm`` in another session than the one that ran it), and v2 could not
delegate controllers below a cgroup that holds processes, which the caller's own usually does. Limits come
from the spec's ``linux.resources``: ``memory.limit`` (swap disabled: ``memory.swap`` equal to the
limit), ``cpu.quota``/``period``, ``pids.limit``, and the device allow-list (v1 only; v2 needs an eBPF
program, which pybuild does not attach). Hybrid hosts (v1 controllers with an empty v2 tree at
``/sys/fs/cgroup/unified``) use the v1 path.

Rootless (``layers.store.location.is_rootless``): on pure v2 with a subtree systemd delegated to the
user (:mod:`runner.cgdelegate`), a container's cgroup is ``<delegated>/pybuild/<container_id>`` with the
limits whose controllers are delegated; a limit whose controller is not is refused naming it. A user
cannot create cgroups on v1, nor on v2 without a delegated subtree: there a container gets no cgroup
(``Cgroup("none", ())``: its processes die with its pid namespace) and any limit (``--memory``,
``--cpus``, ``--pids-limit`` ...) is refused by :func:`refuse_rootless_limits` with the reason, never
silently dropped.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from layers.value import frozen

from .errors import CgroupError
from .ocispec import Resources
from .shimrecord import kill_cgroup, remove_cgroup

if TYPE_CHECKING:
    from collections.abc import Callable

    from .cgdelegate import Delegation

__all__ = ["Cgroup", "detect_version", "create", "open_existing", "update", "CGROUP_ROOT", "refuse_rootless_limits",
           "check_rootless"]

CGROUP_ROOT = "/sys/fs/cgroup"
_V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct", "freezer", "devices", "blkio", "cpuset")


def detect_version(root: str = CGROUP_ROOT) -> str:
    """``v2`` on a pure cgroup v2 host (``cgroup.controllers`` at the root), else ``v1``."""
    return "v2" if os.path.exists(os.path.join(root, "cgroup.controllers")) else "v1"


def _own_paths() -> dict[str, str]:
    """hierarchy (``memory``, ``cpu,cpuacct`` ... or ``""`` for v2) -> this process's cgroup path.

    Only the keys matter to pybuild: they name the hierarchies mounted under ``/sys/fs/cgroup``."""
    out: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            out[ctrls] = path
    return out


def _write(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        raise CgroupError(f"write {value!r} to {path}: {exc.strerror}") from None


@frozen
class Cgroup:
    """A container's cgroup: ``paths`` holds one directory per hierarchy (one on v2)."""

    version: str
    paths: tuple[str, ...]

    def path_for(self, controller: str) -> str | None:
        if self.version == "v2":
            return self.paths[0]
        for p in self.paths:
            if controller in os.path.relpath(p, CGROUP_ROOT).split("/")[0].split(","):
                return p
        return None

    def join(self, pid: int = 0) -> None:
        """Move ``pid`` (0: the caller) into every hierarchy of this cgroup."""
        for p in self.paths:
            _write(os.path.join(p, "cgroup.procs"), str(pid))

    def pids(self) -> list[int]:
        if not self.paths:
            return []
        try:
            with open(os.path.join(self.paths[0], "cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        except FileNotFoundError:
            return []

    def kill_all(self) -> None:
        if self.paths:
            kill_cgroup(self.paths[0])

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer acted in this cgroup."""
        path = self.path_for("memory")
        if path is None:
            return False
        name = "memory.events" if self.version == "v2" else "memory.oom_control"
        try:
            with open(os.path.join(path, name)) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key in ("oom_kill",) and int(value) > 0:
                        return True
        except FileNotFoundError:
            return False
        return False

    def destroy(self, timeout: float = 5.0) -> None:
        """Kill what is left, then remove every directory; retries while the kernel lets go of them."""
        try:
            remove_cgroup(self.paths, timeout)
        except OSError as exc:
            raise CgroupError(f"remove cgroup {exc.filename}: {exc.strerror}") from None


def _init_cpuset(path: str) -> None:
    """A new v1 cpuset cgroup (and its ``pybuild`` parent) starts empty, which forbids joining it:
    copy the parent's ``cpuset.cpus``/``cpuset.mems`` down, as runc does."""
    for d in (os.path.dirname(path), path):
        for name in ("cpuset.cpus", "cpuset.mems"):
            with open(os.path.join(d, name)) as f:
                if f.read().strip():
                    continue
            with open(os.path.join(os.path.dirname(d), name)) as f:
                _write(os.path.join(d, name), f.read().strip())


def _apply_v1(paths: dict[str, str], resources: Resources) -> None:
    mem = resources.memory
    if "memory" in paths and mem is not None:
        base = paths["memory"]
        if mem.limit is not None:
            _write(os.path.join(base, "memory.limit_in_bytes"), str(mem.limit))
        if mem.reservation is not None:
            _write(os.path.join(base, "memory.soft_limit_in_bytes"), str(mem.reservation))
        if mem.limit is not None and mem.swap is not None:
            if os.path.exists(os.path.join(base, "memory.memsw.limit_in_bytes")):
                _write(os.path.join(base, "memory.memsw.limit_in_bytes"), str(mem.swap))
            elif mem.swap > mem.limit:
                raise CgroupError("cgroup v1: swap accounting is off on this host (needed for --memory-swap)")
    if "cpuset" in paths:
        try:
            _init_cpuset(paths["cpuset"])
        except OSError as exc:
            raise CgroupError(f"cgroup v1: initialise cpuset: {exc.strerror}") from None
    pids = resources.pids
    if "pids" in paths and pids is not None and pids.limit:
        _write(os.path.join(paths["pids"], "pids.max"), str(pids.limit) if pids.limit > 0 else "max")
    cpu = resources.cpu
    if "cpu" in paths and cpu is not None and cpu.quota:
        _write(os.path.join(paths["cpu"], "cpu.cfs_period_us"), str(cpu.period or 100000))
        _write(os.path.join(paths["cpu"], "cpu.cfs_quota_us"), str(cpu.quota))
    if cpu is not None and cpu.shares:
        if "cpu" not in paths:
            raise CgroupError("cgroup v1: the cpu controller is not mounted (needed for --cpu-shares)")
        _write(os.path.join(paths["cpu"], "cpu.shares"), str(cpu.shares))
    if cpu is not None and cpu.cpus:
        if "cpuset" not in paths:
            raise CgroupError("cgroup v1: the cpuset controller is not mounted (needed for --cpuset-cpus)")
        _write(os.path.join(paths["cpuset"], "cpuset.cpus"), cpu.cpus)
    if "devices" in paths and resources.devices:
        for rule in resources.devices:
            kind = rule.type or "a"
            major = "*" if rule.major is None else str(rule.major)
            minor = "*" if rule.minor is None else str(rule.minor)
            text = "a" if kind == "a" else f"{kind} {major}:{minor} {rule.access or 'rwm'}"
            _write(os.path.join(paths["devices"], "devices.allow" if rule.allow else "devices.deny"), text)


def _need_v2(path: str, controller: str, option: str) -> None:
    if not os.path.exists(os.path.join(path, f"{controller}.max")):
        raise CgroupError(f"cgroup v2: the {controller} controller is not enabled below "
                          f"{os.path.dirname(path)} (needed for {option})")


def _apply_v2(path: str, resources: Resources) -> None:
    mem = resources.memory
    if mem is not None and mem.limit is not None:
        _need_v2(path, "memory", "--memory")
        _write(os.path.join(path, "memory.max"), str(mem.limit))
        if mem.swap is not None and os.path.exists(os.path.join(path, "memory.swap.max")):
            _write(os.path.join(path, "memory.swap.max"), "max" if mem.swap < 0 else str(max(0, mem.swap - mem.limit)))
        elif mem.swap is not None and mem.swap > mem.limit:
            raise CgroupError("cgroup v2: memory.swap.max is missing (needed for --memory-swap)")
    if mem is not None and mem.reservation is not None:
        _need_v2(path, "memory", "--memory-reservation")
        _write(os.path.join(path, "memory.low"), str(mem.reservation))
    pids = resources.pids
    if pids is not None and pids.limit:
        _need_v2(path, "pids", "--pids-limit (4096 by default)")
        _write(os.path.join(path, "pids.max"), str(pids.limit) if pids.limit > 0 else "max")
    cpu = resources.cpu
    if cpu is not None and cpu.quota:
        _need_v2(path, "cpu", "--cpus")
        _write(os.path.join(path, "cpu.max"), f"{cpu.quota} {cpu.period or 100000}")
    if cpu is not None and cpu.shares:
        _need_v2(path, "cpu", "--cpu-shares")
        # runc's conversion of shares [2, 262144] to weight [1, 10000]
        _write(os.path.join(path, "cpu.weight"), str(1 + ((cpu.shares - 2) * 9999) // 262142))
    if cpu is not None and cpu.cpus:
        if not os.path.exists(os.path.join(path, "cpuset.cpus")):
            raise CgroupError(f"cgroup v2: the cpuset controller is not enabled below {os.path.dirname(path)} "
                              "(needed for --cpuset-cpus)")
        _write(os.path.join(path, "cpuset.cpus"), cpu.cpus)


def _mkdir(path: str, make: Callable[[str], None] = os.mkdir) -> None:
    """Make a container's cgroup directory with ``make`` (:func:`os.mkdir`, or :func:`os.makedirs` for
    a v1 hierarchy's ``pybuild`` parent too); one that exists is another container's: refused."""
    try:
        make(path)
    except FileExistsError:
        raise CgroupError(f"create cgroup {path}: already exists") from None
    except OSError as exc:
        raise CgroupError(f"create cgroup {path}: {exc.strerror}") from None


def _create_v2(path: str, resources: Resources) -> Cgroup:
    """Make the v2 cgroup ``path`` and write ``resources`` into it; removed again if a limit cannot be set."""
    _mkdir(path)
    cg = Cgroup("v2", (path,))
    try:
        _apply_v2(path, resources)
    except CgroupError:
        cg.destroy()
        raise
    return cg


def _v1_paths(container_id: str) -> dict[str, str]:
    """controller -> directory (co-mounted controllers share one directory)."""
    out: dict[str, str] = {}
    for ctrls in _own_paths():
        if not ctrls or ctrls.startswith("name="):
            continue
        mount = os.path.join(CGROUP_ROOT, ctrls)
        if not os.path.isdir(mount):
            continue
        names = ctrls.split(",")
        if not any(n in _V1_CONTROLLERS for n in names):
            continue
        path = os.path.join(mount, "pybuild", container_id)
        for n in names:
            out[n] = path
    return out


def _rootless() -> bool:
    from layers.store.location import is_rootless

    return is_rootless()


def refuse_rootless_limits(resources: Resources | None, why: str | None = None) -> None:
    """Raise :class:`CgroupError` when ``resources`` sets any limit: a rootless container without a
    delegated cgroup has no cgroup. ``why``: the reason (default: :func:`runner.cgdelegate.probe`'s)."""
    if resources is None:
        return
    asked = [flag for flag, part in (("--memory", resources.memory), ("--cpus/--cpu-*", resources.cpu),
                                     ("--pids-limit", resources.pids)) if part is not None and part.to_dict()]
    if asked:
        if why is None:
            from .cgdelegate import probe

            why = probe(CGROUP_ROOT).reason or "no cgroup v2 subtree is delegated to this user"
        raise CgroupError(f"rootless: {', '.join(asked)} cannot be honoured: {why}")


def check_rootless(resources: Resources | None) -> Delegation | None:
    """Refuse (:class:`CgroupError`, one line) the limits a rootless container cannot get: all of them
    without a delegated cgroup v2 subtree, else those whose controller is not delegated. Returns the
    :class:`runner.cgdelegate.Delegation` or None."""
    from . import cgdelegate

    found = cgdelegate.probe(CGROUP_ROOT)
    if found.delegation is None:
        refuse_rootless_limits(resources, found.reason)
    else:
        cgdelegate.refuse_undelegated(resources, found.delegation)
    return found.delegation


def _create_rootless(container_id: str, resources: Resources) -> Cgroup:
    """A rootless container's cgroup below the user's delegated subtree (v2), or none (then no limit)."""
    from . import cgdelegate

    d = check_rootless(resources)
    if d is None:
        return Cgroup("none", ())
    cgdelegate.enable(d, resources)
    return _create_v2(d.leaf(container_id), resources)


def create(container_id: str, resources: Resources | None = None) -> Cgroup:
    """Create the container's cgroup with the spec's ``linux.resources`` applied (rootless: below the
    delegated subtree, or none and limits refused)."""
    resources = resources or Resources()
    if _rootless():
        return _create_rootless(container_id, resources)
    version = detect_version()
    if version == "v2":
        # under the root, as Docker's cgroupfs driver does: a non-root cgroup that holds processes
        # (our own, on a systemd host) cannot hand controllers down ("no internal processes")
        parent = os.path.join(CGROUP_ROOT, "pybuild")
        cpus = resources.cpu is not None and bool(resources.cpu.cpus)      # --cpuset-cpus
        path = os.path.join(parent, container_id)
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise CgroupError(f"create cgroup {parent}: {exc.strerror}") from None
        for level in (CGROUP_ROOT, parent):
            with open(os.path.join(level, "cgroup.controllers")) as f:
                available = f.read().split()
            wanted = [c for c in ("memory", "pids", "cpu") + (("cpuset",) if cpus else ()) if c in available]
            if wanted:
                _write(os.path.join(level, "cgroup.subtree_control"), " ".join("+" + c for c in wanted))
        return _create_v2(path, resources)
    by_ctrl = _v1_paths(container_id)
    if "memory" not in by_ctrl or "pids" not in by_ctrl:
        raise CgroupError("cgroup v1: the memory and pids controllers are not mounted under /sys/fs/cgroup")
    unique = tuple(dict.fromkeys(by_ctrl.values()))
    created: list[str] = []
    try:
        for p in unique:
            _mkdir(p, os.makedirs)
            created.append(p)
        _apply_v1(by_ctrl, resources)
    except CgroupError:
        # only what this call made: an existing cgroup of the same id is another container's
        Cgroup("v1", tuple(created)).destroy()
        raise
    return Cgroup("v1", unique)


def open_existing(container_id: str) -> Cgroup | None:
    """The cgroup of ``container_id`` if any of its directories exist (for cleanup after a crash)."""
    if _rootless():
        from .cgdelegate import find_leaf

        if detect_version() != "v2":
            return None
        path = find_leaf(container_id, CGROUP_ROOT)
        return Cgroup("v2", (path,)) if path else None
    if detect_version() == "v2":
        path = os.path.join(CGROUP_ROOT, "pybuild", container_id)
        return Cgroup("v2", (path,)) if os.path.isdir(path) else None
    paths = tuple(p for p in dict.fromkeys(_v1_paths(container_id).values()) if os.path.isdir(p))
    return Cgroup("v1", paths) if paths else None


def update(cg: Cgroup, resources: Resources) -> None:
    """Apply ``resources`` to a live container's cgroup (``pybuild update``): only the limits it sets.

    On v1 a memory limit above the current memory+swap limit needs that one raised first."""
    if not cg.paths:
        refuse_rootless_limits(resources)
        return
    if cg.version == "v2" and _rootless():
        check_rootless(resources)
    if cg.version == "v2":
        cpu = resources.cpu
        if cpu is not None and cpu.quota == -1:      # no quota: v2 spells it "max"
            _need_v2(cg.paths[0], "cpu", "--cpu-quota")
            _write(os.path.join(cg.paths[0], "cpu.max"), f"max {cpu.period or 100000}")
            resources = Resources(memory=resources.memory, pids=resources.pids)
        _apply_v2(cg.paths[0], resources)
        return
    mem = resources.memory
    base = cg.path_for("memory")
    if base and mem is not None and mem.limit is not None and mem.swap is not None:
        memsw = os.path.join(base, "memory.memsw.limit_in_bytes")
        if os.path.exists(memsw):
            with open(memsw) as f:
                if int(f.read()) < mem.swap:
                    _write(memsw, str(mem.swap))
    paths = {c: p for c in _V1_CONTROLLERS if (p := cg.path_for(c))}
    _apply_v1(paths, Resources(memory=resources.memory, cpu=resources.cpu, pids=resources.pids))
