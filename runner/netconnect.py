"""``network connect`` / ``network disconnect`` of a container, and the further networks of a start.

A container's first network is :attr:`ContainerConfig.network`; the others are
:attr:`ContainerConfig.extra_networks` (``--network`` given again, or ``connect``). The record is
changed under the container's lock, so it never races a ``start``: a container whose network
namespace exists (it runs, is paused, or is between its network setup and its process) is wired at
once (:mod:`runner.network.multi`, which emits Docker's ``network`` ``connect``/``disconnect`` events
as every endpoint change does); one that is not gets the request recorded and joins at its next
start (:func:`attach_extras`).
"""

from __future__ import annotations

import os
from dataclasses import replace

from layers.errors import AlreadyExists, NotFound

from .errors import InvalidRunOption
from .records import ContainerConfig, ExtraNetwork
from .state import ContainerStore

__all__ = ["connect", "disconnect", "attach_extras", "first_network"]


def first_network(cfg: ContainerConfig) -> str:
    """The name of the container's first network ("" for host, none and container: modes)."""
    from .network import config as netconfig

    mode = cfg.network_mode
    if mode in ("host", "none") or mode.startswith("container:"):
        return ""
    return cfg.network.network or (netconfig.DEFAULT_NETWORK if mode in ("bridge", "default") else mode)


def _netns(cfg: ContainerConfig) -> str | None:
    """The container's namespace while it exists (its network is set up), else None."""
    from .network import netns

    path = cfg.network.netns_path
    return path if path and netns.is_netns(path) else None


def _ifname(extras) -> str:
    used = {x.ifname for x in extras if x.ifname}
    return next(f"eth{i}" for i in range(1, len(used) + 2) if f"eth{i}" not in used)


def _attach(store: ContainerStore, cfg: ContainerConfig, want: ExtraNetwork, path: str, ifname: str) -> ExtraNetwork:
    from .network import multi

    etc = os.path.join(store.dir(cfg.id), "etc")        # runner.resources.rootfs_paths(...).etc
    a = multi.connect(root=store.root, container_id=cfg.id, netns_path=path, etc_dir=etc,
                      network=want.network, ifname=ifname, name=cfg.name,
                      hostname=cfg.spec.hostname or cfg.id[:12], aliases=want.aliases, ip=want.ip_request)
    return replace(want, ifname=a.ifname, ip=a.ip, prefixlen=a.prefixlen, gateway=a.gateway, mac=a.mac,
                   bridge=a.bridge, host_veth=a.host_veth)


def attach_extras(store: ContainerStore, cfg: ContainerConfig) -> ContainerConfig:
    """At a start, after the first network: join the further networks as ``eth1``, ``eth2``... and
    record what each got. An endpoint left from a run that was not torn down is replaced."""
    if not cfg.extra_networks:
        return cfg
    from .network import multi

    path = _netns(cfg)
    if path is None:
        raise InvalidRunOption(f"container {cfg.name}: further networks need a network namespace of its own")
    out = []
    for i, want in enumerate(cfg.extra_networks, start=1):
        multi.disconnect(root=store.root, container_id=cfg.id, network=want.network)    # a stale one
        out.append(_attach(store, cfg, want.detached(), path, f"eth{i}"))
    return store.update_config(replace(cfg, extra_networks=tuple(out)))


def connect(store: ContainerStore, ref: str, network: str, *, aliases: tuple[str, ...] = (),
            ip: str | None = None) -> ContainerConfig:
    """Attach container ``ref`` to ``network`` (now if its network is up, else at its next start)."""
    from .network import config as netconfig
    from .network import multi

    name = multi.resolve_name(network)
    net = netconfig.load(store.root, name)          # NetworkNotFound for an unknown one
    if (aliases or ip) and net.default:
        raise InvalidRunOption(f"network connect {name}: --alias and --ip only work on a user-defined network")
    cfg = store.resolve(ref)
    with store.lock(cfg.id):
        cfg = store.load_config(cfg.id)
        first = first_network(cfg)
        if not first:
            raise InvalidRunOption(f"container {cfg.name}: network mode {cfg.network_mode} cannot be connected "
                                   "to other networks")
        if name == first or any(x.network == name for x in cfg.extra_networks):
            raise AlreadyExists(f"container {cfg.name} is already connected to network {name}")
        want = ExtraNetwork(name, tuple(aliases), ip)
        path = _netns(cfg)
        if path is not None:
            want = _attach(store, cfg, want, path, _ifname(cfg.extra_networks))
        cfg = store.update_config(replace(cfg, extra_networks=cfg.extra_networks + (want,)))
    return cfg


def disconnect(store: ContainerStore, ref: str, network: str, *, force: bool = False) -> ContainerConfig | None:
    """Detach container ``ref`` from ``network`` (one joined beside its first). ``force``: a container
    that is gone or not connected is not an error (returns None / the record unchanged)."""
    from .network import multi

    name = multi.resolve_name(network)
    try:
        cfg = store.resolve(ref)
    except NotFound:
        if force:
            return None
        raise
    with store.lock(cfg.id):
        cfg = store.load_config(cfg.id)
        if name == first_network(cfg):
            raise InvalidRunOption(f"container {cfg.name}: {name} is its first network, which pybuild keeps for "
                                   "the container's life (only networks joined beside it can be disconnected)")
        keep = tuple(x for x in cfg.extra_networks if x.network != name)
        if len(keep) == len(cfg.extra_networks):
            if force:
                return cfg
            raise NotFound(f"container {cfg.name} is not connected to network {name}")
        try:
            multi.disconnect(root=store.root, container_id=cfg.id, network=name)
        except NotFound:            # the network was removed meanwhile: nothing left to undo
            pass
        cfg = store.update_config(replace(cfg, extra_networks=keep))
    return cfg
