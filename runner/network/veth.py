"""Veth pairs: one end on a bridge on the host, the other as ``eth0`` inside a container namespace."""

from __future__ import annotations

import os
from dataclasses import dataclass

from . import netns
from .errors import NetworkError

__all__ = ["VethPlan", "attach", "detach", "exists", "setup_loopback"]


@dataclass(frozen=True)
class VethPlan:
    """Everything needed to wire one container into a bridge."""

    host_name: str       # e.g. "pb3f2a9c01d7e" (<= 15 bytes)
    peer_name: str       # temporary name of the container end before it becomes eth0
    bridge: str
    netns_path: str
    ip: str
    prefixlen: int
    gateway: str
    mac: str
    mtu: int = 1500


def _netlink_error():
    from pyroute2.netlink.exceptions import NetlinkError

    return NetlinkError


def exists(name: str) -> bool:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return bool(ipr.link_lookup(ifname=name))


def attach(plan: VethPlan) -> None:
    """Create the pair, enslave the host end to the bridge, move the peer into the namespace and
    configure it there as ``eth0`` with address, MAC and a default route via the gateway.

    On failure the host end (and with it the peer) is deleted again.
    """
    from pyroute2 import IPRoute

    NetlinkError = _netlink_error()
    try:
        with IPRoute() as ipr:
            br = ipr.link_lookup(ifname=plan.bridge)
            if not br:
                raise NetworkError(f"bridge {plan.bridge}: not found")
            ipr.link("add", ifname=plan.host_name, kind="veth", peer={"ifname": plan.peer_name})
            try:
                host = ipr.link_lookup(ifname=plan.host_name)[0]
                peer = ipr.link_lookup(ifname=plan.peer_name)[0]
                ipr.link("set", index=host, master=br[0], mtu=plan.mtu)
                fd = os.open(plan.netns_path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    ipr.link("set", index=peer, net_ns_fd=fd)
                finally:
                    os.close(fd)
                ipr.link("set", index=host, state="up")
                netns.run_in(plan.netns_path, lambda: _configure_inside(plan))
            except BaseException:
                _delete_quiet(ipr, plan.host_name)
                raise
    except NetlinkError as exc:
        raise NetworkError(f"veth {plan.host_name} -> {plan.bridge}: {exc}") from exc


def _configure_inside(plan: VethPlan) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        lo = ipr.link_lookup(ifname="lo")[0]
        ipr.link("set", index=lo, state="up")
        idx = ipr.link_lookup(ifname=plan.peer_name)[0]
        ipr.link("set", index=idx, ifname="eth0", address=plan.mac, mtu=plan.mtu)
        ipr.addr("add", index=idx, address=plan.ip, prefixlen=plan.prefixlen)
        ipr.link("set", index=idx, state="up")
        ipr.route("add", dst="0.0.0.0/0", gateway=plan.gateway, oif=idx)


def setup_loopback(netns_path: str) -> None:
    """Bring ``lo`` up inside the namespace (network mode ``none``)."""
    from pyroute2 import IPRoute

    def up() -> None:
        with IPRoute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")

    netns.run_in(netns_path, up)


def _delete_quiet(ipr, name: str) -> bool:
    NetlinkError = _netlink_error()
    idx = ipr.link_lookup(ifname=name)
    if not idx:
        return False
    try:
        ipr.link("del", index=idx[0])
    except NetlinkError as exc:
        if exc.code != 19:  # ENODEV: already gone
            raise
        return False
    return True


def detach(host_name: str) -> bool:
    """Delete the host end (the kernel deletes the peer with it); True if it existed. Idempotent."""
    from pyroute2 import IPRoute

    NetlinkError = _netlink_error()
    try:
        with IPRoute() as ipr:
            return _delete_quiet(ipr, host_name)
    except NetlinkError as exc:
        raise NetworkError(f"delete veth {host_name}: {exc}") from exc
