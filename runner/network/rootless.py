"""Rootless networking (the seam ``attach``, ``multi`` and ``create_network`` call): the rootless
network namespace, where a rootless pybuild's bridges, veths and NAT live (podman's shape).

Rootless, pybuild is root only in its user namespace: it may create network namespaces and do as it
likes in them, but it cannot touch the host's. So one namespace per store, bind-mounted at
``<root>/networks/.rootless/ns`` (beside the network records whose bridges it holds), plays the
host's part: the existing bridge code (bridges, veths, IPAM, /etc files, names between containers of
a user network) runs unchanged on a thread that joined it, and a user-mode tool (:mod:`.usernet`:
pasta or slirp4netns) attached to it carries its outbound traffic through the user's sockets in the
host's namespace.

Contract:

* :func:`active` says whether this process must use it (``is_rootless()``: it runs in a user
  namespace, so it has no say over the network namespace it started in);
* :func:`call` runs a function of the network room with the :class:`Site` where bridges live: on the
  caller's thread with :data:`HOST` when not :func:`active`; else on a thread inside the rootless
  namespace (made on demand), or, for teardown when that namespace does not exist, inside a fresh empty
  one, so nothing of the host's namespace is ever touched;
* :func:`session` makes the namespace and its tool exist (created on first use, the tool restarted when
  it died, everything remade when the bind mount was lost) and yields the namespace's path while
  holding the namespace's lock shared, so it cannot be released under a caller;
* :func:`release_if_idle` stops the tool and removes the namespace once no container holds an address
  in it (``idle()`` says so, under the lock held exclusively); teardown and crash recovery call it;
* :func:`status` reads the record (``usernet.json``: tool, pid and start time) without changing anything.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from layers.atomic import write_atomic
from layers.store.location import is_rootless
from layers.value import frozen

from .. import syscalls
from . import config, netns, usernet
from .errors import NetworkError

__all__ = ["Site", "HOST", "active", "call", "directory", "netns_path", "session", "release_if_idle", "status",
           "describe"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")


@frozen
class Site:
    """Where a store's bridges live: the host's namespace (:data:`HOST`) or its rootless namespace."""

    lock: str                               # serialises bridge creation and removal there
    rootless: bool = False
    usernet: usernet.UserNet | None = None  # rootless: the tool carrying outbound traffic, when known

    @property
    def nat_wanted(self) -> bool:
        """Whether a bridge here needs a masquerade: on the host, and behind slirp4netns."""
        return not self.rootless or self.usernet is None or self.usernet.needs_nat


HOST = Site(config.HOST_LOCK)


def active() -> bool:
    """Whether bridges go in the rootless namespace: ``layers.store.location.is_rootless()``, the one
    place that decides root or rootless (a user namespace not mapping the full identity, or a non-root
    host uid)."""
    return is_rootless()


def directory(root: str) -> str:
    return os.path.join(root, "networks", ".rootless")


def netns_path(root: str) -> str:
    """Where the rootless network namespace is bind-mounted."""
    return os.path.join(directory(root), "ns")


def _record_path(root: str) -> str:
    return os.path.join(directory(root), "usernet.json")


@contextmanager
def _locked(root: str, mode: int) -> Iterator[int]:
    os.makedirs(directory(root), mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(directory(root), "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, mode)
        yield fd
    finally:
        os.close(fd)


def status(root: str) -> usernet.UserNet | None:
    """The recorded tool of ``root``'s rootless namespace, or None when there is none."""
    try:
        with open(_record_path(root)) as f:
            return usernet.UserNet.from_dict(json.load(f))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def describe(root: str) -> str:
    """For ``pybuild info``: the tool running for ``root``'s rootless namespace, else the one that would."""
    net = status(root)
    if net is not None and usernet.alive(net):
        return f"{net.tool} ({net.path}, running as pid {net.pid})"
    return usernet.describe()


def _save(root: str, net: usernet.UserNet) -> None:
    write_atomic(_record_path(root), json.dumps(net.to_dict()).encode(), durable=False)


def _prepare(path: str) -> None:
    """Loopback up and IPv4 forwarding on (bridge <-> tap) inside the namespace. Idempotent."""
    from . import veth

    veth.setup_loopback(path)

    def forward() -> None:
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:     # this thread's namespace's sysctl
            f.write("1")

    netns.run_in(path, forward)


def _ensure(root: str, tool: usernet.Tool | None) -> usernet.UserNet:
    """With the lock held exclusively: namespace and tool up, as the module docstring says."""
    path = netns_path(root)
    old = status(root)
    fresh = not netns.is_netns(path)
    if not fresh and old is not None and usernet.alive(old):
        return old
    if old is not None:
        usernet.stop(old)           # a tool left attached to a namespace whose bind mount is gone
    if tool is None:
        tool = usernet.find()
        if tool is None:
            raise NetworkError("rootless networking needs pasta (Debian: apt-get install passt) or slirp4netns; "
                               "neither is installed (use --network host or none meanwhile)")
    if fresh:
        netns.create(path)
    try:
        _prepare(path)              # again on a kept namespace: a pybuild killed half-way may have skipped it
        net = usernet.start(tool, path, os.path.join(directory(root), "usernet.log"))
    except BaseException:
        if fresh:
            netns.remove(path)
        raise
    _save(root, net)
    return net


@contextmanager
def session(root: str, tool: usernet.Tool | None = None) -> Iterator[usernet.UserNet]:
    """The namespace and its tool, up; held (shared lock) until the ``with`` block ends."""
    with _locked(root, fcntl.LOCK_EX) as fd:
        net = _ensure(root, tool)
        fcntl.flock(fd, fcntl.LOCK_SH)      # others may use it too; release waits for all of us
        yield net


def call(root: str, fn: Callable[[Site], T], *, create: bool = True) -> T:
    """``fn(site)`` where ``root``'s bridges live (see the module docstring); ``create=False`` for
    teardown: no namespace nor tool is made for it."""
    if not active():
        return fn(HOST)
    lock = os.path.join(directory(root), "bridges.lock")
    if create:
        with session(root) as net:
            return netns.run_in(net.netns, lambda: fn(Site(lock, True, net)))
    with _locked(root, fcntl.LOCK_SH):
        if netns.is_netns(netns_path(root)):
            return netns.run_in(netns_path(root), lambda: fn(Site(lock, True, status(root))))

    def in_empty() -> T:            # nothing to find there: link deletions find nothing, as they should
        syscalls.unshare(syscalls.CLONE_NEWNET)
        return fn(Site(lock, True))

    return netns.on_thread(in_empty)


def release_if_idle(root: str, idle: Callable[[], bool]) -> bool:
    """Stop the tool and remove the namespace when ``idle()`` (asked under the exclusive lock) is true;
    True if something was released. Idempotent; a no-op while another pybuild is in a :func:`session`."""
    if not os.path.isdir(directory(root)):
        return False
    with _locked(root, fcntl.LOCK_EX):
        if not idle():
            return False
        net = status(root)
        released = False
        if net is not None:
            released = usernet.stop(net, wait=False)     # it dies with its namespace's last user
        released = netns.remove(netns_path(root)) or released
        try:
            os.unlink(_record_path(root))
        except FileNotFoundError:
            pass
        return released
