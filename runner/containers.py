"""Container lifecycle operations: the library under ``pybuild run -d``, ``ps``, ``stop``, ``rm``...

Every function takes a :class:`runner.state.ContainerStore` and a container reference (name, full
id or unique id prefix). State moves go through the state machine in :mod:`runner.state`; an
operation that does not fit the current state raises :class:`runner.state.InvalidState` with a
message such as ``container web1 is not running``.

Signals go to the container's PID 1 as seen from the host (``state.pid``, recorded by the shim),
and only while that pid is in the container's cgroup. ``stop`` writes the ``stop-requested`` marker
first so the shim does not restart what the user stopped, sends the stop signal, waits, then
SIGKILLs; the shim records the exit. Pause/unpause, ``top`` and ``stats`` read PID 1's cgroups
(:mod:`runner.cgroupview`).
"""

from __future__ import annotations

import contextlib
import os
import signal as _signal
import time
from dataclasses import dataclass, replace

from layers.errors import InvalidInput, PybuildError

from . import state as st
from .errors import RuntimeFailure
from .state import ContainerConfig, ContainerState, ContainerStore, StateConflict, pause_point

__all__ = [
    "create", "start", "stop", "kill", "remove", "pause", "unpause", "restart", "wait", "inspect",
    "list_containers", "top", "stats", "rename", "prune", "parse_signal", "release_resources", "reap_abandoned",
    "prepare_volumes",
    "ContainerInfo", "Stats", "WaitTimeout",
]


@dataclass(frozen=True)
class ContainerInfo:
    config: ContainerConfig
    state: ContainerState


def parse_signal(text: str | int) -> int:
    """``SIGTERM``, ``TERM``, ``term`` or ``15`` -> 15; raise InvalidInput for anything else."""
    if isinstance(text, int):
        return text
    t = str(text).strip().upper()
    if t.isdigit():
        n = int(t)
        if 0 < n < 65:
            return n
    else:
        name = t if t.startswith("SIG") else "SIG" + t
        sig = getattr(_signal.Signals, name, None) if name in _signal.Signals.__members__ else None
        if sig is not None:
            return int(sig)
    raise InvalidInput(f"invalid signal {text!r}: use a name such as SIGTERM or a number")


# ---------------------------------------------------------------------------------------------
# create / start

def create(store: ContainerStore, config: ContainerConfig, *, supervisor: int | None = None) -> ContainerConfig:
    """Record a new container in state ``created``. ``config.id`` must be fresh (see :func:`state.new_id`)."""
    from .restart import parse_restart_policy

    parse_restart_policy(config.restart_policy)      # reject a bad policy before anything is written
    if config.auto_remove and config.restart_policy not in ("no", ""):
        raise InvalidInput("--rm and --restart cannot be combined: a removed container cannot restart")
    return store.create(config, supervisor=supervisor)


def start(store: ContainerStore, ref: str, *, shim=None) -> ContainerInfo:
    """Start a created or exited container under a fresh shim; return once its process runs.

    ``shim``: a :class:`runner.shim.PendingShim` started earlier (``run -d`` starts one before it
    looks up the image); without it one is started here."""
    from .shim import spawn

    cfg = store.resolve(ref)
    _wait_shim_gone(store, cfg.id)
    with store.lock(cfg.id):
        cur = store.status(cfg.id)
        if cur.status in (st.RUNNING, st.PAUSED):
            raise StateConflict(f"container {cfg.name} is already {cur.status}", container=cfg.name,
                               current=cur.status, wanted=st.RUNNING)
        if cur.restarting or store.shim_pid(cfg.id) is not None:
            raise StateConflict(f"container {cfg.name} is restarting: stop it first", container=cfg.name,
                               current=cur.status, wanted=st.RUNNING)
        st.check_transition(cfg.name, cur.status, st.RUNNING)
        raw = store.read_state(cfg.id)
        if raw.live or raw.restarting:           # its shim died (crash, reboot): clear what it held
            release_resources(store, cfg)
            _cleanup_sandbox(store, cfg)
        # a record left 'running' by a lost shim is settled as exited before the new run
        store.write_state(cfg.id, replace(cur, restarting=False, error=""))
        store.request_stop(cfg.id, False)
        # this process holds the container until the shim takes over (it records itself at its
        # start): if we are killed in between, reap_abandoned frees the network attached here
        store.write_shim(cfg.id, os.getpid())
        cfg = setup_network(store, cfg)
    from layers.store.pause import pause_point   # here: the shim must not import the store

    pause_point("run-start-shim")  # a test hook: created, network attached, no shim yet
    try:
        spawn(store.root, store.state_dir, cfg.id, shim=shim)
    except PybuildError:
        if store.shim_pid(cfg.id) in (None, os.getpid()):
            release_resources(store, cfg)
            if store.shim_pid(cfg.id) == os.getpid():
                store.clear_shim(cfg.id)
        raise
    return ContainerInfo(cfg, store.status(cfg.id))


