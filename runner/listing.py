"""Looking at containers: ``ps`` (listing with filters), ``inspect``, ``top`` and ``stats``.

``top`` and ``stats`` read PID 1's cgroups (:mod:`runner.cgroupview`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from layers.errors import InvalidInput, PybuildError

from . import records as st
from .errors import ContainerNotFound, StateConflict
from .records import ContainerConfig, ContainerInfo, ContainerState
from .resources import named_volume_of, rootfs_paths
from .state import ContainerStore

__all__ = ["list_containers", "all_match", "inspect", "top", "stats", "stats_many", "Stats",
           "display_status", "human_ago", "human_status"]


def list_containers(store: ContainerStore, *, all: bool = False,
                    filters: tuple[str, ...] = ()) -> list[ContainerInfo]:
    """Containers newest first; only running/paused ones unless ``all``. Filters: ``key=value`` with
    keys id, name, status, label, ancestor, exited."""
    parsed = []
    for f in filters:
        key, sep, value = f.partition("=")
        if not sep or key not in ("id", "name", "status", "label", "ancestor", "exited"):
            raise InvalidInput(f"invalid filter {f!r}: use id=, name=, status=, label=, ancestor= or exited=")
        parsed.append((key, value))
    out = []
    for cfg in store.configs():
        try:
            cur = store.status(cfg.id)
        except ContainerNotFound:
            continue
        if not all and not cur.supervised \
                and not any(k in ("status", "exited") for k, _ in parsed):
            continue
        if all_match(cfg, cur, parsed):
            out.append(ContainerInfo(cfg, cur))
    out.sort(key=lambda i: i.config.created, reverse=True)
    return out


def all_match(cfg: ContainerConfig, cur: ContainerState, filters: list[tuple[str, str]]) -> bool:
    for key, value in filters:
        if key == "id" and not cfg.id.startswith(value):
            return False
        if key == "name" and value not in cfg.name:
            return False
        if key == "status" and display_status(cur) != value and cur.status != value:
            return False
        if key == "exited" and (cur.status != st.EXITED or str(cur.exit_code) != value):
            return False
        if key == "ancestor" and value not in (cfg.image, cfg.image_id):
            return False
        if key == "label":
            k, _, v = value.partition("=")
            if k not in cfg.labels or (v and cfg.labels[k] != v):
                return False
    return True


def display_status(cur: ContainerState) -> str:
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

    if cur.restarting:
        return f"Restarting ({cur.exit_code}) {ago(cur.finished_at)} ago"
    if cur.status == st.RUNNING:
        return f"Up {ago(cur.started_at)}"
    if cur.status == st.PAUSED:
        return f"Up {ago(cur.started_at)} (Paused)"
    if cur.status == st.EXITED:
        return f"Exited ({cur.exit_code}) {ago(cur.finished_at)} ago"
    return cur.status.capitalize()


def inspect(store: ContainerStore, ref: str) -> dict:
    """Docker-like ``inspect`` document for one container."""
    cfg = store.resolve(ref)
    cur = store.status(cfg.id)
    spec = cfg.spec or {}
    proc = spec.get("process", {})
    volumes = rootfs_paths(store, cfg.id)["volumes"]
    etc = rootfs_paths(store, cfg.id)["etc"]
    named = named_volume_of(store)
    mounts = [
        dict({"Type": "volume" if os.path.dirname(m.get("source", "")) == volumes or named(m) else
              m.get("type", "bind"),
              "Source": m.get("source", ""), "Destination": m.get("destination", ""),
              "Options": m.get("options", []),
              "RW": "ro" not in (m.get("options") or [])}, **({"Name": named(m)} if named(m) else {}))
        for m in spec.get("mounts", []) if (m.get("type") == "bind" or "bind" in (m.get("options") or []))
        and os.path.dirname(m.get("source", "")) != etc        # /etc/hosts & co: not the user's mounts
    ]
    net = dict(cfg.network)
    ports = {}
    for p in cfg.ports:
        key = f"{p.get('container_port')}/{p.get('protocol', 'tcp')}"
        ports.setdefault(key, []).append({"HostIp": p.get("host_ip", "0.0.0.0"),
                                          "HostPort": str(p.get("host_port"))})
    return {
        "Id": cfg.id,
        "Name": "/" + cfg.name,
        "Created": st.rfc3339(cfg.created),
        "Path": (proc.get("args") or [""])[0],
        "Args": (proc.get("args") or [])[1:],
        "Image": cfg.image_id,
        "ImageName": cfg.image,
        "State": {
            "Status": display_status(cur),
            "Running": cur.status in (st.RUNNING, st.PAUSED),
            "Paused": cur.status == st.PAUSED,
            "Restarting": cur.restarting,
            "OOMKilled": cur.oom_killed,
            "Dead": cur.status == st.DEAD,
            "Pid": cur.pid if cur.status in (st.RUNNING, st.PAUSED) else 0,
            "ExitCode": cur.exit_code,
            "Error": cur.error,
            "StartedAt": st.rfc3339(cur.started_at),
            "FinishedAt": st.rfc3339(cur.finished_at),
        },
        "RestartCount": cur.restart_count,
        "LogPath": store.log_path(cfg.id),
        "HostConfig": {
            "RestartPolicy": {"Name": cfg.restart_policy.partition(":")[0],
                              "MaximumRetryCount": int(cfg.restart_policy.partition(":")[2] or 0)},
            "AutoRemove": cfg.auto_remove,
            "Init": cfg.init,
            "LogConfig": {"Type": "json-file", "Config": {"max-size": str(cfg.log_max_size),
                                                          "max-file": str(cfg.log_max_files)}},
            "PortBindings": ports,
            "Privileged": "seccomp" not in spec.get("linux", {}) and "maskedPaths" not in spec.get("linux", {}),
            "SecurityOpt": [_seccomp_opt(spec)],
        },
        "Config": {
            # no UTS namespace of its own (--network host): the host's name, as Docker shows it
            "Hostname": spec.get("hostname") or (os.uname().nodename if not any(
                n.get("type") == "uts" for n in spec.get("linux", {}).get("namespaces", [])) else ""),
            "User": f"{proc.get('user', {}).get('uid', 0)}:{proc.get('user', {}).get('gid', 0)}",
            "Env": proc.get("env", []),
            "Cmd": proc.get("args", []),
            "WorkingDir": proc.get("cwd", "/"),
            "Tty": bool(proc.get("terminal")),
            "Image": cfg.image,
            "Labels": cfg.labels,
            "StopSignal": cfg.stop_signal,
            "StopTimeout": cfg.stop_timeout,
        },
        "Mounts": mounts,
        "NetworkSettings": {
            "IPAddress": net.get("ip", ""),
            "Gateway": net.get("gateway", ""),
            "MacAddress": net.get("mac", ""),
            "Networks": {net["network"]: net} if net.get("network") else {},
            "Ports": ports,
            "SandboxKey": net.get("netns_path", ""),
        },
    }


def _seccomp_opt(spec: dict) -> str:
    """``seccomp=default`` when the filter applies, ``seccomp=unconfined`` (--privileged), or why not."""
    if not spec.get("linux", {}).get("seccomp"):
        return "seccomp=unconfined"
    from . import seccomp

    return "seccomp=" + seccomp.status()


def top(store: ContainerStore, ref: str) -> list[dict]:
    """The container's processes: host PID, PPID, user id, state and command line."""
    from . import cgroupview

    cfg = store.resolve(ref)
    cur = store.status(cfg.id)
    if cur.status not in (st.RUNNING, st.PAUSED):
        raise StateConflict(f"container {cfg.name} is not running", current=cur.status)
    return cgroupview.processes(cur.pid)


