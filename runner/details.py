"""What ``inspect`` shows of a container, as typed facts: :func:`details` returns a
:class:`ContainerDetails` (its config and reconciled state, plus what only the runner knows: the
user's mounts as volumes or binds, its host name, its log file, its seccomp status). The Docker
shaped document is built from it on the CLI side (``pybuild.views.containers``)."""

from __future__ import annotations

import os

from layers.value import frozen

from .ocispec import Spec
from .records import ContainerConfig, ContainerState
from .resources import named_volume_of, rootfs_paths
from .state import ContainerStore

__all__ = ["ContainerDetails", "HostSettings", "MountPoint", "details"]


@frozen(slots=True)
class MountPoint:
    """A mount the user asked for (``-v``, ``--tmpfs`` binds, the image's volumes)."""

    type: str                       # volume | bind
    source: str
    destination: str
    options: tuple[str, ...]
    rw: bool
    name: str = ""                  # the named volume's name, "" for anything else


@frozen(slots=True)
class HostSettings:
    """The run flags ``inspect`` shows under ``HostConfig`` (Docker's names in the comments), read back
    from the spec: its resources, rlimits, namespaces, mounts and ``org.pybuild.*`` annotations."""

    dns: tuple[str, ...] = ()                       # Dns
    dns_search: tuple[str, ...] = ()                # DnsSearch
    dns_options: tuple[str, ...] = ()               # DnsOptions
    extra_hosts: tuple[str, ...] = ()               # ExtraHosts (NAME:IP)
    aliases: tuple[str, ...] = ()                   # the network's Aliases (--network-alias)
    ulimits: tuple[tuple[str, int, int], ...] = ()  # Ulimits: (name, soft, hard), name as Docker's (nofile)
    shm_size: int = 0                               # ShmSize in bytes (Docker's 64 MiB with --ipc host|none)
    cpu_shares: int = 0
    cpuset_cpus: str = ""
    memory_reservation: int = 0
    memory_swap: int = 0
    sysctls: tuple[tuple[str, str], ...] = ()
    devices: tuple[tuple[str, str, str], ...] = ()  # (PathOnHost, PathInContainer, CgroupPermissions)
    group_add: tuple[str, ...] = ()
    pid_mode: str = ""                              # "" | host
    ipc_mode: str = "private"                       # private | host | none
    uts_mode: str = ""                              # "" | host
    exposed_ports: tuple[str, ...] = ()             # Config.ExposedPorts keys (80/tcp)


@frozen(slots=True)
class ContainerDetails:
    config: ContainerConfig
    state: ContainerState
    log_path: str
    mounts: tuple[MountPoint, ...]
    hostname: str                   # the host's own name when the container has no UTS namespace
    privileged: bool                # no seccomp filter and no masked paths
    seccomp: str                    # default | unconfined | why the filter does not apply
    host: HostSettings = HostSettings()
    network_id: str = ""            # the attached network's id ("" when none or gone)
    endpoint_id: str = ""           # the container's endpoint on it
    extra_ids: tuple[tuple[str, str], ...] = ()     # (network id, endpoint id) of each further network


def details(store: ContainerStore, ref: str) -> ContainerDetails:
    """The facts ``inspect`` shows of container ``ref`` (name, id or unique id prefix)."""
    cfg = store.resolve(ref)
    cur = store.status(cfg.id)
    spec = cfg.spec
    linux = spec.linux
    paths = rootfs_paths(store, cfg.id)
    named = named_volume_of(store)
    mounts = tuple(
        MountPoint(type="volume" if os.path.dirname(m.source or "") == paths.volumes or named(m)
                   else m.type or "bind",
                   source=m.source or "", destination=m.destination, options=m.options, rw="ro" not in m.options,
                   name=named(m))
        for m in spec.mounts if (m.type == "bind" or "bind" in m.options)
        and os.path.dirname(m.source or "") != paths.etc     # /etc/hosts & co: not the user's mounts
    )
    own_uts = any(n.type == "uts" for n in linux.namespaces)
    return ContainerDetails(
        config=cfg, state=cur, log_path=store.log_path(cfg.id), mounts=mounts,
        hostname=spec.hostname or ("" if own_uts else os.uname().nodename),
        privileged=linux.seccomp is None and not linux.masked_paths,
        seccomp=_seccomp_status(spec), host=host_settings(spec), **_endpoint(store.root, cfg),
        extra_ids=_extra_ids(store.root, cfg))


