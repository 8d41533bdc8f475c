"""``compose config``: the normalised, interpolated project back to YAML.

Contract: :func:`config_text` returns the text ``docker compose config`` would print for the same
project in Compose v2's layout: ``name``, then ``services`` (each in long syntax, keys sorted),
``networks``, ``volumes``, ``secrets``, ``configs`` with real names; durations as Go durations,
sizes in bytes. ``services_only`` / ``volumes_only`` print one name per line instead. The text
loads back with :func:`compose.load.load_project` to the same model. PyYAML is imported lazily.
"""

from __future__ import annotations

from compose.model import MountSpec, Project, Service

__all__ = ["config_text", "project_dict", "service_dict", "go_duration"]


def go_duration(seconds: float) -> str:
    """Go's ``Duration.String()``: ``90.0`` -> ``1m30s``; ``0.5`` -> ``500ms``; ``0`` -> ``0s``."""
    if seconds == 0:
        return "0s"
    if abs(seconds) < 1:
        ms = seconds * 1000
        return f"{ms:g}ms" if abs(ms) >= 1 else f"{seconds * 1e6:g}µs"
    whole_ms = round(seconds * 1000)
    h, rest = divmod(whole_ms, 3600_000)
    m, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    return (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{secs}s"


def config_text(project: Project, services_only: bool = False, volumes_only: bool = False) -> str:
    if services_only:
        return "".join(f"{s.name}\n" for s in project.services)
    if volumes_only:
        return "".join(f"{v.name}\n" for v in project.volumes)
    import yaml
    doc = project_dict(project)
    parts = [yaml.safe_dump({"name": doc.pop("name")}, sort_keys=False)]
    for key in ("services", "networks", "volumes", "secrets", "configs"):
        if doc.get(key):
            parts.append(yaml.safe_dump({key: doc[key]}, sort_keys=True, default_flow_style=False,
                                        allow_unicode=True, width=1 << 16))
    return "".join(parts)


def project_dict(project: Project) -> dict:
    doc: dict = {"name": project.name, "services": {s.name: service_dict(s) for s in project.services}}
    if project.networks:
        doc["networks"] = {n.name: _drop_empty({
            "name": n.real_name, "driver": None if n.external or n.driver == "bridge" else n.driver, "internal": n.internal or None,
            "external": n.external or None, "attachable": n.attachable or None,
            "enable_ipv6": n.enable_ipv6 or None,
            "ipam": {"config": [_drop_empty({"subnet": s, "gateway": g}) for s, g in
                                _zip_long(n.subnets, n.gateways)]} if n.subnets or n.gateways else None,
            "driver_opts": dict(n.driver_opts) or None, "labels": dict(n.labels) or None})
            for n in project.networks}
    if project.volumes:
        doc["volumes"] = {v.name: _drop_empty({
            "name": v.real_name, "external": v.external or None,
            "driver_opts": dict(v.driver_opts) or None, "labels": dict(v.labels) or None})
            for v in project.volumes}
    for key, specs in (("secrets", project.secrets), ("configs", project.configs)):
        if specs:
            doc[key] = {s.name: _drop_empty({"name": f"{project.name}_{s.name}", "file": s.file,
                                             "environment": s.environment,
                                             "content": s.content if s.environment is None else None})
                        for s in specs}
    return doc


def _zip_long(a, b):
    n = max(len(a), len(b))
    return [(a[i] if i < len(a) else None, b[i] if i < len(b) else None) for i in range(n)]


def _drop_empty(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def service_dict(s: Service) -> dict:
    """One service as ``compose config`` writes it (long syntax, only what is set)."""
    d: dict = {
        "image": s.image, "container_name": s.container_name, "pull_policy": s.pull_policy,
        "command": list(s.command) if s.command is not None else None,
        "entrypoint": list(s.entrypoint) if s.entrypoint is not None else None,
        "environment": dict(s.environment) or None, "working_dir": s.working_dir, "user": s.user,
        "hostname": s.hostname, "domainname": s.domainname, "init": s.init,
        "tty": s.tty or None, "stdin_open": s.stdin_open or None, "privileged": s.privileged or None,
        "stop_signal": s.stop_signal,
        "stop_grace_period": None if s.stop_grace_period is None else go_duration(s.stop_grace_period),
        "ports": [_port(p) for p in s.ports] or None, "expose": list(s.expose) or None,
        "network_mode": s.network_mode,
        "networks": {n.name: _drop_empty({"aliases": list(n.aliases) or None, "ipv4_address": n.ipv4_address,
                                          "ipv6_address": n.ipv6_address, "priority": n.priority or None}) or None
                     for n in s.networks} or None,
        "extra_hosts": [f"{h}={ip}" for h, ip in s.extra_hosts] or None,
        "dns": list(s.dns) or None, "dns_search": list(s.dns_search) or None, "dns_opt": list(s.dns_opt) or None,
        "volumes": [_mount(m) for m in s.volumes] or None,
        "tmpfs": [_tmpfs(m) for m in s.tmpfs] or None, "read_only": s.read_only or None,
        "depends_on": {d.service: {"condition": d.condition, "required": d.required, "restart": d.restart}
                       for d in s.depends_on} or None,
        "healthcheck": _health(s), "restart": None if s.restart == "no" else s.restart,
        "scale": s.replicas if s.replicas != 1 else None,
        "mem_limit": s.limits.memory, "cpus": s.limits.cpus, "pids_limit": s.limits.pids,
        "mem_reservation": s.limits.memory_reservation, "memswap_limit": s.limits.memswap_limit,
        "shm_size": s.limits.shm_size, "group_add": list(s.group_add) or None,
        "security_opt": list(s.security_opt) or None, "sysctls": dict(s.sysctls) or None,
        "ulimits": {u.name: {"soft": u.soft, "hard": u.hard} for u in s.ulimits} or None,
        "labels": dict(s.labels) or None, "cap_add": list(s.cap_add) or None, "cap_drop": list(s.cap_drop) or None,
        "profiles": list(s.profiles) or None,
        "secrets": [_ref(r) for r in s.secrets] or None, "configs": [_ref(r) for r in s.configs] or None,
        "platform": s.platform, "logging": {"driver": s.logging_driver} if s.logging_driver else None,
    }
    if s.build is not None:
        b = s.build
        d["build"] = _drop_empty({
            "context": b.context, "dockerfile": None if b.dockerfile_inline else b.dockerfile,
            "dockerfile_inline": b.dockerfile_inline, "args": dict(b.args) or None, "target": b.target,
            "cache_from": list(b.cache_from) or None, "secrets": [_ref(r) for r in b.secrets] or None,
            "labels": dict(b.labels) or None, "network": b.network, "no_cache": b.no_cache or None,
            "pull": b.pull or None, "tags": list(b.tags) or None, "platforms": list(b.platforms) or None})
    return _drop_empty(d)


def _port(p) -> dict:
    return _drop_empty({"mode": p.mode, "host_ip": p.host_ip, "target": p.target,
                        "published": None if p.published is None else str(p.published),
                        "protocol": p.protocol, "name": p.name, "app_protocol": p.app_protocol})


def _mount(m: MountSpec) -> dict:
    d = {"type": m.type, "source": m.source, "target": m.target, "read_only": m.read_only or None,
         "consistency": m.consistency}
    if m.type == "bind":
        d["bind"] = _drop_empty({"create_host_path": m.bind_create_host_path, "propagation": m.bind_propagation,
                                 "selinux": m.bind_selinux})
    elif m.type == "volume":
        d["volume"] = _drop_empty({"nocopy": m.volume_nocopy or None, "subpath": m.volume_subpath}) or None
    elif m.type == "tmpfs":
        d["tmpfs"] = _drop_empty({"size": m.tmpfs_size,
                                  "mode": None if m.tmpfs_mode is None else oct(m.tmpfs_mode)[2:]}) or None
    return _drop_empty(d)


def _tmpfs(m: MountSpec) -> str:
    opts = [f"size={m.tmpfs_size}"] if m.tmpfs_size is not None else []
    if m.tmpfs_mode is not None:
        opts.append(f"mode={oct(m.tmpfs_mode)[2:]}")
    return m.target + (":" + ",".join(opts) if opts else "")


def _ref(r) -> dict:
    return _drop_empty({"source": r.source, "target": r.target, "uid": r.uid, "gid": r.gid,
                        "mode": None if r.mode is None else "0" + oct(r.mode)[2:]})


def _health(s: Service):
    h = s.healthcheck
    if h is None:
        return None
    dur = lambda v: None if v is None else go_duration(v)  # noqa: E731
    return _drop_empty({"test": list(h.test) or None, "interval": dur(h.interval), "timeout": dur(h.timeout),
                        "retries": h.retries, "start_period": dur(h.start_period),
                        "start_interval": dur(h.start_interval), "disable": h.disable or None})
