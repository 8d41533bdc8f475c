"""What the resident shim loop (:mod:`runner.shimloop`) writes and releases without the record
types: JSON through the C accelerator alone, the exit record (``running|paused -> exited``, exactly
the bytes and events ``ContainerStore.move`` writes), and the release of a run that ended for good.

Imports are modules built into the interpreter, ``fcntl`` and ``_json``; the loop loads this module
only when its container has exited (a running loop holds no JSON code). Tests hold every copy here equal to the code it mirrors; what need not be a copy is
shared the other way: :mod:`runner.cgroups` kills and removes a cgroup with :func:`kill_cgroup` and
:func:`remove_cgroup`, and the event line and its append are :mod:`layers.journal`'s (loaded at the exit).
"""

from __future__ import annotations

import os
import time

import _json
import _signal
import fcntl

__all__ = ["record_exit", "finish_here", "dumps", "loads", "state_path", "STATE_KEYS", "kill_cgroup",
           "remove_cgroup"]

#: the keys of ``state.json`` as :class:`runner.records.ContainerState` writes them (a test holds
#: them equal); a record with other keys is left to the full shim
STATE_KEYS = frozenset({"error", "exit_code", "finished_at", "health", "oom_killed", "pid", "restart_count",
                        "shim_pid", "started_at", "status"})


# ---------------------------------------------------------------------------------------------
# JSON through the C accelerator alone: the same bytes json.dumps / json.loads give

class _ScanContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float
    memo: dict = {}


_scan = _json.make_scanner(_ScanContext())


def loads(text: str | bytes):
    """``json.loads`` of a whole document."""
    if isinstance(text, bytes):
        text = text.decode()
    start = len(text) - len(text.lstrip())
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError("not a JSON document") from None
    if text[end:].strip():
        raise ValueError("extra data after the JSON document")
    return value


def _no_default(o):
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def dumps(value, *, sort_keys: bool = False) -> str:
    """``json.dumps(value, separators=(",", ":"), sort_keys=...)`` (ASCII, as json's default)."""
    enc = _json.make_encoder({}, _no_default, _json.encode_basestring_ascii, None, ":", ",",
                             sort_keys, False, True)
    return "".join(enc(value, 0))


# ---------------------------------------------------------------------------------------------
# the exit record: ContainerStore.move(cid, name, EXITED, ...) for a running container

