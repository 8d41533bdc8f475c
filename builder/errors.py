"""Builder errors. Every one names where in the Dockerfile it comes from when it can.

    layers.errors.InvalidInput
    ├── DockerfileError      the Dockerfile (or a flag/argument) is malformed: ``Dockerfile:LINE: INSTR: what``
    ├── ContextError         the build context argument is malformed (a bad git URL, an unknown form)
    └── JobSpecError         a ``kube build-job`` option is malformed: ``--FLAG: what``
    layers.errors.PybuildError
    └── BuildError           a step could not be executed (RUN exit status, missing source, bad stage)
"""

from __future__ import annotations

from layers.errors import InvalidInput, PybuildError

__all__ = ["DockerfileError", "ContextError", "JobSpecError", "BuildError", "where"]


def where(file: str, line: int | None, instruction: str | None) -> str:
    """Render the ``Dockerfile:LINE: INSTR:`` prefix used by every located message."""
    head = f"{file}:{line}" if line else file
    return f"{head}: {instruction}:" if instruction else f"{head}:"


class DockerfileError(InvalidInput):
    """The Dockerfile is malformed. ``file``, ``line`` (1-based) and ``instruction`` locate it."""

    def __init__(self, file: str, line: int | None, instruction: str | None, reason: str) -> None:
        self.file, self.line, self.instruction, self.reason = file, line, instruction, reason
        super().__init__(f"{where(file, line, instruction)} {reason}")


class ContextError(InvalidInput):
    """The build context argument names nothing pybuild can build from, or a malformed git URL."""


class JobSpecError(InvalidInput):
    """An option of a Kubernetes build Job is malformed; the message starts with the option."""


class BuildError(PybuildError):
    """A build step failed. ``file``/``line``/``instruction`` point at the step when known."""

    def __init__(self, reason: str, file: str | None = None, line: int | None = None,
                 instruction: str | None = None) -> None:
        self.file, self.line, self.instruction, self.reason = file, line, instruction, reason
        super().__init__(f"{where(file, line, instruction)} {reason}" if file else reason)