def _wait_shim_gone(store: ContainerStore, cid: str, timeout: float = 10.0) -> None:
    """An exited container's shim may still be releasing its network and mounts: give it a moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cur = store.status(cid)
        if cur.live or cur.restarting or store.shim_pid(cid) is None:
            return
        time.sleep(0.02)


# ---------------------------------------------------------------------------------------------
# signals, stop, wait

class WaitTimeout(RuntimeFailure):
    """A container did not reach the wanted state in time."""


def _send_signal(cfg: ContainerConfig, pid: int, sig: int) -> None:
    """Signal the container's PID 1, but only if ``pid`` still is in the container's cgroup: a pid
    recorded before an unnoticed exit may have been reused by an unrelated host process."""
    if cfg.extra.get("launcher") != "host":
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                if cfg.id not in f.read():
                    return
        except FileNotFoundError:
            return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def kill(store: ContainerStore, ref: str, sig: str | int = "SIGKILL") -> ContainerConfig:
    """Send ``sig`` to the container's PID 1. The shim will not restart a container killed this way."""
    from . import cgroupview

    signum = parse_signal(sig)
    cfg = store.resolve(ref)
    with store.lock(cfg.id):
        cur = store.status(cfg.id)
        if cur.status not in (st.RUNNING, st.PAUSED) or cur.pid <= 0:
            raise StateConflict(f"container {cfg.name} is not running", current=cur.status)
        if signum in (_signal.SIGKILL, _signal.SIGTERM, _signal.SIGINT, _signal.SIGQUIT):
            store.request_stop(cfg.id)
        _send_signal(cfg, cur.pid, signum)
        if cur.status == st.PAUSED:
            cgroupview.freeze(cur.pid, False)       # a frozen task only takes the signal once thawed
    return cfg


def wait(store: ContainerStore, ref: str, *, timeout: float | None = None, poll: float = 0.02,
         for_shim: bool = True) -> int:
    """Block until the container is not running (and its shim is done); return its exit code."""
    cfg = store.resolve(ref)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            cur = store.status(cfg.id)
        except st.ContainerNotFound:
            return 0             # removed meanwhile (--rm, or rm by someone else)
        shim_alive = store.shim_pid(cfg.id) is not None
        if cur.status in (st.EXITED, st.CREATED, st.DEAD) and not cur.restarting and \
                (not for_shim or not shim_alive):
            return cur.exit_code
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeout(f"container {cfg.name}: still {cur.status} after {timeout:.0f}s")
        # sleep until the process this waits for ends (PID 1, else the shim) rather than a fixed poll;
        # at most 1 s at a time, so a state change without an exit (or a reused pid) is seen
        watched = cur.pid if cur.live and cur.pid > 0 else (shim_alive and store.shim_pid(cfg.id)) if for_shim else None
        remaining = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
        if watched and _wait_pid_exit(watched, remaining):
            time.sleep(0.002)           # it ended: its record follows within a few ms
        else:
            time.sleep(min(poll, remaining))


