"""Rootless mode: the user namespace every rootless pybuild invocation runs in.

:func:`enter` is called once, early, by the CLI (the click group and ``fastps``). As root on the
host it does nothing and returns a :class:`Mode` with ``rootless=False``. As any other user it
joins (creating if needed) the per-user pause process's user and mount namespaces
(:mod:`.pause`), after which the process is uid 0 in a namespace that maps 0 to the user and
1..N to the user's subordinate ranges (:mod:`.subids`, written by the :mod:`.idmap` adapter).
Children (the shim, the sandbox) inherit the namespaces; :func:`enter` in them is a no-op.

With no subordinate ranges the map is the single id ``0 -> uid``; the first time (a marker file in
the state dir) the returned ``Mode.notice`` says what that limits and how to add ranges, for the
CLI to print.
"""

from __future__ import annotations

import os
from dataclasses import field

from layers.value import frozen

from .subids import IdRange, subordinate_ranges

__all__ = ["Mode", "IdRange", "enter", "current", "SINGLE_ID_NOTE"]

SINGLE_ID_NOTE = ("pybuild: no subordinate ids for {user} in /etc/subuid and /etc/subgid: only one id (0 in a "
                  "container, {uid} on the host) is mapped, so images with files owned by other users cannot be "
                  "extracted. As root, add ranges: usermod --add-subuids 100000-165535 --add-subgids "
                  "100000-165535 {user}")


@frozen
class Mode:
    """Root or rootless, and for rootless the host ids and subordinate ranges in use."""

    rootless: bool
    uid: int = 0
    gid: int = 0
    user: str = "root"
    uids: tuple[IdRange, ...] = ()
    gids: tuple[IdRange, ...] = ()
    pause_pid: int | None = None
    notice: str | None = field(default=None, compare=False)  # to print once (the CLI prints it)

    @property
    def single_id(self) -> bool:
        return self.rootless and not (self.uids and self.gids)


def _user(uid: int) -> str | None:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _ranges(uid: int, gid: int) -> tuple[str, tuple[IdRange, ...], tuple[IdRange, ...]]:
    name = _user(uid)
    return (name or str(uid), subordinate_ranges("/etc/subuid", name, uid),
            subordinate_ranges("/etc/subgid", name, uid))


def _host_gid() -> int:
    from layers.store import location

    gid = os.getegid()
    if not location.in_user_namespace():
        return gid
    for inside, outside, count in location.read_id_map("/proc/self/gid_map"):
        if inside <= gid < inside + count:
            return outside + gid - inside
    return gid


_current: Mode | None = None


def current() -> Mode:
    """The mode of this process (without joining anything): what :func:`enter` returned, or, in a
    child that inherited the namespace, the same facts read from ``/proc/self``."""
    from layers.store import location  # lazily: the shim imports this package and stays lean

    global _current
    if _current is None:
        if not location.is_rootless():
            _current = Mode(False)
        else:
            uid, gid = location.host_uid(), _host_gid()
            user, uids, gids = _ranges(uid, gid)
            mapped = location.read_id_map()
            if len(mapped) == 1:  # a single-id map in force, whatever the files say now
                uids, gids = (), ()
            _current = Mode(True, uid, gid, user, uids, gids)
    return _current


def enter(state_dir: str) -> Mode:
    """Join (creating if absent or stale) this user's rootless namespaces; a no-op for root and for
    a process already inside them. ``state_dir`` holds the pause pid file and lock."""
    from layers.store import location  # lazily: the shim imports this package and stays lean

    global _current
    if not location.is_rootless():
        return current()
    if location.in_user_namespace() and _has_sys_admin():
        # inside ours already (a child of pybuild). A pod's own user namespace (hostUsers: false) gives
        # uid 1000 no capabilities there: pybuild makes its namespace inside it, as on a host
        return current()
    from . import idmap, pause

    uid, gid = os.geteuid(), os.getegid()
    user, uids, gids = _ranges(uid, gid)
    if not (uids and gids):
        uids, gids = (), ()
    state = location.private_dir(state_dir)
    pid, _ = pause.join_or_create(state, lambda p: idmap.write_maps(p, uid, gid, uids, gids))
    location.in_user_namespace.cache_clear()
    location.host_uid.cache_clear()
    _current = Mode(True, uid, gid, user, uids, gids, pid)
    if len(location.read_id_map()) == 1:
        note = SINGLE_ID_NOTE.format(user=user, uid=uid) if _first_time(state) else None
        _current = Mode(True, uid, gid, user, (), (), pid, note)
    return _current


def _has_sys_admin() -> bool:
    """Whether this process holds CAP_SYS_ADMIN (effective) in its user namespace."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> 21 & 1)
    except OSError:
        pass
    return False


def _first_time(state: str) -> bool:
    """True once per state dir: creates the marker ``userns/single-id-noted``."""
    try:
        os.close(os.open(os.path.join(state, "userns", "single-id-noted"), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         0o600))
    except FileExistsError:
        return False
    except OSError:
        return True
    return True
