"""Errors of the runner room; all derive from :class:`layers.errors.RuntimeFailure` or its siblings.

    RuntimeFailure (layers.errors)     the sandbox could not be set up or a state move is invalid
    ├── SandboxError                   a setup step inside the container failed (names the step)
    │   └── ExecFailed                 the target could not be executed (exit code 126 / 127 as Docker)
    ├── CgroupError                    a cgroup could not be created, limited, joined or removed
    ├── ShimFailed                     the shim could not start its container, or did not say why
    ├── WaitTimeout                    a container did not reach the wanted state in time
    ├── VolumeInUse                    a named volume some container still refers to
    ├── EmulationUnavailable           another platform's programs cannot run here (no binfmt_misc handler)
    └── InvalidState                   a container state move is not allowed (names from and to)
        └── StateConflict              an operation does not fit the container's state ("is not running")
    InvalidInput (layers.errors)
    ├── InvalidRunOption               a run option or image config field is malformed (names it)
    │   └── InvalidSpec                a runtime spec field is malformed or unsupported (names its path)
    └── AmbiguousId                    an id prefix matches more than one container
    NotFound (layers.errors)
    └── ContainerNotFound              no container with that name or id
    AlreadyExists (layers.errors)
    └── NameInUse                      another container already has this name
    StoreError (layers.errors)
    └── CorruptRecord                  a container's config.json or state.json cannot be read
"""

from __future__ import annotations

from layers import errors as _base

__all__ = ["RuntimeFailure", "SandboxError", "ExecFailed", "CgroupError", "ShimFailed", "WaitTimeout",
           "VolumeInUse", "EmulationUnavailable", "InvalidState", "StateConflict", "InvalidRunOption", "InvalidSpec", "AmbiguousId",
           "ContainerNotFound", "NameInUse", "CorruptRecord"]

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


class ShimFailed(RuntimeFailure):
    """The shim reported that its container could not start (the message is the shim's), did not
    report in time, or could not run at all."""


class WaitTimeout(RuntimeFailure):
    """A container did not reach the wanted state in time."""


class VolumeInUse(RuntimeFailure):
    """A volume some container (running or not) still refers to."""


class EmulationUnavailable(RuntimeFailure):
    """A program for another platform cannot run here: no enabled ``binfmt_misc`` handler with the
    ``F`` flag for it. The message ends with the one command that makes it work."""

    exit_code = 125


class InvalidState(RuntimeFailure):
    """A container cannot move from one state to another; ``current`` and ``wanted`` name both."""

    def __init__(self, container: str, current: str, wanted: str) -> None:
        self.container, self.current, self.wanted = container, current, wanted
        super().__init__(f"container {container}: cannot go from {current} to {wanted}")


class StateConflict(InvalidState):
    """An operation does not fit the container's state (``container web1 is not running``)."""

    def __init__(self, message: str, *, container: str = "", current: str = "", wanted: str = "") -> None:
        self.container, self.current, self.wanted = container, current, wanted
        RuntimeFailure.__init__(self, message)


class InvalidRunOption(_base.InvalidInput):
    """A run option or image config field is malformed; the message names it."""

    exit_code = 125


class InvalidSpec(InvalidRunOption):
    """A runtime spec field is malformed or not supported; ``path`` names it (``process.args[0]``)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        super().__init__(f"runtime spec {path}: {problem}")


class AmbiguousId(_base.InvalidInput):
    """An id prefix matches more than one container."""


class ContainerNotFound(_base.NotFound):
    """No container matches a name or id."""


class NameInUse(_base.AlreadyExists):
    """Another container already has this name."""


class CorruptRecord(_base.StoreError):
    """A container record (``config.json``, ``state.json``) cannot be parsed; the message names the file."""
