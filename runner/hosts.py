"""The localhost lines every container's ``/etc/hosts`` starts with (Docker's set). Its own module so
the ``--network none`` path can write them without importing the network package (~20 ms)."""

from __future__ import annotations

__all__ = ["LOCALHOST_LINES"]

LOCALHOST_LINES = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)
