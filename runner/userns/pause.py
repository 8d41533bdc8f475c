"""The per-user pause process that holds the rootless user and mount namespaces, and joining it.

Shape (podman's): the first rootless pybuild forks a child that ``unshare(CLONE_NEWUSER)``s; the
parent maps it (:mod:`.idmap`: 0 -> the user, 1.. -> the subordinate ranges), the child then
``unshare(CLONE_NEWNS)``s and ``execve``s ``sleep infinity`` under the name ``pybuild-pause`` (about 1 MiB resident; a minimal
``python -I -S`` that waits for signals where coreutils' sleep is missing).
Its pid goes to ``<state>/userns/pause.pid``. Every later invocation ``setns``es into its user
namespace and then its mount namespace, so all invocations share the mounts (overlay rootfs of
running containers) and the ids. A flock on ``<state>/userns/pause.lock`` makes concurrent first
runs create one process; a pid file whose process is gone or is not our pause is stale.

The caller must still be single-threaded (``setns`` into a user namespace refuses threads):
the CLI joins before it does anything else.
"""

from __future__ import annotations

import fcntl
import os
import sys

from ..errors import RuntimeFailure
from .. import syscalls

__all__ = ["MARK", "join_or_create", "pause_pid", "stop"]

MARK = "pybuild-pause"
# the pause program: no site, no imports beyond the builtin signal module
_PROGRAM = f"#{MARK}\nimport signal\nsignal.signal(signal.SIGTERM, signal.SIG_DFL)\nwhile True: signal.pause()\n"


_SLEEP = "/bin/sleep"


def _paths(state: str) -> tuple[str, str]:
    d = os.path.join(state, "userns")
    os.makedirs(d, mode=0o700, exist_ok=True)
    return os.path.join(d, "pause.pid"), os.path.join(d, "pause.lock")


def _is_pause(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return argv[0] == MARK.encode() or any(a.startswith(f"#{MARK}".encode()) for a in argv)


def pause_pid(state: str) -> int | None:
    """The live pause process recorded under ``state``, or None."""
    try:
        with open(os.path.join(state, "userns", "pause.pid")) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and _is_pause(pid) else None


def _create(write_maps) -> int:
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the pause process
        try:
            os.close(ready_r)
            os.close(go_w)
            os.setsid()
            syscalls.unshare(syscalls.CLONE_NEWUSER)
            os.write(ready_w, b"u")
            if os.read(go_r, 1) != b"g":
                os._exit(1)
            syscalls.unshare(syscalls.CLONE_NEWNS)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.chdir("/")
            if os.access(_SLEEP, os.X_OK):  # coreutils' sleep: ~1 MiB resident, argv[0] is our mark
                os.execv(_SLEEP, [MARK, "infinity"])  # exec closes ready_w (close-on-exec)
            os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", _PROGRAM])
        finally:
            os._exit(127)
    os.close(ready_w)
    os.close(go_r)
    try:
        if os.read(ready_r, 1) != b"u":
            raise RuntimeFailure("the rootless pause process could not create a user namespace "
                                 "(is kernel.unprivileged_userns_clone or user.max_user_namespaces 0?)")
        write_maps(pid)
        os.write(go_w, b"g")
        if os.read(ready_r, 1):  # EOF at execve (close-on-exec), a byte never comes
            raise RuntimeFailure("the rootless pause process failed")
    except BaseException:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except OSError:
            pass
        raise
    finally:
        os.close(ready_r)
        os.close(go_w)
    pid_w, _ = os.waitpid(pid, os.WNOHANG)
    if pid_w:
        raise RuntimeFailure("the rootless pause process exited at start")
    return pid


def _setns(pid: int) -> None:
    cwd = os.getcwd()
    fds = [os.open(f"/proc/{pid}/ns/{n}", os.O_RDONLY | os.O_CLOEXEC) for n in ("user", "mnt")]
    try:
        syscalls.setns(fds[0], syscalls.CLONE_NEWUSER)
        syscalls.setns(fds[1], syscalls.CLONE_NEWNS)
    except OSError as e:
        raise RuntimeFailure(f"joining the rootless namespaces of pause process {pid}: {e.strerror}") from None
    finally:
        for fd in fds:
            os.close(fd)
    try:
        os.chdir(cwd)
    except OSError:
        os.chdir("/")


def join_or_create(state: str, write_maps) -> tuple[int, bool]:
    """Join the pause process of ``state``, creating it first when absent or stale.

    ``write_maps(pid)`` maps a fresh child. Returns ``(pid, created)``.
    """
    pid_file, lock_file = _paths(state)
    lock = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pid, created = pause_pid(state), False
        if pid is None:
            pid, created = _create(write_maps), True
            tmp = f"{pid_file}.{os.getpid()}"
            with open(tmp, "w") as f:
                f.write(f"{pid}\n")
            os.replace(tmp, pid_file)
        _setns(pid)
        return pid, created
    finally:
        os.close(lock)


def stop(state: str) -> int | None:
    """Stop this user's pause process (containers keep their own namespaces); its pid or None."""
    pid = pause_pid(state)
    if pid is not None:
        os.kill(pid, 15)
    return pid
