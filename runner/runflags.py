"""Parsers for Docker's ``run``/``create`` flags beyond the basic set (``--mount``, ``--ulimit``,
``--security-opt``, ``--sysctl``, ``--label-file``, ``--log-opt``, ``--attach``...).

Each turns Docker's spelling into a typed value and raises :class:`InvalidRunOption` naming the flag
on bad input, or on a value pybuild cannot honour (never silently ignored).
"""

from __future__ import annotations

import os
import platform as _platform
import resource

from layers.value import frozen

from .errors import InvalidRunOption

__all__ = ["Ulimit", "DeviceMapping", "parse_device", "parse_mount", "parse_ulimit", "parse_sysctl", "parse_security_opts", "SecurityOpts",
           "parse_label_file", "parse_log_opts", "check_attach", "parse_namespace_mode",
           "parse_expose", "host_platform"]


TYPE_CHECKING = False
if TYPE_CHECKING:
    from .optionvalues import DeviceMapping, Ulimit


def __getattr__(name: str):
    """:mod:`runner.optionvalues`' classes, imported on first use (PEP 562)."""
    if name in ("Ulimit", "DeviceMapping"):
        from . import optionvalues

        return getattr(optionvalues, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_device(text: str) -> DeviceMapping:
    import stat

    parts = text.split(":")
    access = "rwm"
    if len(parts) > 1 and parts[-1] and set(parts[-1]) <= set("rwm") and not parts[-1].startswith("/"):
        access = parts.pop()
    if len(parts) not in (1, 2) or not parts[0]:
        raise InvalidRunOption(f"--device {text!r}: expected /dev/HOST[:/dev/CONTAINER][:rwm]")
    host = parts[0]
    path = parts[1] if len(parts) == 2 and parts[1] else host
    if not path.startswith("/"):
        raise InvalidRunOption(f"--device {text!r}: the container path must be absolute")
    try:
        st = os.stat(host)
    except OSError as exc:
        raise InvalidRunOption(f"--device {host}: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InvalidRunOption(f"--device {host}: a directory of devices is not supported; name each device")
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise InvalidRunOption(f"--device {host}: not a device node")
    from .optionvalues import DeviceMapping

    return DeviceMapping(host, os.path.normpath(path), "c" if stat.S_ISCHR(st.st_mode) else "b",
                         os.major(st.st_rdev), os.minor(st.st_rdev), stat.S_IMODE(st.st_mode), access)


_ULIMITS = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
            "rss", "rtprio", "rttime", "sigpending", "stack", "as")


def parse_ulimit(text: str) -> Ulimit:
    """``nofile=1024[:2048]``; -1 means unlimited. Refused above the caller's hard limit (pybuild does
    not hold CAP_SYS_RESOURCE over its own limits, and a clamped limit would be a silent change)."""
    name, eq, value = text.partition("=")
    if not eq or name not in _ULIMITS:
        raise InvalidRunOption(f"--ulimit {text!r}: expected NAME=SOFT[:HARD] with NAME one of {', '.join(_ULIMITS)}")
    soft_s, _, hard_s = value.partition(":")
    try:
        soft = int(soft_s)
        hard = int(hard_s) if hard_s else soft
    except ValueError:
        raise InvalidRunOption(f"--ulimit {text!r}: limits must be integers") from None
    inf = resource.RLIM_INFINITY
    soft, hard = (inf if soft == -1 else soft), (inf if hard == -1 else hard)
    if soft < 0 or hard < 0:
        raise InvalidRunOption(f"--ulimit {text!r}: limits must be -1 or non-negative")
    if hard != inf and (soft == inf or soft > hard):
        raise InvalidRunOption(f"--ulimit {text!r}: soft limit must not exceed the hard limit")
    number = getattr(resource, "RLIMIT_" + name.upper(), None)
    if number is not None:
        cap = resource.getrlimit(number)[1]
        if cap != inf and (hard == inf or hard > cap):
            raise InvalidRunOption(f"--ulimit {text!r}: exceeds this process's hard limit {cap} "
                                   "(raising it needs CAP_SYS_RESOURCE in the host)")
    from .optionvalues import Ulimit

    return Ulimit(name, soft, hard)


def _csv_fields(text: str, flag: str) -> list[str]:
    import csv      # here: only --mount is comma-separated values

    try:
        rows = list(csv.reader([text]))
    except csv.Error as exc:
        raise InvalidRunOption(f"{flag} {text!r}: {exc}") from None
    return [f for f in (rows[0] if rows else []) if f != ""]


_TRUE = {"", "1", "true"}
_FALSE = {"0", "false"}


def _bool(value: str, flag: str, key: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise InvalidRunOption(f"{flag}: invalid value for {key}: {value!r}")


def parse_mount(text: str):
    """Docker's ``--mount type=bind|volume|tmpfs,source=..,target=..[,readonly]...`` (CSV quoting) as a
    :class:`runner.options.BindMount` (a volume when ``type=volume``) or :class:`runner.options.TmpfsMount`."""
    from .optionvalues import BindMount, TmpfsMount
    from .volumes import validate_volume_name

    flag = "--mount"
    kind, source, target, readonly = "volume", "", "", False
    tmpfs_opts: list[str] = []
    for item in _csv_fields(text, flag):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if key == "type":
            kind = value
        elif key in ("source", "src"):
            source = value
        elif key in ("target", "dst", "destination"):
            target = value
        elif key in ("readonly", "ro"):
            readonly = _bool(value if eq else "", flag, key)
        elif key == "bind-propagation":
            if value not in ("rprivate", "private"):
                raise InvalidRunOption(f"{flag} {text!r}: bind-propagation={value} is not supported "
                                       "(pybuild's binds are rprivate)")
        elif key == "tmpfs-size":
            from .options import parse_bytes

            tmpfs_opts.append(f"size={parse_bytes(value, flag + ' tmpfs-size')}")
        elif key == "tmpfs-mode":
            try:
                tmpfs_opts.append(f"mode={int(value, 8):o}")
            except ValueError:
                raise InvalidRunOption(f"{flag} {text!r}: tmpfs-mode must be octal") from None
        elif key == "volume-nocopy":
            if _bool(value if eq else "", flag, key):
                raise InvalidRunOption(f"{flag} {text!r}: volume-nocopy is not supported (pybuild seeds a "
                                       "new volume from the image)")
        elif key in ("consistency",):
            continue                                  # Docker ignores it on Linux too
        else:
            raise InvalidRunOption(f"{flag} {text!r}: unknown or unsupported key {key!r}")
    if kind not in ("bind", "volume", "tmpfs"):
        raise InvalidRunOption(f"{flag} {text!r}: type={kind} is not supported (bind, volume or tmpfs)")
    if not target:
        raise InvalidRunOption(f"{flag} {text!r}: target is required")
    if not target.startswith("/"):
        raise InvalidRunOption(f"{flag} {text!r}: the target must be an absolute path")
    if kind != "tmpfs" and tmpfs_opts:
        raise InvalidRunOption(f"{flag} {text!r}: tmpfs-* options need type=tmpfs")
    if kind == "tmpfs":
        if source:
            raise InvalidRunOption(f"{flag} {text!r}: a tmpfs mount takes no source")
        if readonly:
            tmpfs_opts.append("ro")
        return TmpfsMount(target, ",".join(tmpfs_opts))
    if kind == "bind":
        if not source:
            raise InvalidRunOption(f"{flag} {text!r}: type=bind needs a source")
        path = os.path.abspath(source)
        if not os.path.exists(path):
            raise InvalidRunOption(f"{flag} {text!r}: bind source path does not exist: {path}")
        return BindMount(path, target, readonly=readonly)
    if not source:
        raise InvalidRunOption(f"{flag} {text!r}: anonymous volumes (type=volume without source) are "
                               "not supported; name the volume")
    try:
        validate_volume_name(source)
    except Exception as exc:  # layers.errors.InvalidInput
        raise InvalidRunOption(f"{flag} {text!r}: {exc}") from None
    return BindMount("", target, readonly=readonly, volume=source)


_SYSCTL_PREFIXES = ("net.", "kernel.shm", "kernel.msg", "fs.mqueue.")


def parse_sysctl(text: str) -> tuple[str, str]:
    """``--sysctl KEY=VALUE`` for the namespaced sysctls Docker allows; the others are refused."""
    key, eq, value = text.partition("=")
    key = key.strip()
    if not eq or not key or "/" in key or ".." in key:
        raise InvalidRunOption(f"--sysctl {text!r}: expected KEY=VALUE")
    if not (key.startswith(_SYSCTL_PREFIXES) or key == "kernel.sem"):
        raise InvalidRunOption(f"--sysctl {key}: not a namespaced sysctl (allowed: net.*, kernel.shm*, "
                               "kernel.msg*, kernel.sem, fs.mqueue.*)")
    return key, value


@frozen
class SecurityOpts:
    """``--security-opt`` values: ``seccomp`` ("" default, ``unconfined`` or a profile file path),
    ``no_new_privileges`` (None: the default), ``accepted`` (``label=``/``apparmor=`` entries, which a
    host without SELinux/AppArmor takes and reports, as Docker does)."""

    seccomp: str = ""
    no_new_privileges: bool | None = None
    accepted: tuple[str, ...] = ()


def parse_security_opts(items) -> SecurityOpts:
    seccomp, nnp, accepted = "", None, []
    for text in items:
        key, sep, value = text.replace(":", "=", 1).partition("=") if text.startswith("no-new-privileges") \
            else text.partition("=")
        if key == "seccomp" and sep:
            if value != "unconfined" and not os.path.isfile(value):
                raise InvalidRunOption(f"--security-opt {text!r}: no such seccomp profile file")
            seccomp = value if value == "unconfined" else os.path.abspath(value)
        elif key == "no-new-privileges":
            nnp = _bool(value, "--security-opt", key)
        elif key in ("label", "apparmor") and sep and value:
            accepted.append(text)
        else:
            raise InvalidRunOption(f"--security-opt {text!r}: not supported (seccomp=unconfined|FILE, "
                                   "no-new-privileges[:true|false], label=..., apparmor=...)")
    return SecurityOpts(seccomp, nnp, tuple(accepted))


def parse_label_file(path: str) -> tuple[tuple[str, str], ...]:
    """``--label-file``: ``KEY=VALUE`` (or bare ``KEY``) lines; ``#`` comments and blank lines skipped."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise InvalidRunOption(f"--label-file {path}: {exc.strerror}") from None
    out = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out.append((key, value))
    return tuple(out)


_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64"}


def host_platform() -> str:
    machine = _platform.machine()
    return f"linux/{_ARCH.get(machine, machine)}"


def parse_log_opts(items) -> tuple[int | None, int | None]:
    """``--log-opt max-size=10m``/``max-file=3`` -> (bytes, files); other keys are refused."""
    size = files = None
    for text in items:
        key, eq, value = text.partition("=")
        if key == "max-size" and eq:
            from .options import parse_bytes

            size = parse_bytes(value, "--log-opt max-size")
            if size <= 0:
                raise InvalidRunOption(f"--log-opt {text}: must be positive")
        elif key == "max-file" and eq:
            if not value.isdigit() or int(value) < 1:
                raise InvalidRunOption(f"--log-opt {text}: must be a positive integer")
            files = int(value)
        else:
            raise InvalidRunOption(f"--log-opt {text!r}: not supported (max-size, max-file)")
    return size, files


def check_attach(streams, *, detach: bool, interactive: bool) -> None:
    """``-a/--attach``: pybuild attaches stdout and stderr (and stdin with ``-i``), as Docker does
    without ``-a``; ``-a`` naming exactly those streams is accepted, other subsets are refused."""
    if not streams:
        return
    names = {s.lower() for s in streams}
    bad = names - {"stdin", "stdout", "stderr"}
    if bad:
        raise InvalidRunOption(f"--attach {sorted(bad)[0]}: expected STDIN, STDOUT or STDERR")
    if detach:
        raise InvalidRunOption("--attach: conflicting options: -a and -d")
    want = {"stdout", "stderr"} | ({"stdin"} if interactive else set())
    if names != want and names != want | {"stdin"}:
        raise InvalidRunOption(f"--attach {','.join(sorted(names))}: attaching a subset of the streams is not "
                               f"supported (pybuild attaches {', '.join(sorted(want))})")


def parse_namespace_mode(flag: str, text: str | None, allowed: tuple[str, ...]) -> str:
    """``--pid``/``--ipc``/``--uts``: "" (private, the default) or one of ``allowed`` (an allowed
    ``container:`` takes any ``container:NAME|ID``)."""
    if not text:
        return ""
    if "container:" in allowed and text.startswith("container:"):
        if not text.partition(":")[2]:
            raise InvalidRunOption(f"{flag} {text}: name the container (container:NAME|ID)")
        return text
    if text not in allowed:
        raise InvalidRunOption(f"{flag} {text}: not supported (use {' or '.join(allowed)})")
    return "" if text == "private" else text      # host, none, shareable


def parse_expose(items) -> tuple[str, ...]:
    """``--expose 80``, ``80/udp``, ``8000-8002`` -> ``80/tcp``... (image ``ExposedPorts`` keys)."""
    out: list[str] = []
    for text in items:
        port, _, proto = text.partition("/")
        proto = proto or "tcp"
        lo, _, hi = port.partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise InvalidRunOption(f"--expose {text!r}: expected PORT[-PORT][/PROTO]") from None
        if not (0 < first <= last < 65536) or proto not in ("tcp", "udp", "sctp"):
            raise InvalidRunOption(f"--expose {text!r}: expected PORT[-PORT][/tcp|udp|sctp]")
        out += [f"{p}/{proto}" for p in range(first, last + 1)]
    return tuple(out)
