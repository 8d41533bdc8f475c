"""Attaching a container to a network and detaching it: the orchestration over the other modules.

Order of setup (bridge mode): lock the network's endpoint table -> (host lock) make sure the bridge
exists, with NAT when allowed -> allocate an address -> create the netns -> veth pair into it ->
write hosts/hostname/resolv.conf -> record the endpoint -> refresh peers' hosts files. Any failure
undoes what was done. Teardown is idempotent and also cleans up after a crash half-way through.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import replace

from layers.atomic import write_atomic
from layers.value import frozen

from ..records import NetworkAttachment as Attachment     # one type: the container record's

from . import bridge as bridge_mod
from . import config, files, ipam, nat, netns, peers, rootless, veth
from .errors import InvalidNetworkSpec, NetworkError, NetworkInUse, NetworkNotFound

__all__ = ["Attachment", "NetworkMode", "parse_mode", "setup", "teardown", "remove_network", "inspect_network"]


@frozen
class NetworkMode:
    """``--network`` value: kind is bridge, host, none or container; ``target`` names the network or container."""

    kind: str
    target: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}" if self.kind == "container" else (self.target or self.kind)


def parse_mode(text: str | None) -> NetworkMode:
    """``bridge``/``default``/empty -> default network; ``host``; ``none``; ``container:<x>``; else a network name."""
    text = (text or "bridge").strip()
    if text in ("bridge", "default", config.DEFAULT_NETWORK):
        return NetworkMode("bridge", config.DEFAULT_NETWORK)
    if text in ("host", "none"):
        return NetworkMode(text)
    if text.startswith("container:"):
        target = text.split(":", 1)[1]
        if not target:
            raise InvalidNetworkSpec("--network container:<name|id>: the container is missing")
        return NetworkMode("container", target)
    config.validate_name(text)
    return NetworkMode("bridge", text)


def _host_ifname(container_id: str, network: str | None = None) -> str:
    """The host end of a container's veth: ``pb`` + 12 hex digits of its id's hash (15 bytes at most);
    on a further network (``network`` given) the hash covers the network's name too."""
    import hashlib      # lazily: the shim imports this module and need not load OpenSSL

    key = container_id if network is None else f"{container_id}\0{network}"
    return "pb" + hashlib.sha256(key.encode()).hexdigest()[:12]


def _mac(ip: ipaddress.IPv4Address) -> str:
    return "02:50:" + ":".join(f"{b:02x}" for b in ip.packed)


_own_names = peers.own_names
_extra_path = peers.extra_path


def _peer_entries(alloc: ipam.Allocations, exclude: str | None) -> list[tuple[str, list[str]]]:
    out = []
    for ep in sorted(alloc.endpoints.values(), key=lambda e: ipaddress.IPv4Address(e.ip)):
        if ep.container_id != exclude:
            out.append((ep.ip, _own_names(ep.hostname, ep.name, ep.container_id, ep.aliases)))
    return out


_HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,252})$")


def _check_names(hostname, name, aliases, dns, dns_search) -> None:
    """Everything that ends up in hosts/resolv.conf lines: a name with a space or newline could add lines."""
    for what, value in [("hostname", hostname), ("name", name)] + [("alias", a) for a in aliases] \
            + [("dns search domain", d) for d in dns_search]:
        if value is not None and not _HOSTNAME.match(value):
            raise InvalidNetworkSpec(f"{what} {value!r}: must be letters, digits, '.', '_' or '-'")
    for server in dns:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise InvalidNetworkSpec(f"dns server {server!r}: not an IP address") from None


HOST_GATEWAY = "host-gateway"


def _parse_extra_hosts(extra_hosts) -> list[tuple[str, str]]:
    """``NAME:IP`` items; ``NAME:host-gateway`` is kept as it is until the bridge's gateway is known."""
    out = []
    for item in extra_hosts:
        name, sep, ip = item.partition(":")
        try:
            if ip != HOST_GATEWAY:
                ipaddress.ip_address(ip)
        except ValueError:
            sep = ""
        if not sep or not _HOSTNAME.match(name):
            raise InvalidNetworkSpec(f"--add-host {item!r}: expected NAME:IP")
        out.append((name, ip))
    return out


