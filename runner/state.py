"""The container store: records on disk, live state, locks, and every state move.

Layout (ARCHITECTURE.md "On-disk layout")::

    <root>/containers/.lock              global lock: name uniqueness, create, rename, remove
    <root>/containers/<id>/config.json   ContainerConfig (immutable after create, except the name)
    <root>/containers/<id>/state.json    persistent status (status, pid, exit code, times, restarts)
    <root>/containers/<id>/lock          per-container lock around every state move
    <root>/containers/<id>/container.log JSON-lines log (+ container.log.1 ... after rotation)
    <state_dir>/<id>/shim.json           live state (:mod:`runner.livestate`): supervisor pid + start time
    <state_dir>/<id>/stop-requested      live state: the user stopped it, the shim must not restart it

A record's image is kept by the store's GC through a registered root, ``roots/containers/<id>.json``
(:mod:`layers.store.roots`): registered before the record becomes visible, dropped after it is gone.

The persistent status survives a reboot; the live state does not. :func:`ContainerStore.status` reconciles
the two: a record that says ``running``/``paused`` but whose shim is gone reads as ``exited`` (with the
recorded exit code, or 255 when none was recorded), the way Docker shows containers after a host restart.

Every status change goes through :meth:`ContainerStore.move` (checked against the state machine of
:mod:`runner.records`, under the container's lock); besides it only :meth:`ContainerStore.record_health`
(the shim's health probes, under the same lock, never changing the status) writes ``state.json``. Every write
is atomic (temp file in the same dir, fsync, rename, fsync dir). Each change Docker reports (create,
start, pause, unpause, die, rename, destroy, health_status) is appended to the event journal
(:mod:`layers.events`, stdlib only) by :meth:`ContainerStore.event`; a move's event before its state is
written. Imports are stdlib only: the shim imports this module and lives as long as its container.
"""

from __future__ import annotations

import _thread
import fcntl
import os
import time
from contextlib import contextmanager
from dataclasses import replace
from collections.abc import Iterator, Sequence

from layers.atomic import write_atomic
from layers.errors import InvalidInput, PybuildError

from .errors import AmbiguousId, ContainerNotFound, InvalidState, NameInUse, StateConflict
from .livestate import LiveState, pid_in_container, wait_exit
from .records import (CREATED, DEAD, EXITED, PAUSED, RESTARTING, RUNNING, STATUSES, ContainerConfig, ContainerState,
                      NetworkAttachment, check_transition, is_full_id, is_id_prefix, new_id, rfc3339, validate_name)
TYPE_CHECKING = False   # the health records (annotations here) are built only for containers with a check
if TYPE_CHECKING:
    from .healthrecords import Health, HealthConfig, HealthResult

#: The owner name of the containers' registered roots in the image store (:mod:`layers.store.roots`).
ROOT_OWNER = "containers"

__all__ = [
    "CREATED", "RUNNING", "PAUSED", "EXITED", "RESTARTING", "DEAD", "STATUSES",
    "ContainerNotFound", "NameInUse", "AmbiguousId", "InvalidState", "StateConflict",
    "ContainerConfig", "ContainerState", "ContainerStore", "NetworkAttachment", "check_transition", "new_id", "rfc3339",
    "validate_name", "pid_in_container",
]


def pause_point(step: str) -> None:
    """The crash-matrix test hook (``layers.store.pause``), imported only when a test sets
    ``PYBUILD_TEST_PAUSE_AT``: the shim's imports stay as they are."""
    if os.environ.get("PYBUILD_TEST_PAUSE_AT") == step:
        from layers.store.pause import pause_point as pause

        pause(step)


def _rmtree(path: str, *, ignore_errors: bool) -> None:
    from layers.fstree import remove_tree      # here: the shim never removes records

    remove_tree(path, ignore_errors=ignore_errors)


@contextmanager
def flock(path: str, *, shared: bool = False) -> Iterator[None]:
    """Hold an ``flock`` on ``path`` (created if missing) for the duration of the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _move_action(current: str, wanted: str) -> str | None:
    """Docker's event for a status move (None: the move is not one Docker reports)."""
    if wanted == RUNNING:
        return "unpause" if current == PAUSED else "start"
    if wanted == PAUSED:
        return "pause"
    if wanted == EXITED and current in (RUNNING, PAUSED):
        return "die"
    return None