def _wait_pid_exit(pid: int, timeout: float | None) -> bool:
    """Block until process ``pid`` (any process, not only a child) has ended or ``timeout`` passed;
    True if it ended. A pidfd needs Linux 5.3; without one this returns False at once (the caller polls)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (AttributeError, OSError):
        return False
    try:
        return _wait_fd(fd, timeout)
    finally:
        os.close(fd)


def stop(store: ContainerStore, ref: str, timeout: float | None = None) -> ContainerConfig:
    """Send the stop signal, wait up to ``timeout`` (default: the container's), then SIGKILL; wait for exit.

    Stopping a container that is not running is not an error (Docker's behaviour); a restart in
    back-off is cancelled.
    """
    from . import cgroupview

    cfg = store.resolve(ref)
    t = cfg.stop_timeout if timeout is None else timeout
    pidfd = None
    with store.lock(cfg.id):
        cur = store.status(cfg.id)
        store.request_stop(cfg.id)
        if cur.status in (st.RUNNING, st.PAUSED) and cur.pid > 0:
            pidfd = _open_pidfd(cur.pid)
            _send_signal(cfg, cur.pid, parse_signal(cfg.stop_signal))
            if cur.status == st.PAUSED:
                cgroupview.freeze(cur.pid, False)
    if cur.status not in (st.RUNNING, st.PAUSED) and not cur.restarting:
        return cfg
    try:
        try:
            wait(store, cfg.id, timeout=t, for_shim=False)
        except WaitTimeout:
            cur = store.status(cfg.id)
            if cur.pid > 0:
                _send_signal(cfg, cur.pid, _signal.SIGKILL)
        wait(store, cfg.id, timeout=max(30.0, t), for_shim=False)   # the shim tears down after this
        if pidfd is not None:
            # without a shim, the record reads "exited" once PID 1 has left its cgroup, which is a
            # moment before the kernel finishes its exit: return only when it has
            _wait_fd(pidfd, max(30.0, t))
    finally:
        if pidfd is not None:
            os.close(pidfd)
    return cfg


def _open_pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (Linux 5.3+), or None if it is gone or the kernel has none."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _wait_fd(fd: int, timeout: float | None) -> bool:
    """Block until ``fd`` (a pidfd: its process has exited) is readable or ``timeout`` passed."""
    import select

    ready, _, _ = select.select([fd], [], [], timeout)
    return bool(ready)


def restart(store: ContainerStore, ref: str, timeout: float | None = None) -> ContainerInfo:
    stop(store, ref, timeout)
    return start(store, ref)


# ---------------------------------------------------------------------------------------------
# pause / unpause (freezer cgroup)

def pause(store: ContainerStore, ref: str) -> ContainerConfig:
    from . import cgroupview

    cfg = store.resolve(ref)
    with store.lock(cfg.id):
        cur = store.status(cfg.id)
        if cur.status == st.PAUSED:
            raise StateConflict(f"container {cfg.name} is already paused", current=cur.status)
        if cur.status != st.RUNNING:
            raise StateConflict(f"container {cfg.name} is not running", current=cur.status)
        cgroupview.freeze(cur.pid, True)
        store.move(cfg.id, cfg.name, st.PAUSED)
    return cfg


def unpause(store: ContainerStore, ref: str) -> ContainerConfig:
    from . import cgroupview

    cfg = store.resolve(ref)
    with store.lock(cfg.id):
        cur = store.status(cfg.id)
        if cur.status != st.PAUSED:
            raise StateConflict(f"container {cfg.name} is not paused", current=cur.status)
        cgroupview.freeze(cur.pid, False)
        store.move(cfg.id, cfg.name, st.RUNNING)
    return cfg


# ---------------------------------------------------------------------------------------------
# remove, prune, rename

def release_resources(store: ContainerStore, cfg: ContainerConfig) -> None:
    """Free what a container holds outside its record: network attachment, overlay mount. Idempotent."""
    if cfg.extra.get("launcher") == "host":
        return
    if (cfg.network or {}).get("mode", "bridge") not in ("host", "none"):
        from . import network

        network.teardown(root=store.root, state_dir=store.state_dir, container_id=cfg.id)
    rootfs = rootfs_paths(store, cfg.id)["rootfs"]
    if os.path.ismount(rootfs):
        from .syscalls import MNT_DETACH, umount2

        umount2(rootfs, MNT_DETACH)


def remove(store: ContainerStore, ref: str, *, force: bool = False, volumes: bool = False) -> ContainerConfig:
    """Remove a container; with ``force`` a running one is killed first. ``volumes``: anonymous
    volumes (pybuild creates none yet, so there is nothing more to remove)."""
    from . import cgroupview

    cfg = store.resolve(ref)
    cur = store.status(cfg.id)
    if cur.status in (st.RUNNING, st.PAUSED) or cur.restarting:
        if not force:
            raise StateConflict(f"container {cfg.name} is {cur.status}: stop it first or use rm -f",
                               current=cur.status)
        store.request_stop(cfg.id)
        if cur.pid > 0:
            _send_signal(cfg, cur.pid, _signal.SIGKILL)
            if cur.status == st.PAUSED:
                cgroupview.freeze(cur.pid, False)
    wait(store, cfg.id, timeout=30.0)
    with store.lock(cfg.id):
        if store.shim_pid(cfg.id) is not None:
            raise StateConflict(f"container {cfg.name}: its shim is still running", current=cur.status)
        raw = store.read_state(cfg.id)
        try:
            if raw.live or raw.restarting or raw.status == st.DEAD or store.supervisor_gone(cfg.id) \
                    or raw.status == st.CREATED:
                # its shim did not finish (killed, reboot, failed removal), or a start was killed
                # after the network was attached: free what it held (idempotent)
                release_resources(store, cfg)
                _cleanup_sandbox(store, cfg)
        except (PybuildError, OSError) as exc:
            # Docker's "Dead": removal failed half-way; rm -f can be retried
            store.write_state(cfg.id, replace(store.read_state(cfg.id), status=st.DEAD, error=str(exc)))
            raise
    store.remove(cfg.id)
    return cfg


def _cleanup_sandbox(store: ContainerStore, cfg: ContainerConfig) -> None:
    """Kill what is left in the container's cgroup and remove it (``sandbox.cleanup`` without
    importing the sandbox)."""
    if cfg.extra.get("launcher") == "host":
        return
    from . import cgroups

    cg = cgroups.open_existing(cfg.id)
    if cg is not None:
        cg.kill_all()
        cg.destroy()


def reap_abandoned(store: ContainerStore) -> list[str]:
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
    ``start`` handle it), and so is every container whose supervisor lives. Costs a ``stat`` per
    container when there is nothing to do.
    """
    store.collect_half_removed()
    done = []
    for cid in store.ids():
        if not store.supervisor_gone(cid):
            continue
        try:
            with store.lock(cid):
                if not store.supervisor_gone(cid):
                    continue                # handled by another pybuild, or a new supervisor took over
                raw = store.read_state(cid)
                if raw.live and raw.pid > 0 and st.pid_in_container(raw.pid, cid):
                    continue
                cfg = store.load_config(cid)
                release_resources(store, cfg)
                _cleanup_sandbox(store, cfg)
                if raw.live or raw.restarting:
                    code = raw.exit_code if raw.status == st.EXITED else 255
                    store.write_state(cid, replace(raw, status=st.EXITED, pid=0, restarting=False, exit_code=code,
                                                   finished_at=raw.finished_at or time.time(),
                                                   error=raw.error or "its pybuild or shim was killed"))
                store.clear_shim(cid)
            if cfg.auto_remove:
                store.remove(cid)
        except st.ContainerNotFound:
            continue                        # removed meanwhile
        except (PybuildError, OSError) as exc:
            import sys

            print(f"pybuild: container {cid[:12]}: cleaning up after a killed pybuild: {exc}", file=sys.stderr)
            continue
        done.append(cid)
    return done


def prune(store: ContainerStore) -> list[ContainerConfig]:
    """Remove every container that is not running; return what was removed."""
    gone = []
    for cfg in store.configs():
        cur = store.status(cfg.id)
        if cur.status in (st.CREATED, st.EXITED, st.DEAD) and not cur.restarting \
                and store.shim_pid(cfg.id) is None:
            gone.append(remove(store, cfg.id))
    return gone


def rename(store: ContainerStore, ref: str, new_name: str) -> ContainerConfig:
    cfg = store.resolve(ref)
    return store.rename(cfg.id, new_name)


# ---------------------------------------------------------------------------------------------
# listing, inspect, top, stats

def list_containers(store: ContainerStore, *, all: bool = False,
                    filters: tuple[str, ...] = ()) -> list[ContainerInfo]:
    """Containers newest first; only running/paused ones unless ``all``. Filters: ``key=value`` with
    keys id, name, status, label, ancestor, exited."""
    parsed = []
    for f in filters:
        key, sep, value = f.partition("=")
        if not sep or key not in ("id", "name", "status", "label", "ancestor", "exited"):
            raise InvalidInput(f"invalid filter {f!r}: use id=, name=, status=, label=, ancestor= or exited=")
        parsed.append((key, value))
    out = []
    for cfg in store.configs():
        try:
            cur = store.status(cfg.id)
        except st.ContainerNotFound:
            continue
        if not all and cur.status not in (st.RUNNING, st.PAUSED) and not cur.restarting \
                and not any(k in ("status", "exited") for k, _ in parsed):
            continue
        if all_match(cfg, cur, parsed):
            out.append(ContainerInfo(cfg, cur))
    out.sort(key=lambda i: i.config.created, reverse=True)
    return out


def all_match(cfg: ContainerConfig, cur: ContainerState, filters: list[tuple[str, str]]) -> bool:
    for key, value in filters:
        if key == "id" and not cfg.id.startswith(value):
            return False
        if key == "name" and value not in cfg.name:
            return False
        if key == "status" and display_status(cur) != value and cur.status != value:
            return False
        if key == "exited" and (cur.status != st.EXITED or str(cur.exit_code) != value):
            return False
        if key == "ancestor" and value not in (cfg.image, cfg.image_id):
            return False
        if key == "label":
            k, _, v = value.partition("=")
            if k not in cfg.labels or (v and cfg.labels[k] != v):
                return False
    return True


def display_status(cur: ContainerState) -> str:
    return "restarting" if cur.restarting else cur.status


def human_ago(t: float | None, now: float | None = None) -> str:
    """``3 minutes``, ``1 hour``: the time since ``t`` as ``docker ps`` words it."""
    now = time.time() if now is None else now
    d = max(0, int(now - (t or now)))
    for unit, secs in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if d >= secs:
            n = d // secs
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{d} second{'s' if d != 1 else ''}"


def human_status(cur: ContainerState, now: float | None = None) -> str:
    """``Up 3 minutes``, ``Exited (1) 2 seconds ago``, ``Created``... as ``docker ps`` shows."""
    now = time.time() if now is None else now

    def ago(t: float | None) -> str:
        return human_ago(t, now)

    if cur.restarting:
        return f"Restarting ({cur.exit_code}) {ago(cur.finished_at)} ago"
    if cur.status == st.RUNNING:
        return f"Up {ago(cur.started_at)}"
    if cur.status == st.PAUSED:
        return f"Up {ago(cur.started_at)} (Paused)"
    if cur.status == st.EXITED:
        return f"Exited ({cur.exit_code}) {ago(cur.finished_at)} ago"
    return cur.status.capitalize()


def inspect(store: ContainerStore, ref: str) -> dict:
    """Docker-like ``inspect`` document for one container."""
    cfg = store.resolve(ref)
    cur = store.status(cfg.id)
    spec = cfg.spec or {}
    proc = spec.get("process", {})
    volumes = rootfs_paths(store, cfg.id)["volumes"]
    etc = rootfs_paths(store, cfg.id)["etc"]
    named = _named_volume_of(store)
    mounts = [
        dict({"Type": "volume" if os.path.dirname(m.get("source", "")) == volumes or named(m) else
              m.get("type", "bind"),
              "Source": m.get("source", ""), "Destination": m.get("destination", ""),
              "Options": m.get("options", []),
              "RW": "ro" not in (m.get("options") or [])}, **({"Name": named(m)} if named(m) else {}))
        for m in spec.get("mounts", []) if (m.get("type") == "bind" or "bind" in (m.get("options") or []))
        and os.path.dirname(m.get("source", "")) != etc        # /etc/hosts & co: not the user's mounts
    ]
    net = dict(cfg.network)
    ports = {}
    for p in cfg.ports:
        key = f"{p.get('container_port')}/{p.get('protocol', 'tcp')}"
        ports.setdefault(key, []).append({"HostIp": p.get("host_ip", "0.0.0.0"),
                                          "HostPort": str(p.get("host_port"))})
    return {
        "Id": cfg.id,
        "Name": "/" + cfg.name,
        "Created": st.rfc3339(cfg.created),
        "Path": (proc.get("args") or [""])[0],
        "Args": (proc.get("args") or [])[1:],
        "Image": cfg.image_id,
        "ImageName": cfg.image,
        "State": {
            "Status": display_status(cur),
            "Running": cur.status in (st.RUNNING, st.PAUSED),
            "Paused": cur.status == st.PAUSED,
            "Restarting": cur.restarting,
            "OOMKilled": cur.oom_killed,
            "Dead": cur.status == st.DEAD,
            "Pid": cur.pid if cur.status in (st.RUNNING, st.PAUSED) else 0,
            "ExitCode": cur.exit_code,
            "Error": cur.error,
            "StartedAt": st.rfc3339(cur.started_at),
            "FinishedAt": st.rfc3339(cur.finished_at),
        },
        "RestartCount": cur.restart_count,
        "LogPath": store.log_path(cfg.id),
        "HostConfig": {
            "RestartPolicy": {"Name": cfg.restart_policy.partition(":")[0],
                              "MaximumRetryCount": int(cfg.restart_policy.partition(":")[2] or 0)},
            "AutoRemove": cfg.auto_remove,
            "Init": cfg.init,
            "LogConfig": {"Type": "json-file", "Config": {"max-size": str(cfg.log_max_size),
                                                          "max-file": str(cfg.log_max_files)}},
            "PortBindings": ports,
            "Privileged": "seccomp" not in spec.get("linux", {}) and "maskedPaths" not in spec.get("linux", {}),
            "SecurityOpt": [_seccomp_opt(spec)],
        },
        "Config": {
            # no UTS namespace of its own (--network host): the host's name, as Docker shows it
            "Hostname": spec.get("hostname") or (os.uname().nodename if not any(
                n.get("type") == "uts" for n in spec.get("linux", {}).get("namespaces", [])) else ""),
            "User": f"{proc.get('user', {}).get('uid', 0)}:{proc.get('user', {}).get('gid', 0)}",
            "Env": proc.get("env", []),
            "Cmd": proc.get("args", []),
            "WorkingDir": proc.get("cwd", "/"),
            "Tty": bool(proc.get("terminal")),
            "Image": cfg.image,
            "Labels": cfg.labels,
            "StopSignal": cfg.stop_signal,
            "StopTimeout": cfg.stop_timeout,
        },
        "Mounts": mounts,
        "NetworkSettings": {
            "IPAddress": net.get("ip", ""),
            "Gateway": net.get("gateway", ""),
            "MacAddress": net.get("mac", ""),
            "Networks": {net["network"]: net} if net.get("network") else {},
            "Ports": ports,
            "SandboxKey": net.get("netns_path", ""),
        },
    }


def _seccomp_opt(spec: dict) -> str:
    """``seccomp=default`` when the filter applies, ``seccomp=unconfined`` (--privileged), or why not."""
    if not spec.get("linux", {}).get("seccomp"):
        return "seccomp=unconfined"
    from . import seccomp

    return "seccomp=" + seccomp.status()


def top(store: ContainerStore, ref: str) -> list[dict]:
    """The container's processes: host PID, PPID, user id, state and command line."""
    from . import cgroupview

    cfg = store.resolve(ref)
    cur = store.status(cfg.id)
    if cur.status not in (st.RUNNING, st.PAUSED):
        raise StateConflict(f"container {cfg.name} is not running", current=cur.status)
    return cgroupview.processes(cur.pid)


@dataclass(frozen=True)
class Stats:
    id: str
    name: str
    cpu_percent: float
    memory_usage: int
    memory_limit: int
    pids: int


def stats(store: ContainerStore, ref: str, *, interval: float = 0.5) -> Stats:
    """CPU % over ``interval`` (100% = one core), memory usage and limit, pid count, from cgroups."""
    result = stats_many(store, [ref], interval=interval)[0]
    if isinstance(result, PybuildError):
        raise result
    return result


def stats_many(store: ContainerStore, refs: list[str], *, interval: float = 0.5) -> list[Stats | PybuildError]:
    """:func:`stats` of several containers, sampled over one shared ``interval``; per ref its
    figures or the error resolving it. A container that is not running (or ends meanwhile) reads 0."""
    from . import cgroupview

    targets = store.resolve_many(refs)
    live: dict[int, int] = {}                   # index in refs -> PID 1
    for i, t in enumerate(targets):
        if not isinstance(t, PybuildError):
            try:
                cur = store.status(t.id)
            except PybuildError as exc:
                targets[i] = exc
                continue
            if cur.status in (st.RUNNING, st.PAUSED) and cur.pid > 0:
                live[i] = cur.pid
    usages = dict(zip(live, cgroupview.usage_many(list(live.values()), interval)))
    out: list[Stats | PybuildError] = []
    for i, t in enumerate(targets):
        u = usages.get(i)
        if isinstance(t, PybuildError):
            out.append(t)
        elif u is None:
            out.append(Stats(t.id, t.name, 0.0, 0, 0, 0))
        else:
            out.append(Stats(t.id, t.name, u.cpu_percent, u.memory_usage, u.memory_limit, u.pids))
    return out


# ---------------------------------------------------------------------------------------------
# from an image: create (+ start) — the library under `pybuild create` and `pybuild run -d`

_ADJECTIVES = ("brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
               "nifty", "proud", "quirky", "sharp", "tender", "vivid", "witty", "zealous")
_NOUNS = ("babbage", "curie", "darwin", "euler", "fermat", "gauss", "hopper", "knuth", "lovelace",
          "meitner", "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak")


def random_name(store: ContainerStore) -> str:
    """A free ``adjective_noun`` name, as Docker picks."""
    import secrets

    taken = {c.name for c in store.configs()}
    for i in range(100):
        name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}" + (str(i) if i > 10 else "")
        if name not in taken:
            return name
    return "ctr_" + secrets.token_hex(4)


