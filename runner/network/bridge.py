"""Linux bridges over rtnetlink (:mod:`.rtnl`, pyroute2's messages): create with the gateway address,
look up, delete.

A bridge pybuild made carries an ``ifalias`` naming its owner (``pybuild:<root>/networks/<name>``) so
two stores on one host never share a bridge (and its address space) by accident.
"""

from __future__ import annotations

import ipaddress

from layers.value import frozen

from .errors import NetworkError
from .rtnl import Rtnl, RtnlError

__all__ = ["BridgeState", "ensure", "lookup", "delete", "route_overlaps", "owner_tag"]


@frozen
class BridgeState:
    """What the kernel says about a bridge."""

    name: str
    index: int
    owner: str | None
    addresses: tuple[str, ...]  # "10.213.1.1/24"
    up: bool


def owner_tag(root: str, network: str) -> str:
    return f"pybuild:{root}/networks/{network}"


def lookup(name: str) -> BridgeState | None:
    """The bridge called ``name``, or None."""
    with Rtnl() as rt:
        link = rt.link(name)
        if link is None:
            return None
        addrs = tuple(f"{a}/{p}" for _, a, p in rt.addresses(link.index))
    return BridgeState(name=name, index=link.index, owner=link.alias, addresses=addrs, up=link.up)


def ensure(name: str, gateway: str, prefixlen: int, owner: str) -> BridgeState:
    """Create bridge ``name`` with ``gateway/prefixlen`` and bring it up, or adopt it if ``owner`` made it.

    Raises :class:`NetworkError` if a link of that name exists with another owner.
    """
    state = lookup(name)
    if state is not None and state.owner != owner:
        raise NetworkError(f"bridge {name}: already exists and belongs to {state.owner or 'something else'}")
    try:
        with Rtnl() as rt:
            index = rt.add_bridge(name, alias=owner) if state is None else state.index
            if state is None or f"{gateway}/{prefixlen}" not in state.addresses:
                rt.add_address(index, gateway, prefixlen)
            if state is not None and not state.up:
                rt.set_up(index)
    except RtnlError as exc:
        raise NetworkError(f"bridge {name}: {exc.strerror}") from exc
    found = lookup(name)
    if found is None:
        raise NetworkError(f"bridge {name}: vanished right after creation")
    return found


def delete(name: str, owner: str) -> bool:
    """Delete bridge ``name`` if ``owner`` made it; True if it was deleted."""
    state = lookup(name)
    if state is None or state.owner != owner:
        return False
    try:
        with Rtnl() as rt:
            return rt.delete_link(name)
    except RtnlError as exc:
        raise NetworkError(f"delete bridge {name}: {exc.strerror}") from exc


def route_overlaps(subnet: ipaddress.IPv4Network, *, ignore_dev: str | None = None) -> str | None:
    """A description of the first host IPv4 route or address that overlaps ``subnet``, or None.

    The default route is not an overlap. Routes through ``ignore_dev`` (our own bridge) are skipped.
    """
    with Rtnl() as rt:
        names = {link.index: link.name for link in rt.links()}
        for dst, dst_len, oif, _gw in rt.routes():
            if dst is None or dst_len == 0:
                continue
            dev = names.get(oif)
            if ignore_dev is not None and dev == ignore_dev:
                continue
            net = ipaddress.ip_network(f"{dst}/{dst_len}", strict=False)
            if net.overlaps(subnet):
                return f"route {net} dev {dev}"
        for index, addr, prefixlen in rt.addresses():
            dev = names.get(index)
            if ignore_dev is not None and dev == ignore_dev:
                continue
            net = ipaddress.ip_network(f"{addr}/{prefixlen}", strict=False)
            if net.overlaps(subnet) and not net.is_loopback:
                return f"address {net} dev {dev}"
    return None
