"""Network records under ``<root>/networks/<name>/network.json``.

A record names the subnet, gateway and bridge of a network. The default network ``pybuild`` is
made on first use on bridge ``pybuild0`` with 10.90.0.0/16, or, if that overlaps a host route or
another store's bridge, the next free /16 (10.91, 10.92, ...) and bridge (``pybuild1``...); the
record's ``note`` says so. User networks without ``--subnet`` get the first free /24 of
10.150.0.0/16 (clear of the default network's range, podman's 10.88/10.89 and Docker's 172.17+);
such an auto-chosen subnet (``auto_subnet``) may move to the next free /24 when a host route took it
after ``network create`` and before the bridge's first container (:func:`relocate_auto`); a subnet
given with ``--subnet`` never moves. Records are written atomically (temp file, fsync, rename).
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
import time
from contextlib import contextmanager
from dataclasses import asdict, replace
from collections.abc import Iterator

from layers.atomic import write_atomic
from layers.value import frozen

from .errors import InvalidNetworkSpec, NetworkExists, NetworkNotFound

__all__ = [
    "NetworkConfig",
    "DEFAULT_NETWORK",
    "DEFAULT_BRIDGE",
    "DEFAULT_SUBNET",
    "networks_dir",
    "create",
    "load",
    "list_networks",
    "remove",
    "emit_event",
    "save",
    "default",
    "host_lock",
    "relocate_auto",
]

DEFAULT_NETWORK = "pybuild"
DEFAULT_BRIDGE = "pybuild0"
DEFAULT_SUBNET = "10.90.0.0/16"
USER_RANGE = "10.150.0.0/16"
HOST_LOCK = "/run/lock/pybuild-network.lock"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
RESERVED = frozenset({"bridge", "host", "none", "default"})


@frozen
class NetworkConfig:
    """One network: a bridge and an IPv4 subnet; ``internal`` networks get no outbound NAT."""

    name: str
    id: str
    subnet: str
    gateway: str
    bridge: str
    internal: bool = False
    default: bool = False
    created: str = ""
    note: str | None = None
    auto_subnet: bool = False       # chosen by pybuild (no --subnet/--gateway): may move while idle

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "NetworkConfig":
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**fields)


def networks_dir(root: str) -> str:
    return os.path.join(root, "networks")


def _dir(root: str, name: str) -> str:
    return os.path.join(networks_dir(root), name)


@contextmanager
def _flock(path: str) -> Iterator[None]:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def root_lock(root: str) -> Iterator[None]:
    """Serialise creation and removal of network records in one store."""
    with _flock(os.path.join(networks_dir(root), ".lock")):
        yield


@contextmanager
def host_lock(path: str = HOST_LOCK) -> Iterator[None]:
    """Serialise bridge creation/deletion between every pybuild process on the host (bridges are global
    to a network namespace; a rootless store's live in its own, with its own lock ``path``)."""
    with _flock(path):
        yield


def validate_name(name: str) -> None:
    if not _NAME.match(name):
        raise InvalidNetworkSpec(f"network name {name!r}: must match [A-Za-z0-9][A-Za-z0-9_.-]{{0,63}}")


def _parse_subnet(subnet: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(subnet, strict=True)
    except ValueError as exc:
        raise InvalidNetworkSpec(f"subnet {subnet!r}: {exc}") from None
    if net.prefixlen > 29:
        raise InvalidNetworkSpec(f"subnet {subnet!r}: too small, need at least a /29")
    return net


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def load(root: str, name: str) -> NetworkConfig:
    """The record of network ``name``; the default network is created on first use."""
    path = os.path.join(_dir(root, name), "network.json")
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        if name == DEFAULT_NETWORK:
            return default(root)
        raise NetworkNotFound(f"network {name!r}: not found") from None
    except ValueError as exc:
        raise InvalidNetworkSpec(f"network record {path}: {exc}") from None
    return NetworkConfig.from_dict(data)


def save(root: str, cfg: NetworkConfig) -> None:
    d = _dir(root, cfg.name)
    os.makedirs(d, mode=0o700, exist_ok=True)
    write_atomic(os.path.join(d, "network.json"), json.dumps(cfg.to_dict(), indent=2).encode())


def list_networks(root: str) -> list[NetworkConfig]:
    """Every network record in the store, the default network first (created if missing)."""
    out = [load(root, DEFAULT_NETWORK)]
    try:
        names = sorted(os.listdir(networks_dir(root)))
    except FileNotFoundError:
        names = []
    for name in names:
        if name.startswith(".") or name == DEFAULT_NETWORK:
            continue
        if os.path.exists(os.path.join(_dir(root, name), "network.json")):
            out.append(load(root, name))
    return out


def subnets_in_use(root: str, exclude: str | None = None) -> list[ipaddress.IPv4Network]:
    try:
        names = os.listdir(networks_dir(root))
    except FileNotFoundError:
        return []
    nets = []
    for name in names:
        if name.startswith(".") or name == exclude:
            continue
        try:
            with open(os.path.join(_dir(root, name), "network.json"), "rb") as f:
                nets.append(ipaddress.IPv4Network(json.loads(f.read())["subnet"]))
        except (FileNotFoundError, ValueError, KeyError):
            continue
    return nets


def default(root: str) -> NetworkConfig:
    """Load or create the default network record (no kernel objects are made here)."""
    with root_lock(root):
        path = os.path.join(_dir(root, DEFAULT_NETWORK), "network.json")
        if os.path.exists(path):
            with open(path, "rb") as f:
                return NetworkConfig.from_dict(json.loads(f.read()))
        net = ipaddress.IPv4Network(DEFAULT_SUBNET)
        cfg = NetworkConfig(
            name=DEFAULT_NETWORK,
            id=_sha256_hex(f"{root}:{DEFAULT_NETWORK}"),
            subnet=str(net),
            gateway=str(net.network_address + 1),
            bridge=DEFAULT_BRIDGE,
            default=True,
            created=_now(),
        )
        save(root, cfg)
        return cfg


def relocate_default(cfg: NetworkConfig, taken: "callable") -> NetworkConfig:
    """The default network moved to the first (bridge, /16) pair ``taken(bridge, subnet)`` accepts.

    ``taken`` returns a reason string when a candidate is unusable, else None. Used only while the
    default network has no endpoints, so moving it cannot strand an address.
    """
    base = ipaddress.IPv4Network(DEFAULT_SUBNET)
    reasons = []
    for i in range(0, 60):
        net = ipaddress.IPv4Network((int(base.network_address) + (i << 16), 16))
        bridge = f"pybuild{i}"
        why = taken(bridge, net)
        if why is None:
            if i == 0:
                return replace(cfg, subnet=str(net), gateway=str(net.network_address + 1), bridge=bridge, note=None)
            note = f"{DEFAULT_SUBNET} on {DEFAULT_BRIDGE} is unavailable ({reasons[0]}); using {net} on {bridge}"
            return replace(cfg, subnet=str(net), gateway=str(net.network_address + 1), bridge=bridge, note=note)
        reasons.append(why)
    raise InvalidNetworkSpec(f"default network: no free /16 in 10.90.0.0-10.149.0.0 ({reasons[0]})")


def create(root: str, name: str, *, subnet: str | None = None, gateway: str | None = None,
           bridge: str | None = None, internal: bool = False,
           overlaps: "callable | None" = None) -> NetworkConfig:
    """Write a new network record. ``subnet`` defaults to the first free /24 in 10.150.0.0/16.

    ``overlaps(net) -> str | None`` reports a host route clash; a given subnet that clashes is an
    error, a chosen one is skipped.
    """
    validate_name(name)
    if name in RESERVED or name == DEFAULT_NETWORK:
        raise InvalidNetworkSpec(f"network name {name!r}: reserved")
    if bridge is not None and not _IFNAME.match(bridge):
        raise InvalidNetworkSpec(f"bridge name {bridge!r}: must be 1-15 of [A-Za-z0-9_.-]")
    with root_lock(root):
        if os.path.exists(os.path.join(_dir(root, name), "network.json")):
            raise NetworkExists(f"network {name!r}: already exists")
        used = subnets_in_use(root)
        if not os.path.exists(os.path.join(_dir(root, DEFAULT_NETWORK), "network.json")):
            used.append(ipaddress.IPv4Network(DEFAULT_SUBNET))    # kept for the default network's first use
        if subnet is not None:
            net = _parse_subnet(subnet)
            for other in used:
                if other.overlaps(net):
                    raise InvalidNetworkSpec(f"subnet {net}: overlaps network subnet {other} in this store")
            clash = overlaps(net) if overlaps else None
            if clash:
                raise InvalidNetworkSpec(f"subnet {net}: overlaps host {clash}")
        else:
            net = None
            for cand in ipaddress.IPv4Network(USER_RANGE).subnets(new_prefix=24):
                if any(o.overlaps(cand) for o in used) or (overlaps and overlaps(cand)):
                    continue
                net = cand
                break
            if net is None:
                raise InvalidNetworkSpec(f"network {name!r}: no free /24 left in {USER_RANGE}; pass --subnet")
        if gateway is None:
            gw = net.network_address + 1
        else:
            try:
                gw = ipaddress.IPv4Address(gateway)
            except ValueError as exc:
                raise InvalidNetworkSpec(f"gateway {gateway!r}: {exc}") from None
            if gw not in net or gw in (net.network_address, net.broadcast_address):
                raise InvalidNetworkSpec(f"gateway {gw}: not a host address of {net}")
        cfg = NetworkConfig(
            name=name,
            id=os.urandom(32).hex(),
            subnet=str(net),
            gateway=str(gw),
            bridge=bridge or ("pbr-" + _sha256_hex(f"{root}\0{name}")[:10]),
            internal=internal,
            created=_now(),
            auto_subnet=subnet is None and gateway is None,
        )
        save(root, cfg)
        return cfg


def relocate_auto(root: str, cfg: NetworkConfig, clash: str, overlaps: "callable") -> NetworkConfig:
    """Move idle user network ``cfg`` (``auto_subnet``, its subnet now overlapping host ``clash``) to
    the first /24 of 10.150.0.0/16 that no other network of the store uses and ``overlaps(net)`` (a
    host route check, None when free) accepts; the new record is saved atomically with a ``note``.

    The caller holds the network's endpoint lock (no endpoints) and the host lock.
    """
    with root_lock(root):
        used = subnets_in_use(root, exclude=cfg.name)
        if not os.path.exists(os.path.join(_dir(root, DEFAULT_NETWORK), "network.json")):
            used.append(ipaddress.IPv4Network(DEFAULT_SUBNET))
        for cand in ipaddress.IPv4Network(USER_RANGE).subnets(new_prefix=24):
            if cand == cfg.network or any(o.overlaps(cand) for o in used) or overlaps(cand):
                continue
            note = f"network {cfg.name}: subnet {cfg.subnet} now overlaps host {clash}; moved to {cand}"
            moved = replace(cfg, subnet=str(cand), gateway=str(cand.network_address + 1), note=note)
            save(root, moved)
            return moved
    raise InvalidNetworkSpec(f"network {cfg.name}: subnet {cfg.subnet} overlaps host {clash}, "
                             f"and no free /24 is left in {USER_RANGE}")


def _sha256_hex(text: str) -> str:
    import hashlib      # lazily: the shim imports this module and need not load OpenSSL

    return hashlib.sha256(text.encode()).hexdigest()


def endpoint_id(network_id: str, container_id: str) -> str:
    """The id of a container's endpoint on a network (Docker's ``EndpointID``): stable, 64 hex digits."""
    return _sha256_hex(f"{network_id}/{container_id}")


def emit_event(root: str, action: str, cfg: NetworkConfig, **attrs: str) -> None:
    """Docker's network event (``create``, ``destroy``, ``connect``, ``disconnect``) in the journal
    (:mod:`layers.events`; never raises)."""
    from layers import events

    events.emit(root, "network", action, cfg.id, name=cfg.name, type="bridge", **attrs)


def remove(root: str, name: str) -> None:
    """Delete the record directory of ``name`` (the caller checks that it has no endpoints)."""
    if name == DEFAULT_NETWORK:
        raise InvalidNetworkSpec(f"network {name!r}: the default network cannot be removed")
    with root_lock(root):
        d = _dir(root, name)
        if not os.path.exists(os.path.join(d, "network.json")):
            raise NetworkNotFound(f"network {name!r}: not found")
        import shutil

        shutil.rmtree(d)