def rootfs_paths(store: ContainerStore, cid: str) -> dict[str, str]:
    """Where a container's overlay lives: ``upper``, ``work``, ``rootfs`` (mount point), ``etc`` (network files)."""
    d = store.dir(cid)
    return {k: os.path.join(d, k) for k in ("upper", "work", "rootfs", "etc", "volumes")}


def _named_volume_of(store: ContainerStore):
    """``mount -> name`` of the named volume a spec mount binds ("" for anything else)."""
    base = os.path.join(store.root, "volumes")

    def name(m: dict) -> str:
        src = m.get("source", "")
        if m.get("type") == "bind" and os.path.basename(src) == "_data" and \
                os.path.dirname(os.path.dirname(src)) == base:
            return os.path.basename(os.path.dirname(src))
        return ""
    return name


def volume_users(store: ContainerStore, name: str) -> list[str]:
    """Names of the containers (in any state) whose spec mounts named volume ``name``."""
    named = _named_volume_of(store)
    return sorted(c.name for c in store.configs() if any(named(m) == name for m in c.spec.get("mounts", [])))


def prepare_volumes(store: ContainerStore, cfg: ContainerConfig) -> None:
    """Create the container's anonymous volumes (the image's ``Volumes``) that do not exist yet,
    seeded from the image, and seed the named volumes it mounts that are new and empty; the overlay
    rootfs must be mounted. An anonymous volume appears under its name only once complete (seeded in
    ``<n>.new``, then renamed), so a start killed half-way seeds it again."""
    base = rootfs_paths(store, cfg.id)["volumes"]
    named = _named_volume_of(store)
    rootfs = cfg.spec["root"]["path"]
    from .rootfs import seed_volume

    for m in cfg.spec.get("mounts", []):
        if named(m):
            from .volumes import VolumeStore

            VolumeStore(store.root).seed_once(named(m), lambda d, m=m: seed_volume(rootfs, m["destination"], d))
    mounts = [m for m in cfg.spec.get("mounts", [])
              if m.get("type") == "bind" and os.path.dirname(m.get("source", "")) == base]
    if not mounts:
        return
    os.makedirs(base, mode=0o700, exist_ok=True)
    for m in mounts:
        if os.path.isdir(m["source"]):
            continue
        tmp = m["source"] + ".new"
        if os.path.lexists(tmp):
            _rmtree(tmp)
        os.mkdir(tmp, 0o755)
        seed_volume(rootfs, m["destination"], tmp)
        os.rename(tmp, m["source"])


