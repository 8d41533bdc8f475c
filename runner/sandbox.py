"""Launch an OCI runtime spec in a fresh set of namespaces: pybuild's runc.

Process shape (``pybuild`` -> *stage1* -> *init*)::

    caller        creates the cgroup, forks stage1, reads the sync socket, later waits for stage1
    stage1        (host pid ns) dies with the caller; joins a given netns; unshares mount, uts, ipc,
                  net and pid; forks init; is the subreaper of the namespace; waits for init, reaps
                  every orphan, exits with init's status (128+N when killed by signal N). Without
                  a PID namespace of its own (``--pid host``, or no process sandbox: see
                  :mod:`runner.procsandbox`) it kills what init left behind first.
                  When the caller is itself a child subreaper (the shim), stage1 exits at once
                  instead: init is re-parented to the caller, which waits for ``pid`` and reaps
                  the orphans itself ("direct" mode; nothing then dies with the caller).
    init          (PID 1 in the new pid ns) joins the cgroup, unshares the cgroup ns, prepares the
                  rootfs and pivots into it, sets hostname, rlimits (never above the caller's hard
                  limits), terminal, user and groups, capabilities, no_new_privs, seccomp; closes every
                  fd but 0-2 (runc CVE-2024-21626) and execs the target at once. It is non-dumpable
                  until exec, so the container never sees the Python interpreter (CVE-2019-5736).

The sync socket (``SOCK_SEQPACKET``, close-on-exec) carries small JSON messages: stage1 sends
``{"pid": N}``; init sends ``{"tty": true}`` with the pty master fd attached, or ``{"error": ...,
"code": N}`` on failure. EOF after the pid means the target was executed.

Modules, one job each (``runner.sandbox`` re-exports the public names, callers import only it):

    sandbox        this launcher: validate the :class:`~runner.ocispec.Spec`, compile seccomp, create
                   the cgroup, fork stage1, read the sync socket; :func:`execute`, :func:`cleanup`
    sandbox_init   stage1 and init, the container side up to ``execve``
    process        :class:`ContainerProcess` (the caller's handle) and :func:`foreground`
    signals        :class:`SignalForwarder`
    terminal       the pty: made in init, relayed to the caller's terminal
"""

from __future__ import annotations

import json
import os
import socket
import sys

from . import cgroups, seccomp
from . import syscalls as sc
from .errors import ExecFailed, SandboxError
from .ocispec import Spec
from .process import ContainerProcess, foreground, wait_status
from .sandbox_init import NS_FLAGS, stage1
from .signals import FORWARDED_SIGNALS, SignalForwarder

__all__ = ["ContainerProcess", "SignalForwarder", "start", "foreground", "execute", "cleanup", "as_spec",
           "FORWARDED_SIGNALS"]


def as_spec(spec: Spec | dict) -> Spec:
    """``spec`` as a :class:`Spec`; a dict (a container record's ``config.json`` form) is parsed."""
    return spec if isinstance(spec, Spec) else Spec.from_dict(spec)


def _validate(spec: Spec) -> None:
    """What this sandbox can run, beyond the spec's shape (which :class:`Spec` already checked)."""
    if not spec.process.args:
        raise SandboxError("runtime spec: process.args must not be empty")
    if not os.path.isdir(spec.root.path):
        raise SandboxError(f"runtime spec: root.path {spec.root.path!r} is not a directory")
    for ns in spec.linux.namespaces:
        if ns.type not in (*NS_FLAGS, "cgroup"):
            raise SandboxError(f"runtime spec: {ns.type} namespaces are not supported")
        if ns.path and ns.type not in ("network", "pid", "ipc"):
            raise SandboxError(f"runtime spec: joining a {ns.type} namespace by path is not supported")
    _validate_sysctls(spec)
    for dev in spec.linux.devices:
        if dev.type not in ("c", "b") or dev.major is None or dev.minor is None or not dev.path.startswith("/"):
            raise SandboxError(f"runtime spec: linux.devices {dev.path!r}: needs an absolute path, type c or b, "
                               "major and minor")
    if spec.linux.devices and not any(m.destination == "/dev" and m.type == "tmpfs" for m in spec.mounts):
        raise SandboxError("runtime spec: linux.devices needs a tmpfs on /dev")
    for field_name, value in (("linux.cgroupsPath", spec.linux.cgroups_path),):
        if value:
            raise SandboxError(f"runtime spec: {field_name} is not supported by pybuild's sandbox")


# namespaced sysctls, and the namespace each needs (runc's validator)
_SYSCTL_NS = (("net.", "network"), ("kernel.shm", "ipc"), ("kernel.msg", "ipc"), ("kernel.sem", "ipc"),
              ("fs.mqueue.", "ipc"), ("kernel.hostname", "uts"), ("kernel.domainname", "uts"))


def _validate_sysctls(spec: Spec) -> None:
    """``linux.sysctl``: only namespaced keys, each with its own namespace in the spec (never the host's)."""
    own = {ns.type for ns in spec.linux.namespaces}
    for key, _ in spec.linux.sysctl:
        need = next((ns for prefix, ns in _SYSCTL_NS if key == prefix or key.startswith(prefix)), None)
        if need is None or "/" in key or ".." in key:
            raise SandboxError(f"runtime spec: linux.sysctl {key!r} is not a namespaced sysctl")
        if need not in own:
            raise SandboxError(f"runtime spec: linux.sysctl {key!r} needs the container's own {need} namespace")


