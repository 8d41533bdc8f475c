"""Container records as values, and the container state machine.

:class:`ContainerConfig` (``config.json``) is what a container was created with; :class:`ContainerState`
(``state.json``) is its persistent status. :data:`TRANSITIONS` is the state machine every status
change is checked against (:func:`check_transition`, called by ``ContainerStore.move``).

Imports are the stdlib; :mod:`runner.ocispec` (which the shim's sandbox loads anyway) only when a
record's spec is first read: :meth:`ContainerConfig.from_json` keeps the spec's JSON and parses it on
first access of ``.spec`` (a malformed one is a :class:`CorruptRecord` then), so listing containers
(``ps``) does not build the OCI spec's classes. The shim imports this module and lives as long as its
container.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, fields

from layers.errors import InvalidInput

from .errors import CorruptRecord, InvalidSpec, InvalidState
from .logfile import rfc3339      # Docker's time spelling; the shim loop's log writer needs it without the records

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .ocispec import Namespace, Spec

__all__ = [
    "CREATED", "RUNNING", "PAUSED", "EXITED", "RESTARTING", "DEAD", "STATUSES", "TRANSITIONS",
    "ContainerConfig", "ContainerState", "check_transition", "new_id", "rfc3339", "validate_name",
    "is_full_id", "is_id_prefix", "ContainerInfo", "PublishedPort", "NetworkAttachment", "ExtraNetwork",
    "HealthConfig", "HealthResult", "Health", "STARTING", "HEALTHY", "UNHEALTHY",
]


CREATED, RUNNING, PAUSED, EXITED, RESTARTING, DEAD = \
    "created", "running", "paused", "exited", "restarting", "dead"
STATUSES = (CREATED, RUNNING, PAUSED, EXITED, RESTARTING, DEAD)

# from -> allowed destinations (runc's state machine, with Docker's restarting and dead):
#   created -> running          the first start
#   running <-> paused          pause / unpause (freezer)
#   * -> exited                 PID 1 ended, a start failed, or a lost supervisor was settled
#   exited -> exited            a new start failed before its process ran (the error is recorded)
#   exited -> restarting        the shim's restart policy will start it again after a back-off
#   restarting -> running       ... and did; restarting -> exited: stopped during the back-off
#   exited -> running           ``start`` of a stopped container
#   * -> dead                   a removal failed half-way (``rm -f`` can be retried: dead -> dead)
TRANSITIONS: dict[str, frozenset[str]] = {
    CREATED: frozenset({RUNNING, EXITED, DEAD}),
    RUNNING: frozenset({PAUSED, EXITED, DEAD}),
    PAUSED: frozenset({RUNNING, EXITED, DEAD}),
    EXITED: frozenset({RUNNING, EXITED, RESTARTING, DEAD}),
    RESTARTING: frozenset({RUNNING, EXITED, DEAD}),
    DEAD: frozenset({DEAD}),
}

_ID_RE = re.compile(r"^[0-9a-f]{64}$")
_PREFIX_RE = re.compile(r"^[0-9a-f]{1,64}$")
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")


def check_transition(name: str, current: str, wanted: str) -> None:
    """Raise :class:`InvalidState` naming the container, from and to, if ``current -> wanted`` is not allowed."""
    if wanted not in TRANSITIONS.get(current, frozenset()):
        raise InvalidState(name, current, wanted)


def is_full_id(ref: str) -> bool:
    return bool(_ID_RE.match(ref or ""))


def is_id_prefix(ref: str) -> bool:
    return bool(_PREFIX_RE.match(ref or ""))


def new_id() -> str:
    """A fresh 64-hex container id (256 random bits, like Docker's)."""
    return os.urandom(32).hex()       # what secrets.token_hex does; secrets costs the shim 1 MiB


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid container name (Docker's grammar), else raise InvalidInput."""
    if not _NAME_RE.match(name) or _ID_RE.match(name):
        raise InvalidInput(f"invalid container name {name!r}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*, "
                           f"at most 128 characters, not a 64-hex id")
    return name


def _fields(record) -> dict:
    return {f.name: getattr(record, f.name) for f in fields(record)}


@dataclass(frozen=True, slots=True, order=True)
class PublishedPort:
    """Host ``host_ip:host_port`` forwards to container port ``container_port`` over ``protocol``.

    ``host_port`` 0 means "any free port"; ``host_port_end`` (when not 0) makes ``host_port`` the
    start of a range of which the first free port is taken (``-p 8000-8010:80``). The bound proxy
    reports the real port, with no range. The one type of a published port: the network room's
    :class:`runner.network.PortMapping` is this class (it lives here so that reading a record does
    not load the network package).
    """

    container_port: int
    protocol: str = "tcp"
    host_ip: str = "0.0.0.0"
    host_port: int = 0
    host_port_end: int = 0

    def __str__(self) -> str:
        ip = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip
        end = f"-{self.host_port_end}" if self.host_port_end else ""
        return f"{self.container_port}/{self.protocol} -> {ip}:{self.host_port}{end}"

    @property
    def candidates(self) -> range:
        """The host ports to try, in order (``range(0, 1)`` for "any")."""
        return range(self.host_port, max(self.host_port, self.host_port_end) + 1)

    def to_dict(self) -> dict:
        d = {"container_port": self.container_port, "protocol": self.protocol,
             "host_ip": self.host_ip, "host_port": self.host_port}
        if self.host_port_end:
            d["host_port_end"] = self.host_port_end
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PublishedPort":
        return cls(int(d["container_port"]), d.get("protocol", "tcp"), d.get("host_ip") or "0.0.0.0",
                   int(d.get("host_port", 0)), int(d.get("host_port_end", 0)))


@dataclass(frozen=True, slots=True)
class NetworkAttachment:
    """The network a container asked for (``mode``: none, host, bridge, a network name or
    ``container:<ref>``) and, once attached (``container_id`` set), its namespace (``netns_path``
    None: the host's), address, gateway, veth, notes... The one type of an attachment: what
    :func:`runner.network.setup` returns (as :class:`runner.network.Attachment`, with ``mode`` the
    kind it set up: bridge, host, none or container) and what the record keeps.

    ``etc_files`` (``hosts``, ``hostname``, ``resolv.conf`` -> the host path the sandbox binds) are
    sorted ``(name, path)`` pairs; a mapping given is turned into them."""

    mode: str = "bridge"
    container_id: str = ""
    netns_path: str | None = None
    hostname: str = ""
    etc_files: tuple[tuple[str, str], ...] = ()
    network: str | None = None
    ip: str | None = None
    prefixlen: int | None = None
    gateway: str | None = None
    mac: str | None = None
    bridge: str | None = None
    host_veth: str | None = None
    nat: str | None = None
    notes: tuple[str, ...] = ()
    dial_netns: str | None = None      # rootless: where the port proxy dials ``ip`` from

    def __post_init__(self) -> None:
        if isinstance(self.etc_files, dict):
            object.__setattr__(self, "etc_files", tuple(sorted(self.etc_files.items())))

    @property
    def attached(self) -> bool:
        return bool(self.container_id)

    def spec_namespace(self) -> Namespace | None:
        """The OCI ``linux.namespaces`` entry to join, or None for the host network."""
        if self.netns_path is None:
            return None
        from .ocispec import Namespace

        return Namespace("network", self.netns_path)

    def to_dict(self) -> dict:
        """The JSON shape of ``config.json`` (``{"mode": ...}`` until attached) and of inspect."""
        if not self.attached:
            return {"mode": self.mode}
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["etc_files"] = dict(self.etc_files)
        d["notes"] = list(self.notes)
        if self.dial_netns is None:         # rootless only: a root container's record keeps its shape
            del d["dial_netns"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "NetworkAttachment":
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in (d or {}).items() if k in known}
        kw["etc_files"] = tuple(sorted((kw.get("etc_files") or {}).items()))
        kw["notes"] = tuple(kw.get("notes") or ())
        kw.setdefault("mode", "bridge")
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class ExtraNetwork:
    """A user network a container joins beside its first one (``--network`` given again, ``network
    connect``): what was asked (``network``, ``aliases``, ``ip_request``) and, while attached
    (``ifname`` set), the interface, address, gateway and MAC it got there."""

    network: str
    aliases: tuple[str, ...] = ()
    ip_request: str | None = None
    ifname: str = ""
    ip: str | None = None
    prefixlen: int | None = None
    gateway: str | None = None
    mac: str | None = None
    bridge: str | None = None
    host_veth: str | None = None

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["aliases"] = list(self.aliases)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ExtraNetwork":
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["aliases"] = tuple(kw.get("aliases") or ())
        return cls(**kw)

    def detached(self) -> "ExtraNetwork":
        """Only the request: what a stopped container keeps."""
        return ExtraNetwork(self.network, self.aliases, self.ip_request)


STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
_NS = 1_000_000_000
_HEALTH_DURATIONS = (("interval", "Interval", 30.0), ("timeout", "Timeout", 30.0),
                     ("start_period", "StartPeriod", 0.0), ("start_interval", "StartInterval", 5.0))


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """A container's health check: ``test`` is ``("CMD", argv...)`` or ``("CMD-SHELL", command)``
    (run by ``shell``, the image's SHELL); durations in seconds, 0 meaning Docker's default
    (interval and timeout 30 s, start period 0, start interval 5 s, 3 retries)."""

    test: tuple[str, ...]
    interval: float = 0.0
    timeout: float = 0.0
    start_period: float = 0.0
    start_interval: float = 0.0
    retries: int = 0
    shell: tuple[str, ...] = ("/bin/sh", "-c")

    def argv(self) -> tuple[str, ...]:
        """The probe's command line."""
        if self.test[0] == "CMD-SHELL":
            return tuple(self.shell) + (" ".join(self.test[1:]),)
        return tuple(self.test[1:])

    def effective(self, name: str) -> float:
        """A duration or ``retries`` with Docker's default in place of 0."""
        value = getattr(self, name)
        if name == "retries":
            return value or 3
        return value or next(d for n, _, d in _HEALTH_DURATIONS if n == name)

    def to_dict(self) -> dict:
        """Docker's ``Config.Healthcheck`` shape (durations in nanoseconds), with the shell."""
        d: dict = {"Test": list(self.test)}
        for attr, key, _ in _HEALTH_DURATIONS:
            if getattr(self, attr):
                d[key] = int(round(getattr(self, attr) * _NS))
        if self.retries:
            d["Retries"] = self.retries
        d["Shell"] = list(self.shell)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "HealthConfig":
        kw = {attr: d.get(key, 0) / _NS for attr, key, _ in _HEALTH_DURATIONS}
        return cls(test=tuple(d["Test"]), retries=int(d.get("Retries", 0)),
                   shell=tuple(d.get("Shell") or ("/bin/sh", "-c")), **kw)


@dataclass(frozen=True, slots=True)
class HealthResult:
    """One probe: when it ran (epoch seconds), its exit code (-1: it timed out) and output."""

    start: float
    end: float
    exit_code: int
    output: str


@dataclass(frozen=True, slots=True)
class Health:
    """``State.Health``: ``status`` starting|healthy|unhealthy, the failing streak, the last 5 probes."""

    status: str = STARTING
    failing_streak: int = 0
    log: tuple[HealthResult, ...] = ()

    def to_dict(self) -> dict:
        return {"status": self.status, "failing_streak": self.failing_streak,
                "log": [[r.start, r.end, r.exit_code, r.output] for r in self.log]}

    def after(self, result: HealthResult, check: HealthConfig, started_at: float | None) -> "Health":
        """The health once ``result`` is in (moby's rules): a pass makes it healthy and resets the
        streak; a failure adds to the streak, except while still starting within the start period,
        and ``retries`` failures in a row make it unhealthy. The log keeps the last 5 results."""
        status, streak = self.status, self.failing_streak
        if result.exit_code == 0:
            status, streak = HEALTHY, 0
        elif not (status == STARTING and result.start - (started_at or result.start) < check.start_period):
            streak += 1
            if streak >= check.effective("retries"):
                status = UNHEALTHY
        return Health(status, streak, (self.log + (result,))[-5:])

    def stopped(self) -> "Health":
        """The health of a container that stopped: unhealthy, its log kept (as moby records it)."""
        return Health(UNHEALTHY, self.failing_streak, self.log)

    @classmethod
    def from_dict(cls, d: dict) -> "Health":
        return cls(d["status"], int(d["failing_streak"]), tuple(HealthResult(*r) for r in d["log"]))


@dataclass(frozen=True)
class ContainerConfig:
    """What a container was created with. ``spec`` is the OCI runtime spec the sandbox starts."""

    id: str
    name: str
    image: str                      # the reference the user gave, for display
    image_id: str                   # manifest digest, registered as the record's store root
    spec: Spec
    created: float
    restart_policy: str = "no"      # no | on-failure[:N] | always | unless-stopped
    auto_remove: bool = False
    init: bool = False
    stop_signal: str = "SIGTERM"
    stop_timeout: int = 10
    log_max_size: int = 10 * 1024 * 1024
    log_max_files: int = 2
    tty: bool = False
    ports: tuple[PublishedPort, ...] = ()
    network: NetworkAttachment = field(default_factory=NetworkAttachment)
    labels: dict = field(default_factory=dict)
    lowerdirs: tuple[str, ...] = ()  # the image's snapshot directories, top-most first (overlay lower dirs)
    launcher: str = "sandbox"       # sandbox | host (test-only: the process runs on the host, unisolated)
    healthcheck: HealthConfig | None = None   # None: no check (none in the image, NONE, --no-healthcheck)
    extra_networks: tuple[ExtraNetwork, ...] = ()   # networks beyond ``network``, in the order joined

    def to_json(self) -> bytes:
        # no indent, which would leave json's C encoder for its Python one (the spec holds the whole
        # seccomp profile)
        doc = _fields(self)
        doc["spec"] = self.spec.to_dict()
        doc["healthcheck"] = self.healthcheck.to_dict() if self.healthcheck else None
        doc["ports"] = [p.to_dict() for p in self.ports]
        doc["network"] = self.network.to_dict()
        doc["extra_networks"] = [n.to_dict() for n in self.extra_networks]
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes, where: str) -> "ContainerConfig":
        try:
            doc = json.loads(raw)
            extra = doc.pop("extra", None) or {}          # records before lowerdirs/launcher were fields
            doc.setdefault("lowerdirs", extra.get("lowerdirs") or ())
            doc.setdefault("launcher", extra.get("launcher") or "sandbox")
            doc["lowerdirs"] = tuple(doc["lowerdirs"])
            doc["ports"] = tuple(PublishedPort.from_dict(p) for p in doc.get("ports") or ())
            doc["network"] = NetworkAttachment.from_dict(doc.get("network") or {})
            doc["extra_networks"] = tuple(ExtraNetwork.from_dict(n) for n in doc.get("extra_networks") or ())
            if not isinstance(doc["spec"], dict):
                raise TypeError(f"spec: expected an object, not {type(doc['spec']).__name__}")
            doc["spec"] = _RawSpec(doc["spec"], where)   # parsed on first read of .spec
            if doc.get("healthcheck"):
                doc["healthcheck"] = HealthConfig.from_dict(doc["healthcheck"])
            return cls(**doc)
        except (ValueError, TypeError, KeyError, AttributeError, InvalidSpec) as exc:
            raise CorruptRecord(f"{where}: corrupt container config: {exc}") from None

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def network_mode(self) -> str:
        return self.network.mode

    @property
    def command(self) -> tuple[str, ...]:
        """The process's argv (``spec.process.args``), read without parsing a spec not read yet."""
        raw = self.__dict__.get("_spec")
        if isinstance(raw, _RawSpec):
            args = (raw.doc.get("process") or {}).get("args") if isinstance(raw.doc, dict) else None
            if isinstance(args, list) and all(isinstance(a, str) for a in args):
                return tuple(args)
        return self.spec.process.args


class _RawSpec:
    """A spec's JSON from a record, not parsed yet, and where it came from."""

    __slots__ = ("doc", "where")

    def __init__(self, doc, where: str) -> None:
        self.doc, self.where = doc, where


class _LazySpec:
    """``ContainerConfig.spec``: stored as given; a :class:`_RawSpec` is parsed on first read (then kept)."""

    def __set__(self, obj, value) -> None:
        obj.__dict__["_spec"] = value

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj.__dict__["_spec"]
        if isinstance(value, _RawSpec):
            from .ocispec import Spec

            try:
                parsed = Spec.from_dict(value.doc, "spec")
            except (ValueError, TypeError, KeyError, AttributeError, InvalidSpec) as exc:
                raise CorruptRecord(f"{value.where}: corrupt container config: {exc}") from None
            obj.__dict__["_spec"] = value = parsed
        return value


ContainerConfig.spec = _LazySpec()       # after @dataclass: a data descriptor, the field keeps its place


@dataclass(frozen=True)
class ContainerState:
    """The persistent status of a container (``state.json``)."""

    status: str = CREATED
    pid: int = 0
    exit_code: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    restart_count: int = 0
    oom_killed: bool = False
    error: str = ""
    shim_pid: int = 0
    health: Health | None = None    # set by the shim of a container with a health check

    def to_json(self) -> bytes:
        doc = _fields(self)
        doc["health"] = self.health.to_dict() if self.health else None
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes, where: str) -> "ContainerState":
        try:
            doc = json.loads(raw)
            # before "restarting" was a status, a flag beside an "exited" status said so
            if doc.pop("restarting", False) and doc.get("status") == EXITED:
                doc["status"] = RESTARTING
            if doc.get("status", CREATED) not in STATUSES:
                raise ValueError(f"unknown status {doc['status']!r}")
            if doc.get("health"):
                doc["health"] = Health.from_dict(doc["health"])
            return cls(**doc)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise CorruptRecord(f"{where}: corrupt container state: {exc}") from None

    @property
    def live(self) -> bool:
        """Its process runs (running or paused)."""
        return self.status in (RUNNING, PAUSED)

    @property
    def restarting(self) -> bool:
        return self.status == RESTARTING

    @property
    def supervised(self) -> bool:
        """A supervisor still has work with it: it runs, or it waits to be started again."""
        return self.status in (RUNNING, PAUSED, RESTARTING)


@dataclass(frozen=True)
class ContainerInfo:
    """A container's config with its state as :meth:`runner.state.ContainerStore.status` reads it."""

    config: ContainerConfig
    state: ContainerState
