"""``linux`` of the runtime spec: namespaces, resources, seccomp, devices (see :mod:`runner.ocispec`)."""

from __future__ import annotations

from layers.value import frozen

from ._fields import NAMESPACE_TYPES, UINT64, InvalidSpec, Fields, join_path, put

__all__ = ["Linux", "Namespace", "Resources", "DeviceRule", "Memory", "Cpu", "Pids", "Seccomp", "SyscallRule",
           "SeccompArg", "Device"]

_LIMITS = ("Memory", "Cpu", "Device")     # in .limits, built on first use

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .limits import Cpu, Device, Memory


def __getattr__(name: str):
    """:mod:`runner.ocispec.limits`' classes, imported on first use (PEP 562)."""
    if name in _LIMITS:
        from . import limits

        return getattr(limits, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _limit(name: str):
    """``from_dict`` of one of :data:`_LIMITS`, importing its module only when the spec has that part."""
    def parse(value, path: str):
        from . import limits

        return getattr(limits, name).from_dict(value, path)

    return parse


@frozen(slots=True)
class Namespace:
    """A ``linux.namespaces`` entry: a new namespace of ``type``, or with ``path`` an existing one."""

    type: str
    path: str | None = None

    def to_dict(self) -> dict:
        out = {"type": self.type}
        put(out, "path", self.path)
        return out

    @classmethod
    def from_dict(cls, value, path: str = "linux.namespaces[]") -> Namespace:
        f = Fields(value, path, ("type", "path"))
        kind = f.str("type", required=True)
        if kind not in NAMESPACE_TYPES:
            raise InvalidSpec(join_path(path, "type"), f"unknown namespace type {kind!r}")
        return cls(kind, f.str("path"))


@frozen(slots=True)
class DeviceRule:
    """A ``linux.resources.devices`` cgroup rule; ``None`` major/minor mean any (``*``)."""

    allow: bool
    type: str | None = None
    major: int | None = None
    minor: int | None = None
    access: str | None = None

    def to_dict(self) -> dict:
        out: dict = {"allow": self.allow}
        for key in ("type", "major", "minor", "access"):
            put(out, key, getattr(self, key))
        return out

    @classmethod
    def from_dict(cls, value, path: str = "linux.resources.devices[]") -> DeviceRule:
        f = Fields(value, path, ("allow", "type", "major", "minor", "access"))
        if "allow" not in value:
            raise InvalidSpec(join_path(path, "allow"), "required field is missing")
        kind = f.str("type")
        if kind is not None and kind not in ("a", "b", "c"):
            raise InvalidSpec(join_path(path, "type"), f"{kind!r} is not a, b or c")
        access = f.str("access")
        if access is not None and not set(access) <= set("rwm"):
            raise InvalidSpec(join_path(path, "access"), f"{access!r} is not a combination of r, w and m")
        return cls(f.bool("allow"), kind, f.int("major", lo=0), f.int("minor", lo=0), access)


@frozen(slots=True)
class Pids:
    """``linux.resources.pids``; a limit of -1 (or 0) means unlimited."""

    limit: int

    def to_dict(self) -> dict:
        return {"limit": self.limit}

    @classmethod
    def from_dict(cls, value, path: str = "linux.resources.pids") -> Pids:
        return cls(Fields(value, path, ("limit",)).int("limit", required=True, lo=-1))


@frozen(slots=True)
class Resources:
    """``linux.resources``: the cgroup limits and the device allow-list."""

    devices: tuple[DeviceRule, ...] = ()
    memory: Memory | None = None
    cpu: Cpu | None = None
    pids: Pids | None = None

    def to_dict(self) -> dict:
        out: dict = {}
        for key in ("devices", "memory", "cpu", "pids"):
            put(out, key, getattr(self, key))
        return out

    @classmethod
    def from_dict(cls, value, path: str = "linux.resources") -> Resources:
        f = Fields(value, path, ("devices", "memory", "cpu", "pids"))
        return cls(f.objs("devices", DeviceRule.from_dict), f.obj("memory", _limit("Memory")),
                   f.obj("cpu", _limit("Cpu")), f.obj("pids", Pids.from_dict))


@frozen(slots=True)
class SeccompArg:
    """A syscall argument condition: ``args[index] op value`` (``valueTwo`` for ``SCMP_CMP_MASKED_EQ``)."""

    index: int
    value: int
    op: str
    value_two: int | None = None

    def to_dict(self) -> dict:
        out = {"index": self.index, "value": self.value}
        put(out, "valueTwo", self.value_two)
        out["op"] = self.op
        return out

    @classmethod
    def from_dict(cls, value, path: str = "linux.seccomp.syscalls[].args[]") -> SeccompArg:
        f = Fields(value, path, ("index", "value", "valueTwo", "op"))
        return cls(f.int("index", required=True, lo=0, hi=5), f.int("value", required=True, lo=0, hi=UINT64),
                   f.str("op", required=True), f.int("valueTwo", lo=0, hi=UINT64))


@frozen(slots=True)
class SyscallRule:
    """A ``linux.seccomp.syscalls`` entry: ``action`` for ``names`` (when every ``args`` condition holds)."""

    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[SeccompArg, ...] = ()

    def to_dict(self) -> dict:
        out: dict = {"names": list(self.names), "action": self.action}
        put(out, "errnoRet", self.errno_ret)
        put(out, "args", self.args)
        return out

    @classmethod
    def from_dict(cls, value, path: str = "linux.seccomp.syscalls[]") -> SyscallRule:
        f = Fields(value, path, ("names", "action", "errnoRet", "args"))
        return cls(f.strs("names", required=True), f.str("action", required=True), f.int("errnoRet", lo=0),
                   f.objs("args", SeccompArg.from_dict))


@frozen(slots=True)
class Seccomp:
    """``linux.seccomp``: a libseccomp profile (compiled by :mod:`runner.seccomp`)."""

    default_action: str
    architectures: tuple[str, ...] = ()
    syscalls: tuple[SyscallRule, ...] = ()
    default_errno_ret: int | None = None

    def to_dict(self) -> dict:
        out: dict = {"defaultAction": self.default_action}
        put(out, "defaultErrnoRet", self.default_errno_ret)
        put(out, "architectures", self.architectures)
        put(out, "syscalls", self.syscalls)
        return out

    @classmethod
    def from_dict(cls, value, path: str = "linux.seccomp") -> Seccomp:
        f = Fields(value, path, ("defaultAction", "defaultErrnoRet", "architectures", "syscalls"))
        return cls(f.str("defaultAction", required=True), f.strs("architectures"),
                   f.objs("syscalls", SyscallRule.from_dict), f.int("defaultErrnoRet", lo=0))


@frozen(slots=True)
class Linux:
    """``linux``: namespaces, cgroup resources, seccomp, masked and read-only paths.

    ``sysctl``, ``cgroups_path`` and ``devices`` are carried for other runtimes (``pybuild bundle``);
    pybuild's own sandbox refuses a spec that sets them.
    """

    namespaces: tuple[Namespace, ...] = ()
    resources: Resources | None = None
    seccomp: Seccomp | None = None
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    sysctl: tuple[tuple[str, str], ...] = ()
    cgroups_path: str | None = None
    devices: tuple[Device, ...] = ()

    def has_namespace(self, kind: str) -> bool:
        return any(ns.type == kind for ns in self.namespaces)

    def to_dict(self) -> dict:
        out: dict = {"namespaces": [ns.to_dict() for ns in self.namespaces]}
        put(out, "resources", self.resources)
        put(out, "seccomp", self.seccomp)
        put(out, "maskedPaths", self.masked_paths)
        put(out, "readonlyPaths", self.readonly_paths)
        put(out, "sysctl", dict(self.sysctl) or None)
        put(out, "cgroupsPath", self.cgroups_path)
        put(out, "devices", self.devices)
        return out

    @classmethod
    def from_dict(cls, value, path: str = "linux") -> Linux:
        f = Fields(value, path, ("namespaces", "resources", "seccomp", "maskedPaths", "readonlyPaths", "sysctl",
                                  "cgroupsPath", "devices"))
        return cls(f.objs("namespaces", Namespace.from_dict), f.obj("resources", Resources.from_dict),
                   f.obj("seccomp", Seccomp.from_dict), f.strs("maskedPaths"), f.strs("readonlyPaths"),
                   f.str_map("sysctl"), f.str("cgroupsPath"), f.objs("devices", _limit("Device")))


