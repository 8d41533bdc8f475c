"""``process``, ``root`` and ``mounts`` of the runtime spec (see :mod:`runner.ocispec`)."""

from __future__ import annotations

from layers.value import frozen

from ._fields import UINT32, UINT64, InvalidSpec, Fields, join_path, put

__all__ = ["User", "Capabilities", "Rlimit", "Process", "Root", "Mount"]


@frozen(slots=True)
class User:
    """``process.user``: numeric ids as the kernel takes them."""

    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    umask: int | None = None

    def to_dict(self) -> dict:
        out = {"uid": self.uid, "gid": self.gid}
        put(out, "additionalGids", self.additional_gids)
        put(out, "umask", self.umask)
        return out

    @classmethod
    def from_dict(cls, value, path: str = "process.user") -> User:
        f = Fields(value, path, ("uid", "gid", "additionalGids", "umask"))
        return cls(f.int("uid", required=True, lo=0, hi=UINT32), f.int("gid", required=True, lo=0, hi=UINT32),
                   f.ints("additionalGids", 0, UINT32), f.int("umask", lo=0, hi=0o7777))


@frozen(slots=True)
class Capabilities:
    """``process.capabilities``: ``CAP_*`` names per set (bounding, effective, permitted always written)."""

    bounding: tuple[str, ...] = ()
    effective: tuple[str, ...] = ()
    permitted: tuple[str, ...] = ()
    inheritable: tuple[str, ...] = ()
    ambient: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        out = {"bounding": list(self.bounding), "effective": list(self.effective),
               "permitted": list(self.permitted)}
        put(out, "inheritable", self.inheritable)
        put(out, "ambient", self.ambient)
        return out

    @classmethod
    def from_dict(cls, value, path: str = "process.capabilities") -> Capabilities:
        f = Fields(value, path, ("bounding", "effective", "permitted", "inheritable", "ambient"))
        return cls(f.strs("bounding"), f.strs("effective"), f.strs("permitted"), f.strs("inheritable"),
                   f.strs("ambient"))


@frozen(slots=True)
class Rlimit:
    """One ``process.rlimits`` entry (``RLIMIT_NOFILE``...)."""

    type: str
    hard: int
    soft: int

    def to_dict(self) -> dict:
        return {"type": self.type, "hard": self.hard, "soft": self.soft}

    @classmethod
    def from_dict(cls, value, path: str = "process.rlimits[]") -> Rlimit:
        f = Fields(value, path, ("type", "hard", "soft"))
        kind = f.str("type", required=True)
        if not kind.startswith("RLIMIT_"):
            raise InvalidSpec(join_path(path, "type"), f"{kind!r} is not an RLIMIT_* name")
        return cls(kind, f.int("hard", required=True, lo=0, hi=UINT64),
                   f.int("soft", required=True, lo=0, hi=UINT64))


@frozen(slots=True)
class Process:
    """``process``: what the container runs and as whom. ``args`` must not be empty."""

    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    user: User = User()
    capabilities: Capabilities | None = None
    rlimits: tuple[Rlimit, ...] = ()
    no_new_privileges: bool = False
    terminal: bool = False

    def env_map(self) -> dict[str, str]:
        """``env`` as a dict (a later entry wins; an entry without ``=`` is an empty value)."""
        return dict(e.split("=", 1) if "=" in e else (e, "") for e in self.env)

    def to_dict(self) -> dict:
        out = {"terminal": self.terminal, "user": self.user.to_dict(), "args": list(self.args),
               "env": list(self.env), "cwd": self.cwd}
        put(out, "capabilities", self.capabilities)
        put(out, "rlimits", self.rlimits)
        out["noNewPrivileges"] = self.no_new_privileges
        return out

    @classmethod
    def from_dict(cls, value, path: str = "process") -> Process:
        f = Fields(value, path, ("terminal", "user", "args", "env", "cwd", "capabilities", "rlimits",
                                  "noNewPrivileges"))
        args = f.strs("args", required=True)
        if not args:
            raise InvalidSpec(join_path(path, "args"), "must not be empty")
        cwd = f.str("cwd", required=True)
        if not cwd.startswith("/"):
            raise InvalidSpec(join_path(path, "cwd"), f"{cwd!r} is not an absolute path")
        return cls(args=args, env=f.strs("env"), cwd=cwd, user=f.obj("user", User.from_dict) or User(),
                   capabilities=f.obj("capabilities", Capabilities.from_dict),
                   rlimits=f.objs("rlimits", Rlimit.from_dict), no_new_privileges=f.bool("noNewPrivileges"),
                   terminal=f.bool("terminal"))


# ----------------------------------------------------------------------------------- root and mounts

@frozen(slots=True)
class Root:
    """``root``: the container's root filesystem (relative paths are relative to the bundle)."""

    path: str
    readonly: bool = False

    def to_dict(self) -> dict:
        return {"path": self.path, "readonly": self.readonly}

    @classmethod
    def from_dict(cls, value, path: str = "root") -> Root:
        f = Fields(value, path, ("path", "readonly"))
        return cls(f.str("path", required=True), f.bool("readonly"))


@frozen(slots=True)
class Mount:
    """One ``mounts`` entry; ``options`` are runtime-spec mount options (``rbind``, ``ro``, ``size=1m``)."""

    destination: str
    type: str | None = None
    source: str | None = None
    options: tuple[str, ...] = ()

    @property
    def is_bind(self) -> bool:
        return self.type == "bind" or "bind" in self.options or "rbind" in self.options

    def to_dict(self) -> dict:
        out = {"destination": self.destination}
        put(out, "type", self.type)
        put(out, "source", self.source)
        put(out, "options", self.options)
        return out

    @classmethod
    def from_dict(cls, value, path: str = "mounts[]") -> Mount:
        f = Fields(value, path, ("destination", "type", "source", "options"))
        dest = f.str("destination", required=True)
        if not dest.startswith("/"):
            raise InvalidSpec(join_path(path, "destination"), f"{dest!r} is not an absolute path")
        return cls(dest, f.str("type"), f.str("source"), f.strs("options"))


