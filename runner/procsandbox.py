"""The process sandbox of RUN steps: a PID namespace of their own with a fresh ``/proc``, or none.

Inside an unprivileged container the outer ``/proc`` is masked (runc and podman bind ``/dev/null``
and read-only mounts over parts of it), and the kernel refuses a fresh ``proc`` mount from a user
namespace where that would reveal what the masks hide. There RUN steps run *without a process
sandbox*, as BuildKit's rootless ``--oci-worker-no-process-sandbox`` mode does: they share the
builder's PID namespace, and ``/proc`` is a recursive bind of the outer one (its masks come along,
and the sandbox masks Docker's paths again). Everything else (mount, UTS, IPC and user namespaces,
capabilities, seccomp, the overlay root) stays as it is.

What that mode gives up (docs/PODBUILD.md): a RUN step sees the builder's processes in ``ps`` and
``/proc``, and may signal those running with the same ids; processes a step leaves behind are
killed by the sandbox's stage1 when the step's command exits, not by the namespace's death (a
SIGKILLed build can leave them running).

- :class:`ProcessSandbox` is the typed choice the builder hands to each RUN step;
  :meth:`ProcessSandbox.apply` turns a runtime spec into its no-process-sandbox form (pure).
- :func:`probe` tries it once per process: a child unshares a mount and a PID namespace and mounts
  ``proc`` (two forks, a few milliseconds); the answer is cached.
- :func:`choose` maps a request (``auto``, ``on``, ``off``) to a :class:`ProcessSandbox`.
"""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from functools import lru_cache

from layers.value import frozen

from . import syscalls as sc
from .errors import SandboxError
from .ocispec import Mount, Spec

__all__ = ["ProcessSandbox", "REQUESTS", "probe", "choose", "PROC_BIND", "kill_leftovers"]

REQUESTS = ("auto", "on", "off")

#: ``/proc`` without a process sandbox: the outer one, with its own submounts (masks) kept
PROC_BIND = Mount("/proc", "bind", "/proc", ("rbind", "nosuid", "noexec", "nodev"))


@frozen
class ProcessSandbox:
    """``private``: RUN steps get their own PID namespace and a fresh ``/proc``. Otherwise they
    share the builder's (``reason`` says why, as the probe found it or "asked for")."""

    private: bool = True
    reason: str = ""

    @property
    def note(self) -> str | None:
        """The one line a build prints when there is no process sandbox; None when there is."""
        if self.private:
            return None
        return (f"no process sandbox ({self.reason}): RUN steps share the builder's PID namespace and "
                "see its processes in /proc, as BuildKit's rootless --oci-worker-no-process-sandbox does")

    def apply(self, spec: Spec) -> Spec:
        """``spec`` as this mode runs it: unchanged when private; else without a ``pid`` namespace and
        with the ``proc`` mount replaced by :data:`PROC_BIND`."""
        if self.private:
            return spec
        namespaces = tuple(ns for ns in spec.linux.namespaces if ns.type != "pid")
        mounts = tuple(PROC_BIND if m.destination == "/proc" and m.type == "proc" else m for m in spec.mounts)
        return replace(spec, mounts=mounts, linux=replace(spec.linux, namespaces=namespaces))


@lru_cache(maxsize=1)
def probe() -> str | None:
    """None when a fresh ``proc`` can be mounted in a new PID namespace here; otherwise why not, in a
    few words (``mount proc: Operation not permitted``). Needs CAP_SYS_ADMIN in the current user
    namespace (root, or a rootless process that joined its namespace); the result is cached."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked child, reports through the pipe
        os.close(r)
        _probe_child(w)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        message = f.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if message:
        return message
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        return f"the probe exited with status {status}"
    return None


def _probe_child(w: int) -> None:
    """Unshare mount + PID namespaces, fork PID 1 of the new one, mount ``proc`` over ``/proc`` there
    (the mount namespace is private, so nothing reaches the caller). Never returns."""
    code = 1
    step = "unshare mount and pid namespaces"
    try:
        sc.unshare(sc.CLONE_NEWNS | sc.CLONE_NEWPID)
        step = "make mounts private"
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
        step = "fork"
        child = os.fork()
        if child == 0:
            step = "mount proc"
            sc.mount("proc", "/proc", "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
            os._exit(0)
        _, status = os.waitpid(child, 0)
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1
    except OSError as exc:
        try:
            os.write(w, f"{step}: {exc.strerror}".encode())
        finally:
            os._exit(1)
    except BaseException:
        os._exit(2)
    os._exit(code)


def choose(request: str = "auto") -> ProcessSandbox:
    """``auto``: private where :func:`probe` succeeds, none where it fails; ``on``: private, or
    :class:`SandboxError` saying why it cannot be; ``off``: none (asked for)."""
    if request not in REQUESTS:
        raise SandboxError(f"process sandbox {request!r}: expected one of {', '.join(REQUESTS)}")
    if request == "off":
        return ProcessSandbox(False, "asked for")
    problem = probe()
    if problem is None:
        return ProcessSandbox(True)
    if request == "on":
        raise SandboxError(f"a process sandbox was asked for, but a fresh /proc cannot be mounted here ({problem}; "
                           "the outer /proc is masked, as in an unprivileged container)")
    return ProcessSandbox(False, f"a fresh /proc cannot be mounted: {problem}")


def _children() -> list[int]:
    """This process's children (``/proc/self/task/*/children``; a scan of ``/proc`` without it)."""
    me = os.getpid()
    try:
        with open(f"/proc/self/task/{me}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        pass
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me:
            out.append(int(name))
    return out


def kill_leftovers() -> None:
    """Kill and reap every process left under this subreaper, as a PID namespace's death would: each
    round SIGKILLs the current children and reaps one; the orphans of the killed are re-parented
    here and go in the next round. Returns when no child is left."""
    while True:
        for pid in _children():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue
