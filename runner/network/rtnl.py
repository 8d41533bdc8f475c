"""A small synchronous rtnetlink client: pyroute2's message classes over one plain netlink socket.

Why not ``pyroute2.IPRoute``: importing ``pyroute2`` runs the package ``__init__``, which imports
every netlink family the library supports (conntrack, ipvs, nl80211, ndb, ipdb...) and asyncio,
on which 0.9's ``IPRoute`` runs. That is ~180 ms in every ``pybuild run``/``rm`` on a bridge
network, most of what networking cost (``bench/load.py``). pybuild sends a dozen kinds of
rtnetlink request; pyroute2's ``ifinfmsg``/``ifaddrmsg``/``rtmsg`` encode and decode them and import
in ~25 ms, and the transport is the ~60 lines below. :func:`_load_messages` imports those three
modules without running the package ``__init__``; anything that later asks ``pyroute2`` for a
top-level name (``from pyroute2 import IPRoute``) still gets the full package.

Errors are :class:`RtnlError` (an ``OSError`` with the errno and the kernel's extended-ack text).
"""

from __future__ import annotations

import os
import socket
import struct
import sys

from layers.value import frozen

__all__ = ["Rtnl", "RtnlError", "Link", "IFF_UP"]

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
NLM_F_ACK_TLVS = 0x200
NLMSGERR_ATTR_MSG = 1

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26

IFF_UP = 0x1
AF_INET = socket.AF_INET
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RTN_UNICAST = 1
RT_SCOPE_UNIVERSE = 0

_HEADER = struct.Struct("=IHHII")      # nlmsghdr: length, type, flags, sequence, port id
_IFINFO = struct.Struct("=BxHiII")     # ifinfomsg: family, (pad), type, index, flags, change
IFLA_IFNAME = 3


def _load_messages():
    """pyroute2's rtnetlink message classes (see the module docstring for why not ``import pyroute2``).
    Cheap after the first call: the modules are in ``sys.modules``."""
    if "pyroute2" not in sys.modules:
        import importlib
        import importlib.util

        spec = importlib.util.find_spec("pyroute2")
        if spec is None:
            raise RtnlError(0, "pyroute2 is not installed")
        pkg = importlib.util.module_from_spec(spec)     # __path__ set, __init__ not run yet

        def __getattr__(name: str):
            if not name.startswith("__") and importlib.util.find_spec(f"pyroute2.{name}") is not None:
                return importlib.import_module(f"pyroute2.{name}")    # a submodule: ``from pyroute2 import config``
            # any other top-level name (``from pyroute2 import IPRoute``): run the package's own __init__, once
            del pkg.__dict__["__getattr__"]
            spec.loader.exec_module(pkg)
            return getattr(pkg, name)

        pkg.__getattr__ = __getattr__
        sys.modules["pyroute2"] = pkg
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    return ifinfmsg, ifaddrmsg, rtmsg


class RtnlError(OSError):
    """The kernel refused a request: ``errno`` and, when it said more, its message."""


@frozen
class Link:
    """What pybuild reads of a network interface."""

    index: int
    name: str
    up: bool
    alias: str | None
    master: int | None


class Rtnl:
    """One ``NETLINK_ROUTE`` socket in the network namespace it was opened in (a socket opened on a
    thread that joined another namespace keeps talking to that one). Context manager."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        try:
            self._sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            self._sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        except OSError:      # kernels before 4.12: errors come without their text
            pass
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    # pyroute2's message classes, loaded at first use: a shim's teardown deletes its veth with a
    # hand-made message and never pays for them (~45 ms)
    @property
    def ifinfmsg(self):
        return _load_messages()[0]

    @property
    def ifaddrmsg(self):
        return _load_messages()[1]

    @property
    def rtmsg(self):
        return _load_messages()[2]

    def __enter__(self) -> "Rtnl":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transport --------------------------------------------------------------------------------
    def request(self, msg, kind: int, flags: int = 0) -> list:
        """Send ``msg`` as a ``kind`` request; return the decoded replies (a dump's parts, or the one
        answer of a get). Waits for the kernel's ack; raises :class:`RtnlError` on an error reply."""
        self._seq += 1
        dump = flags & NLM_F_DUMP == NLM_F_DUMP
        msg["header"] = {"type": kind, "flags": NLM_F_REQUEST | flags | (0 if dump else NLM_F_ACK),
                         "sequence_number": self._seq, "pid": 0}
        msg.encode()
        return self._exchange(msg.data, type(msg))

    def _request_raw(self, kind: int, body: bytes) -> None:
        """Send a request already encoded (everything after the header) and wait for its ack."""
        self._seq += 1
        self._exchange(_HEADER.pack(_HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK, self._seq, 0)
                       + body, None)

    def _exchange(self, data: bytes, cls) -> list:
        """Send ``data`` (one request of sequence ``self._seq``) and collect the replies, decoded with
        ``cls`` (None: an ack is all that is expected)."""
        self._sock.send(data)
        out = []
        while True:
            data = self._sock.recv(1 << 20)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, mtype, mflags, seq, _ = _HEADER.unpack_from(data, offset)
                if length < _HEADER.size:
                    raise RtnlError(0, f"netlink: malformed reply (length {length})")
                if seq == self._seq:
                    if mtype == NLMSG_ERROR:
                        code = -struct.unpack_from("=i", data, offset + 16)[0]
                        if code:
                            raise RtnlError(code, _error_text(code, data, offset, length, mflags))
                        return out
                    if mtype == NLMSG_DONE or cls is None:
                        return out
                    reply = cls(data, offset=offset)
                    reply.decode()
                    out.append(reply)
                offset += (length + 3) & ~3

    # -- links ------------------------------------------------------------------------------------
    def _link_msg(self, index: int = 0, attrs=(), up: bool | None = None):
        msg = self.ifinfmsg()
        msg["index"] = index
        msg["flags"] = IFF_UP if up else 0
        msg["change"] = IFF_UP if up is not None else 0
        msg["attrs"] = [list(a) for a in attrs]
        return msg

    @staticmethod
    def _link(reply) -> Link:
        return Link(reply["index"], reply.get_attr("IFLA_IFNAME"), bool(reply["flags"] & IFF_UP),
                    reply.get_attr("IFLA_IFALIAS"), reply.get_attr("IFLA_MASTER"))

    def link(self, name: str) -> Link | None:
        """The interface called ``name``, or None."""
        try:
            replies = self.request(self._link_msg(attrs=[("IFLA_IFNAME", name)]), RTM_GETLINK)
        except RtnlError as exc:
            if exc.errno == 19:     # ENODEV
                return None
            raise
        return self._link(replies[0]) if replies else None

    def links(self) -> list[Link]:
        return [self._link(r) for r in self.request(self._link_msg(), RTM_GETLINK, NLM_F_DUMP)]

    def add_bridge(self, name: str, *, alias: str) -> int:
        """Create bridge ``name`` (up), tagged with ``alias``; return its index."""
        self.request(self._link_msg(attrs=[("IFLA_IFNAME", name),
                                           ("IFLA_LINKINFO", {"attrs": [["IFLA_INFO_KIND", "bridge"]]})], up=True),
                     RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL)
        index = self.link(name).index
        self.request(self._link_msg(index, [("IFLA_IFALIAS", alias)]), RTM_NEWLINK)
        return index

    def add_veth(self, name: str, *, master: int, mtu: int, peer_name: str, peer_netns_fd: int,
                 peer_mac: str) -> None:
        """One request: the veth pair, ``name`` up on bridge ``master``, its peer (with ``peer_mac``)
        created straight inside the namespace ``peer_netns_fd``. The peer stays down: the kernel refuses
        to open it before its other end exists (ENOTCONN); bring it up from inside."""
        peer = {"index": 0, "flags": 0, "change": 0,
                "attrs": [["IFLA_IFNAME", peer_name], ["IFLA_ADDRESS", peer_mac], ["IFLA_MTU", mtu],
                          ["IFLA_NET_NS_FD", peer_netns_fd]]}
        info = {"attrs": [["IFLA_INFO_KIND", "veth"], ["IFLA_INFO_DATA", {"attrs": [["VETH_INFO_PEER", peer]]}]]}
        self.request(self._link_msg(attrs=[("IFLA_IFNAME", name), ("IFLA_MASTER", master), ("IFLA_MTU", mtu),
                                           ("IFLA_LINKINFO", info)], up=True),
                     RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL)

    def set_up(self, index: int) -> None:
        self.request(self._link_msg(index, up=True), RTM_NEWLINK)

    def delete_link(self, name: str) -> bool:
        """Delete interface ``name``; False if there was none."""
        ifname = name.encode() + b"\0"
        attr = struct.pack("=HH", 4 + len(ifname), IFLA_IFNAME) + ifname
        body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + attr + b"\0" * (-len(attr) % 4)
        try:
            self._request_raw(RTM_DELLINK, body)
        except RtnlError as exc:
            if exc.errno == 19:     # ENODEV: gone already (or raced with another teardown)
                return False
            raise
        return True

    # -- addresses and routes ---------------------------------------------------------------------
    def add_address(self, index: int, address: str, prefixlen: int) -> None:
        msg = self.ifaddrmsg()
        msg["family"], msg["prefixlen"], msg["index"] = AF_INET, prefixlen, index
        msg["attrs"] = [["IFA_LOCAL", address], ["IFA_ADDRESS", address]]
        self.request(msg, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL)

    def addresses(self, index: int | None = None) -> list[tuple[int, str, int]]:
        """IPv4 addresses as (interface index, address, prefix length)."""
        msg = self.ifaddrmsg()
        msg["family"] = AF_INET
        out = [(r["index"], r.get_attr("IFA_LOCAL") or r.get_attr("IFA_ADDRESS"), r["prefixlen"])
               for r in self.request(msg, RTM_GETADDR, NLM_F_DUMP)]
        return [a for a in out if index is None or a[0] == index]

    def add_default_route(self, gateway: str, oif: int) -> None:
        msg = self.rtmsg()
        msg["family"], msg["table"], msg["proto"] = AF_INET, RT_TABLE_MAIN, RTPROT_BOOT
        msg["scope"], msg["type"] = RT_SCOPE_UNIVERSE, RTN_UNICAST
        msg["attrs"] = [["RTA_GATEWAY", gateway], ["RTA_OIF", oif]]
        self.request(msg, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL)

    def routes(self) -> list[tuple[str | None, int, int | None, str | None]]:
        """IPv4 routes of the main table as (destination, prefix length, output index, gateway)."""
        msg = self.rtmsg()
        msg["family"] = AF_INET
        out = []
        for r in self.request(msg, RTM_GETROUTE, NLM_F_DUMP):
            if (r.get_attr("RTA_TABLE") or r["table"]) == RT_TABLE_MAIN:
                out.append((r.get_attr("RTA_DST"), r["dst_len"], r.get_attr("RTA_OIF"), r.get_attr("RTA_GATEWAY")))
        return out


def _error_text(code: int, data: bytes, offset: int, length: int, flags: int) -> str:
    """``strerror`` plus the kernel's extended-ack message when it sent one."""
    text = os.strerror(code)
    if flags & NLM_F_ACK_TLVS:
        pos = offset + 16 + 4 + 16          # nlmsghdr, error code, the capped original header
        end = offset + length
        while pos + 4 <= end:
            alen, atype = struct.unpack_from("=HH", data, pos)
            if alen < 4:
                break
            if atype == NLMSGERR_ATTR_MSG:
                msg = bytes(data[pos + 4:pos + alen]).split(b"\0", 1)[0].decode(errors="replace")
                if msg:
                    text = f"{text}: {msg}"
            pos += (alen + 3) & ~3
    return text
