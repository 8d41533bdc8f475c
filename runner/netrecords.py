"""The network parts of a container record that most containers do not have: published ports
(:class:`PublishedPort`) and the networks joined beyond the first (:class:`ExtraNetwork`).

Apart from :mod:`runner.records` so that reading or writing a record without them (``stop``, ``rm``,
``ps``, ``run --network none``) does not build their classes; :mod:`runner.records` re-exports both.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from layers.value import frozen

__all__ = ["PublishedPort", "ExtraNetwork"]


@dataclass(frozen=True, slots=True, order=True)
class PublishedPort:
    """Host ``host_ip:host_port`` forwards to container port ``container_port`` over ``protocol``.

    ``host_port`` 0 means "any free port"; ``host_port_end`` (when not 0) makes ``host_port`` the
    start of a range of which the first free port is taken (``-p 8000-8010:80``). The bound proxy
    reports the real port, with no range. The one type of a published port: the network room's
    :class:`runner.network.PortMapping` is this class (it lives here so that reading a record does
    not load the network package).
    """

    container_port: int
    protocol: str = "tcp"
    host_ip: str = "0.0.0.0"
    host_port: int = 0
    host_port_end: int = 0

    def __str__(self) -> str:
        ip = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip
        end = f"-{self.host_port_end}" if self.host_port_end else ""
        return f"{self.container_port}/{self.protocol} -> {ip}:{self.host_port}{end}"

    @property
    def candidates(self) -> range:
        """The host ports to try, in order (``range(0, 1)`` for "any")."""
        return range(self.host_port, max(self.host_port, self.host_port_end) + 1)

    def to_dict(self) -> dict:
        d = {"container_port": self.container_port, "protocol": self.protocol,
             "host_ip": self.host_ip, "host_port": self.host_port}
        if self.host_port_end:
            d["host_port_end"] = self.host_port_end
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PublishedPort":
        return cls(int(d["container_port"]), d.get("protocol", "tcp"), d.get("host_ip") or "0.0.0.0",
                   int(d.get("host_port", 0)), int(d.get("host_port_end", 0)))



@frozen(slots=True)
class ExtraNetwork:
    """A user network a container joins beside its first one (``--network`` given again, ``network
    connect``): what was asked (``network``, ``aliases``, ``ip_request``) and, while attached
    (``ifname`` set), the interface, address, gateway and MAC it got there."""

    network: str
    aliases: tuple[str, ...] = ()
    ip_request: str | None = None
    ifname: str = ""
    ip: str | None = None
    prefixlen: int | None = None
    gateway: str | None = None
    mac: str | None = None
    bridge: str | None = None
    host_veth: str | None = None

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["aliases"] = list(self.aliases)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ExtraNetwork":
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["aliases"] = tuple(kw.get("aliases") or ())
        return cls(**kw)

    def detached(self) -> "ExtraNetwork":
        """Only the request: what a stopped container keeps."""
        return ExtraNetwork(self.network, self.aliases, self.ip_request)
