"""Image config + :class:`RunOptions` -> OCI runtime spec (``config.json``), as a pure function.

Follows the image-spec "conversion" rules (``conversion.md``): ``Entrypoint``/``Cmd`` with the run
overrides (an ``--entrypoint`` drops the image's ``Cmd``), ``Env`` merged key by key with run ``-e``
winning, ``WorkingDir`` (``/`` when empty), ``User`` resolved against the image's ``/etc/passwd`` and
``/etc/group``, ``Labels`` / ``StopSignal`` / ``ExposedPorts`` as annotations. ``Volumes``: with a
``volume_dir`` each image volume that no ``-v``/``--tmpfs`` covers becomes a bind of
``volume_dir/<n>`` (an anonymous volume, which the lifecycle seeds from the image at the first
start, as Docker does), so the data is not written to the container's root filesystem; without one
(the builder's RUN steps, ``pybuild bundle``) they are not mounted.

Security defaults are Docker's: the 14 capabilities, ``noNewPrivileges``, the masked and read-only
``/proc`` and ``/sys`` paths, the device cgroup allow-list, ``pids.max`` 4096, and ``RLIMIT_NOFILE``
1048576 (the sandbox clamps rlimits to the caller's hard limits; :func:`clamp_rlimits` does the same
for a bundle handed to another runtime). ``--privileged`` lifts masks, read-only paths and the
capability set.
"""

from __future__ import annotations

import errno
import json
import os
import resource
from dataclasses import replace
from typing import TYPE_CHECKING

from .caps import resolve_caps
from .errors import InvalidRunOption
from .ocispec import (Capabilities, DeviceRule, Linux, Mount, Namespace, Pids, Process, Resources,
                      Rlimit, Root, Seccomp, Spec, User)
from .options import RunOptions
from .seccomp import default_profile

if TYPE_CHECKING:
    from layers.config import ContainerConfig

    from .ocispec.limits import Cpu, Device, Memory

__all__ = ["make_spec", "image_defaults", "image_volumes", "resolve_user", "ResolvedUser", "clamp_rlimits", "image_runtime_config",
           "DEFAULT_PATH", "MASKED_PATHS", "READONLY_PATHS", "OCI_VERSION"]

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# moby oci/defaults.go
MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS: tuple[str, ...] = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

