"""Parsing helpers of :mod:`runner.ocispec`: a reader that names field paths in the
:class:`runner.errors.InvalidSpec` it raises."""

from __future__ import annotations

from ..errors import InvalidSpec

__all__ = ["InvalidSpec", "Fields", "join_path", "put", "NAMESPACE_TYPES", "UINT32", "UINT64"]

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
UINT32 = 2**32 - 1
UINT64 = 2**64 - 1


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Fields:
    """One JSON object being parsed: typed getters that name the field path, and no unknown keys."""

    __slots__ = ("doc", "path")

    def __init__(self, value, path: str, known: tuple[str, ...]) -> None:
        if not isinstance(value, dict):
            raise InvalidSpec(path or "(document)", f"must be an object, not {_kind(value)}")
        for key in value:
            if key not in known:
                raise InvalidSpec(join_path(path, str(key)), "unknown field (not supported by this runtime)")
        self.doc, self.path = value, path

    def _get(self, key: str, required: bool):
        if key not in self.doc:
            if required:
                raise InvalidSpec(join_path(self.path, key), "required field is missing")
            return None
        return self.doc[key]

    def str(self, key: str, *, required: bool = False, default: str | None = None) -> str | None:
        value = self._get(key, required)
        if value is None:
            return default
        return _str(value, join_path(self.path, key))

    def int(self, key: str, *, required: bool = False, default: int | None = None,
            lo: int | None = None, hi: int | None = None) -> int | None:
        value = self._get(key, required)
        if value is None:
            return default
        return _int(value, join_path(self.path, key), lo, hi)

    def bool(self, key: str, default: bool = False) -> bool:
        value = self._get(key, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise InvalidSpec(join_path(self.path, key), f"must be a boolean, not {_kind(value)}")
        return value

    def strs(self, key: str, *, required: bool = False) -> tuple[str, ...]:
        return tuple(_str(v, p) for v, p in self._items(key, required))

    def ints(self, key: str, lo: int | None = None, hi: int | None = None) -> tuple[int, ...]:
        return tuple(_int(v, p, lo, hi) for v, p in self._items(key, False))

    def objs(self, key: str, parse, *, required: bool = False) -> tuple:
        return tuple(parse(v, p) for v, p in self._items(key, required))

    def obj(self, key: str, parse, *, required: bool = False):
        value = self._get(key, required)
        return None if value is None else parse(value, join_path(self.path, key))

    def str_map(self, key: str) -> tuple[tuple[str, str], ...]:
        value = self._get(key, False)
        if value is None:
            return ()
        path = join_path(self.path, key)
        if not isinstance(value, dict):
            raise InvalidSpec(path, f"must be an object, not {_kind(value)}")
        return tuple((k, _str(v, f"{path}[{k!r}]")) for k, v in value.items())

    def _items(self, key: str, required: bool):
        value = self._get(key, required)
        if value is None:
            return []
        path = join_path(self.path, key)
        if not isinstance(value, list):
            raise InvalidSpec(path, f"must be an array, not {_kind(value)}")
        return [(v, f"{path}[{i}]") for i, v in enumerate(value)]


def _kind(value) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def _str(value, path: str) -> str:
    if not isinstance(value, str):
        raise InvalidSpec(path, f"must be a string, not {_kind(value)}")
    return value


def _int(value, path: str, lo: int | None, hi: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSpec(path, f"must be an integer, not {_kind(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise InvalidSpec(path, f"{value} is out of range")
    return value


def put(out: dict, key: str, value) -> None:
    """Set ``out[key]`` unless ``value`` is unset (None) or an empty list/map."""
    if value is None or value == ():
        return
    if isinstance(value, tuple):
        value = [v.to_dict() if hasattr(v, "to_dict") else v for v in value]
    elif hasattr(value, "to_dict"):
        value = value.to_dict()
    out[key] = value