def _rmtree(path: str) -> None:
    import shutil

    shutil.rmtree(path)


def create_from_image(store: ContainerStore, images, image_ref: str, opts,
                      *, log_max_size: int | None = None, log_max_files: int | None = None,
                      supervisor: int | None = None) -> ContainerConfig:
    """Resolve ``image_ref`` in the image store ``images`` (a ``layers.store.Store``), build the runtime
    spec from the image config and ``opts`` (a ``runner.options.RunOptions``), and record the container
    in state ``created``. The image's manifest digest goes to ``image-ref`` so GC keeps the image.
    ``supervisor``: see :meth:`runner.state.ContainerStore.create` (a foreground run passes its pid)."""
    lease = getattr(images, "lease", None)  # GC keeps the image from the lookup until image-ref exists
    with lease() if lease is not None else contextlib.nullcontext():
        return _create_from_image(store, images, image_ref, opts, log_max_size, log_max_files, supervisor)


def _create_from_image(store: ContainerStore, images, image_ref: str, opts, log_max_size, log_max_files,
                       supervisor=None):
    from .spec import make_spec

    record = images.images.resolve(image_ref)
    image = images.images.load(record)
    lowerdirs = [str(p) for p in images.snapshots.lowerdirs(image)]
    cid = st.new_id()
    name = opts.name or random_name(store)
    st.validate_name(name)
    paths = rootfs_paths(store, cid)
    etc_dir = next((os.path.join(d, "etc") for d in lowerdirs if os.path.exists(os.path.join(d, "etc", "passwd"))),
                   None)
    image_config = getattr(image, "config", image)
    if any(b.volume for b in opts.mounts):        # named volumes: made now if missing, as Docker does
        from .volumes import VolumeStore

        vols = VolumeStore(store.root)
        opts = replace(opts, mounts=tuple(replace(b, source=vols.create(b.volume, exist_ok=True).path)
                                          if b.volume else b for b in opts.mounts))
    spec = make_spec(image_config, opts, rootfs=paths["rootfs"], etc_dir=etc_dir, container_id=cid,
                     volume_dir=paths["volumes"]).to_dict()
    ann = spec.setdefault("annotations", {})
    if opts.init:
        ann["org.pybuild.init"] = "true"
    stop_signal = ann.get("org.opencontainers.image.stopSignal", "SIGTERM")
    ports = _port_dicts(opts, image_config)
    network_mode = opts.network or "bridge"
    if network_mode.startswith("container:") and opts.hostname:
        raise InvalidInput(f"--hostname: conflicts with --network {network_mode} (the container takes "
                           "the hostname of the one whose network it joins)")
    if network_mode != "host":
        # /etc/hosts, /etc/hostname and /etc/resolv.conf come from runner.network at start
        for fname in ("hosts", "hostname", "resolv.conf"):
            spec.setdefault("mounts", []).append({
                "destination": f"/etc/{fname}", "type": "bind", "source": os.path.join(paths["etc"], fname),
                "options": ["rbind", "rprivate"]})
    manifest = getattr(image, "manifest", None)
    manifest_digest = str(getattr(manifest, "digest", None) or getattr(record, "manifest_digest", None)
                          or getattr(record, "digest", ""))
    cfg = ContainerConfig(
        id=cid, name=name, image=image_ref, image_id=manifest_digest, spec=spec, created=time.time(),
        restart_policy=opts.restart or "no", auto_remove=bool(opts.rm), init=bool(opts.init),
        stop_signal=stop_signal, tty=bool(opts.tty), ports=ports,
        network={"mode": network_mode},
        labels=dict(opts.labels),
        log_max_size=log_max_size or ContainerConfig.log_max_size,
        log_max_files=log_max_files or ContainerConfig.log_max_files,
        extra={"lowerdirs": lowerdirs},
    )
    return create(store, cfg, supervisor=supervisor)


