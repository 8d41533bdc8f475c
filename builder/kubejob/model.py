"""A typed model of the Kubernetes ``batch/v1`` Job fields pybuild emits, and its rendering.

Each class is a frozen dataclass holding just the fields of the Kubernetes type of the same name that
a build Job uses; field names are the API's in snake case (``mount_path`` is ``mountPath``). A field
that is ``None`` or empty is left out of the manifest, so Kubernetes' default applies. Maps
(labels, resource quantities) are tuples of ``(key, value)`` pairs marked ``map`` in the field's
metadata. :func:`to_manifest` gives the JSON-shaped document; :func:`to_yaml` its YAML.
"""

from __future__ import annotations

from dataclasses import field, fields, is_dataclass
from typing import cast

from layers.value import frozen

__all__ = ["ObjectMeta", "EnvVar", "VolumeMount", "ResourceRequirements", "SeccompProfile", "SecurityContext",
           "PodSecurityContext", "Container", "KeyToPath", "SecretVolumeSource", "EmptyDirVolumeSource", "Volume",
           "PodSpec", "PodTemplateSpec", "JobSpec", "Job", "to_manifest", "to_yaml"]

Pairs = tuple[tuple[str, str], ...]


def _map() -> Pairs:
    return field(default=(), metadata={"map": True})


@frozen
class ObjectMeta:
    name: str | None = None
    labels: Pairs = _map()


@frozen
class EnvVar:
    name: str
    value: str


@frozen
class VolumeMount:
    name: str
    mount_path: str
    read_only: bool | None = None


@frozen
class ResourceRequirements:
    """Quantities (``"500m"``, ``"2Gi"``) by resource name (``cpu``, ``memory``)."""

    requests: Pairs = _map()
    limits: Pairs = _map()


@frozen
class SeccompProfile:
    type: str


@frozen
class SecurityContext:
    """A container's security context."""

    proc_mount: str | None = None


@frozen
class PodSecurityContext:
    run_as_non_root: bool | None = None
    run_as_user: int | None = None
    run_as_group: int | None = None
    seccomp_profile: SeccompProfile | None = None


@frozen
class Container:
    name: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[EnvVar, ...] = ()
    volume_mounts: tuple[VolumeMount, ...] = ()
    resources: ResourceRequirements | None = None
    security_context: SecurityContext | None = None
    stdin: bool | None = None
    stdin_once: bool | None = None


@frozen
class KeyToPath:
    key: str
    path: str


@frozen
class SecretVolumeSource:
    secret_name: str
    items: tuple[KeyToPath, ...] = ()


@frozen
class EmptyDirVolumeSource:
    size_limit: str | None = None


@frozen
class Volume:
    """A pod volume: exactly one of ``empty_dir`` and ``secret``."""

    name: str
    empty_dir: EmptyDirVolumeSource | None = None
    secret: SecretVolumeSource | None = None

    def __post_init__(self) -> None:
        if (self.empty_dir is None) == (self.secret is None):
            raise ValueError(f"volume {self.name}: exactly one source")


@frozen
class PodSpec:
    containers: tuple[Container, ...]
    restart_policy: str | None = None
    volumes: tuple[Volume, ...] = ()
    security_context: PodSecurityContext | None = None
    host_users: bool | None = None
    automount_service_account_token: bool | None = None


@frozen
class PodTemplateSpec:
    metadata: ObjectMeta | None
    spec: PodSpec


@frozen
class JobSpec:
    backoff_limit: int | None
    template: PodTemplateSpec


@frozen
class Job:
    metadata: ObjectMeta
    spec: JobSpec
    api_version: str = "batch/v1"
    kind: str = "Job"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _render(value: object) -> object:
    if is_dataclass(value):
        out: dict[str, object] = {}
        for f in fields(value):
            item = getattr(value, f.name)
            if item is None or item == ():
                continue
            out[_camel(f.name)] = dict(item) if f.metadata.get("map") else _render(item)
        return out
    if isinstance(value, tuple):
        return [_render(item) for item in value]
    return value


def to_manifest(job: Job) -> dict[str, object]:
    """``job`` as the JSON-shaped document the API server reads: ``apiVersion`` and ``kind`` first."""
    body = cast(dict, _render(job))
    head = {"apiVersion": body.pop("apiVersion"), "kind": body.pop("kind")}
    return {**head, **body}


def to_yaml(job: Job) -> str:
    """``job`` as one YAML document (block style, fields in the model's order)."""
    import yaml

    return yaml.safe_dump(to_manifest(job), sort_keys=False, default_flow_style=False)
