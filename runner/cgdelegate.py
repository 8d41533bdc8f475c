"""Rootless cgroups on pure cgroup v2: the subtree systemd delegates to the user, as podman/runc use it.

systemd's user manager runs in ``/user.slice/user-UID.slice/user@UID.service``, a cgroup chowned to the
user (with its ``cgroup.procs``, ``cgroup.subtree_control``, ``cgroup.threads``), whose
``cgroup.controllers`` lists what ``Delegate=`` hands down (systemd's default for user@.service is
``cpu memory pids``; ``io`` and ``cpuset`` take a drop-in). The user's processes started from it (a
desktop terminal, ``systemd-run --user``) sit in cgroups below it, also the user's; an ssh login's
``session-N.scope`` is not delegated.

:func:`probe` finds that subtree from the caller's own cgroup (the ``0::`` line of ``/proc/self/cgroup``:
the rootless user namespace and the pause process do not change it, and pybuild makes no cgroup
namespace of its own; inside someone else's cgroup namespace the path and the mount both start at that
namespace's root, so they still agree): the topmost ancestor of it, itself included, that the user owns.
A container goes in ``<delegated>/pybuild/<container id>``: ``pybuild`` holds no process, so controllers
can be enabled for its children ("no internal processes"), and a process moves there from the user's
own cgroup because the common ancestor is the user's too (the kernel's rule for moving processes).

:func:`needed` says which controller each limit needs; :func:`refuse_undelegated` refuses the ones the
delegation lacks, naming the controller and the systemd drop-in that delegates it. Every function takes
the cgroupfs root and the ``/proc/self/cgroup`` path, so the decisions can be checked on a directory
tree shaped like a delegated cgroupfs.
"""

from __future__ import annotations

import os

from layers.value import frozen

from .errors import CgroupError
from .ocispec import Resources

__all__ = ["Delegation", "Probe", "probe", "find_leaf", "needed", "refuse_undelegated", "enable", "DROPIN", "PARENT"]

#: where an administrator asks systemd to delegate more controllers to every user's manager
DROPIN = "/etc/systemd/system/user@.service.d/delegate.conf"
#: the pybuild-owned cgroup below the delegated one that holds one child cgroup per container
PARENT = "pybuild"
#: controllers enabled for containers when delegated, whether or not a limit asks (stats, and the
#: default pids limit); ``cpuset`` only when ``--cpuset-cpus`` asks, as root's v2 path does
_BASE_CONTROLLERS = ("memory", "pids", "cpu")


@frozen
class Delegation:
    """A cgroup v2 subtree the user may manage: ``root`` (absolute directory) and the ``controllers`` the
    kernel offers below it (its ``cgroup.controllers``)."""

    root: str
    controllers: frozenset[str]

    @property
    def parent(self) -> str:
        return os.path.join(self.root, PARENT)

    def leaf(self, container_id: str) -> str:
        """The container's cgroup directory."""
        return os.path.join(self.parent, container_id)


@frozen
class Probe:
    """:func:`probe`'s answer: a :class:`Delegation`, or None and ``reason`` (why limits cannot work)."""

    delegation: Delegation | None
    reason: str = ""


def _own_v2_path(proc_cgroup: str) -> str | None:
    try:
        with open(proc_cgroup) as f:
            for line in f:
                if line.startswith("0::"):
                    return line.rstrip("\n")[3:]
    except FileNotFoundError:
        return None
    return None


def _owned(path: str, uid: int) -> bool:
    """``path`` and the files that make a cgroup manageable (``cgroup.procs``, ``cgroup.subtree_control``)
    belong to ``uid``, as systemd chowns a delegated cgroup."""
    try:
        return all(os.stat(os.path.join(path, name)).st_uid == uid
                   for name in ("", "cgroup.procs", "cgroup.subtree_control"))
    except OSError:
        return False


def _read_set(path: str) -> frozenset[str]:
    try:
        with open(path) as f:
            return frozenset(f.read().split())
    except FileNotFoundError:
        return frozenset()


def probe(cgroup_root: str = "/sys/fs/cgroup", proc_cgroup: str = "/proc/self/cgroup",
          uid: int | None = None, host_uid: int | None = None) -> Probe:
    """The cgroup v2 subtree delegated to this user (``uid``: its id as this process sees it, default
    ``geteuid()``: 0 inside the rootless namespace, where the user's files read as owned by 0;
    ``host_uid``: its id on the host, default :func:`layers.store.location.host_uid`), or why there is none."""
    if not os.path.exists(os.path.join(cgroup_root, "cgroup.controllers")):
        return Probe(None, "this host has cgroup v1, where only root can create cgroups")
    own = _own_v2_path(proc_cgroup)
    if own is None or own.startswith("/.."):
        return Probe(None, "this process's cgroup v2 path is unknown (outside its cgroup namespace)")
    uid = os.geteuid() if uid is None else uid
    parts = [p for p in own.split("/") if p]
    for depth in range(len(parts) + 1):
        d = os.path.join(cgroup_root, *parts[:depth])
        if _owned(d, uid):
            return Probe(Delegation(d, _read_set(os.path.join(d, "cgroup.controllers"))))
    return Probe(None, f"cgroup v2, but this process's cgroup {own} is not delegated to this user; "
                       f"{_session_hint(cgroup_root, uid, host_uid)}")


