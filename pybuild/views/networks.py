"""Networks as the command line shows them: Docker's ``network inspect`` document and the
``network ls --filter`` match, from :class:`runner.network.NetworkConfig` and
:func:`runner.network.inspect_network`'s facts."""

from __future__ import annotations

from layers.errors import InvalidInput

from .contexts import network_document

__all__ = ["inspect_document", "NetworkFilter", "parse_filters"]

_FILTER_KEYS = ("name", "id", "driver", "label", "type")


def inspect_document(cfg, facts: dict) -> dict:
    """Docker's document for network ``cfg`` (Name, Id, IPAM, Containers keyed by container id...),
    followed by pybuild's own facts (bridge, subnet, gateway, note, bridge_state, nat, endpoints)."""
    from runner.network.config import endpoint_id

    containers = {cid: {"Name": ep["name"], "EndpointID": endpoint_id(cfg.id, cid), "MacAddress": ep["mac"],
                        "IPv4Address": ep["ip"], "IPv6Address": ""}
                  for cid, ep in facts.get("endpoints", {}).items()}
    own = {k: v for k, v in facts.items() if k not in ("name", "id", "created", "internal", "default")}
    return {**network_document(cfg), "Containers": containers, **own}


class NetworkFilter:
    """``network ls --filter KEY=VALUE`` as Docker matches: values of one key OR-ed, keys AND-ed;
    ``name`` a substring, ``id`` a prefix, ``type`` ``custom`` or ``builtin`` (the default network)."""

    def __init__(self, pairs: dict[str, tuple[str, ...]], default_name: str) -> None:
        self._pairs = pairs
        self._default = default_name

    def __call__(self, cfg) -> bool:
        def one(key: str, value: str) -> bool:
            if key == "name":
                return value in cfg.name
            if key == "id":
                return cfg.id.startswith(value)
            if key == "driver":
                return value == "bridge"
            if key == "type":
                return (cfg.name == self._default) == (value == "builtin")
            return False        # label: pybuild networks carry no labels
        return all(any(one(key, v) for v in values) for key, values in self._pairs.items())


def parse_filters(items: tuple[str, ...], default_name: str) -> NetworkFilter:
    """The :class:`NetworkFilter` of ``--filter`` arguments; a one-line error on a bad one."""
    pairs: dict[str, tuple[str, ...]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in _FILTER_KEYS:
            raise InvalidInput(f"--filter {item!r}: expected KEY=VALUE with KEY one of {', '.join(_FILTER_KEYS)}")
        if key == "type" and value not in ("custom", "builtin"):
            raise InvalidInput(f"--filter {item!r}: type is custom or builtin")
        pairs[key] = pairs.get(key, ()) + (value,)
    return NetworkFilter(pairs, default_name)
