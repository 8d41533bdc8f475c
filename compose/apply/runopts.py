"""A service -> the runner's :class:`runner.options.RunOptions` for one of its containers.

Pure apart from reading nothing: :func:`run_options` maps every field of :class:`compose.model.Service`
the runner can honour, and refuses (:class:`Unsupported`, naming ``services.<name>.<key>``) the ones it
cannot, so nothing in a compose file is silently ignored. Named volumes are passed by their real
name (the runner creates a missing one); anonymous volumes become named volumes owned by the
container (``<container>_<8 hex of the target>``, removed by ``down -v``).
"""

from __future__ import annotations

import hashlib
import shlex

from compose.model import Project, Service
from layers.value import frozen

from .errors import Unsupported

__all__ = ["ContainerRequest", "run_options", "network_of", "extra_networks_of", "anonymous_volume"]


@frozen
class ContainerRequest:
    """What differs between the containers of one service: the name, the labels, the network
    (real name, or a mode) and, for ``run``, the command, environment and flags given."""

    name: str
    labels: tuple[tuple[str, str], ...]
    command: tuple[str, ...] | None = None
    extra_env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    user: str | None = None
    workdir: str | None = None
    publish: bool = True              # ``run`` publishes only with --service-ports
    tty: bool = False
    interactive: bool = False
    rm: bool = False
    restart: str | None = None        # ``run`` never restarts


def _refuse(svc: Service, key: str, why: str = "is not supported by pybuild") -> None:
    raise Unsupported(f"services.{svc.name}.{key}: {why}")


def network_of(project: Project, svc: Service) -> tuple[str, tuple[str, ...], str | None]:
    """``(network, aliases, ipv4)``: the runner network mode for the service's containers. The
    container answers to the service name and the service's aliases on it."""
    if svc.network_mode:
        mode = svc.network_mode
        if mode.startswith("service:"):
            return f"container:{project.name}-{mode.split(':', 1)[1]}-1", (), None
        if mode.startswith("container:") or mode in ("host", "none", "bridge"):
            return mode, (), None
        _refuse(svc, "network_mode", f"{mode!r} is not supported (host, none, bridge, service:NAME, container:NAME)")
    if not svc.networks:
        return "bridge", (), None
    sn = _by_priority(svc)[0]
    if sn.ipv6_address:
        _refuse(svc, f"networks.{sn.name}.ipv6_address", "IPv6 is not supported")
    net = project.network(sn.name)
    aliases = tuple(dict.fromkeys((svc.name,) + tuple(sn.aliases)))
    return net.real_name, aliases, sn.ipv4_address


def _by_priority(svc: Service):
    """The service's networks as Compose v2 orders them: higher ``priority`` first, then by key; the
    first is the container's first network (its default route), the others are joined beside it."""
    return sorted(svc.networks, key=lambda n: (-n.priority, n.name))


def extra_networks_of(project: Project, svc: Service):
    """The service's further networks as :class:`runner.options.NetworkRequest` s, each with the service
    name and that network's aliases (peers there resolve the container by them)."""
    from runner.options import NetworkRequest

    if svc.network_mode or len(svc.networks) < 2:
        return ()
    out = []
    for sn in _by_priority(svc)[1:]:
        if sn.ipv6_address:
            _refuse(svc, f"networks.{sn.name}.ipv6_address", "IPv6 is not supported")
        aliases = tuple(dict.fromkeys((svc.name,) + tuple(sn.aliases)))
        out.append(NetworkRequest(project.network(sn.name).real_name, aliases, sn.ipv4_address))
    return tuple(out)


def anonymous_volume(container: str, target: str) -> str:
    return f"{container}_{hashlib.sha256(target.encode()).hexdigest()[:8]}"


def _health(svc: Service):
    from runner.options import HealthOptions

    hc = svc.healthcheck
    if hc is None:
        return HealthOptions()
    if hc.disable or (hc.test and hc.test[0] == "NONE"):
        return HealthOptions(disable=True)
    cmd = None
    if hc.test:
        kind, args = hc.test[0], hc.test[1:]
        if kind == "CMD-SHELL":
            cmd = " ".join(args)
        elif kind == "CMD":
            cmd = shlex.join(args)          # an argv, run through the image's shell, quoted exactly
        else:
            cmd = shlex.join(hc.test)
    return HealthOptions(cmd=cmd, interval=hc.interval, timeout=hc.timeout, start_period=hc.start_period,
                         start_interval=hc.start_interval, retries=hc.retries)