def _port_dicts(opts, image_config) -> tuple:
    out = []
    for p in getattr(opts, "publish", ()):
        d = {"container_port": p.container_port, "protocol": p.protocol,
             "host_ip": p.host_ip or "0.0.0.0", "host_port": p.host_port}
        if getattr(p, "host_port_end", 0):
            d["host_port_end"] = p.host_port_end
        out.append(d)
    if getattr(opts, "publish_all", False):
        from .network import publish_all
        from .spec import image_runtime_config

        exposed = (image_runtime_config(image_config).get("ExposedPorts") or {})
        out += [m.to_dict() for m in publish_all(exposed)]
    return tuple(out)


def setup_network(store: ContainerStore, cfg: ContainerConfig) -> ContainerConfig:
    """Attach the container to its network before a start; record the attachment and the netns in the spec."""
    mode = (cfg.network or {}).get("mode", "bridge")
    if cfg.extra.get("launcher") == "host" or mode == "host":
        return cfg
    if mode == "none":
        # nothing on the host side: the sandbox makes a fresh namespace with only loopback, and it
        # goes away with the container; only the /etc files are needed
        _write_loopback_etc(rootfs_paths(store, cfg.id)["etc"], cfg.spec.get("hostname") or cfg.id[:12])
        return cfg
    from . import network

    att = network.setup(root=store.root, state_dir=store.state_dir, container_id=cfg.id,
                        etc_dir=rootfs_paths(store, cfg.id)["etc"], mode=mode, name=cfg.name,
                        hostname=cfg.spec.get("hostname"))
    spec = json_copy(cfg.spec)
    if mode.startswith("container:") and att.hostname:
        # Docker: a container in another's network namespace takes its hostname too (UTS, $HOSTNAME)
        own = f"HOSTNAME={spec.get('hostname', '')}"        # the default, not a -e HOSTNAME=...
        spec["hostname"] = att.hostname
        spec["process"]["env"] = [f"HOSTNAME={att.hostname}" if e == own else e for e in spec["process"]["env"]]
    ns = [n for n in spec["linux"]["namespaces"] if n.get("type") != "network"]
    entry = att.spec_namespace()
    if entry is not None:
        ns.insert(1, entry)
    spec["linux"]["namespaces"] = ns
    net = dict(att.to_dict(), mode=mode)
    return store.update_config(replace(cfg, spec=spec, network=net))


