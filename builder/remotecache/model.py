"""The cache model: BuildKit's ``application/vnd.buildkit.cacheconfig.v0`` document, as frozen values.

A cache is an OCI image manifest whose config blob is a :class:`CacheConfig` and whose layers are
the cached layer blobs. The config lists:

- ``layers``: one :class:`CacheLayer` per blob (``blob`` digest, ``parent`` index of the layer below
  it or -1, annotations with the media type, size and ``diffID``). A layer index names a *chain*:
  the layer and its parents down to -1, bottom-most first (an image's rootfs).
- ``records``: one :class:`CacheRecord` per cached step. ``digest`` is the step's cache key
  (``sha256:`` + pybuild's own content key; BuildKit's keys are not a goal), ``layers`` its results
  (the index of the chain the step leaves, with when it ran) and ``inputs`` links to the record of
  the step below it. A step's *own* layer is the top of its chain when that chain is longer than
  its parent record's; with the same chain the step changed nothing.

Parsing checks every index (no dangling parent, link or result, no cycle); a config that fails is
an :class:`~builder.errors.BuildError` naming the field. JSON names follow BuildKit's spec
(``cache/remotecache/v1/spec.go``): a record's results are under ``"layers"``.
"""

from __future__ import annotations

import json
from typing import Any

from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.errors import InvalidDigest
from layers.value import frozen

from ..errors import BuildError

__all__ = ["CACHE_CONFIG_TYPE", "CacheLayer", "CacheResult", "CacheInput", "CacheRecord", "CacheConfig",
           "UNCOMPRESSED", "CREATED"]

CACHE_CONFIG_TYPE = "application/vnd.buildkit.cacheconfig.v0"
#: layer descriptor annotations of the cache manifest (containerd's and BuildKit's names)
UNCOMPRESSED = "containerd.io/uncompressed"
CREATED = "buildkit/createdat"
_MAX_ITEMS = 1 << 16


def _bad(where: str, why: str) -> BuildError:
    return BuildError(f"cache config ({CACHE_CONFIG_TYPE}) {where}: {why}")


def _digest(value: Any, where: str) -> Digest:
    if not isinstance(value, str):
        raise _bad(where, "must be a digest string")
    try:
        return Digest.parse(value)
    except InvalidDigest as exc:
        raise _bad(where, str(exc)) from None


def _int(value: Any, where: str, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad(where, "must be an integer")
    return value


def _str(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(where, "must be a string")
    return value


@frozen
class CacheLayer:
    """One blob: its digest, the index of its parent layer (-1: bottom), media type, size, diff id."""

    blob: Digest
    parent: int
    media_type: str
    size: int
    diff_id: Digest
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        ann: dict[str, Any] = {"mediaType": self.media_type, "diffID": str(self.diff_id), "size": self.size}
        if self.created:
            ann["createdAt"] = self.created
        return {"blob": str(self.blob), "parent": self.parent, "annotations": ann}

    @classmethod
    def from_dict(cls, obj: Any, where: str) -> "CacheLayer":
        if not isinstance(obj, dict):
            raise _bad(where, "must be an object")
        ann = obj.get("annotations")
        if not isinstance(ann, dict):
            raise _bad(f"{where}.annotations", "must be an object with mediaType, diffID and size")
        size = _int(ann.get("size"), f"{where}.annotations.size")
        if size < 0:
            raise _bad(f"{where}.annotations.size", "must be >= 0")
        media_type = _str(ann.get("mediaType"), f"{where}.annotations.mediaType")
        if not media_type:
            raise _bad(f"{where}.annotations.mediaType", "is required")
        # BuildKit omits "parent" when it is 0 (omitempty); -1 is written for a bottom layer
        return cls(_digest(obj.get("blob"), f"{where}.blob"), _int(obj.get("parent"), f"{where}.parent", 0),
                   media_type, size, _digest(ann.get("diffID"), f"{where}.annotations.diffID"),
                   _str(ann.get("createdAt"), f"{where}.annotations.createdAt"))

    def descriptor(self) -> Descriptor:
        """The blob's descriptor (what a fetch verifies against)."""
        return Descriptor(self.media_type, self.blob, self.size)


@frozen
class CacheResult:
    layer: int  # index of the top layer of the chain the step leaves
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, **({"createdAt": self.created} if self.created else {})}


@frozen
class CacheInput:
    link: int  # index of the record below
    selector: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"link": self.link, **({"selector": self.selector} if self.selector else {})}


