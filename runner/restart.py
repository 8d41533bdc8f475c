"""``--restart`` policies: ``no | on-failure[:N] | always | unless-stopped`` (carried out by the shim).

A module of its own so that recording a container (which checks the policy) does not import the shim.
"""

from __future__ import annotations

from layers.errors import InvalidInput

__all__ = ["RestartPolicy", "parse_restart_policy"]


class RestartPolicy:
    """A parsed ``--restart`` value."""

    __slots__ = ("name", "max_retries")

    def __init__(self, name: str, max_retries: int = 0) -> None:
        self.name = name
        self.max_retries = max_retries

    def should_restart(self, exit_code: int, restarts_so_far: int, stopped_by_user: bool) -> bool:
        if stopped_by_user or self.name == "no":
            return False
        if self.name == "on-failure":
            return exit_code != 0 and (self.max_retries == 0 or restarts_so_far < self.max_retries)
        return True        # always, unless-stopped


def parse_restart_policy(text: str) -> RestartPolicy:
    """Parse ``no``, ``on-failure[:N]``, ``always``, ``unless-stopped``; raise InvalidInput otherwise."""
    name, _, count = (text or "no").partition(":")
    if name not in ("no", "on-failure", "always", "unless-stopped"):
        raise InvalidInput(f"invalid restart policy {text!r}: use no, on-failure[:N], always or unless-stopped")
    if count:
        if name != "on-failure" or not count.isdigit():
            raise InvalidInput(f"invalid restart policy {text!r}: only on-failure takes a count (on-failure:3)")
        return RestartPolicy(name, int(count))
    return RestartPolicy(name)
