"""Rootless networking: the seam for the user-mode network adapter (pasta or slirp4netns).

A rootless user cannot create bridges, veth pairs or NAT rules, so every network mode except
``none``, ``host`` and ``container:`` goes through :func:`attach` when ``is_rootless()``
(``runner.network.attach.setup`` calls it). Until the pasta/slirp4netns adapter lands here it
refuses with one line; :func:`detach` undoes what :func:`attach` made (nothing yet).
"""

from __future__ import annotations

from .errors import NetworkError

__all__ = ["attach", "detach"]


def attach(req, network: str):
    """Give the container of ``req`` (``attach._Request``) a user-mode network on ``network``
    (``bridge`` or a user network) and return its :class:`runner.network.attach.Attachment`."""
    raise NetworkError(f"rootless networking needs pasta or slirp4netns, which pybuild does not drive yet: "
                       f"use --network none or --network host (asked for {network!r})")


def detach(root: str, state_dir: str, container_id: str) -> None:
    """Undo :func:`attach` for ``container_id`` (nothing to undo yet)."""
