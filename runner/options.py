"""``RunOptions``: everything ``pybuild run``/``create`` (and the builder's RUN) asks of a container.

A frozen value; the parsers here turn Docker's command-line spellings (``-v a:b:ro``, ``--tmpfs
/t:size=1m``, ``--memory 512m``, ``--env-file``) into typed fields and name the option on error.
Options the foreground sandbox does not act on itself (``detach``, ``publish``, ``restart``, ``init``,
``rm``) are carried for the lifecycle and network code.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from layers.errors import InvalidInput

from .errors import InvalidRunOption

__all__ = ["RunOptions", "BindMount", "TmpfsMount", "PortSpec", "parse_bytes", "parse_volume",
           "parse_tmpfs", "parse_env_file", "DEFAULT_PIDS_LIMIT"]

DEFAULT_PIDS_LIMIT = 4096


@dataclass(frozen=True)
class BindMount:
    """``-v source:target[:ro]``: a host path bound into the container, or with ``volume`` set
    (``-v NAME:target``) a named volume, whose ``source`` the lifecycle fills in at create."""

    source: str
    target: str
    readonly: bool = False
    volume: str = ""


@dataclass(frozen=True)
class TmpfsMount:
    """``--tmpfs target[:options]``; ``options`` is the mount data string (``size=64m,mode=1777``)."""

    target: str
    options: str = ""


@dataclass(frozen=True)
class PortSpec:
    """``-p [ip:][host_port[-host_port_end]:]container_port[/proto]``; ``host_port`` 0 means pick a
    free port, a ``host_port_end`` the first free one of the range (parsed by ``runner.network.publish``)."""

    container_port: int
    host_port: int = 0
    host_ip: str = ""
    protocol: str = "tcp"
    host_port_end: int = 0


@dataclass(frozen=True)
class RunOptions:
    """A container's run options. ``None`` means "the image's value" for command/entrypoint/user/workdir.

    ``entrypoint=()`` is ``--entrypoint ""`` (clear the image's entrypoint). ``env`` entries are
    ``KEY=VALUE`` in order (later wins). ``network`` is ``none``, ``host``, ``bridge`` or a network
    name; ``netns_path`` (set by the network code) is joined instead of creating a namespace.
    """

    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    user: str | None = None
    workdir: str | None = None
    hostname: str | None = None
    mounts: tuple[BindMount, ...] = ()
    tmpfs: tuple[TmpfsMount, ...] = ()
    read_only: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    memory: int | None = None
    cpus: float | None = None
    pids_limit: int | None = DEFAULT_PIDS_LIMIT
    network: str = "bridge"
    netns_path: str | None = None
    tty: bool = False
    interactive: bool = False
    init: bool = False
    rm: bool = False
    detach: bool = False
    name: str | None = None
    publish: tuple[PortSpec, ...] = ()
    publish_all: bool = False
    restart: str = "no"
    nofile: int = 1048576
    labels: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.memory is not None and self.memory < 6 * 1024 * 1024:
            raise InvalidRunOption(f"--memory {self.memory}: minimum memory limit is 6MB")
        if self.cpus is not None and self.cpus <= 0:
            raise InvalidRunOption(f"--cpus {self.cpus}: must be greater than 0")
        if self.pids_limit is not None and self.pids_limit == 0:
            raise InvalidRunOption("--pids-limit 0: must be positive, or -1 for unlimited")
        for m in self.mounts:
            if not m.target.startswith("/"):
                raise InvalidRunOption(f"-v {m.source}:{m.target}: container path must be absolute")
        for t in self.tmpfs:
            if not t.target.startswith("/"):
                raise InvalidRunOption(f"--tmpfs {t.target}: container path must be absolute")
        if self.workdir is not None and self.workdir and not self.workdir.startswith("/"):
            raise InvalidRunOption(f"--workdir {self.workdir!r}: must be an absolute path")


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_bytes(text: str, option: str = "--memory") -> int:
    """Docker's RAM size spelling: ``512m``, ``1g``, ``1048576``, ``1.5g`` (binary units)."""
    m = _SIZE.match(text)
    if not m:
        raise InvalidRunOption(f"{option} {text!r}: not a size (use e.g. 512m or 1g)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_volume(text: str) -> BindMount:
    """``-v /host:/ctr[:ro|rw]``, or ``-v NAME:/ctr[:ro|rw]`` for a named volume (made if missing)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidRunOption(f"-v {text!r}: expected /host/path:/container/path[:ro]")
    source, target = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    flags = set(mode.split(","))
    if not flags <= {"ro", "rw", "z", "Z"}:
        raise InvalidRunOption(f"-v {text!r}: unknown mode {mode!r}")
    if not target.startswith("/"):
        raise InvalidRunOption(f"-v {text!r}: the container path must be absolute")
    if not source.startswith("/"):
        from .volumes import validate_volume_name

        try:
            validate_volume_name(source)
        except InvalidInput as exc:
            raise InvalidRunOption(f"-v {text!r}: {exc}") from None
        return BindMount("", target, readonly="ro" in flags, volume=source)
    return BindMount(os.path.abspath(source), target, readonly="ro" in flags)


def parse_tmpfs(text: str) -> TmpfsMount:
    target, _, options = text.partition(":")
    return TmpfsMount(target, options)


def parse_env_file(path: str) -> tuple[str, ...]:
    """Docker's env-file: ``KEY=VALUE`` lines, ``#`` comments, a bare ``KEY`` takes the caller's value."""
    out: list[str] = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise InvalidRunOption(f"--env-file {path}: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, _ = line.partition("=")
        if not key or any(c.isspace() for c in key):
            raise InvalidRunOption(f"--env-file {path}:{number}: invalid variable name {key!r}")
        if eq:
            out.append(line)
        elif key in os.environ:
            out.append(f"{key}={os.environ[key]}")
    return tuple(out)
