"""The runtime spec document, :class:`Spec` (see :mod:`runner.ocispec`)."""

from __future__ import annotations

import json
from dataclasses import replace

from layers.value import frozen

from ._fields import InvalidSpec, Fields, join_path, put
from .linux import Linux
from .process import Mount, Process, Root

__all__ = ["Spec"]


@frozen(slots=True)
class Spec:
    """A runtime spec: ``config.json`` as a value. ``hostname`` None: no ``hostname`` field (the UTS
    namespace is the host's, or the runtime's default)."""

    oci_version: str
    process: Process
    root: Root
    mounts: tuple[Mount, ...] = ()
    linux: Linux = Linux()
    hostname: str | None = None
    annotations: tuple[tuple[str, str], ...] = ()

    def annotation(self, key: str, default: str | None = None) -> str | None:
        """The value of annotation ``key`` (the last one, should a foreign document repeat it)."""
        return dict(self.annotations).get(key, default)

    def with_annotation(self, key: str, value: str) -> Spec:
        """A copy with annotation ``key`` set to ``value`` (replacing an earlier value in place)."""
        items = dict(self.annotations)
        items[key] = value
        return replace(self, annotations=tuple(items.items()))

    def with_mounts(self, *mounts: Mount) -> Spec:
        """A copy with ``mounts`` appended (mounted after the existing ones, in order)."""
        return replace(self, mounts=self.mounts + mounts)

    def to_dict(self) -> dict:
        out: dict = {"ociVersion": self.oci_version, "process": self.process.to_dict(), "root": self.root.to_dict(),
                     "mounts": [m.to_dict() for m in self.mounts], "linux": self.linux.to_dict()}
        put(out, "hostname", self.hostname)
        put(out, "annotations", dict(self.annotations) or None)
        return out

    def to_json(self, indent: int | None = 2) -> bytes:
        """``config.json``'s bytes."""
        return json.dumps(self.to_dict(), indent=indent).encode()

    @classmethod
    def from_dict(cls, value, path: str = "") -> Spec:
        f = Fields(value, path, ("ociVersion", "process", "root", "mounts", "linux", "hostname", "annotations"))
        version = f.str("ociVersion", required=True)
        if not version.startswith("1."):
            raise InvalidSpec(join_path(path, "ociVersion"), f"{version!r}: only runtime-spec 1.x is supported")
        return cls(oci_version=version, process=f.obj("process", Process.from_dict, required=True),
                   root=f.obj("root", Root.from_dict, required=True), mounts=f.objs("mounts", Mount.from_dict),
                   linux=f.obj("linux", Linux.from_dict) or Linux(), hostname=f.str("hostname"),
                   annotations=f.str_map("annotations"))

    @classmethod
    def from_json(cls, data: bytes | str) -> Spec:
        """Parse ``config.json``; malformed JSON is an :class:`InvalidSpec` too."""
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise InvalidSpec("(document)", f"not JSON: {exc}") from None
        return cls.from_dict(doc)
