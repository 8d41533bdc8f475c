"""What ``top`` shows of a container's processes, read from ``/proc`` (stdlib only).

:func:`processes` lists the processes of a PID 1's cgroup (and the zombies of its PID namespace,
:mod:`runner.cgroupview`) as :class:`Process` values with the facts ``ps -ef`` prints; rendering
(user names, STIME, TTY names, TIME) is the CLI's.
"""

from __future__ import annotations

import os
import time

from layers.value import frozen

__all__ = ["Process", "processes", "boot_time"]


@frozen(slots=True)
class Process:
    """One process as ``ps -ef`` sees it (host PIDs)."""

    uid: int
    pid: int
    ppid: int
    state: str                  # R, S, Z... (``/proc/PID/stat``'s third field)
    tty_nr: int                 # controlling terminal device number, 0 for none
    cpu_seconds: float          # user + system time so far
    started: float              # Unix time it started
    cmd: str                    # its command line, or ``[comm]`` for a zombie or kernel thread


def boot_time() -> float:
    """The host's boot time (``btime`` of ``/proc/stat``)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return float(line.split()[1])
    return time.time() - time.monotonic()


def _one(pid: int, btime: float, hz: int) -> Process | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
        uid = os.stat(f"/proc/{pid}").st_uid
    except (FileNotFoundError, ProcessLookupError):
        return None                                      # exited while we looked
    comm_end = stat.rindex(b")")
    fields = stat[comm_end + 2:].split()                  # fields[0] is stat's field 3 (state)
    comm = stat[stat.index(b"(") + 1:comm_end].decode(errors="replace")
    return Process(uid=uid, pid=pid, ppid=int(fields[1]), state=fields[0].decode(), tty_nr=int(fields[4]),
                   cpu_seconds=(int(fields[11]) + int(fields[12])) / hz, started=btime + int(fields[19]) / hz,
                   cmd=cmd or f"[{comm}]")


def processes(pid: int) -> list[Process]:
    """The processes of ``pid``'s cgroup and the zombies of its PID namespace, by PID."""
    from .cgroupview import container_pids, namespace_zombies

    pids = container_pids(pid)
    btime, hz = boot_time(), os.sysconf("SC_CLK_TCK")
    found = (_one(p, btime, hz) for p in sorted(pids + namespace_zombies(pid, set(pids))))
    return [p for p in found if p is not None]