def _ensure_bridge(root: str, alloc: ipam.Allocations,
                   site: rootless.Site = rootless.HOST) -> tuple[config.NetworkConfig, str, list[str]]:
    """Under the host lock (of ``site``, where the bridges live): make the bridge of ``alloc.cfg`` exist
    (relocating an idle default network whose bridge or subnet is taken), set up NAT on first creation.
    Returns (cfg, nat detail, notes)."""
    cfg = alloc.cfg
    notes: list[str] = []
    with config.host_lock(site.lock):
        owner = bridge_mod.owner_tag(root, cfg.name)
        if cfg.default and not alloc.endpoints:
            others = config.subnets_in_use(root, exclude=cfg.name)

            def taken(name: str, net: ipaddress.IPv4Network) -> str | None:
                for other in others:
                    if other.overlaps(net):
                        return f"{net} overlaps network {other} of this store"
                state = bridge_mod.lookup(name)
                if state is not None and state.owner != owner:
                    return f"bridge {name} belongs to {state.owner or 'another program'}"
                clash = bridge_mod.route_overlaps(net, ignore_dev=name if state is not None else None)
                return f"{net} overlaps {clash}" if clash else None

            moved = config.relocate_default(cfg, taken)
            if (moved.subnet, moved.bridge) != (cfg.subnet, cfg.bridge) or moved.note != cfg.note:
                config.save(root, moved)
                cfg = moved
                alloc.cfg = moved
        existing = bridge_mod.lookup(cfg.bridge)
        ours = existing is not None and existing.owner == owner
        if not ours:
            ignore = cfg.bridge if existing else None
            clash = bridge_mod.route_overlaps(cfg.network, ignore_dev=ignore)
            if clash and cfg.auto_subnet and not cfg.default and not alloc.endpoints:
                # chosen by us and nothing holds an address yet: move to a free /24 (Docker never moves
                # a subnet, but one it chose with no container on it has nothing depending on it)
                cfg = alloc.cfg = config.relocate_auto(
                    root, cfg, clash, lambda net: bridge_mod.route_overlaps(net, ignore_dev=ignore))
                alloc.last = None
            elif clash:
                given = "" if cfg.auto_subnet or cfg.default else " (given with --subnet; it is never moved)"
                raise NetworkError(f"network {cfg.name}: subnet {cfg.subnet} overlaps host {clash}{given}")
        if not (ours and existing.up and f"{cfg.gateway}/{cfg.network.prefixlen}" in existing.addresses):
            bridge_mod.ensure(cfg.bridge, cfg.gateway, cfg.network.prefixlen, owner)
        if cfg.internal:
            detail = "no NAT: internal network"
        elif not site.nat_wanted:
            detail = f"no NAT: outbound through {site.usernet.tool}"
        elif existing is None or not alloc.endpoints or alloc.nat is None:
            detail = alloc.nat = nat.enable(cfg.bridge, cfg.subnet).detail    # idempotent
        else:
            detail = alloc.nat          # set up with the bridge; `network inspect` asks the kernel again
    if cfg.note and existing is None:       # said when the bridge comes up on the other subnet
        notes.append(cfg.note)
    if site.rootless and site.nat_wanted and not cfg.internal and detail == nat.NO_NAT and existing is None:
        notes.append(f"network {cfg.name}: containers cannot reach out: {site.usernet.tool} needs a masquerade "
                     "in the rootless network namespace, and neither nft nor iptables is installed")
    return cfg, detail, notes


@frozen
class _Request:
    """Everything :func:`setup` was asked for, normalised, handed to the per-mode helpers."""

    root: str
    state_dir: str
    container_id: str
    etc_dir: str
    hostname: str
    name: str | None
    ip: str | None
    aliases: tuple[str, ...]
    extra: tuple[tuple[str, str], ...]
    dns: tuple[str, ...]
    dns_search: tuple[str, ...]
    dns_options: tuple[str, ...] = ()

    @property
    def own_names(self) -> list[str]:
        return _own_names(self.hostname, self.name, self.container_id, self.aliases)

    def resolv(self, keep_loopback: bool = False) -> str:
        return files.resolv_text(dns=self.dns, search=self.dns_search, keep_loopback=keep_loopback,
                                 options=self.dns_options)