def _recv(sock: socket.socket) -> tuple[dict | None, list[int]]:
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(sock, 65536, 4)
            break
        except InterruptedError:
            continue
    if not data:
        return None, []
    return json.loads(data), list(fds)


def start(spec: Spec | dict, *, container_id: str, state_dir: str | None = None, stdin=None, stdout=None,
          stderr=None, die_with_parent: bool = True) -> ContainerProcess:
    """Create the container's cgroup and namespaces and exec ``spec.process`` in them.

    ``stdin``/``stdout``/``stderr`` are file objects or fds (default: the caller's own); they are
    ignored when ``process.terminal`` is set (read ``pty_master`` instead). Returns once the target
    has been executed; setup errors raise :class:`SandboxError` (exec errors :class:`ExecFailed`
    with exit code 127/126) with nothing left behind. ``die_with_parent`` kills the container if
    the calling process dies (foreground runs; a shim passes False only if it outlives itself).
    ``state_dir`` is accepted for the contract; the foreground path keeps no files there.
    A dict ``spec`` is parsed with :meth:`Spec.from_dict` first (:class:`InvalidSpec` names a bad field).
    """
    spec = as_spec(spec)
    _validate(spec)
    stdio = tuple(_fileno(s, i) for i, s in enumerate((stdin, stdout, stderr)))
    # the filter is applied where libseccomp exists; seccomp.status() tells inspect when it does not
    filter_program = None
    if seccomp.available():
        filter_program = seccomp.compile_profile(spec.linux.seccomp,
                                                 deny_device_nodes=cgroups.detect_version() == "v2")
    try:
        cg = cgroups.create(container_id, spec.linux.resources)
    except BaseException:
        if filter_program is not None:
            filter_program.release()
        raise
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        direct = sc.is_child_subreaper()
        caller = os.getpid()        # read before the fork: stage1 checks it is still its parent
        stage1_pid = os.fork()
        if stage1_pid == 0:
            parent_sock.close()
            stage1(spec, child_sock, cg, stdio, die_with_parent, caller, filter_program, direct)
        child_sock.close()
        proc: ContainerProcess | None = None
        error: dict | None = None
        while True:
            msg, fds = _recv(parent_sock)
            if msg is None:
                break
            if "pid" in msg:
                proc = ContainerProcess(msg["pid"], container_id, cg, msg["pid"] if direct else stage1_pid)
                if direct:  # stage1 has exited: init is our child from now on
                    wait_status(stage1_pid)
            elif msg.get("tty") and fds and proc is not None:
                proc.pty_master = fds[0]
            elif "error" in msg:
                error = msg
                for fd in fds:
                    os.close(fd)
    except BaseException:
        cg.kill_all()
        cg.destroy()
        raise
    finally:
        parent_sock.close()
        if filter_program is not None:
            filter_program.release()
    if error is not None or proc is None:
        wait_status(proc.waiter if proc is not None else stage1_pid)
        cg.destroy()
        if error is None:
            raise SandboxError(f"container {container_id}: the sandbox exited before starting the process")
        if error.get("code") in (126, 127):
            raise ExecFailed(error["error"], error["code"])
        raise SandboxError(error["error"])
    return proc


def _fileno(stream, default: int) -> int:
    if stream is None:
        return default
    if isinstance(stream, int):
        return stream
    return stream.fileno()


def execute(spec: Spec | dict, *, container_id: str, state_dir: str | None = None, stdin=None, stdout=None,
            stderr=None, forward_signals: bool = True) -> int:
    """Run ``spec`` in the foreground: :func:`start`, then :func:`foreground`; the exit code.

    This is the builder's entry for RUN steps: give a spec whose root is an :class:`OverlayMount`
    target and whose ``linux.namespaces`` has no ``network`` entry (host networking), e.g.
    ``make_spec(cfg, RunOptions(network="host", ...), rootfs=target, etc_dir=...)``. The cgroup is
    removed before it returns; nothing of the container is left but the overlay's upper dir.
    ``forward_signals`` forwards the caller's SIGINT/SIGTERM/... to the container; Python allows signal
    handlers only in the main thread, so from another thread (parallel build stages) it is skipped.
    """
    spec = as_spec(spec)
    stdin_fd, stdout_fd = _fileno(stdin, 0), _fileno(stdout, 1)
    import threading

    if not forward_signals or threading.current_thread() is not threading.main_thread():
        proc = start(spec, container_id=container_id, state_dir=state_dir, stdin=stdin, stdout=stdout, stderr=stderr)
        return foreground(proc, stdin_fd=stdin_fd, stdout_fd=stdout_fd)
    with SignalForwarder(stdin_fd) as fwd:
        proc = start(spec, container_id=container_id, state_dir=state_dir, stdin=stdin, stdout=stdout, stderr=stderr)
        fwd.attach(proc)
        return foreground(proc, stdin_fd=stdin_fd, stdout_fd=stdout_fd)


def cleanup(container_id: str, state_dir: str | None = None) -> None:
    """Remove what a crashed run of ``container_id`` may have left: its cgroup and processes."""
    cg = cgroups.open_existing(container_id)
    if cg is not None:
        cg.kill_all()
        cg.destroy()
