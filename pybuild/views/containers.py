"""Containers as the command line shows them: Docker's status words (``Up 3 minutes``), the
``docker ps`` JSON row and the ``docker inspect`` document, built from the runner's typed values
(:class:`runner.records.ContainerInfo`, :class:`runner.details.ContainerDetails`)."""

from __future__ import annotations

import time

from runner.records import PAUSED, RESTARTING, RUNNING, DEAD, EXITED, STARTING, ContainerState, rfc3339

__all__ = ["display_status", "human_ago", "human_status", "inspect_document", "ps_document",
           "host_addr", "host_config_document", "networks_document", "ports_text", "health_suffix", "health_document"]


def display_status(cur: ContainerState) -> str:
    """The one-word state ``docker ps --format '{{.State}}'`` shows."""
    return cur.status


def human_ago(t: float | None, now: float | None = None) -> str:
    """``3 minutes``, ``1 hour``: the time since ``t`` as ``docker ps`` words it."""
    now = time.time() if now is None else now
    d = max(0, int(now - (t or now)))
    for unit, secs in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if d >= secs:
            n = d // secs
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{d} second{'s' if d != 1 else ''}"


def human_status(cur: ContainerState, now: float | None = None) -> str:
    """``Up 3 minutes``, ``Exited (1) 2 seconds ago``, ``Created``... as ``docker ps`` shows."""
    now = time.time() if now is None else now

    def ago(t: float | None) -> str:
        return human_ago(t, now)

    if cur.status == RESTARTING:
        return f"Restarting ({cur.exit_code}) {ago(cur.finished_at)} ago"
    if cur.status == RUNNING:
        return f"Up {ago(cur.started_at)}{health_suffix(cur)}"
    if cur.status == PAUSED:
        return f"Up {ago(cur.started_at)} (Paused)"
    if cur.status == EXITED:
        return f"Exited ({cur.exit_code}) {ago(cur.finished_at)} ago"
    return cur.status.capitalize()


def health_suffix(cur: ContainerState) -> str:
    """`` (healthy)``, `` (unhealthy)``, `` (health: starting)`` or nothing, as ``docker ps`` appends."""
    if cur.health is None:
        return ""
    if cur.health.status == STARTING:
        return " (health: starting)"
    return f" ({cur.health.status})"


def health_document(cur: ContainerState) -> dict:
    """``State.Health``: Status, FailingStreak and the Log of the last 5 probes."""
    h = cur.health
    return {"Status": h.status, "FailingStreak": h.failing_streak,
            "Log": [{"Start": rfc3339(r.start), "End": rfc3339(r.end), "ExitCode": r.exit_code,
                     "Output": r.output} for r in h.log]}


def host_addr(port) -> str:
    """``IP:PORT`` of a published port's host side (a :class:`runner.records.PublishedPort`), an
    IPv6 address in brackets (``[::1]:8080``)."""
    ip = port.host_ip or "0.0.0.0"
    return f"[{ip}]:{port.host_port}" if ":" in ip else f"{ip}:{port.host_port}"


def ports_text(ports) -> str:
    """``0.0.0.0:8080->80/tcp, ...`` as ``docker ps`` shows published ports."""
    return ", ".join(f"{host_addr(p)}->{p.container_port}/{p.protocol}" for p in ports)


def ps_document(info) -> dict:
    """One line of ``ps --format json`` for a :class:`runner.records.ContainerInfo`."""
    cfg, cur = info.config, info.state
    return {
        "ID": cfg.id, "Names": cfg.name, "Image": cfg.image,
        "Command": " ".join(cfg.command),
        "CreatedAt": rfc3339(cfg.created), "State": display_status(cur),
        "Status": human_status(cur), "ExitCode": cur.exit_code, "Pid": cur.pid,
        "Ports": ports_text(cfg.ports), "RestartCount": cur.restart_count,
    }


def inspect_document(d) -> dict:
    """Docker's ``inspect`` document for a :class:`runner.details.ContainerDetails`."""
    doc = _inspect_document(d)
    if d.state.health is not None:
        doc["State"]["Health"] = health_document(d.state)
    if d.config.healthcheck is not None:
        check = d.config.healthcheck.to_dict()
        check.pop("Shell", None)
        doc["Config"]["Healthcheck"] = check
    return doc


