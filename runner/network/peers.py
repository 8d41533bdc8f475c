"""The hosts files of containers on user networks, across every network a container is on.

A container's ``/etc/hosts`` lists its own address on each of its networks (the first network's
line first) and every peer it shares a user network with, under the peer's hostname, name, short id
and that network's aliases. The default network gives no peer names (as Docker's ``bridge``).

:func:`refresh` runs after an endpoint table changed and was saved, inside that network's lock. It
takes ``<root>/networks/.hosts.lock`` (always after a network lock, never before one) and reads
every other network's saved table (written atomically), so refreshes are serialised and the last
one sees every saved change.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterable

from . import config, files, ipam

__all__ = ["own_names", "read_extra", "extra_path", "refresh"]


def own_names(hostname: str, name: str | None, container_id: str, aliases) -> list[str]:
    names = [hostname]
    for n in (name, container_id[:12], *aliases):
        if n and n not in names:
            names.append(n)
    return names


def extra_path(etc_dir: str) -> str:
    return os.path.join(etc_dir, ".extra-hosts")


def read_extra(etc_dir: str) -> list[tuple[str, str]]:
    try:
        with open(extra_path(etc_dir), encoding="utf-8") as f:
            return [tuple(line.split("\t", 1)) for line in f.read().splitlines() if "\t" in line]
    except FileNotFoundError:
        return []


def _saved(root: str, name: str) -> dict[str, ipam.Endpoint]:
    try:
        with open(os.path.join(config.networks_dir(root), name, "endpoints.json"), "rb") as f:
            data = json.loads(f.read())
    except (FileNotFoundError, ValueError):
        return {}
    return {k: ipam.Endpoint.from_dict(v) for k, v in data.get("endpoints", {}).items()}


def _tables(root: str, current: ipam.Allocations) -> list[tuple[bool, dict[str, ipam.Endpoint]]]:
    """(is the default network, endpoints) of every network, ``current`` as held in memory."""
    d = config.networks_dir(root)
    try:
        names = sorted(os.listdir(d))
    except FileNotFoundError:
        names = []
    out = []
    for n in names:
        if n.startswith(".") or not os.path.exists(os.path.join(d, n, "network.json")):
            continue
        if n == current.cfg.name:
            out.append((current.cfg.default, current.endpoints))
        else:
            out.append((n == config.DEFAULT_NETWORK, _saved(root, n)))
    if current.cfg.name not in names:
        out.append((current.cfg.default, current.endpoints))
    return out


def _by_ip(eps: Iterable[ipam.Endpoint]) -> list[ipam.Endpoint]:
    return sorted(eps, key=lambda e: ipaddress.IPv4Address(e.ip))


def _ifindex(ep: ipam.Endpoint) -> int:
    digits = ep.ifname[3:] if ep.ifname.startswith("eth") else ""
    return int(digits) if digits.isdigit() else 0


def hosts_for(container_id: str, tables) -> str | None:
    """The hosts text of ``container_id`` from ``tables``; None if it has no endpoint with an etc dir."""
    own, peers, seen, etc_dir = [], [], set(), None
    mine = [(default, eps, eps[container_id]) for default, eps in tables if container_id in eps]
    for default, eps, ep in sorted(mine, key=lambda t: _ifindex(t[2])):
        etc_dir = etc_dir or ep.etc_dir
        own.append((ep.ip, own_names(ep.hostname, ep.name, ep.container_id, ep.aliases)))
        seen.add(ep.ip)
    if etc_dir is None:
        return None
    for default, eps, _ep in mine:
        if default:
            continue
        for other in _by_ip(eps.values()):
            if other.container_id != container_id and other.ip not in seen:
                seen.add(other.ip)
                peers.append((other.ip, own_names(other.hostname, other.name, other.container_id, other.aliases)))
    return files.hosts_text(own[0], own[1:] + peers, read_extra(etc_dir))


def refresh(root: str, alloc: ipam.Allocations, also: Iterable[ipam.Endpoint] = ()) -> None:
    """Rewrite the hosts file of every container on ``alloc``'s network (none on the default network)
    and of the endpoints ``also`` (a container that just left it), from all networks' tables."""
    targets = {ep.container_id: ep for ep in also if ep.etc_dir}
    if not alloc.cfg.default:
        targets.update({ep.container_id: ep for ep in alloc.endpoints.values() if ep.etc_dir})
    if not targets:
        return
    import fcntl

    os.makedirs(config.networks_dir(root), mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(config.networks_dir(root), ".hosts.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        tables = _tables(root, alloc)
        for cid, ep in sorted(targets.items()):
            text = hosts_for(cid, tables)
            if text is not None and os.path.isdir(ep.etc_dir):
                files.rewrite_hosts(os.path.join(ep.etc_dir, "hosts"), text)
    finally:
        os.close(fd)
