"""Veth pairs: one end on a bridge on the host, the other as ``eth0`` inside a container namespace.

Over rtnetlink (:mod:`.rtnl`): one request makes the pair with the host end up on the bridge and the
container end, with its MAC, already inside the namespace; four more, on a socket opened in the
namespace, bring ``lo`` and ``eth0`` up and add the address and the default route.
"""

from __future__ import annotations

import os

from layers.value import frozen

from . import netns
from .errors import NetworkError
from .rtnl import Rtnl, RtnlError

__all__ = ["VethPlan", "attach", "detach", "exists", "setup_loopback"]


@frozen
class VethPlan:
    """Everything needed to wire one container into a bridge."""

    host_name: str       # e.g. "pb3f2a9c01d7e" (<= 15 bytes)
    bridge: str
    netns_path: str
    ip: str
    prefixlen: int
    gateway: str
    mac: str
    mtu: int = 1500
    ifname: str = "eth0"  # the container end's name inside the namespace
    default_route: bool = True  # False on a further network: the first one's gateway stays the default


def exists(name: str) -> bool:
    with Rtnl() as rt:
        return rt.link(name) is not None


def attach(plan: VethPlan) -> None:
    """Create the pair, enslave the host end to the bridge, put the other end into the namespace and
    configure it there as ``eth0`` with address, MAC and a default route via the gateway.

    On failure the host end (and with it the peer) is deleted again.
    """
    try:
        with Rtnl() as rt:
            br = rt.link(plan.bridge)
            if br is None:
                raise NetworkError(f"bridge {plan.bridge}: not found")
            fd = os.open(plan.netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                rt.add_veth(plan.host_name, master=br.index, mtu=plan.mtu, peer_name=plan.ifname,
                            peer_netns_fd=fd, peer_mac=plan.mac)
            finally:
                os.close(fd)
            try:
                with netns.run_in(plan.netns_path, Rtnl) as inside:
                    _configure_inside(inside, plan)
            except BaseException:
                rt.delete_link(plan.host_name)
                raise
    except RtnlError as exc:
        raise NetworkError(f"veth {plan.host_name} -> {plan.bridge}: {exc.strerror}") from exc


def _configure_inside(rt: Rtnl, plan: VethPlan) -> None:
    rt.set_up(rt.link("lo").index)
    idx = rt.link(plan.ifname).index
    rt.add_address(idx, plan.ip, plan.prefixlen)
    rt.set_up(idx)
    if plan.default_route:
        rt.add_default_route(plan.gateway, idx)


def setup_loopback(netns_path: str) -> None:
    """Bring ``lo`` up inside the namespace (network mode ``none``)."""
    try:
        with netns.run_in(netns_path, Rtnl) as rt:
            rt.set_up(rt.link("lo").index)
    except RtnlError as exc:
        raise NetworkError(f"loopback in {netns_path}: {exc.strerror}") from exc


def detach(host_name: str) -> bool:
    """Delete the host end (the kernel deletes the peer with it); True if it existed. Idempotent."""
    try:
        with Rtnl() as rt:
            return rt.delete_link(host_name)
    except RtnlError as exc:
        raise NetworkError(f"delete veth {host_name}: {exc.strerror}") from exc
