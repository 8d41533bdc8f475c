"""Outbound traffic for rootless networks: the one adapter around ``pasta`` (Debian's ``passt``) and
``slirp4netns``.

A rootless pybuild has no say over the host's network namespace (no veth to the host, no host bridge,
no iptables there), so its bridges live in a network namespace of its own (:mod:`.rootless`) and one
of these user-mode tools, running in the host's namespace, gives that namespace a tap device whose
traffic it carries out through ordinary sockets of the user.

* :func:`find` picks the tool: ``$PYBUILD_ROOTLESS_NET`` (``pasta`` or ``slirp4netns``) when set,
  else pasta when installed, else slirp4netns; None when neither is.
* :func:`start` attaches it to a namespace given by path and returns once the tap is configured
  (pasta daemonizes when ready and writes its pid file; slirp4netns writes ``1`` on ``--ready-fd``).
* :func:`stop` ends it (by pid, checked against its start time so a recycled pid is never signalled).

The tool runs as the caller (root in the user namespace when rootless), opens ``/dev/net/tun`` inside
the target namespace, and must therefore find that device usable (``scripts/install.sh`` makes it
0666). From inside the namespace, :attr:`UserNet.host_loopback` reaches the host's 127.0.0.1 (as
Docker's ``host-gateway``); no host port is forwarded into the namespace by the tool: published ports
are pybuild's own proxy (:func:`runner.network.start_proxies`).
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from dataclasses import asdict

from layers.value import frozen

from .errors import NetworkError

__all__ = ["Tool", "UserNet", "TOOLS", "ENV", "find", "start", "stop", "alive", "describe"]

ENV = "PYBUILD_ROOTLESS_NET"
TOOLS = ("pasta", "slirp4netns")
READY_TIMEOUT = 10.0
#: the address slirp4netns gives the host's loopback inside the namespace (its ``10.0.2.2`` gateway)
SLIRP_HOST = "10.0.2.2"


@frozen
class Tool:
    """An installed user-mode networking tool."""

    name: str            # "pasta" or "slirp4netns"
    path: str

    @property
    def needs_nat(self) -> bool:
        """Bridged containers behind slirp4netns need a masquerade inside the namespace (without one their
        connections time out: libslirp serves its own guest address, 10.0.2.100); pasta works at layer 4
        and takes any source address."""
        return self.name == "slirp4netns"


@frozen
class UserNet:
    """A running tool attached to a namespace: what :func:`stop` and crash recovery need."""

    tool: str
    path: str
    pid: int
    start_time: int          # /proc/PID/stat field 22: tells the pid apart from a recycled one
    netns: str
    host_loopback: str       # the address that reaches the host's 127.0.0.1 from inside

    @property
    def needs_nat(self) -> bool:
        return Tool(self.tool, self.path).needs_nat

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "UserNet":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")


def find(preferred: str | None = None) -> Tool | None:
    """The tool to use: ``preferred`` (or ``$PYBUILD_ROOTLESS_NET``) if given, else the first of
    :data:`TOOLS` installed. Raises :class:`NetworkError` when the asked-for tool is unknown or missing."""
    preferred = preferred or os.environ.get(ENV) or None
    if preferred is not None:
        if preferred not in TOOLS:
            raise NetworkError(f"{ENV}={preferred}: expected one of {', '.join(TOOLS)}")
        path = _which(preferred)
        if path is None:
            raise NetworkError(f"rootless networking: {preferred} is not installed "
                               f"(Debian: apt-get install {'passt' if preferred == 'pasta' else preferred})")
        return Tool(preferred, path)
    for name in TOOLS:
        path = _which(name)
        if path:
            return Tool(name, path)
    return None


def describe() -> str:
    """For ``pybuild info``: which tool rootless networks use, or why none can."""
    try:
        tool = find()
    except NetworkError as exc:
        return str(exc)
    if tool is None:
        return "none: install passt (pasta) or slirp4netns for rootless bridge networks"
    return f"{tool.name} ({tool.path})"


def _start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    return int(fields[19]) if fields[0] != b"Z" else None


def alive(net: UserNet) -> bool:
    """True while the recorded tool process still runs (same pid, same start time, not a zombie)."""
    return _start_time(net.pid) == net.start_time


def _gateway(netns_path: str) -> str:
    """pasta's default gateway inside the namespace: it copies the host's, and maps it to the host's
    loopback."""
    from . import netns
    from .rtnl import Rtnl

    def read() -> str | None:
        with Rtnl() as rt:
            for dst, dst_len, _oif, gw in rt.routes():
                if dst_len == 0 and gw:
                    return gw
        return None

    gw = netns.run_in(netns_path, read)
    if gw is None:
        raise NetworkError("pasta: no default route in the rootless network namespace "
                           "(the host needs an IPv4 default route for pasta to copy)")
    return gw


def start(tool: Tool, netns_path: str, log_path: str) -> UserNet:
    """Attach ``tool`` to the network namespace at ``netns_path`` (configured: address, default route,
    no port forwarding) and return once it is ready; its messages go to ``log_path``. The tool outlives
    the caller (its own session); :func:`stop` ends it."""
    import subprocess

    log = os.open(log_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)     # this run's only
    try:
        if tool.name == "pasta":
            return _start_pasta(tool, netns_path, log, subprocess)
        return _start_slirp(tool, netns_path, log, subprocess)
    finally:
        os.close(log)


def _failed(tool: Tool, log_fd: int, what: str) -> NetworkError:
    """The error for a tool that did not come up, with the last line it wrote."""
    try:
        tail = os.pread(log_fd, 2000, max(0, os.fstat(log_fd).st_size - 2000)).decode(errors="replace")
    except OSError:
        tail = ""
    lines = [ln for ln in tail.splitlines() if ln.strip() and "syslog" not in ln and not ln.startswith("WARNING")]
    detail = "; ".join(ln.strip() for ln in lines[-2:]) or "no message"     # slirp4netns: cause, then "child failed"
    return NetworkError(f"rootless networking: {tool.name} {what}: {detail}")


def _start_pasta(tool: Tool, netns_path: str, log: int, subprocess) -> UserNet:
    pidfile = netns_path + ".pasta.pid"
    try:
        os.unlink(pidfile)
    except FileNotFoundError:
        pass
    # -t/-u/-T/-U none: pasta's default ("auto") would forward every port bound in either namespace
    argv = [tool.path, "--config-net", "--quiet", "-t", "none", "-u", "none", "-T", "none", "-U", "none",
            "--pid", pidfile, "--netns", netns_path]
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, timeout=READY_TIMEOUT,
                              start_new_session=True)
    except subprocess.TimeoutExpired:
        raise _failed(tool, log, f"not ready after {READY_TIMEOUT:g} s") from None
    except OSError as exc:
        raise NetworkError(f"rootless networking: start {tool.path}: {exc.strerror}") from None
    # pasta forks into the background once the tap is configured, then the parent exits 0
    if proc.returncode != 0:
        raise _failed(tool, log, f"exited with status {proc.returncode}")
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
        os.unlink(pidfile)
    except (OSError, ValueError) as exc:
        raise NetworkError(f"rootless networking: pasta left no pid file {pidfile}: {exc}") from None
    started = _start_time(pid)
    if started is None:
        raise _failed(tool, log, "ended right after it started")
    net = UserNet(tool.name, tool.path, pid, started, netns_path, host_loopback="")
    try:
        return UserNet(**{**net.to_dict(), "host_loopback": _gateway(netns_path)})
    except BaseException:
        stop(net)
        raise


def _start_slirp(tool: Tool, netns_path: str, log: int, subprocess) -> UserNet:
    r, w = os.pipe2(os.O_CLOEXEC)
    # --disable-host-loopback is left out on purpose: 10.0.2.2 reaches the host's 127.0.0.1 (host-gateway)
    argv = [tool.path, "--configure", "--mtu=65520", "--enable-sandbox", "--enable-seccomp",
            f"--ready-fd={w}", "--netns-type=path", netns_path, "tap0"]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(w,),
                                start_new_session=True)
    except OSError as exc:
        os.close(r)
        os.close(w)
        raise NetworkError(f"rootless networking: start {tool.path}: {exc.strerror}") from None
    os.close(w)
    try:
        ready = _read_ready(r, proc)
    finally:
        os.close(r)
    if ready != b"1":
        proc.kill()
        proc.wait()
        raise _failed(tool, log, f"did not get ready (exit status {proc.returncode})")
    started = _start_time(proc.pid)
    proc.returncode = 0     # it outlives this process: keep Popen's finaliser from waiting or warning
    if started is None:
        raise _failed(tool, log, "ended right after it started")
    return UserNet(tool.name, tool.path, proc.pid, started, netns_path, SLIRP_HOST)


def _read_ready(fd: int, proc) -> bytes:
    import select

    deadline = time.monotonic() + READY_TIMEOUT
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], min(left, 0.1))
        if ready:
            return os.read(fd, 1)
        if proc.poll() is not None:
            return b""
    return b""


def stop(net: UserNet, timeout: float = 5.0, *, wait: bool = True) -> bool:
    """End the tool of ``net`` if it still runs and, with ``wait``, wait (up to ``timeout``) until it
    has; True if it was running. SIGKILL: the tool keeps no state worth a clean exit, its namespace is
    going away (a SIGTERM costs pasta some 80 ms, the exit itself some 30 ms, which ``wait=False`` leaves
    to the kernel). A pid now used by another process is left alone."""
    if not alive(net):
        return False
    try:
        fd = os.pidfd_open(net.pid)
    except ProcessLookupError:
        return False
    try:
        if not alive(net):              # the pid was reused between the check and the open
            return False
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        if not wait:
            return True
        import select

        select.select([fd], [], [], timeout)    # readable once the process has ended
    finally:
        os.close(fd)
    _reap(net.pid)
    if alive(net):
        raise NetworkError(f"rootless networking: {net.tool} (pid {net.pid}) survives SIGKILL")
    return True


def _reap(pid: int) -> None:
    """Collect the tool if it is our own child (slirp4netns started by this very process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
