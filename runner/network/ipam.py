"""Address allocation and endpoint records for one network.

State lives in ``<root>/networks/<name>/endpoints.json`` and every change happens under an
exclusive ``flock`` on ``<root>/networks/<name>/lock``, so concurrent pybuild processes and
restarts never hand out one address twice. Allocation continues after the last address handed
out (wrapping around), so a just-released address is not reused at once.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
from contextlib import contextmanager
from dataclasses import asdict
from collections.abc import Iterator

from layers.atomic import write_atomic
from layers.errors import AlreadyExists
from layers.value import frozen

from .config import NetworkConfig

from .errors import AddressExhausted, InvalidNetworkSpec, NetworkNotFound

__all__ = ["Endpoint", "Allocations", "locked"]


@frozen
class Endpoint:
    """One container on one network."""

    container_id: str
    name: str
    ip: str
    mac: str
    host_veth: str
    hostname: str
    etc_dir: str | None = None
    aliases: tuple[str, ...] = ()
    ifname: str = "eth0"            # the interface inside the container (eth1... on further networks)

    @classmethod
    def from_dict(cls, data: dict) -> "Endpoint":
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        fields["aliases"] = tuple(fields.get("aliases", ()))
        return cls(**fields)


class Allocations:
    """The endpoint table of one network, loaded under the network lock. Mutate, then :meth:`save`."""

    def __init__(self, cfg: NetworkConfig, path: str, endpoints: dict[str, Endpoint], last: str | None,
                 nat: str | None = None) -> None:
        self.cfg = cfg
        self.path = path
        self.endpoints = endpoints
        self.last = last
        self.nat = nat      # what outbound NAT the bridge got when it was made (None: no bridge yet)

    def used(self) -> set[ipaddress.IPv4Address]:
        return {ipaddress.IPv4Address(e.ip) for e in self.endpoints.values()}

    def allocate(self) -> ipaddress.IPv4Address:
        """The next free host address after the last one handed out (skipping the gateway)."""
        net = self.cfg.network
        gateway = ipaddress.IPv4Address(self.cfg.gateway)
        first, last_host = int(net.network_address) + 1, int(net.broadcast_address) - 1
        count = last_host - first + 1
        start = int(ipaddress.IPv4Address(self.last)) + 1 if self.last else first
        used = self.used()
        for i in range(count):
            n = first + ((start - first + i) % count)
            addr = ipaddress.IPv4Address(n)
            if addr != gateway and addr not in used:
                self.last = str(addr)
                return addr
        raise AddressExhausted(f"network {self.cfg.name}: all {count - 1} addresses of {net} are in use")

    def reserve(self, ip: str) -> ipaddress.IPv4Address:
        """Claim a specific address (``--ip``)."""
        try:
            addr = ipaddress.IPv4Address(ip)
        except ValueError as exc:
            raise InvalidNetworkSpec(f"--ip {ip!r}: {exc}") from None
        net = self.cfg.network
        if addr not in net or addr in (net.network_address, net.broadcast_address) or str(addr) == self.cfg.gateway:
            raise InvalidNetworkSpec(f"--ip {addr}: not an assignable address of {net}")
        if addr in self.used():
            raise AlreadyExists(f"address {addr} on network {self.cfg.name}: already in use")
        return addr

    def add(self, ep: Endpoint) -> None:
        if ep.container_id in self.endpoints:
            raise AlreadyExists(f"container {ep.container_id[:12]}: already attached to network {self.cfg.name}")
        self.endpoints[ep.container_id] = ep

    def pop(self, container_id: str) -> Endpoint | None:
        return self.endpoints.pop(container_id, None)

    def save(self) -> None:
        data = {"last": self.last, "nat": self.nat, "endpoints": {k: asdict(v) for k, v in sorted(self.endpoints.items())}}
        write_atomic(self.path, json.dumps(data, indent=2).encode())


@contextmanager
def locked(root: str, cfg: NetworkConfig) -> Iterator[Allocations]:
    """Hold the network's lock and yield its :class:`Allocations` (call ``save`` to persist)."""
    d = os.path.join(root, "networks", cfg.name)
    try:
        fd = os.open(os.path.join(d, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        raise NetworkNotFound(f"network {cfg.name!r}: not found") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(d, "network.json")):   # removed while we waited for the lock
            raise NetworkNotFound(f"network {cfg.name!r}: not found")
        path = os.path.join(d, "endpoints.json")
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read())
        except FileNotFoundError:
            data = {}
        except ValueError as exc:
            raise InvalidNetworkSpec(f"endpoint table {path}: {exc}") from None
        eps = {k: Endpoint.from_dict(v) for k, v in data.get("endpoints", {}).items()}
        yield Allocations(cfg, path, eps, data.get("last"), data.get("nat"))
    finally:
        os.close(fd)