def _endpoint(root: str, cfg: ContainerConfig) -> dict:
    """``network_id`` and ``endpoint_id`` of the network ``cfg`` is attached to (none: empty)."""
    if not cfg.network.network:
        return {}
    from .network import config as netconfig
    from .network.errors import NetworkNotFound

    try:
        net = netconfig.load(root, cfg.network.network)
    except NetworkNotFound:
        return {}
    return {"network_id": net.id, "endpoint_id": netconfig.endpoint_id(net.id, cfg.id)}


def _extra_ids(root: str, cfg: ContainerConfig) -> tuple[tuple[str, str], ...]:
    """(network id, endpoint id) of each of ``cfg``'s further networks ("" for one that is gone)."""
    if not cfg.extra_networks:
        return ()
    from .network import config as netconfig
    from .network.errors import NetworkNotFound

    out = []
    for x in cfg.extra_networks:
        try:
            nid = netconfig.load(root, x.network).id
        except NetworkNotFound:
            out.append(("", ""))
            continue
        out.append((nid, netconfig.endpoint_id(nid, cfg.id)))
    return tuple(out)


_DEFAULT_NOFILE = 1048576       # RunOptions.nofile: pybuild's own default, not a --ulimit
_DEFAULT_SHM = 64 * 1024 * 1024


def host_settings(spec: Spec) -> HostSettings:
    """The :class:`HostSettings` ``spec`` records (a spec :func:`runner.spec.make_spec` made)."""
    def values(key: str) -> tuple[str, ...]:
        text = spec.annotation(f"org.pybuild.{key}", "")
        return tuple(text.split("\n")) if text else ()

    linux = spec.linux
    res = linux.resources
    mem, cpu = (res.memory, res.cpu) if res is not None else (None, None)
    ulimits = tuple((r.type.removeprefix("RLIMIT_").lower(), r.soft, r.hard) for r in spec.process.rlimits
                    if not (r.type == "RLIMIT_NOFILE" and r.soft == r.hard == _DEFAULT_NOFILE))
    shm = next((m for m in spec.mounts if m.destination == "/dev/shm"), None)
    spaces = {n.type for n in linux.namespaces}
    exposed = spec.annotation("org.opencontainers.image.exposedPorts", "")
    return HostSettings(
        dns=values("dns"), dns_search=values("dnsSearch"), dns_options=values("dnsOptions"),
        extra_hosts=values("extraHosts"), aliases=values("aliases"), ulimits=ulimits,
        shm_size=(_shm_bytes(shm.options) if shm is not None and shm.type == "tmpfs"
                  else _shm_bytes(tuple(spec.annotation("org.pybuild.shmOptions").split(",")))
                  if spec.annotation("org.pybuild.shmOptions") else _DEFAULT_SHM),
        cpu_shares=(cpu.shares or 0) if cpu else 0, cpuset_cpus=(cpu.cpus or "") if cpu else "",
        memory_reservation=(mem.reservation or 0) if mem else 0, memory_swap=(mem.swap or 0) if mem else 0,
        sysctls=tuple(linux.sysctl),
        devices=tuple(tuple(d.split(":", 2)) for d in values("devices")),
        group_add=values("groupAdd"),
        pid_mode=(f"container:{spec.annotation('org.pybuild.pidContainer')}" if spec.annotation("org.pybuild.pidContainer")
                  else "" if "pid" in spaces else "host"),
        ipc_mode=("none" if shm is None else f"container:{spec.annotation('org.pybuild.ipcContainer')}"
                  if spec.annotation("org.pybuild.ipcContainer") else "shareable"
                  if spec.annotation("org.pybuild.shmOptions") else "private" if "ipc" in spaces else "host"),
        # without its own netns, a shared UTS namespace is --network host's doing, not --uts host
        uts_mode="host" if "uts" not in spaces and "network" in spaces else "",
        exposed_ports=tuple(p for p in exposed.split(",") if p))


def _shm_bytes(options: tuple[str, ...]) -> int:
    """The ``size=`` of a tmpfs mount's options in bytes (``65536k``, ``67108864``)."""
    size = next((o[5:] for o in options if o.startswith("size=")), "")
    scale = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}.get(size[-1:].lower(), 1)
    digits = size[:-1] if scale != 1 else size
    return int(digits) * scale if digits.isdigit() else 0


def _seccomp_status(spec: Spec) -> str:
    """``default`` when the filter applies, ``unconfined`` (--privileged), or why not."""
    if spec.linux.seccomp is None:
        return "unconfined"
    from . import seccomp

    return seccomp.status()