def setup(*, root: str, state_dir: str, container_id: str, etc_dir: str, mode: str | NetworkMode = "bridge",
          name: str | None = None, hostname: str | None = None, ip: str | None = None,
          aliases: tuple[str, ...] = (), extra_hosts: tuple[str, ...] = (), dns: tuple[str, ...] = (),
          dns_search: tuple[str, ...] = (), dns_options: tuple[str, ...] = ()) -> Attachment:
    """Give ``container_id`` its network: a namespace (except ``host``), an address and /etc files.

    ``etc_dir`` receives ``hosts``, ``hostname`` and ``resolv.conf`` for the sandbox to bind-mount.
    ``name`` is the container name peers resolve on a user network. Undo with :func:`teardown`.
    """
    m = mode if isinstance(mode, NetworkMode) else parse_mode(mode)
    _check_names(hostname, name, aliases, dns, dns_search)
    req = _Request(root, state_dir, container_id, etc_dir, hostname or container_id[:12], name, ip,
                   tuple(aliases), tuple(_parse_extra_hosts(extra_hosts)), tuple(dns), tuple(dns_search),
                   tuple(dns_options))
    os.makedirs(etc_dir, mode=0o755, exist_ok=True)
    if any(ip == HOST_GATEWAY for _, ip in req.extra) and m.kind != "bridge":
        raise InvalidNetworkSpec(f"--add-host NAME:{HOST_GATEWAY}: needs a bridge network (the gateway is "
                                 f"the bridge's address), not --network {mode}")
    if req.extra and m.kind != "bridge":
        _write_extra(req)
    if m.kind == "host":
        paths = files.write_all(etc_dir, hostname=req.hostname, hosts=files.host_hosts_text(req.extra),
                                resolv=req.resolv(keep_loopback=True))
        return Attachment("host", container_id, None, req.hostname, paths)
    if m.kind == "container":
        return _join_container(req, m.target)
    if m.kind == "none":
        return _setup_none(req)
    return rootless.call(root, lambda site: _setup_bridge(req, m.target, site))


def _write_extra(req: _Request) -> None:
    if req.extra:
        write_atomic(_extra_path(req.etc_dir), "".join(f"{n}\t{i}\n" for n, i in req.extra).encode(),
                     durable=False)


def _setup_none(req: _Request) -> Attachment:
    path = netns.netns_path(req.state_dir, req.container_id)
    netns.create(path)
    try:
        veth.setup_loopback(path)
        paths = files.write_all(req.etc_dir, hostname=req.hostname, hosts=files.hosts_text(None, (), req.extra),
                                resolv=req.resolv())
    except BaseException:
        netns.remove(path)
        raise
    return Attachment("none", req.container_id, path, req.hostname, paths)


def _setup_bridge(req: _Request, network: str, site: rootless.Site) -> Attachment:
    path = netns.netns_path(req.state_dir, req.container_id)
    cfg = config.load(req.root, network)
    host_if = _host_ifname(req.container_id)
    with ipam.locked(req.root, cfg) as alloc:
        cfg, nat_detail, notes = _ensure_bridge(req.root, alloc, site)
        # Docker's host-gateway: the host's address on the bridge (this network's gateway); rootless the
        # bridge is in the rootless namespace, and the tool's host-loopback address reaches the host
        host = site.usernet.host_loopback if site.rootless and site.usernet else cfg.gateway
        req = replace(req, extra=tuple((n, host if i == HOST_GATEWAY else i) for n, i in req.extra))
        _write_extra(req)
        addr = alloc.reserve(req.ip) if req.ip else alloc.allocate()
        mac = _mac(addr)
        created_ns = False
        try:
            netns.create(path)
            created_ns = True
            veth.attach(veth.VethPlan(host_if, cfg.bridge, path, str(addr), cfg.network.prefixlen, cfg.gateway, mac))
            others = _peer_entries(alloc, req.container_id) if not cfg.default else []
            paths = files.write_all(req.etc_dir, hostname=req.hostname,
                                    hosts=files.hosts_text((str(addr), req.own_names), others, req.extra),
                                    resolv=req.resolv())
            alloc.add(ipam.Endpoint(req.container_id, req.name or req.container_id[:12], str(addr), mac, host_if,
                                    req.hostname, req.etc_dir, req.aliases))
            alloc.save()
        except BaseException:
            veth.detach(host_if)
            if created_ns:
                netns.remove(path)
            if not alloc.endpoints:
                _drop_bridge(req.root, alloc.cfg, site)
            raise
        peers.refresh(req.root, alloc)
    config.emit_event(req.root, "connect", cfg, container=req.container_id)
    return Attachment("bridge", req.container_id, path, req.hostname, paths, network=cfg.name, ip=str(addr),
                      prefixlen=cfg.network.prefixlen, gateway=cfg.gateway, mac=mac, bridge=cfg.bridge,
                      host_veth=host_if, nat=nat_detail, notes=tuple(notes),
                      dial_netns=rootless.netns_path(req.root) if site.rootless else None)


