"""A container on several networks: a further interface (``eth1``, ``eth2``...) per extra network.

:func:`connect` wires a running container's namespace into one more bridge network: under that
network's lock, the bridge is made if needed, an address allocated, a veth pair added whose inside
end is ``ifname`` (no default route: the first network's gateway stays the default), the endpoint
recorded, and the hosts files of the container and of its new peers rewritten (:mod:`.peers`).
:func:`disconnect` undoes it for one network. Both undo what they did on failure; a crash half-way
leaves at most a veth inside the container's namespace (it goes with the namespace) and nothing in
an endpoint table that was not saved. :func:`.attach.teardown` removes every endpoint of a container.
"""

from __future__ import annotations

from layers.value import frozen

from . import config, ipam, netns, peers, rootless, veth
from .attach import _check_names, _drop_bridge, _ensure_bridge, _host_ifname, _mac, release_rootless
from .errors import InvalidNetworkSpec, NetworkError

__all__ = ["ExtraAttachment", "connect", "disconnect", "resolve_name"]


@frozen
class ExtraAttachment:
    """What :func:`connect` made: the interface inside, its address, gateway, MAC and host veth."""

    network: str
    ifname: str
    ip: str
    prefixlen: int
    gateway: str
    mac: str
    bridge: str
    host_veth: str


def resolve_name(text: str) -> str:
    """A network name as ``network connect`` takes it: ``bridge``/``default`` are the default network."""
    return config.DEFAULT_NETWORK if text in ("bridge", "default") else text


def connect(*, root: str, container_id: str, netns_path: str, etc_dir: str, network: str, ifname: str,
            name: str, hostname: str, aliases: tuple[str, ...] = (), ip: str | None = None) -> ExtraAttachment:
    """Attach the running container whose namespace is ``netns_path`` to ``network`` as ``ifname``."""
    _check_names(hostname, name, aliases, (), ())
    if not netns.is_netns(netns_path):
        raise NetworkError(f"container {container_id[:12]}: its network namespace {netns_path} is gone")
    cfg = config.load(root, network)
    if aliases and cfg.default:
        raise InvalidNetworkSpec("--alias: network-scoped aliases only work on a user-defined network")
    if ip and cfg.default:
        raise InvalidNetworkSpec("--ip: only works on a user-defined network")
    host_if = _host_ifname(container_id, cfg.name)

    def wire(site: rootless.Site) -> ExtraAttachment:      # where the bridges live (rootless: their namespace)
        with ipam.locked(root, cfg) as alloc:
            if container_id in alloc.endpoints:
                raise InvalidNetworkSpec(f"container {name} is already attached to network {cfg.name}")
            net, _nat, _notes = _ensure_bridge(root, alloc, site)   # the default network may have moved
            addr = alloc.reserve(ip) if ip else alloc.allocate()
            mac = _mac(addr)
            try:
                veth.attach(veth.VethPlan(host_if, net.bridge, netns_path, str(addr), net.network.prefixlen,
                                          net.gateway, mac, ifname=ifname, default_route=False))
                alloc.add(ipam.Endpoint(container_id, name, str(addr), mac, host_if, hostname, etc_dir,
                                        tuple(aliases), ifname))
                alloc.save()
            except BaseException:
                alloc.pop(container_id)
                veth.detach(host_if)
                if not alloc.endpoints:
                    _drop_bridge(root, alloc.cfg, site)
                raise
            peers.refresh(root, alloc)
        config.emit_event(root, "connect", net, container=container_id)
        return ExtraAttachment(net.name, ifname, str(addr), net.network.prefixlen, net.gateway, mac, net.bridge,
                               host_if)

    return rootless.call(root, wire)


def disconnect(*, root: str, container_id: str, network: str) -> bool:
    """Remove ``container_id``'s endpoint on ``network`` (its veth, address, peers' hosts lines, the
    bridge when it was the last endpoint) and rewrite its own hosts file. False if it had none."""
    cfg = config.load(root, network)
    done = rootless.call(root, lambda site: _disconnect(root, container_id, cfg, site), create=False)
    release_rootless(root)
    return done


def _disconnect(root: str, container_id: str, cfg, site) -> bool:
    with ipam.locked(root, cfg) as alloc:
        ep = alloc.pop(container_id)
        if ep is None:
            return False
        veth.detach(ep.host_veth)
        if not alloc.endpoints:
            _drop_bridge(root, alloc.cfg, site)
            alloc.nat = None
        alloc.save()
        peers.refresh(root, alloc, also=(ep,))
    config.emit_event(root, "disconnect", cfg, container=container_id)
    return True
