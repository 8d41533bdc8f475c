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
from dataclasses import FrozenInstanceError, field, fields

from layers.errors import InvalidInput
from layers.value import frozen

from .errors import CorruptRecord, InvalidSpec, InvalidState
from .logfile import rfc3339      # Docker's time spelling; the shim loop's log writer needs it without the records

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .healthrecords import Health, HealthConfig
    from .netrecords import ExtraNetwork, PublishedPort
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


def _ports(docs: list | None) -> tuple:
    if not docs:
        return ()
    from .netrecords import PublishedPort

    return tuple(PublishedPort.from_dict(p) for p in docs)


def _extra_networks(docs: list | None) -> tuple:
    if not docs:
        return ()
    from .netrecords import ExtraNetwork

    return tuple(ExtraNetwork.from_dict(n) for n in docs)


def _fields(record) -> dict:
    return {f.name: getattr(record, f.name) for f in fields(record)}


@frozen(slots=True)
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


_LAZY = {"PublishedPort": "netrecords", "ExtraNetwork": "netrecords", "HealthConfig": "healthrecords",
         "HealthResult": "healthrecords", "Health": "healthrecords", "STARTING": "healthrecords",
         "HEALTHY": "healthrecords", "UNHEALTHY": "healthrecords"}


def __getattr__(name: str):
    """The record parts most containers lack (:mod:`runner.netrecords`, :mod:`runner.healthrecords`),
    imported on first use (PEP 562): ``from runner.records import PublishedPort`` still works."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__.rpartition('.')[0]}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@frozen
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
            doc["ports"] = _ports(doc.get("ports"))
            doc["network"] = NetworkAttachment.from_dict(doc.get("network") or {})
            doc["extra_networks"] = _extra_networks(doc.get("extra_networks"))
            if not isinstance(doc["spec"], dict):
                raise TypeError(f"spec: expected an object, not {type(doc['spec']).__name__}")
            doc["spec"] = _RawSpec(doc["spec"], where)   # parsed on first read of .spec
            if doc.get("healthcheck"):
                from .healthrecords import HealthConfig

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
        if "_spec" in obj.__dict__:              # a frozen value: set once, by __init__
            raise FrozenInstanceError("cannot assign to field 'spec'")
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


ContainerConfig.spec = _LazySpec()       # after @frozen: a data descriptor, the field keeps its place


@frozen
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
                from .healthrecords import Health

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


@frozen
class ContainerInfo:
    """A container's config with its state as :meth:`runner.state.ContainerStore.status` reads it."""

    config: ContainerConfig
    state: ContainerState