def _find_endpoint(root: str, ref: str) -> tuple[config.NetworkConfig, ipam.Endpoint] | None:
    for cfg in _existing_networks(root):
        with ipam.locked(root, cfg) as alloc:
            for ep in alloc.endpoints.values():
                if ref in (ep.container_id, ep.name) or (len(ref) >= 4 and ep.container_id.startswith(ref)):
                    return cfg, ep
    return None


def _container_netns(req: _Request, ref: str) -> tuple[str, str] | None:
    """(namespace path, hostname) of running container ``ref`` (name, id or prefix) from the container
    records: its bind-mounted namespace, else its PID 1's (``--network none`` or ``host`` targets keep
    none of their own); None when there is no such running container."""
    from layers.errors import PybuildError

    from ..state import ContainerStore

    store = ContainerStore(req.root, req.state_dir)
    try:
        cfg = store.resolve(ref)
        cur = store.status(cfg.id)
    except PybuildError:
        return None
    if not cur.live or cur.pid <= 0:
        return None
    # a spec without a hostname shares the host's UTS namespace (``--network host``): the host's name
    hostname = cfg.spec.hostname or os.uname().nodename
    path = netns.netns_path(req.state_dir, cfg.id)
    return (path if netns.is_netns(path) else f"/proc/{cur.pid}/ns/net"), hostname


def _join_container(req: _Request, target: str) -> Attachment:
    """``container:<x>``: share x's namespace; ``x`` is a name, id or id prefix of a running container."""
    found = _find_endpoint(req.root, target)
    if found is None:
        other = _container_netns(req, target)
        if other is None or not netns.is_netns(other[0]):
            raise NetworkNotFound(f"--network container:{target}: no running container of that name or id")
        path, hostname = other
        paths = files.write_all(req.etc_dir, hostname=hostname, hosts=files.hosts_text(None, (), req.extra),
                                resolv=req.resolv())
        return Attachment("container", req.container_id, path, hostname, paths)
    cfg, ep = found
    path = netns.netns_path(req.state_dir, ep.container_id)
    if not netns.is_netns(path):
        raise NetworkNotFound(f"--network container:{target}: no running container network namespace found")
    paths = files.write_all(req.etc_dir, hostname=ep.hostname,
                            hosts=files.hosts_text((ep.ip, [ep.hostname, ep.name]), (), req.extra),
                            resolv=req.resolv())
    return Attachment("container", req.container_id, path, ep.hostname, paths, network=cfg.name, ip=ep.ip,
                      prefixlen=cfg.network.prefixlen, gateway=cfg.gateway, mac=ep.mac, bridge=cfg.bridge)


def _existing_networks(root: str) -> list[config.NetworkConfig]:
    d = config.networks_dir(root)
    try:
        names = sorted(os.listdir(d))
    except FileNotFoundError:
        return []
    return [config.load(root, n) for n in names
            if not n.startswith(".") and os.path.exists(os.path.join(d, n, "network.json"))]


def _drop_bridge(root: str, cfg: config.NetworkConfig, site: rootless.Site = rootless.HOST) -> None:
    """Remove an idle network's bridge and NAT (called with the network's endpoint table locked)."""
    with config.host_lock(site.lock):
        if bridge_mod.delete(cfg.bridge, bridge_mod.owner_tag(root, cfg.name)) and not cfg.internal \
                and site.nat_wanted:
            nat.disable(cfg.bridge, cfg.subnet)


