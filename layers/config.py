"""The image configuration (OCI ``config.md``, also Docker's ``container.image.v1+json``).

:class:`ImageConfig` holds every field of the image spec as frozen values, plus the raw bytes
it came from and their digest (the image id). Edits (:meth:`ImageConfig.with_layer`,
:meth:`~ImageConfig.with_config`, :meth:`~ImageConfig.with_fields`, :meth:`~ImageConfig.with_history`)
return a new value serialised as canonical JSON. Fields pybuild does not model (Docker's
``container_config``, ``docker_version``...) survive in :attr:`ImageConfig.raw` but are dropped by edits.

Durations in ``Healthcheck`` are integers of nanoseconds, as Go's ``time.Duration`` writes them.
"""

from __future__ import annotations

import re
from dataclasses import field, fields, replace
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from .descriptor import Platform, frozen_map, require
from .digest import Digest
from .errors import InvalidDigest, InvalidDocument, InvalidInput
from .jsonutil import canonical, key_set, load_object, optional, str_list, str_map
from .value import frozen

__all__ = ["ContainerConfig", "Healthcheck", "History", "ImageConfig", "RootFS", "format_time"]

_KIND = "config"
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_PORT = re.compile(r"([0-9]{1,5})(/(tcp|udp|sctp))?")


def format_time(when: datetime | float | int) -> str:
    """RFC 3339 in UTC with a ``Z``, as Docker and BuildKit write ``created``."""
    if not isinstance(when, datetime):
        when = datetime.fromtimestamp(when, timezone.utc)
    when = when.astimezone(timezone.utc)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond:06d}".rstrip("0")
    return text + "Z"


