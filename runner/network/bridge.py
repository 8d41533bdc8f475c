"""Linux bridges via pyroute2: create with the gateway address, look up, delete.

A bridge pybuild made carries an ``ifalias`` naming its owner (``pybuild:<root>/networks/<name>``) so
two stores on one host never share a bridge (and its address space) by accident.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .errors import NetworkError

__all__ = ["BridgeState", "ensure", "lookup", "delete", "route_overlaps", "owner_tag"]


@dataclass(frozen=True)
class BridgeState:
    """What the kernel says about a bridge."""

    name: str
    index: int
    owner: str | None
    addresses: tuple[str, ...]  # "10.213.1.1/24"
    up: bool


def owner_tag(root: str, network: str) -> str:
    return f"pybuild:{root}/networks/{network}"


def _iproute():
    from pyroute2 import IPRoute

    return IPRoute()


def lookup(name: str) -> BridgeState | None:
    """The bridge called ``name``, or None."""
    with _iproute() as ipr:
        idx = ipr.link_lookup(ifname=name)
        if not idx:
            return None
        link = ipr.get_links(idx[0])[0]
        addrs = tuple(
            f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(index=idx[0], family=2)
        )
        return BridgeState(
            name=name,
            index=idx[0],
            owner=link.get("IFLA_IFALIAS"),
            addresses=addrs,
            up=bool(link["flags"] & 1),
        )


def ensure(name: str, gateway: str, prefixlen: int, owner: str) -> BridgeState:
    """Create bridge ``name`` with ``gateway/prefixlen`` and bring it up, or adopt it if ``owner`` made it.

    Raises :class:`NetworkError` if a link of that name exists with another owner.
    """
    from pyroute2.netlink.exceptions import NetlinkError

    state = lookup(name)
    if state is not None and state.owner != owner:
        raise NetworkError(f"bridge {name}: already exists and belongs to {state.owner or 'something else'}")
    try:
        with _iproute() as ipr:
            if state is None:
                ipr.link("add", ifname=name, kind="bridge")
                idx = ipr.link_lookup(ifname=name)[0]
                ipr.link("set", index=idx, ifalias=owner)
            else:
                idx = state.index
            want = f"{gateway}/{prefixlen}"
            if state is None or want not in state.addresses:
                ipr.addr("add", index=idx, address=gateway, prefixlen=prefixlen)
            ipr.link("set", index=idx, state="up")
    except NetlinkError as exc:
        raise NetworkError(f"bridge {name}: {exc.args[-1] if exc.args else exc}") from exc
    found = lookup(name)
    if found is None:
        raise NetworkError(f"bridge {name}: vanished right after creation")
    return found


def delete(name: str, owner: str) -> bool:
    """Delete bridge ``name`` if ``owner`` made it; True if it was deleted."""
    from pyroute2.netlink.exceptions import NetlinkError

    state = lookup(name)
    if state is None or state.owner != owner:
        return False
    try:
        with _iproute() as ipr:
            ipr.link("del", index=state.index)
    except NetlinkError as exc:
        if exc.code == 19:  # ENODEV: raced with another teardown
            return False
        raise NetworkError(f"delete bridge {name}: {exc}") from exc
    return True


def route_overlaps(subnet: ipaddress.IPv4Network, *, ignore_dev: str | None = None) -> str | None:
    """A description of the first host IPv4 route or address that overlaps ``subnet``, or None.

    The default route is not an overlap. Routes through ``ignore_dev`` (our own bridge) are skipped.
    """
    with _iproute() as ipr:
        names = {link["index"]: link.get("IFLA_IFNAME") for link in ipr.get_links()}
        for route in ipr.get_routes(family=2, table=254):
            dst = route.get("RTA_DST")
            if dst is None or route["dst_len"] == 0:
                continue
            dev = names.get(route.get("RTA_OIF"))
            if ignore_dev is not None and dev == ignore_dev:
                continue
            net = ipaddress.ip_network(f"{dst}/{route['dst_len']}", strict=False)
            if net.overlaps(subnet):
                return f"route {net} dev {dev}"
        for addr in ipr.get_addr(family=2):
            dev = names.get(addr["index"])
            if ignore_dev is not None and dev == ignore_dev:
                continue
            net = ipaddress.ip_network(f"{addr.get('IFA_ADDRESS')}/{addr['prefixlen']}", strict=False)
            if net.overlaps(subnet) and not net.is_loopback:
                return f"address {net} dev {dev}"
    return None