def _mounts(project: Project, svc: Service, container: str):
    from runner.options import BindMount, TmpfsMount

    binds, tmpfs = [], []
    for m in svc.volumes + svc.tmpfs:
        key = f"volumes[{m.target}]"
        if m.bind_propagation or m.volume_subpath or m.volume_nocopy:
            _refuse(svc, key, "bind propagation, volume subpath and nocopy are not supported")
        if m.type == "bind":
            if not m.bind_create_host_path:
                import os

                if not os.path.exists(m.source):
                    _refuse(svc, key, f"bind source {m.source} does not exist (create_host_path: false)")
            binds.append(BindMount(m.source, m.target, readonly=m.read_only))
        elif m.type == "volume":
            real = project.volume(m.source).real_name if m.source else anonymous_volume(container, m.target)
            binds.append(BindMount("", m.target, readonly=m.read_only, volume=real))
        elif m.type == "tmpfs":
            opts = []
            if m.tmpfs_size:
                opts.append(f"size={m.tmpfs_size}")
            if m.tmpfs_mode is not None:
                opts.append(f"mode={m.tmpfs_mode:o}")
            tmpfs.append(TmpfsMount(m.target, ",".join(opts)))
        else:
            _refuse(svc, key, f"mount type {m.type!r} is not supported (bind, volume, tmpfs)")
    for ref in svc.secrets + svc.configs:
        if ref.file is None:
            _refuse(svc, f"secrets[{ref.source}]", "only file-based secrets and configs are supported")
        binds.append(BindMount(ref.file, ref.target, readonly=True))
    return tuple(binds), tuple(tmpfs)


def _ports(svc: Service):
    from runner.options import PortSpec

    return tuple(PortSpec(container_port=p.target, host_port=p.published or 0, host_ip=p.host_ip or "",
                          protocol=p.protocol) for p in svc.ports)


def _unsupported(svc: Service) -> None:
    if svc.mac_address:
        _refuse(svc, "mac_address")
    if svc.domainname:
        _refuse(svc, "domainname")
    if svc.logging_driver and svc.logging_driver not in ("json-file", "local"):
        _refuse(svc, "logging.driver", f"{svc.logging_driver!r}: pybuild keeps its own log files only")
    if svc.platform:
        from runner.runflags import check_platform

        try:
            check_platform(svc.platform)
        except Exception as exc:           # InvalidRunOption: say which service asked
            _refuse(svc, "platform", str(exc))
    if any(p.mode == "host" for p in svc.ports):
        _refuse(svc, "ports", "mode: host is not supported (ingress publishing only)")


def run_options(project: Project, svc: Service, req: ContainerRequest):
    """The :class:`runner.options.RunOptions` of one container of ``svc``."""
    from runner import runflags as rf
    from runner.options import RunOptions, default_pids_limit

    _unsupported(svc)
    network, aliases, ip = network_of(project, svc)
    binds, tmpfs = _mounts(project, svc, req.name)
    sec = rf.parse_security_opts(svc.security_opt)
    lim = svc.limits
    env = tuple(f"{k}={v}" for k, v in svc.environment) + req.extra_env
    user_net = network not in ("bridge", "host", "none") and not network.startswith("container:")
    return RunOptions(
        command=req.command if req.command is not None else svc.command,
        entrypoint=req.entrypoint if req.entrypoint is not None else svc.entrypoint,
        env=env, user=req.user or svc.user, workdir=req.workdir or svc.working_dir,
        hostname=svc.hostname, mounts=binds, tmpfs=tmpfs, read_only=svc.read_only,
        cap_add=svc.cap_add, cap_drop=svc.cap_drop, privileged=svc.privileged,
        memory=lim.memory, cpus=lim.cpus,
        pids_limit=default_pids_limit() if lim.pids is None else (None if lim.pids < 0 else lim.pids),
        network=network, extra_networks=extra_networks_of(project, svc), tty=req.tty or svc.tty, interactive=req.interactive, init=bool(svc.init),
        rm=req.rm, detach=True, name=req.name,
        publish=_ports(svc) if req.publish else (),
        restart=req.restart if req.restart is not None else (svc.restart or "no"),
        labels=req.labels, health=_health(svc),
        ulimits=tuple(rf.parse_ulimit(f"{u.name}={u.soft}:{u.hard}") for u in svc.ulimits),
        memory_swap=lim.memswap_limit, memory_reservation=lim.memory_reservation, shm_size=lim.shm_size,
        add_hosts=tuple(f"{h}:{ip_}" for h, ip_ in svc.extra_hosts), dns=svc.dns, dns_search=svc.dns_search,
        dns_options=svc.dns_opt, network_aliases=aliases if user_net else (), ip=ip,
        expose=tuple(e if "/" in e else e + "/tcp" for e in svc.expose),
        group_add=svc.group_add, seccomp=sec.seccomp, no_new_privileges=sec.no_new_privileges,
        security_opts=sec.accepted, sysctls=tuple(rf.parse_sysctl(f"{k}={v}") for k, v in svc.sysctls),
        stop_signal=svc.stop_signal,
        stop_timeout=None if svc.stop_grace_period is None else int(round(svc.stop_grace_period)),
    )
