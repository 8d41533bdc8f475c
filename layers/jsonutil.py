"""Strict JSON in, canonical JSON out, for manifests, indexes and configs.

Reading: a document must be UTF-8, at most :data:`MAX_DOCUMENT_SIZE` bytes, one JSON object,
without duplicate keys (two parsers could otherwise see two different documents behind one
digest) and without ``NaN``/``Infinity``. Writing: :func:`canonical` gives compact JSON with
sorted keys, so equal values always give equal bytes and equal digests.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from .errors import InvalidDocument

__all__ = ["MAX_DOCUMENT_SIZE", "canonical", "key_set", "load_object", "optional", "str_list", "str_map"]

#: Manifests, indexes and configs larger than this are refused (registries cap manifests at 4 MiB;
#: configs of real images are well under it).
MAX_DOCUMENT_SIZE = 8 << 20


def canonical(obj: Any) -> bytes:
    """Compact, key-sorted UTF-8 JSON: the bytes pybuild writes and digests."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False).encode()


def _no_duplicates(kind: str):
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise InvalidDocument(kind, key, "appears twice in one object")
            out[key] = value
        return out

    return hook


def _no_constant(kind: str):
    def hook(name: str) -> Any:
        raise InvalidDocument(kind, "", f"{name} is not valid JSON")

    return hook


def load_object(raw: bytes, kind: str) -> dict[str, Any]:
    """Parse ``raw`` as one strict JSON object; raise :class:`InvalidDocument` naming ``kind``."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise InvalidDocument(kind, "", f"must be bytes, got {type(raw).__name__}")
    if len(raw) > MAX_DOCUMENT_SIZE:
        raise InvalidDocument(kind, "", f"is {len(raw)} bytes, more than the {MAX_DOCUMENT_SIZE} allowed")
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidDocument(kind, "", f"is not UTF-8 (byte {exc.start})") from None
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates(kind), parse_constant=_no_constant(kind))
    except json.JSONDecodeError as exc:
        raise InvalidDocument(kind, "", f"is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InvalidDocument(kind, "", "is nested too deeply") from None
    if not isinstance(obj, dict):
        raise InvalidDocument(kind, "", f"must be a JSON object, got {type(obj).__name__}")
    return obj


def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def optional(obj: Mapping[str, Any], key: str, kind: str, where: str, typ: type, default: Any = None) -> Any:
    """``obj[key]`` if present and not null, checked against ``typ``; else ``default``."""
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, typ) or (typ is not bool and isinstance(value, bool)):
        raise InvalidDocument(kind, _path(where, key), f"must be {typ.__name__}, got {type(value).__name__}")
    return value


def str_list(obj: Mapping[str, Any], key: str, kind: str, where: str) -> tuple[str, ...] | None:
    """A list of strings, or ``None`` when absent or null (``[]`` stays distinct from ``None``)."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidDocument(kind, _path(where, key), f"must be a list of strings, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidDocument(kind, f"{_path(where, key)}[{i}]", f"must be a string, got {type(item).__name__}")
    return tuple(value)


def str_map(obj: Mapping[str, Any], key: str, kind: str, where: str) -> dict[str, str]:
    """An object of string values (``{}`` when absent or null)."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidDocument(kind, _path(where, key), f"must be an object, got {type(value).__name__}")
    for k, v in value.items():
        if not isinstance(v, str):
            raise InvalidDocument(kind, f"{_path(where, key)}.{k}", f"must be a string, got {type(v).__name__}")
    return value


def key_set(obj: Mapping[str, Any], key: str, kind: str, where: str) -> tuple[str, ...]:
    """The keys of an object whose values are ``{}`` (``ExposedPorts``, ``Volumes``), sorted."""
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise InvalidDocument(kind, _path(where, key), f"must be an object, got {type(value).__name__}")
    for k, v in value.items():
        if not isinstance(v, dict):
            raise InvalidDocument(kind, f"{_path(where, key)}.{k}", f"must be an object, got {type(v).__name__}")
    return tuple(sorted(value))
