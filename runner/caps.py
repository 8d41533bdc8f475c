"""Linux capabilities: names, Docker's default set, and ``--cap-add``/``--cap-drop`` resolution.

Names are the runtime-spec form (``CAP_CHOWN``); user input may omit the ``CAP_`` prefix and use any
case, as Docker accepts. ``ALL`` is accepted in both lists.
"""

from __future__ import annotations

from .errors import InvalidRunOption

__all__ = ["CAPABILITIES", "DEFAULT_CAPS", "resolve_caps", "mask", "normalize"]

# capability number -> name, from linux/capability.h (0..40)
CAPABILITIES: dict[str, int] = {name: i for i, name in enumerate([
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
    "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
])}

# Docker's (moby oci/caps/defaults.go) 14 defaults, in its order
DEFAULT_CAPS: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL", "CAP_AUDIT_WRITE",
)


def normalize(name: str) -> str:
    """``chown`` / ``CAP_CHOWN`` / ``cap_chown`` -> ``CAP_CHOWN``; ``all`` -> ``ALL``; unknown names refused."""
    upper = name.strip().upper()
    if upper == "ALL":
        return "ALL"
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if full not in CAPABILITIES:
        raise InvalidRunOption(f"unknown capability {name!r}")
    return full


def resolve_caps(cap_add: tuple[str, ...] = (), cap_drop: tuple[str, ...] = (), privileged: bool = False) -> list[str]:
    """The capability list a container gets, sorted by number (Docker's rules: drop, then add)."""
    if privileged:
        return sorted(CAPABILITIES, key=CAPABILITIES.__getitem__)
    adds = {normalize(c) for c in cap_add}
    drops = {normalize(c) for c in cap_drop}
    caps = set(DEFAULT_CAPS)
    if "ALL" in drops:
        caps = set()
    caps -= drops
    if "ALL" in adds:
        caps |= set(CAPABILITIES)
    caps |= adds - {"ALL"}
    return sorted(caps, key=CAPABILITIES.__getitem__)


def mask(names: list[str] | tuple[str, ...], last_cap: int | None = None) -> int:
    """A 64-bit mask of the named capabilities; names above the kernel's ``last_cap`` are skipped."""
    bits = 0
    for name in names:
        number = CAPABILITIES.get(name)
        if number is None:
            raise InvalidRunOption(f"unknown capability {name!r} in runtime spec")
        if last_cap is None or number <= last_cap:
            bits |= 1 << number
    return bits
