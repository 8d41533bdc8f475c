"""The engine's errors, beneath :class:`compose.errors.ComposeError` (the room's one tree)::

    ComposeError
    ├── DependencyCycle (compose.plan)     depends_on goes round (also InvalidInput)
    ├── NoSuchService (compose.plan)       a named service is not in the project (also NotFound)
    ├── Unsupported                        a key or option the engine cannot honour (also InvalidInput)
    └── ServiceFailed                      a service did not come up: its dependency condition failed,
                                           ``--wait`` saw it exit or turn unhealthy, a start failed
"""

from __future__ import annotations

from compose.errors import ComposeError
from compose.plan import DependencyCycle, NoSuchService
from layers.errors import InvalidInput

__all__ = ["DependencyCycle", "NoSuchService", "Unsupported", "ServiceFailed"]


class Unsupported(ComposeError, InvalidInput):
    """The project asks for something pybuild does not do; the message names the service and key."""

    exit_code = 15


class ServiceFailed(ComposeError):
    """A service did not reach the state asked of it; ``service`` names it."""

    exit_code = 1

    def __init__(self, message: str, service: str = "") -> None:
        super().__init__(message)
        self.service = service