@frozen
class CacheRecord:
    digest: Digest
    results: tuple[CacheResult, ...] = ()
    inputs: tuple[tuple[CacheInput, ...], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"digest": str(self.digest)}
        if self.results:
            out["layers"] = [r.to_dict() for r in self.results]
        if self.inputs:
            out["inputs"] = [[i.to_dict() for i in group] for group in self.inputs]
        return out

    @classmethod
    def from_dict(cls, obj: Any, where: str) -> "CacheRecord":
        if not isinstance(obj, dict):
            raise _bad(where, "must be an object")
        results, inputs = obj.get("layers") or [], obj.get("inputs") or []
        if not isinstance(results, list) or not isinstance(inputs, list):
            raise _bad(where, "layers and inputs must be lists")
        res = []
        for i, r in enumerate(results):
            if not isinstance(r, dict):
                raise _bad(f"{where}.layers[{i}]", "must be an object")
            res.append(CacheResult(_int(r.get("layer"), f"{where}.layers[{i}].layer"),
                                   _str(r.get("createdAt"), f"{where}.layers[{i}].createdAt")))
        groups = []
        for i, group in enumerate(inputs):
            if not isinstance(group, list):
                raise _bad(f"{where}.inputs[{i}]", "must be a list")
            items = []
            for j, item in enumerate(group):
                if not isinstance(item, dict):
                    raise _bad(f"{where}.inputs[{i}][{j}]", "must be an object")
                items.append(CacheInput(_int(item.get("link"), f"{where}.inputs[{i}][{j}].link"),
                                        _str(item.get("selector"), f"{where}.inputs[{i}][{j}].selector")))
            groups.append(tuple(items))
        return cls(_digest(obj.get("digest"), f"{where}.digest"), tuple(res), tuple(groups))


@frozen
class CacheConfig:
    """The whole document; ``raw`` is the bytes it was parsed from (or written as)."""

    layers: tuple[CacheLayer, ...]
    records: tuple[CacheRecord, ...]
    raw: bytes = b""

    @classmethod
    def build(cls, layers: tuple[CacheLayer, ...], records: tuple[CacheRecord, ...]) -> "CacheConfig":
        body = {"layers": [l.to_dict() for l in layers], "records": [r.to_dict() for r in records]}
        raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return cls.parse(raw)  # the checks below hold for what we write too

    @property
    def digest(self) -> Digest:
        return Digest.from_bytes(self.raw)

    @classmethod
    def parse(cls, raw: bytes) -> "CacheConfig":
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise _bad("document", f"not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise _bad("document", "must be a JSON object")
        layers, records = body.get("layers") or [], body.get("records") or []
        if not isinstance(layers, list) or not isinstance(records, list):
            raise _bad("document", "layers and records must be lists")
        if len(layers) > _MAX_ITEMS or len(records) > _MAX_ITEMS:
            raise _bad("document", f"more than {_MAX_ITEMS} layers or records")
        ls = tuple(CacheLayer.from_dict(l, f"layers[{i}]") for i, l in enumerate(layers))
        rs = tuple(CacheRecord.from_dict(r, f"records[{i}]") for i, r in enumerate(records))
        config = cls(ls, rs, bytes(raw))
        config._check()
        return config

    def _check(self) -> None:
        n = len(self.layers)
        for i, layer in enumerate(self.layers):
            if not -1 <= layer.parent < n or layer.parent == i:
                raise _bad(f"layers[{i}].parent", f"{layer.parent} is not a layer index")
        for i in range(n):  # every chain ends at -1: no cycle
            seen, j = set(), i
            while j != -1:
                if j in seen:
                    raise _bad(f"layers[{i}]", "its parent chain is a cycle")
                seen.add(j)
                j = self.layers[j].parent
        for i, rec in enumerate(self.records):
            for r in rec.results:
                if not 0 <= r.layer < n:
                    raise _bad(f"records[{i}].layers", f"{r.layer} is not a layer index")
            for group in rec.inputs:
                for inp in group:
                    if not 0 <= inp.link < len(self.records) or inp.link == i:
                        raise _bad(f"records[{i}].inputs", f"{inp.link} is not a record index")

    def chain(self, index: int) -> tuple[CacheLayer, ...]:
        """The layers of the chain topped by ``index``, bottom-most first (() for -1)."""
        out = []
        while index != -1:
            out.append(self.layers[index])
            index = self.layers[index].parent
        return tuple(reversed(out))
