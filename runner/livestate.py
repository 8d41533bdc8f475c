"""A container's live state: who supervises it and whether the user stopped it (lost on reboot).

Layout (ARCHITECTURE.md "On-disk layout")::

    <state_dir>/<id>/shim.json           the supervisor: pid + start time (the shim, or a foreground ``pybuild run``)
    <state_dir>/<id>/stop-requested      marker: the user stopped it, the shim must not restart it

Neither file is fsynced: both speak of live processes, which a power loss takes away too. A pid is
trusted only with its start time (``/proc/<pid>/stat``), so a reused pid never reads as the supervisor.
:class:`runner.state.ContainerStore` holds one :class:`LiveState` and reconciles it with the persistent
record (``ContainerStore.status``). Imports are stdlib only: the shim imports this module.
"""

from __future__ import annotations

import json
import os
import time

from layers.atomic import write_atomic

__all__ = ["LiveState", "pid_in_container", "process_start_time", "wait_exit"]


def process_start_time(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat`` (start time in clock ticks), or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name is in parentheses and may contain spaces: split after the last ')'
    fields = raw[raw.rindex(b")") + 2:].split()
    if fields[0] == b"Z":
        return None
    return int(fields[19])


def wait_exit(pid: int, timeout: float) -> None:
    """Sleep until process ``pid`` ends (on a pidfd) or ``timeout`` passes."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except OSError:                      # no pidfd (Linux before 5.3): the caller looks again soon
        return time.sleep(min(timeout, 0.02))
    import select

    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def pid_in_container(pid: int, cid: str) -> bool:
    """Is ``pid`` alive and in a cgroup named after container ``cid`` (not a reused pid)? Rootless
    containers have no cgroup: there it must be PID 1 of a pid namespace of its own (``NSpid`` ends
    in 1), which a reused host pid is not."""
    from layers.store.location import is_rootless

    try:
        if is_rootless():
            with open(f"/proc/{pid}/status") as f:
                nspid = next((line.split()[1:] for line in f if line.startswith("NSpid:")), [])
            return len(nspid) > 1 and nspid[-1] == "1" and process_start_time(pid) is not None
        with open(f"/proc/{pid}/cgroup") as f:
            return cid in f.read() and process_start_time(pid) is not None
    except (FileNotFoundError, ProcessLookupError):
        return False


class LiveState:
    """The live files of every container under ``state_dir`` (one directory a container)."""

    __slots__ = ("state_dir",)

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir

    def dir(self, cid: str) -> str:
        return os.path.join(self.state_dir, cid)

    def write_shim(self, cid: str, pid: int) -> None:
        """Record ``pid`` as the container's supervisor. Atomic, not fsynced: it names a live process,
        which a power loss takes away too (an empty or torn file reads as a supervisor gone)."""
        d = self.dir(cid)
        os.makedirs(d, mode=0o700, exist_ok=True)
        write_atomic(os.path.join(d, "shim.json"),
                     json.dumps({"pid": pid, "start": process_start_time(pid)}).encode(), durable=False)

    def shim_pid(self, cid: str) -> int | None:
        """The pid of this container's shim if it is alive (pid and start time both match), else None."""
        try:
            with open(os.path.join(self.dir(cid), "shim.json"), "rb") as f:
                doc = json.loads(f.read())
        except (FileNotFoundError, ValueError):
            return None
        pid = int(doc.get("pid", 0))
        if pid <= 0 or process_start_time(pid) != doc.get("start"):
            return None
        return pid

    def supervisor_gone(self, cid: str) -> bool:
        """True when ``shim.json`` names a process that no longer runs: the shim, or the pybuild of a
        foreground run, was killed (or crashed) before it cleared it; what it held may be left over."""
        path = os.path.join(self.dir(cid), "shim.json")
        if not os.path.exists(path):
            return False
        return self.shim_pid(cid) is None and os.path.exists(path)

    def clear_shim(self, cid: str) -> None:
        try:
            os.unlink(os.path.join(self.dir(cid), "shim.json"))
        except FileNotFoundError:
            pass

    def stop_requested(self, cid: str) -> bool:
        return os.path.exists(os.path.join(self.dir(cid), "stop-requested"))

    def request_stop(self, cid: str, flag: bool = True) -> None:
        """Set (or, ``flag`` False, clear) the marker that tells the shim not to restart the container."""
        d = self.dir(cid)
        path = os.path.join(d, "stop-requested")
        if flag:
            os.makedirs(d, mode=0o700, exist_ok=True)
            write_atomic(path, b"1\n", durable=False)     # for the live shim only, as shim.json
        else:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