_BASE_MOUNTS: tuple[Mount, ...] = (
    Mount("/proc", "proc", "proc", ("nosuid", "noexec", "nodev")),
    Mount("/dev", "tmpfs", "tmpfs", ("nosuid", "strictatime", "mode=755", "size=65536k")),
    Mount("/dev/pts", "devpts", "devpts", ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5")),
    Mount("/sys", "sysfs", "sysfs", ("nosuid", "noexec", "nodev", "ro")),
    Mount("/sys/fs/cgroup", "cgroup", "cgroup", ("ro", "nosuid", "noexec", "nodev", "relatime")),
    Mount("/dev/mqueue", "mqueue", "mqueue", ("nosuid", "noexec", "nodev")),
    Mount("/dev/shm", "tmpfs", "shm", ("nosuid", "noexec", "nodev", "mode=1777", "size=65536k")),
)

# the device cgroup allow-list (runc's AllowedDevices as Docker uses it)
_DEVICE_RULES: tuple[DeviceRule, ...] = (
    DeviceRule(False, access="rwm"),
    DeviceRule(True, "c", access="m"),
    DeviceRule(True, "b", access="m"),
    DeviceRule(True, "c", 1, 3, "rwm"),     # null
    DeviceRule(True, "c", 1, 8, "rwm"),     # random
    DeviceRule(True, "c", 1, 7, "rwm"),     # full
    DeviceRule(True, "c", 5, 0, "rwm"),     # tty
    DeviceRule(True, "c", 1, 5, "rwm"),     # zero
    DeviceRule(True, "c", 1, 9, "rwm"),     # urandom
    DeviceRule(True, "c", 136, None, "rwm"),  # /dev/pts/*
    DeviceRule(True, "c", 5, 2, "rwm"),     # ptmx
    DeviceRule(True, "c", 10, 200, "rwm"),  # tun
)
_PRIVILEGED_DEVICES: tuple[DeviceRule, ...] = (DeviceRule(True, access="rwm"),)


def image_runtime_config(image_config) -> dict:
    """The ``config`` section of an image config given as ``ImageConfig`` (its ``raw``), bytes or a dict.

    Transitional: :func:`image_defaults` is the typed form (``make_spec`` uses it)."""
    if image_config is None:
        return {}
    raw = getattr(image_config, "raw", image_config)
    doc = json.loads(raw) if isinstance(raw, (bytes, str)) else raw
    if not isinstance(doc, dict):
        raise InvalidRunOption("image config: not a JSON object")
    section = doc.get("config", doc if "config" not in doc and ("Cmd" in doc or "Env" in doc) else {})
    return section or {}


def image_defaults(image_config) -> ContainerConfig:
    """The image's run defaults (its ``config`` section) as a :class:`layers.config.ContainerConfig`.

    ``image_config`` is an ``ImageConfig`` (its parsed section is used as it is), the bytes of one, a
    dict of one (or of its bare ``config`` section), or None (no defaults). A malformed section is an
    :class:`InvalidRunOption` naming the field.
    """
    section = getattr(image_config, "config", None)
    if section is not None and not isinstance(section, dict):
        return section                       # an ImageConfig: already parsed and validated
    from layers.config import ContainerConfig
    from layers.errors import InvalidDocument

    try:
        return ContainerConfig.from_dict(image_runtime_config(image_config))
    except InvalidDocument as exc:
        raise InvalidRunOption(f"image config {exc.field}: {exc.reason}") from None


class ResolvedUser(tuple):
    """``(uid, gid, additional_gids, home)``."""

    __slots__ = ()

    def __new__(cls, uid: int, gid: int, additional_gids: tuple[int, ...] = (), home: str = "/"):
        return super().__new__(cls, (uid, gid, additional_gids, home))

    uid = property(lambda self: self[0])
    gid = property(lambda self: self[1])
    additional_gids = property(lambda self: self[2])
    home = property(lambda self: self[3])


def _read_db(etc_dir: str | None, name: str) -> list[list[str]]:
    """Lines of ``etc_dir/name`` split on ``:``; a symlink there is refused (it could point at the host)."""
    if etc_dir is None:
        return []
    try:
        fd = os.open(os.path.join(etc_dir, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidRunOption(f"image /etc/{name} is a symlink; refusing to follow it") from None
        raise InvalidRunOption(f"image /etc/{name}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        data = f.read(4 * 1024 * 1024)
    return [line.split(":") for line in data.decode("utf-8", "replace").splitlines()
            if line and not line.startswith("#")]


def _is_id(text: str) -> bool:
    return text.isdigit() and int(text) < 2**32 - 1


def resolve_user(user: str | None, etc_dir: str | None) -> ResolvedUser:
    """Resolve ``name``, ``uid``, ``uid:gid``, ``name:group`` (and mixes) as Docker/runc do.

    A numeric uid need not exist in ``/etc/passwd`` (gid then 0, home ``/``); a name must.
    Supplementary groups are those of ``/etc/group`` listing the user's name.
    """
    user = (user or "").strip()
    name, _, group = user.partition(":")
    passwd = _read_db(etc_dir, "passwd")
    groups = _read_db(etc_dir, "group")
    uid, gid, home, user_name = 0, 0, "/", "root"
    entry = None
    if not name:
        entry = next((p for p in passwd if len(p) >= 7 and p[2] == "0"), None)
    elif _is_id(name):
        uid = int(name)
        entry = next((p for p in passwd if len(p) >= 7 and p[2] == name), None)
    else:
        entry = next((p for p in passwd if len(p) >= 7 and p[0] == name), None)
        if entry is None:
            raise InvalidRunOption(f"unable to find user {name}: no matching entries in passwd file")
    if entry is not None:
        if not (_is_id(entry[2]) and _is_id(entry[3])):
            raise InvalidRunOption(f"image /etc/passwd: bad uid/gid for user {entry[0]!r}")
        user_name, uid, gid, home = entry[0], int(entry[2]), int(entry[3]), entry[5] or "/"
    elif name:
        user_name = ""
    if group:
        if _is_id(group):
            gid = int(group)
        else:
            match = next((g for g in groups if len(g) >= 3 and g[0] == group), None)
            if match is None or not _is_id(match[2]):
                raise InvalidRunOption(f"unable to find group {group}: no matching entries in group file")
            gid = int(match[2])
    extra: list[int] = []
    if user_name and not group:
        for g in groups:
            if len(g) >= 4 and user_name in g[3].split(",") and _is_id(g[2]) and int(g[2]) != gid:
                if int(g[2]) not in extra:
                    extra.append(int(g[2]))
    return ResolvedUser(uid, gid, tuple(extra), home)


def _merge_env(*lists) -> list[str]:
    merged: dict[str, str] = {}
    for items in lists:
        for item in items or ():
            key, eq, value = item.partition("=")
            if not key:
                raise InvalidRunOption(f"environment variable {item!r}: empty name")
            merged[key] = value if eq else ""
    return [f"{k}={v}" for k, v in merged.items()]


def _args(cfg: ContainerConfig, opts: RunOptions) -> list[str]:
    entrypoint = list(opts.entrypoint) if opts.entrypoint is not None else list(cfg.entrypoint or ())
    if opts.command:
        cmd = list(opts.command)
    elif opts.entrypoint is not None:
        cmd = []
    else:
        cmd = list(cfg.cmd or ())
    args = entrypoint + cmd
    if not args:
        raise InvalidRunOption("no command specified: the image has no Entrypoint or Cmd and none was given")
    return args


def _depth(m: Mount) -> int:
    return m.destination.rstrip("/").count("/")


def _user_mounts(opts: RunOptions) -> list[Mount]:
    mounts: list[Mount] = []
    for b in opts.mounts:
        if not b.source:
            raise InvalidRunOption(f"-v {b.volume}:{b.target}: a named volume needs the container store "
                                   "(pybuild run/create), not a bundle")
        mounts.append(Mount(os.path.normpath(b.target), "bind", b.source, ("rbind", "ro" if b.readonly else "rw")))
    for t in opts.tmpfs:
        extra = tuple(o for o in t.options.split(",") if o)
        mounts.append(Mount(os.path.normpath(t.target), "tmpfs", "tmpfs", ("nosuid", "nodev", "noexec") + extra))
    mounts.sort(key=_depth)
    return mounts


def image_volumes(image_config) -> list[str]:
    """The image's ``Volumes`` as normalised absolute paths, sorted (relative ones are refused)."""
    out = set()
    for path in image_defaults(image_config).volumes:
        if not isinstance(path, str) or not path.startswith("/"):
            raise InvalidRunOption(f"image config Volumes {path!r}: must be an absolute path")
        norm = os.path.normpath(path)
        if norm != "/":
            out.add(norm)
    return sorted(out)


def _volume_mounts(image_config, volume_dir: str | None, taken: list[Mount]) -> list[Mount]:
    if volume_dir is None:
        return []
    covered = {m.destination.rstrip("/") or "/" for m in taken}
    return [Mount(path, "bind", os.path.join(volume_dir, str(i)), ("rbind", "rw"))
            for i, path in enumerate(image_volumes(image_config)) if path not in covered]


def _namespaces(opts: RunOptions, share_uts: bool) -> tuple[Namespace, ...]:
    namespaces = ([] if opts.pid_mode == "host" else [Namespace("pid")]) \
        + ([] if opts.ipc_mode == "host" else [Namespace("ipc")]) \
        + ([] if share_uts else [Namespace("uts")]) + [Namespace("mount"), Namespace("cgroup")]
    if opts.netns_path:
        namespaces.insert(1, Namespace("network", opts.netns_path))
    elif opts.network != "host":
        namespaces.insert(1, Namespace("network"))
    return tuple(namespaces)


def _memory(opts: RunOptions) -> Memory | None:
    if opts.memory is None and opts.memory_reservation is None:
        return None
    from .ocispec.limits import Memory

    swap = opts.memory_swap if opts.memory_swap is not None else opts.memory
    return Memory(limit=opts.memory, reservation=opts.memory_reservation, swap=swap)


def _cpu(opts: RunOptions) -> Cpu | None:
    if opts.cpus is None and opts.cpu_shares is None and opts.cpuset_cpus is None:
        return None
    from .ocispec.limits import Cpu

    quota = (int(opts.cpus * 100000), 100000) if opts.cpus is not None else (None, None)
    return Cpu(quota=quota[0], period=quota[1], shares=opts.cpu_shares, cpus=opts.cpuset_cpus)


def _resources(opts: RunOptions) -> Resources:
    return Resources(
        devices=_PRIVILEGED_DEVICES if opts.privileged else _DEVICE_RULES
        + tuple(DeviceRule(True, d.type, d.major, d.minor, d.access) for d in opts.devices),
        memory=_memory(opts),
        cpu=_cpu(opts),
        pids=Pids(opts.pids_limit) if opts.pids_limit is not None and opts.pids_limit > 0 else None,
    )


def _annotations(cfg: ContainerConfig, opts: RunOptions) -> tuple[tuple[str, str], ...]:
    annotations: dict[str, str] = dict(sorted(cfg.labels))
    for key, value in opts.labels:
        annotations[key] = value
    if cfg.stop_signal:
        annotations["org.opencontainers.image.stopSignal"] = cfg.stop_signal
    if opts.stop_signal:
        annotations["org.opencontainers.image.stopSignal"] = opts.stop_signal
    if cfg.exposed_ports or opts.expose:
        annotations["org.opencontainers.image.exposedPorts"] = ",".join(sorted({*cfg.exposed_ports, *opts.expose}))
    for key, values in (("dns", opts.dns), ("dnsSearch", opts.dns_search), ("dnsOptions", opts.dns_options),
                        ("extraHosts", opts.add_hosts), ("aliases", opts.network_aliases),
                        ("securityOpt", opts.security_opts)):
        if values:
            annotations[f"org.pybuild.{key}"] = "\n".join(values)
    if opts.ip:
        annotations["org.pybuild.ip"] = opts.ip
    if opts.group_add:
        annotations["org.pybuild.groupAdd"] = "\n".join(opts.group_add)
    if opts.devices:       # inspect's HostConfig.Devices: the host side is nowhere else in the spec
        annotations["org.pybuild.devices"] = "\n".join(f"{d.host_path}:{d.path}:{d.access}" for d in opts.devices)
    return tuple(annotations.items())


def make_spec(image_config, opts: RunOptions, *, rootfs: str, etc_dir: str | None = None,
              container_id: str | None = None, seccomp_profile: Seccomp | None = None,
              volume_dir: str | None = None) -> Spec:
    """The OCI runtime spec for running ``image_config`` with ``opts`` on ``rootfs``.

    Pure apart from reading ``etc_dir/passwd`` and ``etc_dir/group`` (the image's, never followed
    through a symlink). ``container_id`` gives the default hostname (its first 12 characters).
    """
    cfg = image_defaults(image_config)
    user = resolve_user(opts.user if opts.user is not None else cfg.user, etc_dir)
    # as Docker: --network host without --hostname shares the host's UTS namespace (its hostname)
    share_uts = (opts.network == "host" and not opts.netns_path and not opts.hostname) or opts.uts_mode == "host"
    hostname = opts.hostname or (os.uname().nodename if share_uts else container_id[:12] if container_id else "pybuild")
    env = _merge_env(
        [f"PATH={DEFAULT_PATH}"], cfg.env, [f"HOSTNAME={hostname}"],
        ["TERM=xterm"] if opts.tty else [], opts.env,
    )
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={user.home}")
    cwd = opts.workdir or cfg.working_dir or "/"
    if not cwd.startswith("/"):
        raise InvalidRunOption(f"image config WorkingDir {cwd!r}: must be absolute")
    caps = tuple(resolve_caps(opts.cap_add, opts.cap_drop, opts.privileged))
    effective = caps if user.uid == 0 else ()
    process = Process(
        args=tuple(_args(cfg, opts)), env=tuple(env), cwd=cwd,
        capabilities=Capabilities(bounding=caps, effective=effective, permitted=effective),
        user=User(user.uid, user.gid, _group_add(user.additional_gids, opts.group_add, etc_dir)),
        rlimits=_rlimits(opts),
        no_new_privileges=(not opts.privileged) if opts.no_new_privileges is None else opts.no_new_privileges,
        terminal=bool(opts.tty),
    )
    mounts = list(_BASE_MOUNTS)
    if opts.ipc_mode == "none":          # as Docker: a private IPC namespace and no /dev/shm
        mounts = [m for m in mounts if m.destination != "/dev/shm"]
    if opts.ipc_mode == "host":          # as Docker: the host's /dev/shm with its IPC namespace
        mounts = [Mount("/dev/shm", "bind", "/dev/shm", ("rbind", "rw")) if m.destination == "/dev/shm" else m
                  for m in mounts]
    if opts.shm_size is not None:
        mounts = [replace(m, options=tuple(o for o in m.options if not o.startswith("size="))
                          + (f"size={opts.shm_size}",)) if m.destination == "/dev/shm" else m for m in mounts]
    if opts.privileged:
        mounts = [replace(m, options=tuple(o for o in m.options if o != "ro") + ("rw",))
                  if m.destination in ("/sys", "/sys/fs/cgroup") else m for m in mounts]
    user_mounts = _user_mounts(opts)
    mounts += sorted(_volume_mounts(image_config, volume_dir, user_mounts) + user_mounts, key=_depth)
    if opts.privileged:
        linux = Linux(namespaces=_namespaces(opts, share_uts), resources=_resources(opts), sysctl=opts.sysctls,
                      devices=_devices(opts))
    else:
        if seccomp_profile is None:
            seccomp_profile = _seccomp(opts.seccomp)
        linux = Linux(namespaces=_namespaces(opts, share_uts), resources=_resources(opts),
                      seccomp=seccomp_profile, sysctl=opts.sysctls, devices=_devices(opts),
                      masked_paths=MASKED_PATHS, readonly_paths=READONLY_PATHS)
    return Spec(oci_version=OCI_VERSION, process=process, root=Root(rootfs, bool(opts.read_only)),
                mounts=tuple(mounts), linux=linux, hostname=None if share_uts else hostname,
                annotations=_annotations(cfg, opts))


def _devices(opts: RunOptions) -> tuple[Device, ...]:
    if not opts.devices:
        return ()
    from .ocispec.limits import Device

    return tuple(Device(d.path, d.type, d.major, d.minor, d.file_mode, 0, 0) for d in opts.devices)


def _rlimits(opts: RunOptions) -> tuple[Rlimit, ...]:
    """``RLIMIT_NOFILE`` (``opts.nofile``) unless ``--ulimit nofile`` says otherwise, then the ``--ulimit``s."""
    limits = {"RLIMIT_NOFILE": Rlimit("RLIMIT_NOFILE", hard=opts.nofile, soft=opts.nofile)}
    for u in opts.ulimits:
        limits[u.rlimit] = Rlimit(u.rlimit, hard=u.hard, soft=u.soft)
    return tuple(limits.values())


def _group_add(gids: tuple[int, ...], names: tuple[str, ...], etc_dir: str | None) -> tuple[int, ...]:
    """The user's supplementary groups plus ``--group-add`` (a gid, or a group of the image's /etc/group)."""
    out = list(gids)
    groups = _read_db(etc_dir, "group") if any(not _is_id(n) for n in names) else []
    for name in names:
        if _is_id(name):
            gid = int(name)
        else:
            match = next((g for g in groups if len(g) >= 3 and g[0] == name and _is_id(g[2])), None)
            if match is None:
                raise InvalidRunOption(f"--group-add {name}: no such group in the image's /etc/group")
            gid = int(match[2])
        if gid not in out:
            out.append(gid)
    return tuple(out)


def _seccomp(choice: str) -> Seccomp | None:
    """``--security-opt seccomp=``: the default profile, none (``unconfined``), or a JSON profile file."""
    if not choice:
        return default_profile()
    if choice == "unconfined":
        return None
    try:
        with open(choice, encoding="utf-8") as f:
            doc = json.load(f)
        return Seccomp.from_dict(doc, "seccomp profile")
    except (OSError, ValueError) as exc:
        raise InvalidRunOption(f"--security-opt seccomp={choice}: {exc}") from None
    except Exception as exc:  # ocispec.InvalidSpec
        raise InvalidRunOption(f"--security-opt seccomp={choice}: not a usable profile: {exc}") from None


def clamp_rlimits(spec: Spec, hard_limits: dict[str, int] | None = None) -> Spec:
    """``spec`` with rlimits that never exceed ``hard_limits`` (default: this process's own hard limits)."""
    clamped = []
    for rl in spec.process.rlimits:
        if hard_limits is not None and rl.type in hard_limits:
            cap = hard_limits[rl.type]
        else:
            number = getattr(resource, rl.type, None)
            if number is None:
                raise InvalidRunOption(f"process.rlimits: unknown rlimit {rl.type!r}")
            cap = resource.getrlimit(number)[1]
        if cap != resource.RLIM_INFINITY:
            hard = min(rl.hard, cap)
            rl = Rlimit(rl.type, hard=hard, soft=min(rl.soft, hard))
        clamped.append(rl)
    return replace(spec, process=replace(spec.process, rlimits=tuple(clamped)))