def _timestamp(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = optional(obj, key, _KIND, where, str, "")
    if value:
        path = f"{where}.{key}" if where else key
        if not _RFC3339.fullmatch(value):
            raise InvalidDocument(_KIND, path, f"{value[:40]!r} is not an RFC 3339 date-time")
        try:
            datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
        except ValueError as exc:
            raise InvalidDocument(_KIND, path, f"{value[:40]!r} is not a valid date-time: {exc}") from None
    return value


def _check_ports(ports: Iterable[str], where: str) -> None:
    for port in ports:
        m = _PORT.fullmatch(port)
        if not m or not 0 < int(m.group(1)) < 65536:
            raise InvalidDocument(_KIND, f"{where}.ExposedPorts.{port}", "must be PORT or PORT/tcp|udp|sctp")


def _duration(obj: Mapping[str, Any], key: str, where: str) -> int:
    value = optional(obj, key, _KIND, where, int, 0)
    if value < 0:
        raise InvalidDocument(_KIND, f"{where}.{key}", f"must be >= 0, got {value}")
    return value


@frozen(slots=True)
class Healthcheck:
    """``config.Healthcheck``: ``test`` is ``("NONE",)``, ``("CMD", ...)`` or ``("CMD-SHELL", cmd)``."""

    test: tuple[str, ...] = ()
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0

    @classmethod
    def from_dict(cls, obj: Any, where: str) -> "Healthcheck":
        if not isinstance(obj, dict):
            raise InvalidDocument(_KIND, where, "must be an object")
        test = str_list(obj, "Test", _KIND, where) or ()
        if test and test[0] not in ("NONE", "CMD", "CMD-SHELL"):
            raise InvalidDocument(_KIND, f"{where}.Test[0]", f"must be NONE, CMD or CMD-SHELL, got {test[0][:40]!r}")
        return cls(
            test=test,
            interval=_duration(obj, "Interval", where),
            timeout=_duration(obj, "Timeout", where),
            start_period=_duration(obj, "StartPeriod", where),
            start_interval=_duration(obj, "StartInterval", where),
            retries=_duration(obj, "Retries", where),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Test": list(self.test)}
        for name, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod"),
                          ("start_interval", "StartInterval"), ("retries", "Retries")):
            if getattr(self, name):
                out[key] = getattr(self, name)
        return out


@frozen(slots=True)
class ContainerConfig:
    """``config``: the defaults for a container run from the image.

    ``entrypoint``, ``cmd`` and ``shell`` are ``None`` when unset, which differs from ``()``
    (``ENTRYPOINT []`` clears an inherited entrypoint). ``labels`` is a sorted tuple of pairs.
    """

    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    volumes: tuple[str, ...] = ()
    working_dir: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    stop_signal: str = ""
    args_escaped: bool = False
    healthcheck: Healthcheck | None = None
    on_build: tuple[str, ...] = ()
    shell: tuple[str, ...] | None = None

    @classmethod
    def from_dict(cls, obj: Any, where: str = "config") -> "ContainerConfig":
        if not isinstance(obj, dict):
            raise InvalidDocument(_KIND, where, f"must be an object, got {type(obj).__name__}")
        ports = key_set(obj, "ExposedPorts", _KIND, where)
        _check_ports(ports, where)
        health = obj.get("Healthcheck")
        return cls(
            user=optional(obj, "User", _KIND, where, str, ""),
            exposed_ports=ports,
            env=str_list(obj, "Env", _KIND, where) or (),
            entrypoint=str_list(obj, "Entrypoint", _KIND, where),
            cmd=str_list(obj, "Cmd", _KIND, where),
            volumes=key_set(obj, "Volumes", _KIND, where),
            working_dir=optional(obj, "WorkingDir", _KIND, where, str, ""),
            labels=frozen_map(str_map(obj, "Labels", _KIND, where)),
            stop_signal=optional(obj, "StopSignal", _KIND, where, str, ""),
            args_escaped=optional(obj, "ArgsEscaped", _KIND, where, bool, False),
            healthcheck=None if health is None else Healthcheck.from_dict(health, f"{where}.Healthcheck"),
            on_build=str_list(obj, "OnBuild", _KIND, where) or (),
            shell=str_list(obj, "Shell", _KIND, where),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.user:
            out["User"] = self.user
        if self.exposed_ports:
            out["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.env:
            out["Env"] = list(self.env)
        if self.entrypoint is not None:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            out["Cmd"] = list(self.cmd)
        if self.volumes:
            out["Volumes"] = {v: {} for v in self.volumes}
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.labels:
            out["Labels"] = dict(self.labels)
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.args_escaped:
            out["ArgsEscaped"] = True
        if self.healthcheck is not None:
            out["Healthcheck"] = self.healthcheck.to_dict()
        if self.on_build:
            out["OnBuild"] = list(self.on_build)
        if self.shell is not None:
            out["Shell"] = list(self.shell)
        return out

    @property
    def env_map(self) -> dict[str, str]:
        """``Env`` as a mapping (later entries win, an entry without ``=`` maps to ``""``)."""
        out: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            out[key] = value
        return out

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


@frozen(slots=True)
class RootFS:
    """``rootfs``: the uncompressed digests (diff_ids) of the layers, bottom first."""

    type: str = "layers"
    diff_ids: tuple[Digest, ...] = ()

    @classmethod
    def from_dict(cls, obj: Any) -> "RootFS":
        if not isinstance(obj, dict):
            raise InvalidDocument(_KIND, "rootfs", "must be an object")
        kind = require(obj, "type", _KIND, "rootfs", str)
        if kind != "layers":
            raise InvalidDocument(_KIND, "rootfs.type", f"must be 'layers', got {kind[:40]!r}")
        diff_ids = require(obj, "diff_ids", _KIND, "rootfs", list)
        parsed = []
        for i, item in enumerate(diff_ids):
            try:
                parsed.append(Digest.parse(item))
            except InvalidDigest as exc:
                raise InvalidDocument(_KIND, f"rootfs.diff_ids[{i}]", str(exc)) from None
        return cls(kind, tuple(parsed))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "diff_ids": [str(d) for d in self.diff_ids]}


@frozen(slots=True)
class History:
    """One ``history`` entry; ``empty_layer`` entries (ENV, CMD...) have no diff_id."""

    created: str = ""
    created_by: str = ""
    author: str = ""
    comment: str = ""
    empty_layer: bool = False

    def __post_init__(self) -> None:
        if self.created and not _RFC3339.fullmatch(self.created):
            raise InvalidInput(f"history created {self.created[:40]!r} is not an RFC 3339 date-time")

    @classmethod
    def from_dict(cls, obj: Any, where: str) -> "History":
        if not isinstance(obj, dict):
            raise InvalidDocument(_KIND, where, "must be an object")
        return cls(
            created=_timestamp(obj, "created", where),
            created_by=optional(obj, "created_by", _KIND, where, str, ""),
            author=optional(obj, "author", _KIND, where, str, ""),
            comment=optional(obj, "comment", _KIND, where, str, ""),
            empty_layer=optional(obj, "empty_layer", _KIND, where, bool, False),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("created", "created_by", "author", "comment"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.empty_layer:
            out["empty_layer"] = True
        return out


@frozen(slots=True)
class ImageConfig:
    """An image configuration. Build with :meth:`parse`, :meth:`new` or the ``with_*`` edits."""

    architecture: str
    os: str
    created: str = ""
    author: str = ""
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()
    config: ContainerConfig = field(default_factory=ContainerConfig)
    rootfs: RootFS = field(default_factory=RootFS)
    history: tuple[History, ...] = ()
    raw: bytes = field(default=b"", repr=False, compare=False)
    digest: Digest = field(init=False, compare=False)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def parse(cls, raw: bytes) -> "ImageConfig":
        """Parse config bytes; :class:`InvalidDocument` names the field and why."""
        raw = bytes(raw)
        body = load_object(raw, _KIND)
        features = str_list(body, "os.features", _KIND, "") or ()
        history = optional(body, "history", _KIND, "", list, [])
        config = body.get("config")
        return cls(
            architecture=require(body, "architecture", _KIND, "", str),
            os=require(body, "os", _KIND, "", str),
            created=_timestamp(body, "created", ""),
            author=optional(body, "author", _KIND, "", str, ""),
            variant=optional(body, "variant", _KIND, "", str, ""),
            os_version=optional(body, "os.version", _KIND, "", str, ""),
            os_features=features,
            config=ContainerConfig() if config is None else ContainerConfig.from_dict(config),
            rootfs=RootFS.from_dict(require(body, "rootfs", _KIND, "", dict)),
            history=tuple(History.from_dict(h, f"history[{i}]") for i, h in enumerate(history)),
            raw=raw,
        )

    @classmethod
    def new(cls, platform: Platform, *, created: str | datetime | None = None, author: str = "") -> "ImageConfig":
        """An empty image (no layers, no history) for ``platform``."""
        if isinstance(created, datetime):
            created = format_time(created)
        return cls(
            architecture=platform.architecture,
            os=platform.os,
            variant=platform.variant,
            os_version=platform.os_version,
            os_features=platform.os_features,
            created=created or "",
            author=author,
        )

    def __post_init__(self) -> None:
        """Without ``raw``, serialise the fields canonically; the digest is always over ``raw``."""
        if self.created and not _RFC3339.fullmatch(self.created):
            raise InvalidInput(f"image config created {self.created[:40]!r} is not an RFC 3339 date-time")
        if not self.raw:
            object.__setattr__(self, "raw", canonical(self.to_dict()))
        object.__setattr__(self, "digest", Digest.from_bytes(self.raw))

    def _edit(self, **changes: Any) -> "ImageConfig":
        return replace(self, raw=b"", **changes)

    # -- edits (each returns a new, serialised value) --------------------------------------------

    def with_layer(self, diff_id: Digest, history: History | None = None) -> "ImageConfig":
        """Append a layer's diff_id and, if given, its history entry (``empty_layer`` must be false)."""
        if history is not None and history.empty_layer:
            raise InvalidInput("the history entry of a layer cannot be an empty_layer entry")
        rootfs = replace(self.rootfs, diff_ids=self.rootfs.diff_ids + (diff_id,))
        extra = () if history is None else (history,)
        return self._edit(rootfs=rootfs, history=self.history + extra)

    def with_history(self, history: History) -> "ImageConfig":
        """Append a history entry without a layer (``ENV``, ``CMD``...); it is marked ``empty_layer``."""
        return self._edit(history=self.history + (replace(history, empty_layer=True),))

    def with_config(self, **changes: Any) -> "ImageConfig":
        """Replace fields of :attr:`config` (``env=[...]``, ``labels={...}``, ``cmd=None``...)."""
        names = {f.name for f in fields(ContainerConfig)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise InvalidInput(f"unknown container config field {unknown[0]!r}")
        fixed: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "labels" and isinstance(value, Mapping):
                value = frozen_map(value)
            elif key in ("exposed_ports", "volumes") and value is not None:
                value = tuple(sorted(set(value)))
            elif isinstance(value, list):
                value = tuple(value)
            fixed[key] = value
        if "exposed_ports" in fixed:
            try:
                _check_ports(fixed["exposed_ports"], "config")
            except InvalidDocument as exc:
                raise InvalidInput(f"invalid exposed port {exc.field.rsplit('.', 1)[-1]!r}: {exc.reason}") from None
        return self._edit(config=replace(self.config, **fixed))

    def with_fields(self, **changes: Any) -> "ImageConfig":
        """Replace top-level fields (``created``, ``author``, ``architecture``...)."""
        if "raw" in changes or "digest" in changes:
            raise InvalidInput("raw and digest follow from the other fields")
        if isinstance(changes.get("created"), datetime):
            changes["created"] = format_time(changes["created"])
        return self._edit(**changes)

    # -- views ------------------------------------------------------------------------------------

    @property
    def diff_ids(self) -> tuple[Digest, ...]:
        return self.rootfs.diff_ids

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant, self.os_version, self.os_features)

    def layer_history(self) -> list[tuple[History, Digest | None]]:
        """History entries paired with their layer's diff_id (``None`` for empty layers).

        Images without history get one synthetic entry per layer.
        """
        if not self.history:
            return [(History(), d) for d in self.diff_ids]
        ids = iter(self.diff_ids)
        return [(h, None if h.empty_layer else next(ids, None)) for h in self.history]

    def to_dict(self) -> dict[str, Any]:
        """The fields as the image spec writes them (unmodelled fields of :attr:`raw` are not included)."""
        out: dict[str, Any] = {
            "architecture": self.architecture,
            "os": self.os,
            "config": self.config.to_dict(),
            "rootfs": self.rootfs.to_dict(),
        }
        if self.created:
            out["created"] = self.created
        if self.author:
            out["author"] = self.author
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        if self.history:
            out["history"] = [h.to_dict() for h in self.history]
        return out

    def to_bytes(self) -> bytes:
        """The exact bytes this config's digest is over."""
        return self.raw

    @property
    def size(self) -> int:
        return len(self.raw)