def _inspect_document(d) -> dict:
    cfg, cur = d.config, d.state
    proc = cfg.spec.process
    net = cfg.network.to_dict()
    host = d.host
    ports: dict[str, list[dict]] = {}
    for p in cfg.ports:
        ports.setdefault(f"{p.container_port}/{p.protocol}", []).append({"HostIp": p.host_ip,
                                                                          "HostPort": str(p.host_port)})
    mounts = [dict({"Type": m.type, "Source": m.source, "Destination": m.destination,
                    "Options": list(m.options), "RW": m.rw}, **({"Name": m.name} if m.name else {}))
              for m in d.mounts]
    return {
        "Id": cfg.id,
        "Name": "/" + cfg.name,
        "Created": rfc3339(cfg.created),
        "Path": (proc.args or ("",))[0],
        "Args": list(proc.args[1:]),
        "Image": cfg.image_id,
        "ImageName": cfg.image,
        "State": {
            "Status": display_status(cur),
            "Running": cur.live,
            "Paused": cur.status == PAUSED,
            "Restarting": cur.status == RESTARTING,
            "OOMKilled": cur.oom_killed,
            "Dead": cur.status == DEAD,
            "Pid": cur.pid if cur.live else 0,
            "ExitCode": cur.exit_code,
            "Error": cur.error,
            "StartedAt": rfc3339(cur.started_at),
            "FinishedAt": rfc3339(cur.finished_at),
        },
        "RestartCount": cur.restart_count,
        "LogPath": d.log_path,
        "HostConfig": {
            "RestartPolicy": {"Name": cfg.restart_policy.partition(":")[0],
                              "MaximumRetryCount": int(cfg.restart_policy.partition(":")[2] or 0)},
            "AutoRemove": cfg.auto_remove,
            "Init": cfg.init,
            "LogConfig": {"Type": "json-file", "Config": {"max-size": str(cfg.log_max_size),
                                                          "max-file": str(cfg.log_max_files)}},
            "PortBindings": ports,
            "Privileged": d.privileged,
            "SecurityOpt": ["seccomp=" + d.seccomp]
            + [o for o in (cfg.spec.annotation("org.pybuild.securityOpt") or "").split("\n") if o],
            **host_config_document(host),
        },
        "Config": {
            "Hostname": d.hostname,
            "User": f"{proc.user.uid}:{proc.user.gid}",
            "Env": list(proc.env),
            "Cmd": list(proc.args),
            "WorkingDir": proc.cwd,
            "Tty": proc.terminal,
            "Image": cfg.image,
            "Labels": cfg.labels,
            "StopSignal": cfg.stop_signal,
            "StopTimeout": cfg.stop_timeout,
            "ExposedPorts": {p: {} for p in host.exposed_ports},
        },
        "Mounts": mounts,
        "NetworkSettings": {
            "IPAddress": net.get("ip", ""),
            "Gateway": net.get("gateway", ""),
            "MacAddress": net.get("mac", ""),
            "Networks": networks_document(d),
            "Ports": ports,
            "SandboxKey": net.get("netns_path", ""),
        },
    }


def host_config_document(host) -> dict:
    """``HostConfig``'s run-flag fields for a :class:`runner.details.HostSettings`, as Docker names them."""
    return {
        "Dns": list(host.dns), "DnsOptions": list(host.dns_options), "DnsSearch": list(host.dns_search),
        "ExtraHosts": list(host.extra_hosts),
        "GroupAdd": list(host.group_add),
        "IpcMode": host.ipc_mode, "PidMode": host.pid_mode, "UTSMode": host.uts_mode,
        "ShmSize": host.shm_size,
        "CpuShares": host.cpu_shares, "CpusetCpus": host.cpuset_cpus,
        "MemoryReservation": host.memory_reservation, "MemorySwap": host.memory_swap,
        "Devices": [{"PathOnHost": h, "PathInContainer": c, "CgroupPermissions": a} for h, c, a in host.devices],
        "Ulimits": [{"Name": n, "Soft": soft, "Hard": hard} for n, soft, hard in host.ulimits],
        "Sysctls": dict(host.sysctls),
    }


def networks_document(d) -> dict:
    """``NetworkSettings.Networks``: the container's endpoint on each of its networks, keyed by network
    name, its first network first."""
    net, cfg = d.config.network, d.config
    out: dict = {}
    if net.network:
        out[net.network] = _endpoint(cfg, net, cfg.spec.annotation("org.pybuild.ip"), list(d.host.aliases),
                                     d.network_id, d.endpoint_id)
    for x, ids in zip(cfg.extra_networks, d.extra_ids):
        out[x.network] = _endpoint(cfg, x, x.ip_request, list(x.aliases), ids[0], ids[1] if x.ip else "")
    return out


def _endpoint(cfg, net, ip_request: str | None, aliases: list[str], network_id: str, endpoint_id: str) -> dict:
    """One network's endpoint: ``net`` (the attachment record, first or extra network) as Docker shows it."""
    return {
        **net.to_dict(),        # pybuild's own facts (bridge, host_veth, nat, etc_files...) beside Docker's
        "IPAMConfig": {"IPv4Address": ip_request} if ip_request else None,
        "Links": None,
        "Aliases": aliases or None,
        "MacAddress": net.mac or "",
        "DriverOpts": None,
        "NetworkID": network_id,
        "EndpointID": endpoint_id,
        "Gateway": net.gateway or "",
        "IPAddress": net.ip or "",
        "IPPrefixLen": net.prefixlen or 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": [cfg.name, cfg.id[:12], *aliases],
    }
