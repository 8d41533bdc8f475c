"""Errors of the runner room; all derive from :class:`layers.errors.RuntimeFailure` or its siblings.

    RuntimeFailure (layers.errors)     the sandbox could not be set up or a state move is invalid
    ├── SandboxError                   a setup step inside the container failed (names the step)
    │   └── ExecFailed                 the target could not be executed (exit code 126 / 127 as Docker)
    ├── CgroupError                    a cgroup could not be created, limited, joined or removed
    └── InvalidState                   a container state move is not allowed (names from and to)
    InvalidInput (layers.errors)
    └── InvalidRunOption               a run option or image config field is malformed (names it)
    NotFound (layers.errors)
    └── ContainerNotFound              no container with that name or id
"""

from __future__ import annotations

from layers import errors as _base

__all__ = ["RuntimeFailure", "SandboxError", "ExecFailed", "CgroupError", "InvalidState",
           "InvalidRunOption", "ContainerNotFound"]

RuntimeFailure = _base.RuntimeFailure


class SandboxError(RuntimeFailure):
    """A setup step in the container's namespaces failed; the message names the step and target."""

    exit_code = 125


class ExecFailed(SandboxError):
    """The container's process could not be executed. ``exit_code`` is 127 (not found) or 126."""

    def __init__(self, message: str, exit_code: int = 127) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class CgroupError(RuntimeFailure):
    """A cgroup could not be created, limited, joined or removed."""

    exit_code = 125


class InvalidState(RuntimeFailure):
    """A container cannot move from one state to another."""

    def __init__(self, container: str, current: str, wanted: str) -> None:
        self.container, self.current, self.wanted = container, current, wanted
        super().__init__(f"container {container}: cannot go from {current} to {wanted}")


class InvalidRunOption(_base.InvalidInput):
    """A run option or image config field is malformed; the message names it."""

    exit_code = 125


class ContainerNotFound(_base.NotFound):
    """No container matches a name or id."""
