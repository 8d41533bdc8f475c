"""The parts of ``linux`` a default container does not have: ``resources.memory`` (:class:`Memory`),
``resources.cpu`` (:class:`Cpu`) and ``devices`` (:class:`Device`).

Apart from :mod:`runner.ocispec.linux` so that a spec without them (a container run without
``--memory``, ``--cpus``, ``--device``) does not build their classes; :mod:`runner.ocispec.linux`
and :mod:`runner.ocispec` re-export them.
"""

from __future__ import annotations

from layers.value import frozen

from ._fields import UINT32, InvalidSpec, Fields, join_path, put

__all__ = ["Memory", "Cpu", "Device"]


@frozen(slots=True)
class Memory:
    """``linux.resources.memory`` in bytes; ``swap`` is memory plus swap, as runc reads it."""

    limit: int | None = None
    reservation: int | None = None
    swap: int | None = None

    def to_dict(self) -> dict:
        out: dict = {}
        for key in ("limit", "reservation", "swap"):
            put(out, key, getattr(self, key))
        return out

    @classmethod
    def from_dict(cls, value, path: str = "linux.resources.memory") -> Memory:
        f = Fields(value, path, ("limit", "reservation", "swap"))
        return cls(f.int("limit", lo=-1), f.int("reservation", lo=-1), f.int("swap", lo=-1))


@frozen(slots=True)
class Cpu:
    """``linux.resources.cpu``: CFS ``quota`` per ``period`` (microseconds), relative ``shares``, and the
    ``cpus`` a container may run on (a cpuset list such as ``0-2,4``)."""

    quota: int | None = None
    period: int | None = None
    shares: int | None = None
    cpus: str | None = None

    def to_dict(self) -> dict:
        out: dict = {}
        put(out, "shares", self.shares)
        put(out, "quota", self.quota)
        put(out, "period", self.period)
        put(out, "cpus", self.cpus)
        return out

    @classmethod
    def from_dict(cls, value, path: str = "linux.resources.cpu") -> Cpu:
        f = Fields(value, path, ("quota", "period", "shares", "cpus"))
        return cls(f.int("quota", lo=-1), f.int("period", lo=0), f.int("shares", lo=0), f.str("cpus"))


@frozen(slots=True)
class Device:
    """A ``linux.devices`` entry: a device node to create in the container."""

    path: str
    type: str
    major: int | None = None
    minor: int | None = None
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None

    def to_dict(self) -> dict:
        out: dict = {"path": self.path, "type": self.type}
        for key, name in (("major", "major"), ("minor", "minor"), ("fileMode", "file_mode"), ("uid", "uid"),
                          ("gid", "gid")):
            put(out, key, getattr(self, name))
        return out

    @classmethod
    def from_dict(cls, value, path: str = "linux.devices[]") -> Device:
        f = Fields(value, path, ("path", "type", "major", "minor", "fileMode", "uid", "gid"))
        kind = f.str("type", required=True)
        if kind not in ("c", "b", "u", "p"):
            raise InvalidSpec(join_path(path, "type"), f"{kind!r} is not c, b, u or p")
        return cls(f.str("path", required=True), kind, f.int("major", lo=0), f.int("minor", lo=0),
                   f.int("fileMode", lo=0, hi=0o7777), f.int("uid", lo=0, hi=UINT32),
                   f.int("gid", lo=0, hi=UINT32))