def _manager(cgroup_root: str, hu: int | None) -> str:
    """systemd's cgroup of the user's manager, ``user@UID.service`` (UID: the id on the host)."""
    if hu is None:
        from layers.store.location import host_uid

        hu = host_uid()
    return os.path.join(cgroup_root, "user.slice", f"user-{hu}.slice", f"user@{hu}.service")


def find_leaf(container_id: str, cgroup_root: str = "/sys/fs/cgroup", proc_cgroup: str = "/proc/self/cgroup",
              uid: int | None = None, host_uid: int | None = None) -> str | None:
    """The existing cgroup of ``container_id``: below the caller's delegated subtree, else below the
    user manager's (``rm`` from an ssh login of a container run from the desktop), else None."""
    uid = os.geteuid() if uid is None else uid
    d = probe(cgroup_root, proc_cgroup, uid, host_uid).delegation
    manager = _manager(cgroup_root, host_uid)
    for root in ((d.root,) if d is not None else ()) + (manager,):
        leaf = os.path.join(root, PARENT, container_id)
        if os.path.isdir(leaf) and _owned(root, uid):
            return leaf
    return None


def _session_hint(cgroup_root: str, uid: int, hu: int | None) -> str:
    """What to do when the caller's cgroup is not the user's: a login session (``session-N.scope``) is
    not delegated, the user manager's unit is."""
    if _owned(_manager(cgroup_root, hu), uid):
        return "run pybuild inside the user's systemd manager, e.g. `systemd-run --user --scope pybuild ...`"
    return "systemd delegates a subtree with Delegate= (user@.service does by default; enable lingering or log in)"


def needed(resources: Resources | None) -> tuple[tuple[str, str], ...]:
    """``(controller, option)`` for every limit ``resources`` sets, in option order."""
    if resources is None:
        return ()
    out: list[tuple[str, str]] = []
    mem, cpu, pids = resources.memory, resources.cpu, resources.pids
    if mem is not None:
        out += [("memory", opt) for opt, v in (("--memory", mem.limit), ("--memory-reservation", mem.reservation),
                                               ("--memory-swap", mem.swap)) if v is not None]
    if cpu is not None:
        out += [("cpu", opt) for opt, v in (("--cpus/--cpu-quota", cpu.quota), ("--cpu-shares", cpu.shares)) if v]
        if cpu.cpus:
            out.append(("cpuset", "--cpuset-cpus"))
    if pids is not None and pids.limit:
        out.append(("pids", "--pids-limit"))
    return tuple(out)


def refuse_undelegated(resources: Resources | None, delegation: Delegation) -> None:
    """Raise :class:`CgroupError` (one line) when a limit needs a controller ``delegation`` lacks: it names
    the options, the controllers, and the systemd drop-in that delegates them."""
    missing = [(c, opt) for c, opt in needed(resources) if c not in delegation.controllers]
    if not missing:
        return
    ctrls = sorted({c for c, _ in missing})
    opts = ", ".join(dict.fromkeys(opt for _, opt in missing))
    want = " ".join(sorted(delegation.controllers | set(ctrls) | {"cpu", "io", "memory", "pids"}))
    raise CgroupError(f"rootless: {opts} need{'s' if len(missing) == 1 else ''} the "
                      f"{' and '.join(ctrls)} cgroup controller{'s' if len(ctrls) > 1 else ''}, which systemd does "
                      f"not delegate to this user (delegated below {delegation.root}: "
                      f"{' '.join(sorted(delegation.controllers)) or 'none'}); to delegate it, put "
                      f"'Delegate={want}' under [Service] in {DROPIN}, run `systemctl daemon-reload` and log in again")


def _enable_at(level: str, controllers: list[str], required: frozenset[str]) -> None:
    """Add ``controllers`` to ``level``'s ``cgroup.subtree_control`` (the ones it lacks). A failure is an
    error only for a ``required`` one (a limit needs it); the others are for stats and may stay off."""
    missing = [c for c in controllers if c not in _read_set(os.path.join(level, "cgroup.subtree_control"))]
    needs = [c for c in missing if c in required]
    for group in (missing, needs):      # all at once; if that fails, the ones a limit needs
        if not group:
            return
        try:
            with open(os.path.join(level, "cgroup.subtree_control"), "w") as f:
                f.write(" ".join("+" + c for c in group))
            return
        except OSError as exc:
            error = exc
    why = (": it holds processes (cgroup v2 lets only a cgroup without processes hand controllers down); "
           "run pybuild from a child cgroup of it" if error.errno == 16 else f": {error.strerror}")
    raise CgroupError(f"rootless cgroup v2: cannot enable {' '.join(needs)} below {level}{why}")


def enable(delegation: Delegation, resources: Resources | None) -> list[str]:
    """Make ``<root>/pybuild`` and enable, at the root and there, the controllers containers get: the
    delegated ones of memory, pids, cpu (cpuset when ``--cpuset-cpus`` asks). Returns them."""
    asked = {c for c, _ in needed(resources)}
    wanted = [c for c in _BASE_CONTROLLERS + (("cpuset",) if "cpuset" in asked else ())
              if c in delegation.controllers]
    try:
        os.makedirs(delegation.parent, exist_ok=True)
    except OSError as exc:
        raise CgroupError(f"create cgroup {delegation.parent}: {exc.strerror}") from None
    for level in (delegation.root, delegation.parent):
        _enable_at(level, wanted, frozenset(asked))
    return wanted
