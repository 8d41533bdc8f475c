"""Outbound masquerade for a bridge network: the one adapter around ``nft`` (or ``iptables``).

Used only when one of them is installed; pybuild's own forwarding (the port proxy) needs neither.
Each network gets its own nft table ``ip pybuild_<bridge>`` so removing it cannot touch anything
else. With only ``iptables``, one POSTROUTING rule tagged with a comment is added and deleted.
"""

from __future__ import annotations

from layers.value import frozen

from .errors import NetworkError

__all__ = ["NatStatus", "available", "status", "enable", "disable", "NO_NAT"]

NO_NAT = "no NAT: nft/iptables not found"


@frozen
class NatStatus:
    tool: str | None    # "nft", "iptables" or None
    active: bool
    detail: str


def _tool() -> tuple[str, str] | tuple[None, None]:
    import shutil

    for name in ("nft", "iptables"):
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        if path:
            return name, path
    return None, None


def available() -> str | None:
    """The NAT tool found on this host ("nft" or "iptables"), or None."""
    return _tool()[0]


def _table(bridge: str) -> str:
    return "pybuild_" + bridge.replace("-", "_").replace(".", "_")


def _run(argv: list[str], stdin: str | None = None) -> "subprocess.CompletedProcess":
    import subprocess   # lazily: the shim imports this module but runs no tool

    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30)


def status(bridge: str, subnet: str) -> NatStatus:
    """Whether masquerade for ``subnet`` leaving via anything but ``bridge`` is installed."""
    name, path = _tool()
    if name is None:
        return NatStatus(None, False, NO_NAT)
    if name == "nft":
        active = _run([path, "list", "table", "ip", _table(bridge)]).returncode == 0
    else:
        active = _run([path, "-t", "nat", "-C", "POSTROUTING", *_ipt_rule(bridge, subnet)]).returncode == 0
    detail = f"masquerade {subnet} via {name}" if active else f"no NAT rule installed ({name} available)"
    return NatStatus(name, active, detail)


def _ipt_rule(bridge: str, subnet: str) -> list[str]:
    return ["-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE", "-m", "comment", "--comment", _table(bridge)]


def _enable_forwarding() -> None:
    with open("/proc/sys/net/ipv4/ip_forward", "r+") as f:
        if f.read().strip() != "1":
            f.seek(0)
            f.write("1")


def enable(bridge: str, subnet: str) -> NatStatus:
    """Install masquerade for ``subnet`` and turn on IPv4 forwarding. Idempotent."""
    name, path = _tool()
    if name is None:
        return NatStatus(None, False, NO_NAT)
    if name == "nft":
        script = (
            f"table ip {_table(bridge)} {{\n"
            f"  chain postrouting {{\n"
            f"    type nat hook postrouting priority srcnat; policy accept;\n"
            f"    ip saddr {subnet} oifname != \"{bridge}\" masquerade\n"
            f"  }}\n"
            f"}}\n"
        )
        _run([path, "delete", "table", "ip", _table(bridge)])
        proc = _run([path, "-f", "-"], stdin=script)
    else:
        if _run([path, "-t", "nat", "-C", "POSTROUTING", *_ipt_rule(bridge, subnet)]).returncode == 0:
            proc = None
        else:
            proc = _run([path, "-t", "nat", "-A", "POSTROUTING", *_ipt_rule(bridge, subnet)])
    if proc is not None and proc.returncode != 0:
        raise NetworkError(f"{name}: masquerade for {subnet} on {bridge}: {proc.stderr.strip() or proc.returncode}")
    _enable_forwarding()
    return NatStatus(name, True, f"masquerade {subnet} via {name}")


def disable(bridge: str, subnet: str) -> None:
    """Remove what :func:`enable` installed. Idempotent; IPv4 forwarding is left as it is."""
    name, path = _tool()
    if name == "nft":
        _run([path, "delete", "table", "ip", _table(bridge)])
    elif name == "iptables":
        while _run([path, "-t", "nat", "-D", "POSTROUTING", *_ipt_rule(bridge, subnet)]).returncode == 0:
            pass
