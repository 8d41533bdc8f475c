"""Errors of the network room; all are :class:`layers.errors.PybuildError` subclasses.

    NetworkError(RuntimeFailure)      the kernel or the host refused a network operation
    ├── PortInUse                     a published host port is already bound by someone else
    └── AddressExhausted              a network has no free address left
    NetworkNotFound(NotFound)         no network of that name
    NetworkExists(AlreadyExists)      a network of that name already exists
    NetworkInUse(NetworkError)        ``network rm`` of a network that still has endpoints
    InvalidNetworkSpec(InvalidInput)  a ``-p`` spec, subnet, mode or name is malformed
"""

from __future__ import annotations

from layers.errors import AlreadyExists, InvalidInput, NotFound

from ..errors import RuntimeFailure

__all__ = [
    "NetworkError",
    "PortInUse",
    "AddressExhausted",
    "NetworkNotFound",
    "NetworkExists",
    "NetworkInUse",
    "InvalidNetworkSpec",
]


class NetworkError(RuntimeFailure):
    """A network operation failed (netlink, namespace, mount, proxy)."""


class PortInUse(NetworkError):
    """A host port asked for by ``-p`` is already bound."""


class AddressExhausted(NetworkError):
    """Every address of a network's subnet is allocated."""


class NetworkInUse(NetworkError):
    """A network still has containers attached."""


class NetworkNotFound(NotFound):
    """No network record of that name."""


class NetworkExists(AlreadyExists):
    """A network of that name already exists."""


class InvalidNetworkSpec(InvalidInput):
    """A port spec, subnet, network mode or network name is malformed."""
