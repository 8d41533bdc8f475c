"""How the shim (:mod:`runner.shim`) launches a run of its container, and cleans up after it.

:class:`SandboxProcess` mounts the overlay root and starts the sandbox; :class:`HostProcess` is the
test-only launcher; :class:`ResumedProcess` stands for a run that the shim loop
(:mod:`runner.shimloop`) supervised and handed back, of which only the cleanup is left. Also the
shim's process plumbing: :func:`daemonize`, :func:`read_line`.
"""

from __future__ import annotations

import os

from .ocispec import Spec
from .records import ContainerConfig
from .resources import mount_rootfs
from .state import ContainerStore

__all__ = ["HostProcess", "SandboxProcess", "ResumedProcess", "daemonize", "detach", "read_line", "shim_env"]


class HostProcess:
    """Test-only launcher: runs ``spec.process`` directly on the host, no isolation.

    Selected by ``config.launcher == "host"``, which only library callers (tests of the shim
    mechanics) can set; the CLI never does.
    """

    def __init__(self, spec: Spec, stdout: int, stderr: int) -> None:
        proc = spec.process
        env = proc.env_map()
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
                os.dup2(stdout, 1)
                os.dup2(stderr, 2)
                os.closerange(3, 65536)
                os.chdir(proc.cwd or "/")
                os.execvpe(proc.args[0], proc.args, env)
            finally:
                os._exit(127)
        self.pid = pid
        self.wait_pid = pid

    overlay_mounted = False

    def oom_killed(self) -> bool:
        return False

    def oom_file(self) -> None:
        return None

    def cgroup_paths(self) -> list[str]:
        return []

    def cleanup(self) -> None:
        pass


class ResumedProcess:
    """A run the shim loop (:mod:`runner.shimloop`) supervised and handed back: only its cleanup is
    left (what :meth:`SandboxProcess.cleanup` does, from the record: cgroup, then the overlay if
    this run mounted it)."""

    def __init__(self, config: ContainerConfig, store: ContainerStore, overlay: bool) -> None:
        self._config, self._store, self._overlay = config, store, overlay

    def cleanup(self) -> None:
        from .resources import cleanup_cgroup, rootfs_paths

        if self._config.launcher == "host":
            return
        try:
            cleanup_cgroup(self._store, self._config)
        finally:
            if self._overlay:
                from .rootfs import OverlayMount

                paths = rootfs_paths(self._store, self._config.id)
                overlay = OverlayMount(list(self._config.lowerdirs), paths.upper, paths.work, paths.rootfs)
                overlay.mounted = True
                overlay.unmount()


class SandboxProcess:
    """The real launcher: mount the overlay rootfs (host side), then ``runner.sandbox.start``."""

    def __init__(self, config: ContainerConfig, store: ContainerStore, stdout: int, stderr: int) -> None:
        from . import sandbox

        self._sandbox = sandbox
        self._cid = config.id
        self._state_dir = store.state_dir
        self._overlay = mount_rootfs(store, config)        # overlay + volumes, or nothing on failure
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._proc = sandbox.start(config.spec, container_id=config.id, state_dir=store.state_dir,
                                       stdin=devnull, stdout=stdout, stderr=stderr)
        except BaseException:
            if self._overlay is not None:
                self._overlay.unmount()
            raise
        finally:
            os.close(devnull)
        self.pid = self._proc.pid              # the container's PID 1 (signals go here)
        self.pty_master = self._proc.pty_master  # set with process.terminal (run -d -t)
        # our child (stage1 or a waiter): exits with PID 1's status
        self.wait_pid = getattr(self._proc, "waiter", None) or getattr(self._proc, "stage1")

    def oom_killed(self) -> bool:
        try:
            return self._proc.oom_killed()
        except OSError:
            return False

    def oom_file(self) -> str | None:
        """The cgroup file whose ``oom_kill`` count :meth:`oom_killed` reads (for the shim loop)."""
        cg = getattr(self._proc, "cgroup", None)
        path = cg.path_for("memory") if cg is not None else None
        if path is None:
            return None
        return os.path.join(path, "memory.events" if cg.version == "v2" else "memory.oom_control")

    @property
    def overlay_mounted(self) -> bool:
        return self._overlay is not None

    def cgroup_paths(self) -> list[str]:
        cg = getattr(self._proc, "cgroup", None)
        return list(cg.paths) if cg is not None else []

    def cleanup(self) -> None:
        try:
            self._sandbox.cleanup(self._cid, self._state_dir)
        finally:
            if self._overlay is not None:
                self._overlay.unmount()


def daemonize() -> None:
    """Classic double fork: the first child calls setsid, the grandchild carries on; both parents exit."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    os.umask(0o022)


def detach() -> int:
    """:func:`daemonize`, with stdin and stdout on ``/dev/null``; returns that descriptor (the shim's
    stderr goes to its container's ``shim.log`` once the id is known)."""
    daemonize()
    nullfd = os.open(os.devnull, os.O_RDWR)
    os.dup2(nullfd, 0)
    os.dup2(nullfd, 1)
    return nullfd


def shim_env() -> dict[str, str]:
    """What a shim's environment adds for the interpreters it execs with ``-S`` (no site module, so
    no scan of site-packages' ``.pth`` files nor an editable install's import hook): this process's
    module path as ``PYTHONPATH``, the directory that holds ``runner`` first."""
    import sys

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return {"PYTHONPATH": os.pathsep.join(dict.fromkeys([here] + [p for p in sys.path if p]))}


def read_line(fd: int) -> str:
    buf = b""
    while not buf.endswith(b"\n"):
        try:
            chunk = os.read(fd, 128)
        except InterruptedError:
            continue
        if not chunk:
            break
        buf += chunk
    return buf.decode(errors="replace").strip()
