"""``-p``/``-P`` specs -> :class:`PortMapping` values.

Grammar (Docker's): ``[IP:][HOST[-HOST]:]CTR[-CTR][/tcp|/udp]``; IPv6 host addresses in brackets.
A missing or empty host port is 0: the proxy binds a free port and reports which.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from ..records import PublishedPort as PortMapping      # one type: the container record's
from .errors import InvalidNetworkSpec

__all__ = ["PortMapping", "parse_publish", "publish_all", "port_specs"]

_PORTS = re.compile(r"^\d+(?:-\d+)?$")


def _range(text: str, spec: str, what: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    a, b = int(lo), int(hi or lo)
    for p in (a, b):
        if not 1 <= p <= 65535:
            raise InvalidNetworkSpec(f"-p {spec!r}: {what} port {p} out of range 1-65535")
    if b < a:
        raise InvalidNetworkSpec(f"-p {spec!r}: {what} port range {text} is reversed")
    return a, b


def parse_publish(spec: str) -> tuple[PortMapping, ...]:
    """Parse one ``-p`` value into one mapping per port (ranges expand)."""
    text, _, proto = spec.strip().partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp"):
        raise InvalidNetworkSpec(f"-p {spec!r}: protocol {proto!r} is not tcp or udp")
    ip_text = None
    if text.startswith("["):
        ip_text, sep, rest = text[1:].partition("]:")
        if not sep:
            raise InvalidNetworkSpec(f"-p {spec!r}: expected [IP:][HOST:]CONTAINER[/tcp|udp]")
        parts = rest.split(":")
        if len(parts) != 2:
            raise InvalidNetworkSpec(f"-p {spec!r}: expected [IP:][HOST:]CONTAINER[/tcp|udp]")
        host_text, ctr_text = parts
    else:
        parts = text.split(":")
        if len(parts) == 1:
            host_text, ctr_text = "", parts[0]
        elif len(parts) == 2:
            host_text, ctr_text = parts
        elif len(parts) == 3:
            ip_text, host_text, ctr_text = parts
        else:
            raise InvalidNetworkSpec(f"-p {spec!r}: expected [IP:][HOST:]CONTAINER[/tcp|udp]")
    if not _PORTS.match(ctr_text) or (host_text and not _PORTS.match(host_text)):
        raise InvalidNetworkSpec(f"-p {spec!r}: expected [IP:][HOST:]CONTAINER[/tcp|udp]")
    ip = "0.0.0.0"
    if ip_text:
        try:
            ip = str(ipaddress.ip_address(ip_text))
        except ValueError:
            raise InvalidNetworkSpec(f"-p {spec!r}: {ip_text!r} is not an IP address") from None
    c_lo, c_hi = _range(ctr_text, spec, "container")
    count = c_hi - c_lo + 1
    if host_text:
        h_lo, h_hi = _range(host_text, spec, "host")
        if h_hi - h_lo + 1 != count:
            if count == 1:      # Docker: "8000-8010:80" is "the first free port of that range"
                return (PortMapping(c_lo, proto, ip, h_lo, h_hi),)
            raise InvalidNetworkSpec(
                f"-p {spec!r}: host range has {h_hi - h_lo + 1} ports, container range has {count}")
        hosts = list(range(h_lo, h_lo + count))
    else:
        hosts = [0] * count
    return tuple(PortMapping(c, proto, ip, h) for c, h in zip(range(c_lo, c_hi + 1), hosts))


def publish_all(exposed: Iterable[str], host_ip: str = "0.0.0.0") -> tuple[PortMapping, ...]:
    """``-P``: every EXPOSEd port (``"80/tcp"``, ``"53/udp"``, ``"8080"``) to a free host port."""
    out = []
    for item in exposed:
        port, _, proto = str(item).partition("/")
        for m in parse_publish(f"{port}/{proto or 'tcp'}"):
            out.append(PortMapping(m.container_port, m.protocol, host_ip, 0))
    return tuple(sorted(set(out)))


def port_specs(spec: str) -> tuple:
    """One ``-p`` value as :class:`runner.options.PortSpec` values for ``RunOptions.publish`` (what the
    CLI hands the lifecycle): the full grammar above, ranges expanded, errors naming the spec."""
    from ..optionvalues import PortSpec

    return tuple(PortSpec(m.container_port, m.host_port, m.host_ip, m.protocol, m.host_port_end)
                 for m in parse_publish(spec))