def _write_atomic(path: str, data: bytes) -> None:
    """:func:`layers.atomic.write_atomic` (same temp name, fsyncs and mode) without contextlib."""
    head, tail = os.path.split(path)
    tmp = os.path.join(head, f".{tail}.tmp-{os.getpid()}-{os.urandom(6).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, 0o600)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dfd = os.open(head, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _event(root: str, cid: str, config: dict | None, action: str, **attributes) -> None:
    """:meth:`runner.state.ContainerStore.event` (labels, image, name, then ``attributes``) appended
    as :func:`layers.events.append` does, through :mod:`layers.journal` (loaded now, at the exit: it
    imports only ``os``); a line too long for one write goes through :mod:`layers.events`."""
    from layers import journal

    attrs = {} if config is None else {str(k): v for k, v in (config.get("labels") or {}).items()}
    if config is not None:
        attrs.update(image=config.get("image"), name=config.get("name"))
    attrs.update(attributes)
    at = {k: str(v) for k, v in attrs.items() if v is not None}
    line = (dumps(journal.record("container", action, cid, at, time.time_ns())) + "\n").encode()
    if len(line) > journal.LINE_MAX:
        from layers import events           # cuts the attributes to fit (rare: huge labels)

        events.emit(root, "container", action, cid, **{k: v for k, v in attrs.items()})
        return
    journal.append_line(root, line)      # best effort, as layers.events: the journal never fails a state move


def state_path(root: str, cid: str) -> str:
    """Container ``cid``'s ``state.json`` (:meth:`runner.state.ContainerStore.dir`)."""
    return os.path.join(root, "containers", cid, "state.json")


def record_exit(root: str, cid: str, code: int, finished: float, oom: bool) -> bool:
    """Move container ``cid`` from running or paused to exited (exit ``code`` at ``finished``,
    ``oom``), with its ``oom``/``die`` events first, exactly as ``ContainerStore.move`` writes it.

    Returns False, having written nothing, for anything else (another status, a health record, a
    record of another shape, a removed container): the full shim then records the exit itself."""
    d = os.path.join(root, "containers", cid)
    try:
        lock = os.open(os.path.join(d, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(state_path(root, cid), "rb") as f:
                state = loads(f.read())
        except (OSError, ValueError):
            return False
        if (not isinstance(state, dict) or set(state) != STATE_KEYS
                or state["status"] not in ("running", "paused")):
            return False
        health = state["health"]
        if health is not None:            # Health.stopped(): unhealthy, streak and log kept
            if not isinstance(health, dict) or set(health) != {"status", "failing_streak", "log"}:
                return False
            health = dict(health, status="unhealthy")
        try:
            with open(os.path.join(d, "config.json"), "rb") as f:
                config = loads(f.read())
            if not isinstance(config, dict):
                config = None
        except (OSError, ValueError):
            config = None
        state.update(status="exited", pid=0, exit_code=code, finished_at=finished, oom_killed=oom, health=health)
        if oom:
            _event(root, cid, config, "oom")
        _event(root, cid, config, "die", exitCode=code)
        _write_atomic(state_path(root, cid), dumps(state, sort_keys=True).encode())
        return True
    finally:
        os.close(lock)


def _oom_killed(path: str | None) -> bool:
    """``runner.cgroups.Cgroup.oom_killed`` for the file the full shim named."""
    if not path:
        return False
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
    except (OSError, ValueError):
        return False
    return False


def _read_config(root: str, cid: str) -> dict | None:
    try:
        with open(os.path.join(root, "containers", cid, "config.json"), "rb") as f:
            config = loads(f.read())
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def finish_here(doc: dict, port_fds: list[int]) -> bool:
    """The run ended for good (no restart: the policy is ``no`` or a stop was asked for; no ``--rm``):
    close its published ports (``port_fds``), release its cgroup, overlay and network as
    :meth:`runner.shim.Shim` would (``ResumedProcess.cleanup``, then ``release_resources``) and drop
    ``shim.json``, without starting the full shim. False, having released what it could, for anything
    else or any failure: the full shim then does it all (every step is idempotent)."""
    root, cid = doc["root"], doc["cid"]
    config = _read_config(root, cid)
    if config is None or config.get("auto_remove") is not False:
        return False
    stop_marker = os.path.join(doc["state_dir"], cid, "stop-requested")
    if config.get("restart_policy") != "no" and not os.path.exists(stop_marker):
        return False
    for fd in port_fds:
        os.close(fd)
    port_fds.clear()
    launcher = config.get("launcher")
    if launcher == "sandbox":
        if not _destroy_cgroup([p for p in doc.get("cgroups") or () if os.path.isdir(p)]):
            return False
        shm = os.path.join(root, "containers", cid, "shm")     # --ipc shareable: /dev/shm kept host-side
        if os.path.ismount(shm):
            from .syscalls import MNT_DETACH, umount2

            try:
                umount2(shm, MNT_DETACH)
            except OSError:
                return False
        rootfs = doc.get("rootfs")
        if rootfs and (doc["overlay"] or os.path.ismount(rootfs)):
            from .syscalls import MNT_DETACH, umount2   # ctypes: loaded now, for the last moments

            try:
                umount2(rootfs, 0 if doc["overlay"] else MNT_DETACH)
            except OSError:
                try:
                    umount2(rootfs, MNT_DETACH)
                except OSError:
                    return False
        if (config.get("network") or {}).get("mode") not in ("none", "host"):
            from layers.errors import PybuildError

            from .network import teardown      # the network room, loaded now, for the last moments

            try:
                teardown(root=root, state_dir=doc["state_dir"], container_id=cid)
            except (PybuildError, OSError):
                return False
    elif launcher != "host":
        return False
    try:
        os.unlink(os.path.join(doc["state_dir"], cid, "shim.json"))
    except FileNotFoundError:
        pass
    return True


def _destroy_cgroup(paths: list[str], timeout: float = 5.0) -> bool:
    """``runner.cgroups.Cgroup.kill_all`` then ``destroy``: SIGKILL what is left, remove the
    directories, retrying while the kernel lets go of them."""
    if not paths:
        return True
    kill_cgroup(paths[0])
    try:
        remove_cgroup(paths, timeout)
    except OSError:
        return False
    return True


def kill_cgroup(path: str) -> None:
    """SIGKILL every process of the cgroup directory ``path`` (none when it is gone)."""
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            pids = [int(x) for x in f.read().split()]
    except (FileNotFoundError, ValueError):
        return
    for pid in pids:
        try:
            os.kill(pid, _signal.SIGKILL)
        except ProcessLookupError:
            pass


def remove_cgroup(paths, timeout: float = 5.0) -> None:
    """Remove the cgroup directories ``paths`` (one a hierarchy; gone already is fine), killing what is
    left in ``paths[0]`` and retrying while the kernel says busy, for at most ``timeout`` seconds; the
    ``OSError`` (its ``filename`` the directory) of one that stays. :meth:`runner.cgroups.Cgroup.destroy`."""
    deadline = time.monotonic() + timeout
    for p in paths:
        while True:
            try:
                os.rmdir(p)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != 16 or time.monotonic() > deadline:      # EBUSY
                    raise
                kill_cgroup(paths[0])
                time.sleep(0.005)
