"""Merged, expanded service mappings -> frozen :class:`compose.model.Service` values.

Contract: :func:`build_service` reads one service (expanded form of :mod:`compose.canon`, after
merge and extends) and returns its :class:`Service`, or raises ComposeFileError naming the path
(and, through ``where``, the file and line). A key pybuild cannot honour is an error naming it
(:data:`SERVICE_KEYS` lists what is read). Top-level resources are checked by :mod:`compose.resources`;
``ctx`` tells which networks, volumes, secrets and configs exist.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from compose.interpolate import read_env_file
from compose.model import (BuildSpec, Dependency, FileRef, HealthSpec, MountSpec, PortSpec, ResourceLimits,
                           Service, ServiceNetwork, Ulimit)
from compose.syntax import duration, expand_ports, size

__all__ = ["build_service", "SERVICE_KEYS", "Context", "boolish", "intish"]

SERVICE_KEYS = frozenset({
    "image", "build", "pull_policy", "container_name", "command", "entrypoint", "environment", "env_file",
    "working_dir", "user", "hostname", "domainname", "init", "tty", "stdin_open", "privileged", "stop_signal",
    "stop_grace_period", "ports", "expose", "networks", "network_mode", "extra_hosts", "dns", "dns_search",
    "dns_opt", "volumes", "tmpfs", "read_only", "depends_on", "healthcheck", "restart", "scale", "deploy",
    "mem_limit", "cpus", "pids_limit", "ulimits", "labels", "cap_add", "cap_drop", "profiles", "secrets",
    "configs", "platform", "logging", "security_opt", "sysctls", "group_add", "mem_reservation", "memswap_limit",
    "shm_size",
})
_PULL_POLICIES = {"always": "always", "never": "never", "missing": "missing", "if_not_present": "missing",
                  "build": "build"}
_BUILD_KEYS = {"context", "dockerfile", "dockerfile_inline", "args", "target", "cache_from", "secrets", "labels",
               "network", "no_cache", "pull", "tags", "platforms"}
_NET_KEYS = {"aliases", "ipv4_address", "ipv6_address", "priority"}
_MOUNT_KEYS = {"type", "source", "target", "read_only", "bind", "volume", "tmpfs", "consistency"}
_CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
_TRUE = {"1", "t", "T", "true", "TRUE", "True", "y", "Y", "yes", "YES", "Yes", "on", "ON", "On"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False", "n", "N", "no", "NO", "No", "off", "OFF", "Off"}


@dataclass
class Context:
    """What a service may refer to, and where errors point."""

    where: object                 # has .error(why, path) -> ComposeFileError
    environ: dict                 # the project environment (process over .env)
    networks: set
    volumes: set
    secrets: dict                 # key -> SecretSpec
    configs: dict                 # key -> ConfigSpec
    services: set                 # every service name in the file(s), enabled or not


def boolish(value, err) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _TRUE:
        return True
    if isinstance(value, str) and value in _FALSE:
        return False
    raise err(f"must be a boolean, not {value!r}")


def intish(value, err, minimum: int | None = None) -> int:
    if isinstance(value, bool):
        raise err(f"must be an integer, not {value!r}")
    try:
        n = int(value) if not isinstance(value, float) or value.is_integer() else None
    except (TypeError, ValueError):
        n = None
    if n is None or (minimum is not None and n < minimum):
        raise err(f"must be an integer{'' if minimum is None else f' >= {minimum}'}, not {value!r}")
    return n


class _Svc:
    """Reads one service; ``self.err(path...)`` makes an error-raising callable for a sub-path."""

    def __init__(self, name: str, raw: dict, ctx: Context) -> None:
        self.name, self.raw, self.ctx = name, raw, ctx
        self.base = ("services", name)

    def fail(self, why: str, *sub):
        return self.ctx.where.error(why, self.base + sub)

    def err(self, *sub):
        return lambda why: self.fail(why, *sub)

    def get(self, key, default=None):
        value = self.raw.get(key)
        return default if value is None else value

    def conv(self, key, fn, default=None):
        value = self.raw.get(key)
        if value is None:
            return default
        try:
            return fn(value)
        except ValueError as exc:
            raise self.fail(str(exc), key) from None


def build_service(name: str, raw: dict, ctx: Context) -> Service:
    s = _Svc(name, raw, ctx)
    for key in raw:
        if key not in SERVICE_KEYS and not key.startswith("x-") and key != "extends":
            raise s.fail(f"{key} is not supported by pybuild", key)
    if not raw.get("image") and not raw.get("build"):
        raise s.fail("service has neither an image nor a build context specified")
    network_mode = s.get("network_mode")
    if network_mode is not None and raw.get("networks"):
        raise s.fail("network_mode and networks cannot be combined", "networks")
    limits, replicas = _limits(s)
    if raw.get("container_name") and replicas > 1:
        raise s.fail(f"container_name {raw['container_name']} cannot be used with {replicas} replicas "
                     "(names must be unique)", "container_name")
    return Service(
        name=name, image=s.get("image"), build=_build(s), pull_policy=_pull_policy(s),
        container_name=s.get("container_name"),
        command=_command(s, "command"), entrypoint=_command(s, "entrypoint"),
        environment=_environment(s), working_dir=s.get("working_dir"),
        user=None if raw.get("user") is None else str(raw["user"]),
        hostname=s.get("hostname"), domainname=s.get("domainname"),
        init=None if raw.get("init") is None else boolish(raw["init"], s.err("init")),
        tty=boolish(s.get("tty", False), s.err("tty")),
        stdin_open=boolish(s.get("stdin_open", False), s.err("stdin_open")),
        privileged=boolish(s.get("privileged", False), s.err("privileged")),
        stop_signal=s.get("stop_signal"), stop_grace_period=s.conv("stop_grace_period", duration),
        ports=_ports(s), expose=_expose(s),
        networks=() if network_mode is not None else _networks(s), network_mode=_network_mode(s),
        extra_hosts=_extra_hosts(s), dns=tuple(map(str, s.get("dns", ()))),
        dns_search=tuple(map(str, s.get("dns_search", ()))), dns_opt=tuple(map(str, s.get("dns_opt", ()))),
        volumes=_volumes(s), tmpfs=_tmpfs(s), read_only=boolish(s.get("read_only", False), s.err("read_only")),
        depends_on=_depends(s), healthcheck=_health(s), restart=_restart(s),
        replicas=replicas, limits=limits, ulimits=_ulimits(s),
        labels=tuple((k, "" if v is None else v) for k, v in s.get("labels", {}).items()),
        cap_add=tuple(s.get("cap_add", ())), cap_drop=tuple(s.get("cap_drop", ())),
        profiles=tuple(s.get("profiles", ())), secrets=_refs(s, "secrets"), configs=_refs(s, "configs"),
        platform=s.get("platform"), logging_driver=_logging(s),
        security_opt=tuple(map(str, s.get("security_opt", ()))),
        sysctls=tuple((k, "" if v is None else v) for k, v in s.get("sysctls", {}).items()),
        group_add=tuple(str(g) for g in s.get("group_add", ())),
    )


def _pull_policy(s: _Svc):
    value = s.raw.get("pull_policy")
    if value is None:
        return None
    if value not in _PULL_POLICIES:
        raise s.fail(f"pull_policy {value!r} is not supported by pybuild (always, never, missing, build)",
                     "pull_policy")
    return _PULL_POLICIES[value]


def _build(s: _Svc) -> BuildSpec | None:
    b = s.raw.get("build")
    if not b:
        return None
    for key in b:
        if key not in _BUILD_KEYS and not key.startswith("x-"):
            raise s.fail(f"{key} is not supported by pybuild", "build", key)
    ctx = b["context"]
    if "://" in ctx or ctx.startswith("git@"):
        raise s.fail(f"remote build context {ctx} is not supported by pybuild", "build", "context")
    args = tuple((k, s.ctx.environ.get(k) if v is None else v) for k, v in (b.get("args") or {}).items())
    secrets = tuple(FileRef(source=r["source"], target=r.get("target") or r["source"],
                            file=_secret_file(s, r["source"], ("build", "secrets")))
                    for r in b.get("secrets") or ())
    return BuildSpec(
        context=ctx, dockerfile=b.get("dockerfile") or "Dockerfile", dockerfile_inline=b.get("dockerfile_inline"),
        args=args, target=b.get("target"), cache_from=tuple(b.get("cache_from") or ()), secrets=secrets,
        labels=tuple((k, v or "") for k, v in (b.get("labels") or {}).items()), network=b.get("network"),
        no_cache=boolish(b.get("no_cache", False), s.err("build", "no_cache")),
        pull=boolish(b.get("pull", False), s.err("build", "pull")),
        tags=tuple(b.get("tags") or ()), platforms=tuple(b.get("platforms") or ()))


def _secret_file(s: _Svc, source: str, where: tuple):
    spec = s.ctx.secrets.get(source)
    if spec is None:
        raise s.fail(f"refers to undefined secret {source}", *where)
    return spec.file


def _command(s: _Svc, key: str):
    value = s.raw.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            raise s.fail(f"cannot split {value!r}: {exc}", key) from None
    return tuple(str(v) for v in value)


def _environment(s: _Svc):
    env: dict = {}
    for i, ef in enumerate(s.raw.get("env_file") or ()):
        if ef.get("format") not in (None, "raw"):
            raise s.fail(f"env_file format {ef['format']!r} is not supported by pybuild", "env_file", i)
        required = boolish(ef.get("required", True), s.err("env_file", i, "required"))
        for k, v in read_env_file(ef["path"], env=s.ctx.environ, required=required, raw=ef.get("format") == "raw"):
            if v is None:
                v = s.ctx.environ.get(k)
                if v is None:
                    continue
            env[k] = v
    for k, v in (s.raw.get("environment") or {}).items():
        if v is None:
            v = s.ctx.environ.get(k)
            if v is None:
                env.pop(k, None)
                continue
        env[k] = v
    return tuple(env.items())


def _ports(s: _Svc):
    out = []
    for i, p in enumerate(s.get("ports", ())):
        for key in p:
            if key not in ("target", "published", "host_ip", "protocol", "mode", "name", "app_protocol") \
                    and not key.startswith("x-"):
                raise s.fail(f"{key} is not supported by pybuild", "ports", i, key)
        if p.get("mode", "ingress") not in ("ingress", "host"):
            raise s.fail(f"port mode {p['mode']!r} is not supported", "ports", i, "mode")
        if p.get("protocol", "tcp") not in ("tcp", "udp"):
            raise s.fail(f"protocol {p['protocol']!r} is not supported by pybuild", "ports", i, "protocol")
        try:
            expanded = expand_ports(p)
        except ValueError as exc:
            raise s.fail(str(exc), "ports", i) from None
        out.extend(PortSpec(target=e["target"], published=e["published"], host_ip=e.get("host_ip") or None,
                            protocol=e.get("protocol", "tcp"), name=e.get("name"),
                            app_protocol=e.get("app_protocol"), mode=e.get("mode", "ingress")) for e in expanded)
    return tuple(out)


def _expose(s: _Svc):
    from compose.syntax import port_range
    out = []
    for i, e in enumerate(s.get("expose", ())):
        text = str(e)
        port, slash, proto = text.partition("/")
        try:
            lo, hi = port_range(port)
        except ValueError as exc:
            raise s.fail(str(exc), "expose", i) from None
        out.extend(f"{n}{slash}{proto}" for n in range(lo, hi + 1))
    return tuple(out)


def _network_mode(s: _Svc):
    mode = s.raw.get("network_mode")
    if mode is None:
        return None
    if mode in ("host", "none", "bridge"):
        return mode
    kind, _, target = mode.partition(":")
    if kind == "service":
        if target not in s.ctx.services:
            raise s.fail(f"network_mode refers to undefined service {target}", "network_mode")
        return mode
    if kind == "container" and target:
        return mode
    raise s.fail(f"network_mode {mode!r} is not supported by pybuild", "network_mode")


def _networks(s: _Svc):
    nets = s.raw.get("networks") or {"default": None}
    out = []
    for name, opts in nets.items():
        if name not in s.ctx.networks:
            raise s.fail(f"refers to undefined network {name}", "networks", name)
        opts = opts or {}
        for key in opts:
            if key not in _NET_KEYS and not key.startswith("x-"):
                raise s.fail(f"{key} is not supported by pybuild", "networks", name, key)
        out.append(ServiceNetwork(name=name, aliases=tuple(opts.get("aliases") or ()),
                                  ipv4_address=opts.get("ipv4_address"), ipv6_address=opts.get("ipv6_address"),
                                  priority=int(opts.get("priority") or 0)))
    return tuple(out)


def _extra_hosts(s: _Svc):
    out = []
    for host, ips in (s.raw.get("extra_hosts") or {}).items():
        for ip in ips if isinstance(ips, list) else [ips]:
            out.append((host, str(ip)))
    return tuple(out)


def _volumes(s: _Svc):
    out = []
    for i, v in enumerate(s.get("volumes", ())):
        for key in v:
            if key not in _MOUNT_KEYS and not key.startswith("x-"):
                raise s.fail(f"{key} is not supported by pybuild", "volumes", i, key)
        kind = v.get("type") or ("bind" if str(v.get("source", "")).startswith("/") else "volume")
        if kind not in ("bind", "volume", "tmpfs"):
            raise s.fail(f"mount type {kind} is not supported by pybuild", "volumes", i, "type")
        source = v.get("source") or None
        if kind == "volume" and source is not None and source not in s.ctx.volumes:
            raise s.fail(f"refers to undefined volume {source}", "volumes", i)
        if kind == "bind" and not source:
            raise s.fail("a bind mount needs a source", "volumes", i)
        bind, vol, tmpfs = v.get("bind") or {}, v.get("volume") or {}, v.get("tmpfs") or {}
        for opts, allowed, sub in ((bind, {"propagation", "create_host_path", "selinux"}, "bind"),
                                   (vol, {"nocopy", "subpath"}, "volume"), (tmpfs, {"size", "mode"}, "tmpfs")):
            for key in opts:
                if key not in allowed and not key.startswith("x-"):
                    raise s.fail(f"{key} is not supported by pybuild", "volumes", i, sub, key)
        try:
            tsize = None if tmpfs.get("size") is None else size(tmpfs["size"])
        except ValueError as exc:
            raise s.fail(str(exc), "volumes", i, "tmpfs", "size") from None
        out.append(MountSpec(
            type=kind, target=v["target"], source=None if kind == "tmpfs" else source,
            read_only=boolish(v.get("read_only", False), s.err("volumes", i, "read_only")),
            bind_create_host_path=boolish(bind.get("create_host_path", True), s.err("volumes", i, "bind")),
            bind_propagation=bind.get("propagation"), bind_selinux=bind.get("selinux"),
            volume_nocopy=boolish(vol.get("nocopy", False), s.err("volumes", i, "volume")),
            volume_subpath=vol.get("subpath"), tmpfs_size=tsize,
            tmpfs_mode=_mode(tmpfs.get("mode"), s.err("volumes", i, "tmpfs", "mode")),
            consistency=v.get("consistency")))
    return tuple(out)


def _mode(value, err):
    """File modes are octal as written: ``0440``, ``"0440"`` and ``440`` all mean 0o440."""
    if value is None:
        return None
    text = str(value)
    if isinstance(value, bool) or not text.isdigit() or any(c in "89" for c in text):
        raise err(f"invalid file mode {value!r} (octal, e.g. 0440)")
    return int(text, 8)


def _tmpfs(s: _Svc):
    out = []
    for i, entry in enumerate(s.get("tmpfs", ())):
        target, _, opts = str(entry).partition(":")
        tsize = tmode = None
        for opt in filter(None, opts.split(",")):
            key, _, val = opt.partition("=")
            try:
                if key == "size":
                    tsize = size(val)
                elif key == "mode":
                    tmode = _mode(val, s.err("tmpfs", i))
                else:
                    raise ValueError(f"tmpfs option {key} is not supported by pybuild")
            except ValueError as exc:
                raise s.fail(str(exc), "tmpfs", i) from None
        out.append(MountSpec(type="tmpfs", target=target, tmpfs_size=tsize, tmpfs_mode=tmode))
    return tuple(out)


def _depends(s: _Svc):
    out = []
    for dep, opts in (s.raw.get("depends_on") or {}).items():
        if dep not in s.ctx.services:
            raise s.fail(f"depends on undefined service {dep}", "depends_on", dep)
        cond = opts.get("condition") or "service_started"
        if cond not in _CONDITIONS:
            raise s.fail(f"unknown condition {cond!r}", "depends_on", dep, "condition")
        out.append(Dependency(service=dep, condition=cond,
                              restart=boolish(opts.get("restart", False), s.err("depends_on", dep, "restart")),
                              required=boolish(opts.get("required", True), s.err("depends_on", dep, "required"))))
    return tuple(out)


def _health(s: _Svc):
    h = s.raw.get("healthcheck")
    if h is None:
        return None
    test = h.get("test")
    if isinstance(test, str):
        test = ("CMD-SHELL", test)
    else:
        test = tuple(str(t) for t in test or ())
    if test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
        raise s.fail("test must start with CMD, CMD-SHELL or NONE", "healthcheck", "test")
    disable = boolish(h.get("disable", False), s.err("healthcheck", "disable")) or test[:1] == ("NONE",)

    def dur(key):
        try:
            return None if h.get(key) is None else duration(h[key])
        except ValueError as exc:
            raise s.fail(str(exc), "healthcheck", key) from None
    retries = None if h.get("retries") is None else intish(h["retries"], s.err("healthcheck", "retries"), 0)
    return HealthSpec(test=test, interval=dur("interval"), timeout=dur("timeout"), retries=retries,
                      start_period=dur("start_period"), start_interval=dur("start_interval"), disable=disable)


def _restart(s: _Svc) -> str:
    value = str(s.get("restart", "no"))
    kind, _, count = value.partition(":")
    if kind in ("no", "always", "unless-stopped") and not count:
        return value
    if kind == "on-failure" and (not count or count.isdigit()):
        return value
    raise s.fail(f"invalid restart policy {value!r} (no, always, on-failure[:N], unless-stopped)", "restart")


def _limits(s: _Svc):
    deploy = s.raw.get("deploy") or {}
    for key in deploy:
        if key not in ("replicas", "resources", "mode") and not key.startswith("x-"):
            raise s.fail(f"{key} is not supported by pybuild", "deploy", key)
    if deploy.get("mode", "replicated") != "replicated":
        raise s.fail(f"deploy mode {deploy['mode']!r} is not supported by pybuild", "deploy", "mode")
    resources = deploy.get("resources") or {}
    for key in resources:
        if key != "limits" and not key.startswith("x-"):
            raise s.fail(f"{key} is not supported by pybuild", "deploy", "resources", key)
    dl = resources.get("limits") or {}
    memory = s.conv("mem_limit", size)
    try:
        dmem = None if dl.get("memory") is None else size(dl["memory"])
        cpus = None if s.raw.get("cpus") is None else float(s.raw["cpus"])
        dcpus = None if dl.get("cpus") is None else float(dl["cpus"])
    except ValueError as exc:
        raise s.fail(str(exc), "deploy", "resources", "limits") from None
    pids = None if s.raw.get("pids_limit") is None else intish(s.raw["pids_limit"], s.err("pids_limit"), -1)
    dpids = None if dl.get("pids") is None else intish(dl["pids"], s.err("deploy", "resources", "limits", "pids"), -1)
    for a, b, key in ((memory, dmem, "mem_limit"), (cpus, dcpus, "cpus"), (pids, dpids, "pids_limit")):
        if a is not None and b is not None and a != b:
            raise s.fail(f"{key} and deploy.resources.limits disagree ({a} vs {b})", key)
    scale = None if s.raw.get("scale") is None else intish(s.raw["scale"], s.err("scale"), 0)
    reps = None if deploy.get("replicas") is None else intish(deploy["replicas"], s.err("deploy", "replicas"), 0)
    if scale is not None and reps is not None and scale != reps:
        raise s.fail(f"scale ({scale}) and deploy.replicas ({reps}) disagree", "scale")
    swap = s.raw.get("memswap_limit")
    limits = ResourceLimits(memory=memory if memory is not None else dmem, cpus=cpus if cpus is not None else dcpus,
                            pids=pids if pids is not None else dpids, memory_reservation=s.conv("mem_reservation", size),
                            memswap_limit=-1 if str(swap) == "-1" else s.conv("memswap_limit", size),
                            shm_size=s.conv("shm_size", size))
    return limits, scale if scale is not None else reps if reps is not None else 1


def _ulimits(s: _Svc):
    out = []
    for name, lim in (s.raw.get("ulimits") or {}).items():
        out.append(Ulimit(name=name, soft=intish(lim["soft"], s.err("ulimits", name, "soft"), -1),
                          hard=intish(lim["hard"], s.err("ulimits", name, "hard"), -1)))
    return tuple(out)


def _refs(s: _Svc, kind: str):
    table = s.ctx.secrets if kind == "secrets" else s.ctx.configs
    out = []
    for i, r in enumerate(s.get(kind, ())):
        source = r.get("source")
        if source not in table:
            raise s.fail(f"refers to undefined {kind[:-1]} {source}", kind, i)
        target = r.get("target") or source
        if not target.startswith("/"):
            target = (f"/run/secrets/{target}" if kind == "secrets" else f"/{target}")
        out.append(FileRef(source=source, target=target, file=table[source].file,
                           uid=None if r.get("uid") is None else str(r["uid"]),
                           gid=None if r.get("gid") is None else str(r["gid"]),
                           mode=_mode(r.get("mode"), s.err(kind, i, "mode"))))
    return tuple(out)


def _logging(s: _Svc):
    log = s.raw.get("logging")
    if not log:
        return None
    driver = log.get("driver") or "json-file"
    if driver not in ("json-file", "local") or log.get("options"):
        raise s.fail("only the json-file logging driver without options is supported by pybuild", "logging")
    return driver