class ContainerStore:
    """Container records under ``<root>/containers`` and live state under ``<state_dir>``."""

    def __init__(self, root: str, state_dir: str) -> None:
        self.root = os.path.abspath(root)
        self.state_dir = os.path.abspath(state_dir)
        self.base = os.path.join(self.root, "containers")
        self.live_state = LiveState(self.state_dir)
        self._held: dict[tuple[str, int], int] = {}     # (container, thread) -> depth of lock()

    # ---- paths
    def dir(self, cid: str) -> str:
        return os.path.join(self.base, cid)

    def live_dir(self, cid: str) -> str:
        return self.live_state.dir(cid)

    def log_path(self, cid: str) -> str:
        return os.path.join(self.dir(cid), "container.log")

    def _ensure_base(self) -> None:
        os.makedirs(self.base, mode=0o700, exist_ok=True)

    @contextmanager
    def global_lock(self) -> Iterator[None]:
        self._ensure_base()
        with flock(os.path.join(self.base, ".lock")):
            yield

    @contextmanager
    def lock(self, cid: str) -> Iterator[None]:
        """Serialise state moves of one container (held briefly; never across a wait).

        Re-entrant within a thread, so :meth:`move` can take it inside a block that holds it."""
        key = (cid, _thread.get_ident())
        if key in self._held:
            self._held[key] += 1
            try:
                yield
            finally:
                self._held[key] -= 1
            return
        try:
            fd = os.open(os.path.join(self.dir(cid), "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:           # removed meanwhile (rm, --rm, or reaped by another pybuild)
            raise ContainerNotFound(f"no such container: {cid}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._held[key] = 1
            yield
        finally:
            self._held.pop(key, None)
            os.close(fd)

    # ---- listing and lookup
    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.base)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if is_full_id(n)
                      and os.path.exists(os.path.join(self.base, n, "config.json")))

    def load_config(self, cid: str) -> ContainerConfig:
        path = os.path.join(self.dir(cid), "config.json")
        try:
            with open(path, "rb") as f:
                return ContainerConfig.from_json(f.read(), path)
        except FileNotFoundError:
            raise ContainerNotFound(f"no such container: {cid}") from None

    def configs(self) -> list[ContainerConfig]:
        out = []
        for cid in self.ids():
            try:
                out.append(self.load_config(cid))
            except ContainerNotFound:
                continue            # removed while we listed
        return out

    def resolve(self, ref: str) -> ContainerConfig:
        """Find a container by exact name, full id, or unique id prefix (Docker's order).

        A full id is one file read (no name can look like one: :func:`validate_name`); anything else
        reads every record, so resolve many refs with :meth:`resolve_many`."""
        if is_full_id(ref):
            try:
                return self.load_config(ref)
            except ContainerNotFound:
                raise ContainerNotFound(f"no such container: {ref}") from None
        result = self.resolve_many([ref])[0]
        if isinstance(result, PybuildError):
            raise result
        return result

    def resolve_many(self, refs: Sequence[str]) -> list[ContainerConfig | PybuildError]:
        """:meth:`resolve` for each ref, reading the records once: per ref its config, or the error
        (:class:`InvalidInput`, :class:`ContainerNotFound`, :class:`AmbiguousId`) resolve would raise."""
        configs = self.configs() if refs else []
        by_key = {c.id: c for c in configs} | {c.name: c for c in configs}
        out: list[ContainerConfig | PybuildError] = []
        for ref in refs:
            if not ref:
                out.append(InvalidInput("container name or id must not be empty"))
            elif ref in by_key:
                out.append(by_key[ref])
            elif is_id_prefix(ref):
                hits = [c for c in configs if c.id.startswith(ref)]
                out.append(hits[0] if len(hits) == 1 else
                           AmbiguousId(f"container id prefix {ref!r} matches {len(hits)} containers: "
                                       f"give more characters") if hits else
                           ContainerNotFound(f"no such container: {ref}"))
            else:
                out.append(ContainerNotFound(f"no such container: {ref}"))
        return out

    # ---- create / rename / remove
    def create(self, config: ContainerConfig, *, supervisor: int | None = None) -> ContainerConfig:
        """Write a new record atomically; the name must be unused. Returns the config.

        ``supervisor``: the pid of the process that will run the container itself (a foreground
        ``pybuild run``), recorded as its ``shim.json`` before the record becomes visible, so that
        if it is killed at any point after, the record is known to be abandoned (see
        :func:`runner.lifecycle.reap_abandoned`)."""
        validate_name(config.name)
        with self.global_lock():
            for other in self.configs():
                if other.name == config.name:
                    raise NameInUse(f"container name {config.name!r} is already in use by container "
                                    f"{other.short_id}: remove or rename it first")
            for name in os.listdir(self.base):  # creates hold the global lock: any other one was killed
                if name.endswith(".creating") and name.startswith("."):
                    _rmtree(os.path.join(self.base, name), ignore_errors=True)
                    self._roots().drop(ROOT_OWNER, name[1:-len(".creating")])
            tmp = os.path.join(self.base, f".{config.id}.creating")
            os.makedirs(tmp, mode=0o700)
            try:
                write_atomic(os.path.join(tmp, "state.json"), ContainerState().to_json())   # the first state
                write_atomic(os.path.join(tmp, "config.json"), config.to_json())
                pause_point("run-create-record")  # a test hook: the record is written, not yet visible
                self._keep_image(config)          # the image's root, before the record is visible
                if supervisor is not None:
                    self.write_shim(config.id, supervisor)
                os.rename(tmp, self.dir(config.id))
            except BaseException:
                _rmtree(tmp, ignore_errors=True)
                self._roots().drop(ROOT_OWNER, config.id)
                raise
        self.event(config, "create")
        return config

    def _roots(self):
        from layers.store.roots import Roots      # here: only create and remove need the store's roots

        return Roots(self.root)

    def _keep_image(self, config: ContainerConfig) -> None:
        """Register the record's image as a store root, so GC keeps it while the record exists."""
        if config.image_id.startswith("sha256:"):
            from layers.digest import Digest

            self._roots().put(ROOT_OWNER, config.id, docs=[Digest.parse(config.image_id)])

    def rename(self, cid: str, new_name: str) -> ContainerConfig:
        validate_name(new_name)
        with self.global_lock():
            for other in self.configs():
                if other.name == new_name and other.id != cid:
                    raise NameInUse(f"container name {new_name!r} is already in use by container "
                                    f"{other.short_id}")
            old = self.load_config(cid)
            cfg = replace(old, name=new_name)
            write_atomic(os.path.join(self.dir(cid), "config.json"), cfg.to_json())
        self.event(cfg, "rename", oldName="/" + old.name)
        return cfg

    def update_config(self, config: ContainerConfig) -> ContainerConfig:
        """Rewrite a record's config (after network setup); the name is kept as on disk."""
        with self.global_lock():
            cur = self.load_config(config.id)
            config = replace(config, name=cur.name)
            write_atomic(os.path.join(self.dir(config.id), "config.json"), config.to_json())
        return config

    def remove(self, cid: str) -> None:
        """Delete the record and the live dir. The caller has made sure nothing runs."""
        with self.global_lock():
            self._drop_half_removed()
            d = self.dir(cid)
            if not os.path.isdir(d):
                return
            try:
                gone_cfg = self.load_config(cid)
            except PybuildError:
                gone_cfg = None
            # rename first so a half-removed record is never listed
            gone = os.path.join(self.base, f".{cid}.removing")
            os.rename(d, gone)
            _rmtree(gone, ignore_errors=False)
            _rmtree(self.live_dir(cid), ignore_errors=True)
            self._roots().drop(ROOT_OWNER, cid)
        self.event(gone_cfg or cid, "destroy")

    def _drop_half_removed(self) -> None:
        """Removals run under the global lock (held by the caller): a ``.<id>.removing`` dir seen now
        is what an ``rm`` killed between its rename and its rmtree left behind."""
        for name in os.listdir(self.base):
            if name.endswith(".removing") and name.startswith("."):
                _rmtree(os.path.join(self.base, name), ignore_errors=True)
                self._roots().drop(ROOT_OWNER, name[1:-len(".removing")])

    def collect_half_removed(self) -> None:
        """Drop what a killed ``rm`` left (cheap when there is nothing: one listdir)."""
        try:
            if not any(n.endswith(".removing") for n in os.listdir(self.base)):
                return
        except FileNotFoundError:
            return
        with self.global_lock():
            self._drop_half_removed()

    # ---- state
    def read_state(self, cid: str) -> ContainerState:
        path = os.path.join(self.dir(cid), "state.json")
        try:
            with open(path, "rb") as f:
                return ContainerState.from_json(f.read(), path)
        except FileNotFoundError:
            raise ContainerNotFound(f"no such container: {cid}") from None

    def _write_state(self, cid: str, state: ContainerState) -> None:
        write_atomic(os.path.join(self.dir(cid), "state.json"), state.to_json())

    def move(self, cid: str, name: str, wanted: str, **changes) -> ContainerState:
        """The one way a container's status changes: ``current -> wanted`` checked by the state
        machine (:data:`runner.records.TRANSITIONS`; an invalid move raises :class:`InvalidState`
        naming both), with ``changes`` to the other fields, written atomically under the container's
        lock (taken here if this thread does not hold it). Returns the new state."""
        with self.lock(cid):
            cur = self.read_state(cid)
            check_transition(name, cur.status, wanted)
            new = replace(cur, status=wanted, **changes)
            # journaled before the state is written: whoever sees the new state finds its event
            action = _move_action(cur.status, wanted)
            if action == "die":
                if new.oom_killed:
                    self.event(cid, "oom")
                self.event(cid, action, exitCode=new.exit_code)
            elif action:
                self.event(cid, action)
            self._write_state(cid, new)
            return new

    def record_health(self, cid: str, result: HealthResult, check: HealthConfig) -> Health | None:
        """Add a probe's result to a live container's health, under its lock (the shim's one write
        besides :meth:`move`); None, and nothing written, when it no longer runs or has no health."""
        with self.lock(cid):
            cur = self.read_state(cid)
            if not cur.live or cur.health is None:
                return None
            health = cur.health.after(result, check, cur.started_at)
            self._write_state(cid, replace(cur, health=health))
        if health.status != cur.health.status:
            self.event(cid, f"health_status: {health.status}")
        return health

    # ---- events
    def event(self, container: ContainerConfig | str, action: str, **attributes: object) -> None:
        """Record a container event in the journal (:mod:`layers.events`) with Docker's attributes:
        the container's labels, ``image`` and ``name``, then ``attributes``. Never raises."""
        from layers import events as _events     # here: listing containers appends no event

        cfg = container
        if isinstance(cfg, str):
            try:
                cfg = self.load_config(cfg)
            except PybuildError:
                _events.emit(self.root, "container", action, container, **attributes)
                return
        attrs = {str(k): v for k, v in (cfg.labels or {}).items()}
        attrs.update(image=cfg.image, name=cfg.name, **attributes)
        _events.emit(self.root, "container", action, cfg.id, **attrs)

    # ---- live state (the shim): :class:`runner.livestate.LiveState`
    def write_shim(self, cid: str, pid: int) -> None:
        self.live_state.write_shim(cid, pid)

    def shim_pid(self, cid: str) -> int | None:
        return self.live_state.shim_pid(cid)

    def supervisor_gone(self, cid: str) -> bool:
        return self.live_state.supervisor_gone(cid)

    def clear_shim(self, cid: str) -> None:
        self.live_state.clear_shim(cid)

    def stop_requested(self, cid: str) -> bool:
        return self.live_state.stop_requested(cid)

    def request_stop(self, cid: str, flag: bool = True) -> None:
        self.live_state.request_stop(cid, flag)

    def wait_shim_gone(self, cid: str, timeout: float = 10.0) -> None:
        """An exited container's shim may still be releasing its network and mounts (``stop`` returns
        on the exit record): give it up to ``timeout`` seconds to finish."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if self.status(cid).supervised or (pid := self.shim_pid(cid)) is None:
                return
            wait_exit(pid, min(left, 1.0))

    def status(self, cid: str) -> ContainerState:
        """The persistent state, reconciled with reality.

        A live status needs a live shim. Without one (the shim was killed, or a reboot took ``/run``)
        the container reads as ``running`` while its PID 1 is still alive in its own cgroup (it can be
        stopped and removed, but nothing records its output any more), else as ``exited`` with code 255.
        """
        st = self.read_state(cid)
        if st.supervised and self.shim_pid(cid) is None:
            if st.live and st.pid > 0 and pid_in_container(st.pid, cid):
                return replace(st, shim_pid=0)
            code = st.exit_code if st.finished_at and st.status == RESTARTING else 255
            st = replace(st, status=EXITED, pid=0, exit_code=code,
                         finished_at=st.finished_at or time.time(), shim_pid=0)
        return st
