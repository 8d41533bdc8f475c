"""Content descriptors and platforms (OCI image-spec ``descriptor.md``, ``image-index.md``)."""

from __future__ import annotations

import platform as _platform
import re
from dataclasses import field
from typing import Any, Mapping

from .digest import Digest
from .errors import InvalidDigest, InvalidDocument
from .value import frozen

__all__ = ["Descriptor", "Platform", "frozen_map", "require", "valid_media_type"]

# RFC 6838 type/subtype, as image-spec's defs-descriptor.json writes it.
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")


def valid_media_type(value: str) -> bool:
    """True when ``value`` is an RFC 6838 ``type/subtype`` (no parameters, no whitespace)."""
    return bool(_MEDIA_TYPE.fullmatch(value))


def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _optional_str(obj: Mapping[str, Any], key: str, kind: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidDocument(kind, _path(where, key), f"must be a string, got {type(value).__name__}")
    return value


def frozen_map(value: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    """A mapping as a sorted tuple of pairs, so it can live in a frozen, hashable value."""
    return tuple(sorted((value or {}).items()))


def require(obj: Mapping[str, Any], key: str, kind: str, where: str, typ: type | tuple[type, ...]) -> Any:
    """``obj[key]`` checked for presence and type, else :class:`InvalidDocument` naming ``where.key``."""
    path = f"{where}.{key}" if where else key
    if key not in obj:
        raise InvalidDocument(kind, path, "is required")
    value = obj[key]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        name = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise InvalidDocument(kind, path, f"must be {name}, got {type(value).__name__}")
    return value


def _optional_str_map(obj: Mapping[str, Any], key: str, kind: str, where: str) -> dict[str, str]:
    value = obj.get(key)
    if value is None:
        return {}
    path = _path(where, key)
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidDocument(kind, path, "must be an object of strings")
    return value


@frozen(slots=True)
class Platform:
    """``os/architecture[/variant]`` plus optional os.version and os.features."""

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "Platform":
        """Parse ``os/arch[/variant]`` as given to ``--platform``."""
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            from .errors import InvalidInput

            raise InvalidInput(f"invalid platform {text!r}: want os/arch[/variant]")
        return cls(parts[0], _normalize_arch(parts[1]), parts[2] if len(parts) == 3 else "")

    @classmethod
    def host(cls) -> "Platform":
        """The platform of this machine."""
        return cls("linux", _normalize_arch(_platform.machine()))

    @classmethod
    def from_dict(cls, obj: Any, kind: str = "descriptor", where: str = "platform") -> "Platform":
        if not isinstance(obj, dict):
            raise InvalidDocument(kind, where, "must be an object")
        feats = obj.get("os.features") or []
        if not isinstance(feats, list) or not all(isinstance(f, str) for f in feats):
            raise InvalidDocument(kind, _path(where, "os.features"), "must be a list of strings")
        return cls(
            os=require(obj, "os", kind, where, str),
            architecture=require(obj, "architecture", kind, where, str),
            variant=_optional_str(obj, "variant", kind, where),
            os_version=_optional_str(obj, "os.version", kind, where),
            os_features=tuple(feats),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        if self.variant:
            out["variant"] = self.variant
        return out

    def matches(self, want: "Platform") -> bool:
        """True when this platform satisfies ``want`` (an empty variant in ``want`` matches any).

        Variants compare as containerd normalises them: ``arm64`` and ``arm64/v8`` are the same
        platform, as are ``arm`` and ``arm/v7``.
        """
        arch = _normalize_arch(self.architecture)
        if self.os != want.os or arch != _normalize_arch(want.architecture):
            return False
        return not want.variant or _normalize_variant(arch, self.variant) == _normalize_variant(arch, want.variant)

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


def _normalize_variant(arch: str, variant: str) -> str:
    if arch == "arm64" and variant in ("", "v8"):
        return "v8"
    if arch == "arm" and variant in ("", "v7"):
        return "v7"
    return variant


def _normalize_arch(arch: str) -> str:
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "i386": "386"}.get(arch, arch)


@frozen(slots=True)
class Descriptor:
    """A typed pointer to content: media type, digest, size (+ urls, annotations, platform)."""

    media_type: str
    digest: Digest
    size: int
    urls: tuple[str, ...] = ()
    annotations: tuple[tuple[str, str], ...] = field(default=())
    platform: Platform | None = None
    artifact_type: str = ""

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError("descriptor size must be >= 0")

    @property
    def annotation_map(self) -> dict[str, str]:
        return dict(self.annotations)

    @classmethod
    def from_dict(cls, obj: Any, kind: str = "descriptor", where: str = "") -> "Descriptor":
        """Parse a descriptor object; errors name ``where`` (e.g. ``layers[1]``) and the field."""
        if not isinstance(obj, dict):
            raise InvalidDocument(kind, where, "must be an object")
        media_type = require(obj, "mediaType", kind, where, str)
        if not valid_media_type(media_type):
            raise InvalidDocument(kind, _path(where, "mediaType"), f"{media_type[:80]!r} is not a media type")
        raw_digest = require(obj, "digest", kind, where, str)
        try:
            digest = Digest.parse(raw_digest)
        except InvalidDigest as exc:
            raise InvalidDocument(kind, _path(where, "digest"), str(exc)) from None
        size = require(obj, "size", kind, where, int)
        if not 0 <= size < 1 << 63:
            raise InvalidDocument(kind, _path(where, "size"), f"must be between 0 and 2**63-1, got {size}")
        urls = obj.get("urls") or []
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise InvalidDocument(kind, _path(where, "urls"), "must be a list of strings")
        plat = obj.get("platform")
        artifact_type = _optional_str(obj, "artifactType", kind, where)
        if artifact_type and not valid_media_type(artifact_type):
            raise InvalidDocument(kind, _path(where, "artifactType"), f"{artifact_type[:80]!r} is not a media type")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            urls=tuple(urls),
            annotations=frozen_map(_optional_str_map(obj, "annotations", kind, where)),
            platform=Platform.from_dict(plat, kind, _path(where, "platform")) if plat is not None else None,
            artifact_type=artifact_type,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_dict()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out
