"""``RunOptions``: everything ``pybuild run``/``create`` (and the builder's RUN) asks of a container.

A frozen value; the parsers here turn Docker's command-line spellings (``-v a:b:ro``, ``--tmpfs
/t:size=1m``, ``--memory 512m``, ``--env-file``) into typed fields and name the option on error.
Options the foreground sandbox does not act on itself (``detach``, ``publish``, ``restart``, ``init``,
``rm``) are carried for the lifecycle and network code.
"""

from __future__ import annotations

import os
import re
from dataclasses import field

from layers.errors import InvalidInput
from layers.value import frozen

from .errors import InvalidRunOption

__all__ = ["RunOptions", "BindMount", "TmpfsMount", "PortSpec", "parse_bytes", "parse_volume",
           "parse_tmpfs", "parse_env_file", "DEFAULT_PIDS_LIMIT", "default_pids_limit", "HealthOptions", "parse_duration",
           "container_healthcheck", "NetworkRequest", "parse_networks"]

DEFAULT_PIDS_LIMIT = 4096

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .optionvalues import BindMount, PortSpec, TmpfsMount


def __getattr__(name: str):
    """:mod:`runner.optionvalues`' classes, imported on first use (PEP 562)."""
    if name in ("BindMount", "TmpfsMount", "PortSpec"):
        from . import optionvalues

        return getattr(optionvalues, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_pids_limit() -> int | None:
    """The pids limit a container gets when none is asked: :data:`DEFAULT_PIDS_LIMIT`, or, rootless, none
    unless the pids controller is delegated to the user (no cgroup to hold it; an explicit
    ``--pids-limit`` is refused there instead)."""
    from layers.store.location import is_rootless

    if not is_rootless():
        return DEFAULT_PIDS_LIMIT
    from .cgdelegate import probe

    d = probe().delegation
    return DEFAULT_PIDS_LIMIT if d is not None and "pids" in d.controllers else None


@frozen
class NetworkRequest:
    """A further network a container joins beside its first (``--network`` given again): its name,
    the aliases peers resolve it by there, and the address asked for there."""

    name: str
    aliases: tuple[str, ...] = ()
    ip: str | None = None


def parse_networks(values, aliases: tuple[str, ...] = (), ip: str | None = None):
    """``--network`` values (each a name, or Docker's ``name=N[,alias=A]...[,ip=IP]``) ->
    (first network, its aliases, its ip, further :class:`NetworkRequest` s). ``--network-alias`` and
    ``--ip`` apply to the first network, as with one ``--network``."""
    reqs = []
    for text in values or ("bridge",):
        if "=" not in text:
            reqs.append(NetworkRequest(text))
            continue
        fields: dict = {"alias": []}
        for part in text.split(","):
            key, sep, value = part.partition("=")
            if not sep or key not in ("name", "alias", "ip") or not value:
                raise InvalidRunOption(f"--network {text!r}: expected name=NET[,alias=A][,ip=IP]")
            if key == "alias":
                fields["alias"].append(value)
            else:
                fields[key] = value
        if "name" not in fields:
            raise InvalidRunOption(f"--network {text!r}: name= is missing")
        reqs.append(NetworkRequest(fields["name"], tuple(fields["alias"]), fields.get("ip")))
    first, rest = reqs[0], tuple(reqs[1:])
    return first.name, tuple(first.aliases) + tuple(aliases), ip or first.ip, rest


@frozen
class HealthOptions:
    """``--health-cmd`` (a shell command), the durations in seconds (None: the image's), ``--health-retries``,
    and ``--no-healthcheck`` (``disable``)."""

    cmd: str | None = None
    interval: float | None = None
    timeout: float | None = None
    start_period: float | None = None
    start_interval: float | None = None
    retries: int | None = None
    disable: bool = False

    def __post_init__(self) -> None:
        given = [n for n in ("cmd", "interval", "timeout", "start_period", "start_interval", "retries")
                 if getattr(self, n) is not None]
        if self.disable and given:
            raise InvalidRunOption("--no-healthcheck conflicts with --health-* options")
        for name in ("interval", "timeout", "start_period", "start_interval"):
            value = getattr(self, name)
            if value is not None and value != 0 and value < 0.001:
                raise InvalidRunOption(f"--health-{name.replace('_', '-')}: cannot be less than 1ms")
        if self.retries is not None and self.retries < 0:
            raise InvalidRunOption("--health-retries: cannot be negative")


@frozen
class RunOptions:
    """A container's run options. ``None`` means "the image's value" for command/entrypoint/user/workdir.

    ``entrypoint=()`` is ``--entrypoint ""`` (clear the image's entrypoint). ``env`` entries are
    ``KEY=VALUE`` in order (later wins). ``network`` is ``none``, ``host``, ``bridge`` or a network
    name; ``netns_path`` (set by the network code) is joined instead of creating a namespace.
    """

    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    user: str | None = None
    workdir: str | None = None
    hostname: str | None = None
    mounts: tuple[BindMount, ...] = ()
    tmpfs: tuple[TmpfsMount, ...] = ()
    read_only: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    memory: int | None = None
    cpus: float | None = None
    pids_limit: int | None = DEFAULT_PIDS_LIMIT
    network: str = "bridge"
    extra_networks: tuple[NetworkRequest, ...] = ()     # --network given again: joined beside the first
    netns_path: str | None = None
    tty: bool = False
    interactive: bool = False
    init: bool = False
    rm: bool = False
    detach: bool = False
    name: str | None = None
    publish: tuple[PortSpec, ...] = ()
    publish_all: bool = False
    restart: str = "no"
    nofile: int = 1048576
    labels: tuple[tuple[str, str], ...] = field(default=())
    health: HealthOptions = field(default_factory=HealthOptions)
    # Docker's further run flags (parsed by runner.runflags)
    ulimits: tuple = ()                         # runflags.Ulimit
    memory_swap: int | None = None              # bytes of memory+swap, -1 unlimited
    memory_reservation: int | None = None
    cpu_shares: int | None = None
    cpuset_cpus: str | None = None
    shm_size: int | None = None
    add_hosts: tuple[str, ...] = ()             # NAME:IP
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    network_aliases: tuple[str, ...] = ()
    ip: str | None = None                       # --ip on a user network
    expose: tuple[str, ...] = ()                # "80/tcp"
    group_add: tuple[str, ...] = ()
    devices: tuple = ()                         # runflags.DeviceMapping
    pid_mode: str = ""                          # "" private | host | container:NAME
    ipc_mode: str = ""                          # "" private | host | none (no /dev/shm) | shareable | container:X
    uts_mode: str = ""                          # "" private | host
    seccomp: str = ""                           # "" default | unconfined | a profile file
    no_new_privileges: bool | None = None       # None: not privileged
    security_opts: tuple[str, ...] = ()         # label=/apparmor= entries, accepted and reported
    sysctls: tuple[tuple[str, str], ...] = ()
    stop_signal: str | None = None
    platform: str | None = None                 # --platform os/arch[/variant]: that image of an index
    stop_timeout: int | None = None
    log_max_size: int | None = None
    log_max_files: int | None = None

    def __post_init__(self) -> None:
        self._check_flags()
        if self.memory is not None and self.memory < 6 * 1024 * 1024:
            raise InvalidRunOption(f"--memory {self.memory}: minimum memory limit is 6MB")
        if self.cpus is not None and self.cpus <= 0:
            raise InvalidRunOption(f"--cpus {self.cpus}: must be greater than 0")
        if self.pids_limit is not None and self.pids_limit == 0:
            raise InvalidRunOption("--pids-limit 0: must be positive, or -1 for unlimited")
        for m in self.mounts:
            if not m.target.startswith("/"):
                raise InvalidRunOption(f"-v {m.source}:{m.target}: container path must be absolute")
        for t in self.tmpfs:
            if not t.target.startswith("/"):
                raise InvalidRunOption(f"--tmpfs {t.target}: container path must be absolute")
        if self.workdir is not None and self.workdir and not self.workdir.startswith("/"):
            raise InvalidRunOption(f"--workdir {self.workdir!r}: must be an absolute path")

    def _check_flags(self) -> None:
        if self.memory_swap is not None and self.memory_swap != -1:
            if self.memory is None:
                raise InvalidRunOption("--memory-swap: needs --memory as well")
            if self.memory_swap < self.memory:
                raise InvalidRunOption("--memory-swap: must be at least --memory")
        if self.memory_reservation is not None and self.memory is not None and self.memory_reservation > self.memory:
            raise InvalidRunOption("--memory-reservation: must be smaller than --memory")
        if self.cpu_shares is not None and not 2 <= self.cpu_shares <= 262144:
            raise InvalidRunOption(f"--cpu-shares {self.cpu_shares}: must be between 2 and 262144")
        if self.cpuset_cpus is not None and not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", self.cpuset_cpus):
            raise InvalidRunOption(f"--cpuset-cpus {self.cpuset_cpus!r}: expected a list like 0-3 or 0,1")
        if self.shm_size is not None and self.shm_size <= 0:
            raise InvalidRunOption("--shm-size: must be greater than 0")
        if self.stop_timeout is not None and self.stop_timeout < 0:
            raise InvalidRunOption(f"--stop-timeout {self.stop_timeout}: must be 0 or more (waiting forever "
                                   "is not supported)")
        host_net = self.network == "host"
        for key, _ in self.sysctls:
            if key.startswith("net.") and host_net:
                raise InvalidRunOption(f"--sysctl {key}: not allowed with --network host")
            if key.startswith(("kernel.", "fs.mqueue.")) and (self.ipc_mode == "host"
                                                              or self.ipc_mode.startswith("container:")):
                raise InvalidRunOption(f"--sysctl {key}: not allowed with --ipc {self.ipc_mode}")
        if (self.ipc_mode in ("host", "none") or self.ipc_mode.startswith("container:")) and self.shm_size is not None:
            raise InvalidRunOption(f"--shm-size: conflicts with --ipc {self.ipc_mode}")
        if self.extra_networks:
            if self.network in ("none", "host") or self.network.startswith("container:"):
                raise InvalidRunOption(f"--network {self.network}: a container in this mode cannot join "
                                       "other networks")
            names = [self.network] + [n.name for n in self.extra_networks]
            canon = ["pybuild" if n in ("bridge", "default") else n for n in names]
            if len(set(canon)) != len(canon):
                raise InvalidRunOption(f"--network: a network is named twice ({', '.join(names)})")
            for n in self.extra_networks:
                if n.name in ("none", "host") or n.name.startswith("container:"):
                    raise InvalidRunOption(f"--network {n.name}: cannot be combined with other networks")
                if (n.aliases or n.ip) and n.name in ("bridge", "default", "pybuild"):
                    raise InvalidRunOption(f"--network {n.name}: aliases and ip only work on a user-defined network")
        if self.network in ("none", "host"):
            for flag, value in (("--add-host", self.add_hosts), ("--dns", self.dns), ("--dns-search", self.dns_search),
                                ("--dns-option", self.dns_options), ("--network-alias", self.network_aliases)):
                if value:
                    raise InvalidRunOption(f"{flag}: not supported with --network {self.network}")
        if self.network.startswith("container:") and any(h.endswith(":host-gateway") for h in self.add_hosts):
            raise InvalidRunOption("--add-host NAME:host-gateway: needs a bridge network, not --network "
                                   f"{self.network}")
        for item in self.add_hosts:
            import ipaddress

            name, sep, ip = item.partition(":")
            try:
                if ip != "host-gateway":         # the bridge's gateway, known when the network is set up
                    ipaddress.ip_address(ip.strip("[]"))
            except ValueError:
                sep = ""
            if not sep or not name:
                raise InvalidRunOption(f"--add-host {item!r}: expected NAME:IP")
        if self.ip is not None:
            import ipaddress

            try:
                ipaddress.IPv4Address(self.ip)
            except ValueError:
                raise InvalidRunOption(f"--ip {self.ip}: not an IPv4 address") from None
            if self.network in ("bridge", "host", "none", "default", "pybuild") or self.network.startswith("container:"):
                raise InvalidRunOption("--ip: only works on a user-defined network")
        if self.network_aliases and (self.network in ("bridge", "host", "default", "pybuild")
                                     or self.network.startswith("container:")):
            raise InvalidRunOption("--network-alias: only works on a user-defined network")
        if self.uts_mode == "host" and self.hostname:
            raise InvalidRunOption("--hostname: conflicts with --uts host")


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_bytes(text: str, option: str = "--memory") -> int:
    """Docker's RAM size spelling: ``512m``, ``1g``, ``1048576``, ``1.5g`` (binary units)."""
    m = _SIZE.match(text)
    if not m:
        raise InvalidRunOption(f"{option} {text!r}: not a size (use e.g. 512m or 1g)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_volume(text: str) -> BindMount:
    """``-v /host:/ctr[:ro|rw]``, or ``-v NAME:/ctr[:ro|rw]`` for a named volume (made if missing)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidRunOption(f"-v {text!r}: expected /host/path:/container/path[:ro]")
    source, target = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    flags = set(mode.split(","))
    if not flags <= {"ro", "rw", "z", "Z"}:
        raise InvalidRunOption(f"-v {text!r}: unknown mode {mode!r}")
    if not target.startswith("/"):
        raise InvalidRunOption(f"-v {text!r}: the container path must be absolute")
    from .optionvalues import BindMount

    if not source.startswith("/"):
        from .volumes import validate_volume_name

        try:
            validate_volume_name(source)
        except InvalidInput as exc:
            raise InvalidRunOption(f"-v {text!r}: {exc}") from None
        return BindMount("", target, readonly="ro" in flags, volume=source)
    return BindMount(os.path.abspath(source), target, readonly="ro" in flags)


def parse_tmpfs(text: str) -> TmpfsMount:
    from .optionvalues import TmpfsMount

    target, _, options = text.partition(":")
    return TmpfsMount(target, options)


def parse_env_file(path: str) -> tuple[str, ...]:
    """Docker's env-file: ``KEY=VALUE`` lines, ``#`` comments, a bare ``KEY`` takes the caller's value."""
    out: list[str] = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise InvalidRunOption(f"--env-file {path}: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, _ = line.partition("=")
        if not key or any(c.isspace() for c in key):
            raise InvalidRunOption(f"--env-file {path}:{number}: invalid variable name {key!r}")
        if eq:
            out.append(line)
        elif key in os.environ:
            out.append(f"{key}={os.environ[key]}")
    return tuple(out)


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, option: str) -> float:
    """Go's ``time.ParseDuration`` (``30s``, ``1m30s``, ``500ms``, ``0``) in seconds, as Docker takes it."""
    t = text.strip()
    if t == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(t):
        m = _DURATION_PART.match(t, pos)
        if not m:
            raise InvalidRunOption(f"{option} {text!r}: not a duration (use e.g. 30s, 1m30s or 500ms)")
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if not t:
        raise InvalidRunOption(f"{option} {text!r}: not a duration (use e.g. 30s, 1m30s or 500ms)")
    return total


def container_healthcheck(image: dict, shell, opts: HealthOptions):
    """The container's :class:`runner.healthrecords.HealthConfig` from the image's ``Healthcheck`` (its
    config's JSON object, or None) and the command line, field by field as moby merges them; None
    when there is no check (none in the image, ``HEALTHCHECK NONE``, ``--no-healthcheck``)."""
    if opts.disable:
        return None
    image = image or {}
    test = ("CMD-SHELL", opts.cmd) if opts.cmd is not None else tuple(image.get("Test") or ())
    if not test or test[0] == "NONE" or (test[0] == "CMD-SHELL" and not "".join(test[1:])):
        return None
    if test[0] not in ("CMD", "CMD-SHELL"):
        test = ("CMD",) + tuple(test)         # Docker: a list without a prefix is an argv
    if len(test) < 2:
        return None

    def pick(value, key):
        return value if value is not None else (image.get(key) or 0) / 1e9

    from .healthrecords import HealthConfig      # here: most containers have no check

    return HealthConfig(
        test=tuple(test),
        interval=pick(opts.interval, "Interval"), timeout=pick(opts.timeout, "Timeout"),
        start_period=pick(opts.start_period, "StartPeriod"), start_interval=pick(opts.start_interval, "StartInterval"),
        retries=opts.retries if opts.retries is not None else int(image.get("Retries") or 0),
        shell=tuple(shell) if shell else ("/bin/sh", "-c"))
