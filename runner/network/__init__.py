"""Container networking: bridge networks, veth pairs, addresses, /etc files and port publishing.

Public API (see docs/INTERFACES.md, runner section)::

    att = setup(root=..., state_dir=..., container_id=..., etc_dir=..., mode="bridge", name="web")
    ns = att.spec_namespace()      # an ocispec.Namespace for linux.namespaces; None with mode host
    proxy = PortProxy.bind(parse_publish("127.0.0.1:8080:80"), att.ip)   # in the shim, before start
    proxy.start() ... proxy.close()
    teardown(root=..., state_dir=..., container_id=...)

Networks: ``create_network``/``remove_network``/``list_networks``/``inspect_network``.
"""

from __future__ import annotations

from .attach import Attachment, NetworkMode, inspect_network, parse_mode, remove_network, setup, teardown
from .config import DEFAULT_BRIDGE, DEFAULT_NETWORK, DEFAULT_SUBNET, NetworkConfig
from .config import list_networks
from .errors import (
    AddressExhausted,
    InvalidNetworkSpec,
    NetworkError,
    NetworkExists,
    NetworkInUse,
    NetworkNotFound,
    PortInUse,
)
from .proxy import PortProxy
from .publish import PortMapping, parse_publish, publish_all

__all__ = [
    "Attachment",
    "NetworkMode",
    "NetworkConfig",
    "PortMapping",
    "PortProxy",
    "setup",
    "teardown",
    "parse_mode",
    "parse_publish",
    "publish_all",
    "create_network",
    "start_proxies",
    "teardown_container",
    "remove_network",
    "list_networks",
    "inspect_network",
    "DEFAULT_NETWORK",
    "DEFAULT_BRIDGE",
    "DEFAULT_SUBNET",
    "NetworkError",
    "PortInUse",
    "AddressExhausted",
    "NetworkNotFound",
    "NetworkExists",
    "NetworkInUse",
    "InvalidNetworkSpec",
]


def create_network(root: str, name: str, *, subnet: str | None = None, gateway: str | None = None,
                   bridge: str | None = None, internal: bool = False) -> NetworkConfig:
    """Record a new bridge network (the bridge itself appears with its first container)."""
    from . import bridge as bridge_mod
    from . import config, rootless

    def overlaps(net):          # rootless: with the routes of the rootless namespace, if it exists
        return rootless.call(root, lambda site: bridge_mod.route_overlaps(net), create=False)

    cfg = config.create(root, name, subnet=subnet, gateway=gateway, bridge=bridge, internal=internal,
                        overlaps=overlaps)
    config.emit_event(root, "create", cfg)
    return cfg


def start_proxies(config) -> list[PortProxy]:
    """Shim hook: bind ``config.ports`` (dicts of :class:`PortMapping` fields) towards the container's
    address in ``config.network``; raises :class:`PortInUse` before the container starts.

    Rootless (the attachment names a ``dial_netns``), the ports are bound in the caller's (the host's)
    namespace, then the calling thread joins the rootless namespace for good, where the container's
    address is routable: sockets keep the namespace they were made in, so the listeners stay on the
    host and every upstream socket the proxy (or the shim loop's relay, across ``execve``) opens from
    then on is made inside.

    Returns one proxy for all ports; the shim calls ``register(selector)`` and later ``close()``.
    The bound ports (``-P`` picks free ones) are in ``proxy.mappings``.
    """
    mappings = [PortMapping.from_dict(p) for p in config.ports]
    if not mappings:
        return []
    net = dict(config.network or {})
    ip = net.get("ip")
    if not ip:
        if net.get("mode") == "host":
            return []   # Docker ignores published ports in host mode: the ports are the host's already
        raise NetworkError(f"container {config.name}: ports are published but it has no network address "
                           f"(network mode {net.get('mode') or 'unknown'})")
    proxy = PortProxy.bind(mappings, ip)
    if net.get("dial_netns"):
        from . import netns

        try:
            netns.enter(net["dial_netns"])
        except OSError as exc:
            proxy.close()
            raise NetworkError(f"container {config.name}: join the rootless network namespace "
                               f"{net['dial_netns']}: {exc.strerror or exc}") from None
    return [proxy]


def teardown_container(root: str, state_dir: str, config) -> None:
    """Lifecycle hook: :func:`teardown` for a container record (idempotent)."""
    teardown(root=root, state_dir=state_dir, container_id=config.id)