@dataclass(frozen=True)
class Stats:
    id: str
    name: str
    cpu_percent: float
    memory_usage: int
    memory_limit: int
    pids: int


def stats(store: ContainerStore, ref: str, *, interval: float = 0.5) -> Stats:
    """CPU % over ``interval`` (100% = one core), memory usage and limit, pid count, from cgroups."""
    result = stats_many(store, [ref], interval=interval)[0]
    if isinstance(result, PybuildError):
        raise result
    return result


def stats_many(store: ContainerStore, refs: list[str], *, interval: float = 0.5) -> list[Stats | PybuildError]:
    """:func:`stats` of several containers, sampled over one shared ``interval``; per ref its
    figures or the error resolving it. A container that is not running (or ends meanwhile) reads 0."""
    from . import cgroupview

    targets = store.resolve_many(refs)
    live: dict[int, int] = {}                   # index in refs -> PID 1
    for i, t in enumerate(targets):
        if not isinstance(t, PybuildError):
            try:
                cur = store.status(t.id)
            except PybuildError as exc:
                targets[i] = exc
                continue
            if cur.status in (st.RUNNING, st.PAUSED) and cur.pid > 0:
                live[i] = cur.pid
    usages = dict(zip(live, cgroupview.usage_many(list(live.values()), interval)))
    out: list[Stats | PybuildError] = []
    for i, t in enumerate(targets):
        u = usages.get(i)
        if isinstance(t, PybuildError):
            out.append(t)
        elif u is None:
            out.append(Stats(t.id, t.name, 0.0, 0, 0, 0))
        else:
            out.append(Stats(t.id, t.name, u.cpu_percent, u.memory_usage, u.memory_limit, u.pids))
    return out
