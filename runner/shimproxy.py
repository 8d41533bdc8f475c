"""Published ports in the resident shim loop (:mod:`runner.shimloop`): the relay of
:class:`runner.network.proxy.PortProxy`, for sockets the full shim bound and handed over.

Same behaviour as ``PortProxy`` (whose tests and benchmark describe it): TCP flows move bytes
socket -> pipe -> socket with ``splice(2)`` and propagate half-close (:class:`Pump`, which
``PortProxy`` imports from here: the light module serves the heavy one); UDP keeps one connected upstream
socket per client, dropped after ``udp_timeout`` idle seconds. It lives outside ``runner.network``
because that package's ``__init__`` loads the whole network room, and it imports ``_socket`` rather
than :mod:`socket` (which loads enum, selectors and more: about 1 MiB in every shim).

``reactor.watch(fd, events, handler)`` (``select.EPOLL*`` bits; 0 stops watching) is the loop's;
``handler(fd, events)`` is called when ready.
"""

import errno
import fcntl
import os
import time

import _socket
import select

__all__ = ["Relay", "Pump", "splice_pipe", "accept_fd", "dial_tcp", "dial_udp"]

PIPE_SIZE = 1 << 20
CHUNK = 1 << 20
SPLICE_FLAGS = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
IN, OUT = select.EPOLLIN, select.EPOLLOUT


def splice_pipe() -> "tuple[int, int, int]":
    """A non-blocking pipe, enlarged when allowed; returns (read fd, write fd, capacity)."""
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:  # capped by /proc/sys/fs/pipe-max-size for unprivileged callers; default size works
        pass
    return r, w, fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)


class Pump:
    """One direction of a TCP flow: src socket -> pipe -> dst socket (the relay's here and
    :class:`runner.network.proxy.PortProxy`'s; any objects with ``fileno()`` and ``shutdown()``)."""

    __slots__ = ("src", "dst", "r", "w", "cap", "pending", "eof", "done")

    def __init__(self, src, dst) -> None:
        self.src, self.dst = src, dst
        self.r, self.w, self.cap = splice_pipe()
        self.pending = 0
        self.eof = self.done = False

    def step(self) -> None:
        """Move as much as possible without blocking; raises OSError when a side is gone."""
        for _ in range(16):  # bounded so one busy flow cannot starve the others
            moved = False
            if not self.eof and self.pending < self.cap:
                try:
                    n = os.splice(self.src.fileno(), self.w, CHUNK, flags=SPLICE_FLAGS)
                except BlockingIOError:
                    n = -1
                if n == 0:
                    self.eof = True
                elif n > 0:
                    self.pending += n
                    moved = True
            if self.pending:
                try:
                    n = os.splice(self.r, self.dst.fileno(), self.pending, flags=SPLICE_FLAGS)
                except BlockingIOError:
                    n = 0
                if n > 0:
                    self.pending -= n
                    moved = True
            if not moved:
                break
        if self.eof and not self.pending and not self.done:
            self.done = True
            try:
                self.dst.shutdown(_socket.SHUT_WR)
            except OSError as exc:
                if exc.errno != errno.ENOTCONN:
                    raise

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


def accept_fd(listener) -> "int | None":
    """The (close-on-exec) fd of one connection accepted on the non-blocking ``listener``; None when
    there is none now, or no fd for it, or it was aborted (stop accepting until the next event)."""
    try:
        return listener._accept()[0]
    except (BlockingIOError, InterruptedError):
        return None
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ECONNABORTED):
            return None
        raise


def dial_tcp(client, family: int, target: tuple, make=_socket.socket):
    """Make the accepted ``client`` non-blocking with ``TCP_NODELAY`` and start a non-blocking connect
    of a new upstream socket (``make(family, type)``: ``_socket.socket`` or :class:`socket.socket`)
    to ``target``: ``(upstream, 0 | EINPROGRESS)``, or None with both closed when that fails (out of
    fds, the client gone, the connect refused at once: refuse this one, keep serving)."""
    try:
        client.setblocking(False)
        client.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        up = make(family, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC | _socket.SOCK_NONBLOCK)
    except OSError:
        client.close()
        return None
    up.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
    err = up.connect_ex(target)
    if err not in (0, errno.EINPROGRESS):
        client.close()
        up.close()
        return None
    return up, err


def dial_udp(family: int, target: tuple, make=_socket.socket):
    """A non-blocking UDP socket connected to ``target`` (``make`` as :func:`dial_tcp`'s), or None when
    that fails (out of fds: the datagram is dropped, as a full queue would)."""
    try:
        up = make(family, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC | _socket.SOCK_NONBLOCK)
    except OSError:
        return None
    try:
        up.connect(target)
    except OSError:
        up.close()
        return None
    return up


class _Flow:
    __slots__ = ("client", "upstream", "up", "down", "connected", "watched")

    def __init__(self, client, upstream) -> None:
        self.client, self.upstream = client, upstream
        self.up = self.down = None
        self.connected = False
        self.watched: dict[int, int] = {}

    def interest(self, sock) -> int:
        if not self.connected:
            return OUT if sock is self.upstream else 0
        src, dst = (self.up, self.down) if sock is self.client else (self.down, self.up)
        ev = IN if not src.eof and src.pending < src.cap else 0
        return ev | (OUT if dst.pending else 0)


