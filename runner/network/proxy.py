"""Userspace port publishing: what ``docker-proxy`` does, for TCP and UDP, in one epoll loop.

``PortProxy.bind(mappings, target_ip)`` binds every host port up front (so a busy port is an error
before the container starts), then ``serve()``/``start()`` forwards:

- TCP: each accepted connection gets a non-blocking connect to ``target_ip:container_port`` and two
  pipes; bytes move socket -> pipe -> socket with ``splice(2)`` and never enter Python. Half-close is
  propagated with ``shutdown(SHUT_WR)``.
- UDP: one connected upstream socket per client address; replies go back from the published port.
  Flows idle for ``udp_timeout`` seconds are dropped.

``close()`` stops the loop and closes every socket, so the host ports are free when it returns.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import threading
import time
from dataclasses import replace
from collections.abc import Iterable

from ..shimproxy import Pump, accept_fd, dial_tcp, dial_udp
from .errors import NetworkError, PortInUse
from .publish import PortMapping

__all__ = ["PortProxy"]


def _family(ip: str) -> int:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def _connected(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
        return True
    except OSError:          # ENOTCONN: the handshake is still under way
        return False


class _TcpFlow:
    __slots__ = ("client", "upstream", "up", "down", "connected")

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client, self.upstream = client, upstream
        self.up = self.down = None
        self.connected = False

    def start_pumps(self) -> None:
        self.up = Pump(self.client, self.upstream)
        self.down = Pump(self.upstream, self.client)
        self.connected = True

    def interest(self, sock: socket.socket) -> int:
        if not self.connected:
            return selectors.EVENT_WRITE if sock is self.upstream else 0
        ev = 0
        src_pump, dst_pump = (self.up, self.down) if sock is self.client else (self.down, self.up)
        if not src_pump.eof and src_pump.pending < src_pump.cap:
            ev |= selectors.EVENT_READ
        if dst_pump.pending:
            ev |= selectors.EVENT_WRITE
        return ev

    @property
    def finished(self) -> bool:
        return self.connected and self.up.done and self.down.done

    def close(self) -> None:
        for pump in (self.up, self.down):
            if pump is not None:
                pump.close()
        self.client.close()
        self.upstream.close()


class _UdpFlow:
    __slots__ = ("listener", "client", "upstream", "last")

    def __init__(self, listener: socket.socket, client: tuple, upstream: socket.socket) -> None:
        self.listener, self.client, self.upstream = listener, client, upstream
        self.last = time.monotonic()


def _unprivileged_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1024


def _bind_first_free(m: PortMapping) -> socket.socket:
    """A listening (TCP) or bound (UDP) non-blocking socket on the first free port of ``m``'s host
    ports; :class:`PortInUse` when every one is taken."""
    kind = socket.SOCK_STREAM if m.protocol == "tcp" else socket.SOCK_DGRAM
    for port in m.candidates:
        sock = socket.socket(_family(m.host_ip), kind | socket.SOCK_CLOEXEC)
        try:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if _family(m.host_ip) == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((m.host_ip, port))
            if kind == socket.SOCK_STREAM:
                sock.listen(1024)
            sock.setblocking(False)
            return sock
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                continue
            if exc.errno == errno.EACCES and port < _unprivileged_start():
                raise NetworkError(f"host port {m.host_ip}:{port}/{m.protocol}: ports below "
                                   f"{_unprivileged_start()} need root (rootless: publish a higher port, or "
                                   "lower the sysctl net.ipv4.ip_unprivileged_port_start)") from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise NetworkError(f"host address {m.host_ip} for port {port}/{m.protocol}: "
                                   "not an address of this host") from None
            raise NetworkError(f"bind {m.host_ip}:{port}/{m.protocol}: {exc.strerror}") from None
    if m.host_port_end:
        raise PortInUse(f"host ports {m.host_ip}:{m.host_port}-{m.host_port_end}/{m.protocol}: "
                        "every one is already in use")
    raise PortInUse(f"host port {m.host_ip}:{m.host_port}/{m.protocol} is already in use")


class PortProxy:
    """Forwards published host ports to ``target_ip``.

    Use :meth:`bind`, then either :meth:`register` into a caller's selector loop (every fd's
    ``key.data`` is a callable ``(fileobj, mask) -> None``, as the shim dispatches) or :meth:`serve` /
    :meth:`start` for a loop of its own; :meth:`close` frees the ports (also a context manager).
    """

    def __init__(self, target_ip: str, listeners: list[tuple[PortMapping, socket.socket]],
                 udp_timeout: float = 60.0) -> None:
        self.target_ip = target_ip
        self._listeners = listeners
        self.udp_timeout = udp_timeout
        self._sel: selectors.BaseSelector | None = None
        self._tcp: dict[socket.socket, _TcpFlow] = {}
        self._udp: dict[tuple, _UdpFlow] = {}
        self._udp_up: dict[socket.socket, _UdpFlow] = {}
        self._next_sweep = 0.0
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._closing = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def bind(cls, mappings: Iterable[PortMapping], target_ip: str, *, udp_timeout: float = 60.0) -> "PortProxy":
        """Bind every host port now; raise :class:`PortInUse` naming the first busy one (nothing stays bound)."""
        bound: list[tuple[PortMapping, socket.socket]] = []
        try:
            for m in mappings:
                sock = _bind_first_free(m)
                bound.append((replace(m, host_port=sock.getsockname()[1], host_port_end=0), sock))
        except BaseException:
            for _, s in bound:
                s.close()
            raise
        return cls(target_ip, bound, udp_timeout)

    @classmethod
    def adopt(cls, mappings: Iterable[PortMapping], target_ip: str, fds: Iterable[int], *,
              udp_timeout: float = 60.0) -> "PortProxy":
        """A proxy over listeners bound before (:meth:`hand_over`'s fds, in ``mappings``' order)."""
        listeners = []
        for m, fd in zip(mappings, fds):
            sock = socket.socket(fileno=fd)
            os.set_inheritable(fd, False)
            sock.setblocking(False)
            listeners.append((m, sock))
        return cls(target_ip, listeners, udp_timeout)

    def hand_over(self) -> list[tuple[int, str, int]]:
        """``(fd, protocol, container port)`` of every listener, inheritable across ``execve``, for the
        shim loop's relay (:mod:`runner.shimproxy`); this proxy must not be used afterwards."""
        out = []
        for m, sock in self._listeners:
            os.set_inheritable(sock.fileno(), True)
            out.append((sock.fileno(), m.protocol, m.container_port))
        return out

    @property
    def mappings(self) -> tuple[PortMapping, ...]:
        """The mappings with the host ports actually bound."""
        return tuple(m for m, _ in self._listeners)

    # -- running ------------------------------------------------------------------------------
    def register(self, sel: selectors.BaseSelector) -> None:
        """Add the listening sockets to ``sel``; flows register themselves as they come and go."""
        self._sel = sel
        for m, sock in self._listeners:
            if m.protocol == "tcp":
                sel.register(sock, selectors.EVENT_READ, lambda s, mask, m=m: self._accept(s, m))
            else:
                sel.register(sock, selectors.EVENT_READ, lambda s, mask, m=m: self._udp_in(s, m))

    def start(self) -> "PortProxy":
        """Serve on a daemon thread of its own."""
        self._thread = threading.Thread(target=self.serve, name="pybuild-port-proxy", daemon=True)
        self._thread.start()
        return self

    def serve(self) -> None:
        """Run a private selector loop until :meth:`close`."""
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, lambda fd, mask: None)
        self.register(sel)
        try:
            while not self._closing:
                for key, mask in sel.select(timeout=1.0):
                    if self._closing:
                        break
                    key.data(key.fileobj, mask)
                self._sweep_udp()
        finally:
            self._release()
            sel.close()

    # -- TCP ----------------------------------------------------------------------------------
    def _accept(self, listener: socket.socket, m: PortMapping) -> None:
        for _ in range(64):
            cfd = accept_fd(listener)
            if cfd is None:
                return
            client = socket.socket(fileno=cfd)
            dialed = dial_tcp(client, _family(self.target_ip), (self.target_ip, m.container_port), socket.socket)
            if dialed is None:
                continue
            up, err = dialed
            flow = _TcpFlow(client, up)
            self._tcp[client] = self._tcp[up] = flow
            if err == 0 or _connected(up):      # a local peer has usually answered already: no epoll round
                self._tcp_event(up, 0)
            else:
                self._sel.register(up, selectors.EVENT_WRITE, self._tcp_event)

    def _tcp_event(self, sock: socket.socket, mask: int) -> None:
        flow = self._tcp.get(sock)
        if flow is None:
            return
        try:
            if not flow.connected:
                err = flow.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, os.strerror(err))
                flow.start_pumps()
            flow.up.step()
            flow.down.step()
        except OSError:
            # a reset/refused peer, or no fds for the pipes: this flow ends, the others (and the
            # shim whose loop runs us) carry on
            self._tcp_drop(flow)
            return
        if flow.finished:
            self._tcp_drop(flow)
            return
        sel = self._sel
        for s in (flow.client, flow.upstream):
            ev = flow.interest(s)
            key = sel.get_map().get(s)
            if key is None:
                if ev:
                    sel.register(s, ev, self._tcp_event)
            elif ev == 0:
                sel.unregister(s)
            elif key.events != ev:
                sel.modify(s, ev, self._tcp_event)

    def _tcp_drop(self, flow: _TcpFlow) -> None:
        for s in (flow.client, flow.upstream):
            if self._sel is not None and s in self._sel.get_map():
                self._sel.unregister(s)
            self._tcp.pop(s, None)
        flow.close()

    # -- UDP ----------------------------------------------------------------------------------
    def _udp_in(self, listener: socket.socket, m: PortMapping) -> None:
        for _ in range(256):
            try:
                data, client = listener.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            key = (listener.fileno(), client)
            flow = self._udp.get(key)
            if flow is None:
                up = dial_udp(_family(self.target_ip), (self.target_ip, m.container_port), socket.socket)
                if up is None:
                    continue
                flow = _UdpFlow(listener, client, up)
                self._udp[key] = flow
                self._udp_up[up] = flow
                self._sel.register(up, selectors.EVENT_READ, self._udp_back)
            flow.last = time.monotonic()
            try:
                flow.upstream.send(data)
            except OSError:  # ICMP unreachable from an earlier datagram, or a full buffer: drop it
                pass
        self._sweep_udp()

    def _udp_back(self, up: socket.socket, mask: int) -> None:
        flow = self._udp_up.get(up)
        if flow is None:
            return
        for _ in range(256):
            try:
                data = up.recv(65535)
            except OSError:  # nothing more queued, or ICMP unreachable reported on the upstream socket
                return
            flow.last = time.monotonic()
            try:
                flow.listener.sendto(data, flow.client)
            except OSError:  # the client's buffer is full or it went away: UDP may drop
                return

    def _sweep_udp(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + 1.0
        for flow in [f for f in self._udp.values() if now - f.last > self.udp_timeout]:
            self._udp_drop(flow)

    def _udp_drop(self, flow: _UdpFlow) -> None:
        if self._sel is not None and flow.upstream in self._sel.get_map():
            self._sel.unregister(flow.upstream)
        self._udp_up.pop(flow.upstream, None)
        self._udp.pop((flow.listener.fileno(), flow.client), None)
        flow.upstream.close()

    # -- stopping -----------------------------------------------------------------------------
    def _release(self) -> None:
        """Close every flow and listener (on the serving thread, or the caller's when registered)."""
        for flow in {id(f): f for f in self._tcp.values()}.values():
            self._tcp_drop(flow)
        for flow in list(self._udp.values()):
            self._udp_drop(flow)
        for _, sock in self._listeners:
            if self._sel is not None and sock in self._sel.get_map():
                self._sel.unregister(sock)
            sock.close()

    def close(self) -> None:
        """Stop forwarding and close every socket; the host ports are free when this returns."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            if self._thread is not threading.current_thread():
                self._thread.join(timeout=10)
        else:
            self._release()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> "PortProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