def _idle(root: str, but: str | None = None) -> bool:
    """No container (other than ``but``) holds an address on any network of ``root``."""
    for cfg in _existing_networks(root):
        with ipam.locked(root, cfg) as alloc:
            if any(cid != but for cid in alloc.endpoints):
                return False
    return True


def release_rootless(root: str) -> bool:
    """Rootless: stop the outbound tool and drop the rootless namespace once no container uses it."""
    return rootless.active() and rootless.release_if_idle(root, lambda: _idle(root))


def teardown(*, root: str, state_dir: str, container_id: str) -> None:
    """Undo :func:`setup` for ``container_id``: veth, address, peers' hosts entries, netns, and the
    bridge when it was the last endpoint. Idempotent; safe after a crash at any point of setup.
    Rootless, the rootless namespace and its tool go too once no container holds an address."""
    rootless.call(root, lambda site: _teardown(root, state_dir, container_id, site), create=False)
    release_rootless(root)


def _teardown(root: str, state_dir: str, container_id: str, site: rootless.Site) -> None:
    host_if = _host_ifname(container_id)
    # rootless, the last container's links are left to the kernel: the whole namespace goes right after
    # (release_rootless), and deleting a bridge and a veth one by one costs some 60 ms of RCU waits. Should
    # another container arrive in between, this one's veth still goes with its own namespace, below.
    links = not (site.rootless and _idle(root, but=container_id))
    for cfg in _existing_networks(root):
        with ipam.locked(root, cfg) as alloc:
            ep = alloc.pop(container_id)
            if ep is None:
                continue
            if links:
                veth.detach(ep.host_veth)
            if not alloc.endpoints:
                if links:
                    _drop_bridge(root, alloc.cfg, site)
                alloc.nat = None
            alloc.save()
            peers.refresh(root, alloc)
        config.emit_event(root, "disconnect", cfg, container=container_id)
    if links:
        veth.detach(host_if)
    netns.remove(netns.netns_path(state_dir, container_id))


def remove_network(root: str, name: str) -> None:
    """Delete network ``name``; refused while containers are attached."""
    cfg = config.load(root, name)
    if cfg.default:
        raise InvalidNetworkSpec(f"network {name!r}: the default network cannot be removed")
    with ipam.locked(root, cfg) as alloc:
        if alloc.endpoints:
            names = ", ".join(sorted(e.name for e in alloc.endpoints.values()))
            raise NetworkInUse(f"network {name!r}: still has containers attached: {names}")
        rootless.call(root, lambda site: _drop_bridge(root, cfg, site), create=False)
        config.remove(root, name)
    config.emit_event(root, "destroy", cfg)
    release_rootless(root)


def _live_bridge(root: str, cfg: config.NetworkConfig, site: rootless.Site):
    """(the bridge's state or None, the NAT detail) as the kernel says where ``site`` is."""
    state = bridge_mod.lookup(cfg.bridge)
    if cfg.internal:
        return state, "no NAT: internal network"
    if not site.nat_wanted:
        return state, f"no NAT: outbound through {site.usernet.tool}"
    if state is None or state.owner != bridge_mod.owner_tag(root, cfg.name):
        return state, nat.NO_NAT if nat.available() is None else "no NAT rule installed (bridge is down)"
    return state, nat.status(cfg.bridge, cfg.subnet).detail


def inspect_network(root: str, name: str) -> dict:
    """The record, the live bridge, NAT status and endpoints of network ``name`` as a JSON-able dict."""
    cfg = config.load(root, name)
    with ipam.locked(root, cfg) as alloc:
        eps = {k: {"name": e.name, "ip": f"{e.ip}/{cfg.network.prefixlen}", "mac": e.mac,
                   "host_veth": e.host_veth, "hostname": e.hostname}
               for k, e in sorted(alloc.endpoints.items())}
    state, nat_detail = rootless.call(root, lambda site: _live_bridge(root, cfg, site), create=False)
    owner = bridge_mod.owner_tag(root, cfg.name)
    out = cfg.to_dict()
    out["bridge_state"] = (
        {"present": True, "up": state.up, "addresses": list(state.addresses), "owned": state.owner == owner}
        if state is not None else {"present": False}
    )
    out["nat"] = nat_detail
    out["endpoints"] = eps
    return out