class Relay:
    """Forward the handed-over listeners: ``listeners`` are ``(fd, protocol, container_port)``."""

    def __init__(self, reactor, target_ip: str, listeners: list, udp_timeout: float = 60.0) -> None:
        self.reactor, self.target_ip, self.udp_timeout = reactor, target_ip, udp_timeout
        self.family = _socket.AF_INET6 if ":" in target_ip else _socket.AF_INET
        self.listeners = []
        self._tcp: dict[int, tuple[_Flow, object]] = {}       # fd -> (flow, its socket)
        self._udp: dict[tuple, list] = {}                     # (listener fd, client) -> [upstream, last, listener, client]
        self._udp_up: dict[int, list] = {}
        self._next_sweep = 0.0
        for fd, protocol, port in listeners:
            sock = _socket.socket(fileno=fd)
            sock.setblocking(False)
            self.listeners.append(sock)
            handler = self._accepter(sock, port) if protocol == "tcp" else self._udp_in(sock, port)
            reactor.watch(fd, IN, handler)

    # -- TCP
    def _accepter(self, listener, port: int):
        def accept(fd: int, events: int) -> None:
            for _ in range(64):
                cfd = accept_fd(listener)
                if cfd is None:
                    return
                client = _socket.socket(fileno=cfd)
                dialed = dial_tcp(client, self.family, (self.target_ip, port))
                if dialed is None:
                    continue
                up = dialed[0]
                flow = _Flow(client, up)
                self._tcp[client.fileno()] = (flow, client)
                self._tcp[up.fileno()] = (flow, up)
                self._event(up.fileno(), OUT)
        return accept

    def _event(self, fd: int, events: int) -> None:
        entry = self._tcp.get(fd)
        if entry is None:
            return
        flow = entry[0]
        try:
            if not flow.connected:
                try:
                    flow.upstream.getpeername()
                except OSError:              # still connecting, or refused
                    err = flow.upstream.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
                    if err:
                        raise OSError(err, os.strerror(err)) from None
                    self._watch(flow, flow.upstream, OUT)
                    return
                flow.up, flow.down = Pump(flow.client, flow.upstream), Pump(flow.upstream, flow.client)
                flow.connected = True
            flow.up.step()
            flow.down.step()
        except OSError:
            self._drop(flow)
            return
        if flow.up.done and flow.down.done:
            self._drop(flow)
            return
        for s in (flow.client, flow.upstream):
            self._watch(flow, s, flow.interest(s))

    def _watch(self, flow: _Flow, sock, ev: int) -> None:
        fd = sock.fileno()
        if flow.watched.get(fd, 0) != ev:
            self.reactor.watch(fd, ev, self._event)
            flow.watched[fd] = ev

    def _drop(self, flow: _Flow) -> None:
        for s in (flow.client, flow.upstream):
            fd = s.fileno()
            if flow.watched.get(fd):
                self.reactor.watch(fd, 0, None)
            self._tcp.pop(fd, None)
        for pump in (flow.up, flow.down):
            if pump is not None:
                pump.close()
        flow.client.close()
        flow.upstream.close()

    # -- UDP
    def _udp_in(self, listener, port: int):
        def receive(fd: int, events: int) -> None:
            for _ in range(256):
                try:
                    data, client = listener.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    break
                key = (fd, client)
                flow = self._udp.get(key)
                if flow is None:
                    up = dial_udp(self.family, (self.target_ip, port))
                    if up is None:
                        continue
                    flow = self._udp[key] = self._udp_up[up.fileno()] = [up, 0.0, listener, client]
                    self.reactor.watch(up.fileno(), IN, self._udp_back)
                flow[1] = time.monotonic()
                try:
                    flow[0].send(data)
                except OSError:
                    pass
            self.sweep()
        return receive

    def _udp_back(self, fd: int, events: int) -> None:
        flow = self._udp_up.get(fd)
        if flow is None:
            return
        for _ in range(256):
            try:
                data = flow[0].recv(65535)
            except OSError:
                return
            flow[1] = time.monotonic()
            try:
                flow[2].sendto(data, flow[3])
            except OSError:
                return

    def sweep(self) -> None:
        """Drop UDP flows idle for ``udp_timeout`` seconds (at most once a second)."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + 1.0
        for key, flow in [(k, f) for k, f in self._udp.items() if now - f[1] > self.udp_timeout]:
            fd = flow[0].fileno()
            self.reactor.watch(fd, 0, None)
            del self._udp[key], self._udp_up[fd]
            flow[0].close()

    def hand_back(self) -> "list[int]":
        """Stop forwarding (flows are closed) and return the listeners' fds, inheritable, for the full shim."""
        for flow in {id(f): f for f, _ in self._tcp.values()}.values():
            self._drop(flow)
        for key in list(self._udp):
            flow = self._udp.pop(key)
            self.reactor.watch(flow[0].fileno(), 0, None)
            flow[0].close()
        self._udp_up.clear()
        fds = []
        for sock in self.listeners:
            self.reactor.watch(sock.fileno(), 0, None)
            fd = sock.detach()
            os.set_inheritable(fd, True)
            fds.append(fd)
        return fds