def _write_loopback_etc(etc_dir: str, hostname: str) -> None:
    """``/etc/hosts``, ``hostname`` and ``resolv.conf`` for ``--network none``: localhost only and no
    name server (none is reachable from a namespace with only loopback). Written here rather than
    with ``runner.network.files``, whose package costs a foreground run ~20 ms to import. Not
    fsynced: every start writes them again."""
    from layers.atomic import write_atomic

    from .hosts import LOCALHOST_LINES

    os.makedirs(etc_dir, mode=0o755, exist_ok=True)
    for name, text in (("hostname", hostname + "\n"), ("hosts", LOCALHOST_LINES),
                       ("resolv.conf", "# --network none: loopback only, no name servers\n")):
        write_atomic(os.path.join(etc_dir, name), text.encode(), 0o644, durable=False)


def json_copy(doc: dict) -> dict:
    import json

    return json.loads(json.dumps(doc))


def run_detached(store: ContainerStore, images, image_ref: str, opts, *, shim=None) -> ContainerInfo:
    """``pybuild run -d``: create, then start under a shim (``shim``: one already started, see
    :func:`start`); on a failed start the container stays ``exited`` with the error recorded
    (``--rm``: it is removed), and the error is raised."""
    cfg = create_from_image(store, images, image_ref, opts)
    try:
        return start(store, cfg.id, shim=shim)
    except PybuildError:
        if cfg.auto_remove:
            try:
                remove(store, cfg.id, force=True)
            except PybuildError:
                pass          # the start error is what the user needs to see
        raise
