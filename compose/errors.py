"""Errors of the compose room; ``str(err)`` is the one-line message the CLI prints.

    PybuildError (layers.errors)
    └── ComposeError                 base of the room
        ├── ComposeFileNotFound      no compose file found, or a named -f/--env-file/env_file is missing (exit 14)
        └── ComposeFileError         a file is malformed, fails the schema, or uses an unsupported key;
                                     names ``file:line: path: why`` as far as known (exit 15, as Compose v2)
            └── InterpolationError   ``${VAR:?err}`` on an unset variable, or a bad ``${...}``

Loading raises only these; nothing is created before a project loads.
The engine adds its own subclasses of ComposeError below this line.
"""

from __future__ import annotations

from layers import errors as _base

__all__ = ["ComposeError", "ComposeFileNotFound", "ComposeFileError", "InterpolationError"]


class ComposeError(_base.PybuildError):
    """Base of every compose error."""

    exit_code = 1


class ComposeFileNotFound(ComposeError, _base.NotFound):
    """No compose file where one was looked for, or a named file does not exist."""

    exit_code = 14


class ComposeFileError(ComposeError, _base.InvalidInput):
    """A compose file (or an env file) is invalid. ``file``, ``line`` and ``path`` (dotted, with
    ``[i]`` for list items) are kept as attributes; the message is ``file:line: path: why``."""

    exit_code = 15

    def __init__(self, why: str, file: str | None = None, path: str | None = None,
                 line: int | None = None) -> None:
        self.why, self.file, self.path, self.line = why, file, path, line
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        super().__init__(f"{where}{path + ': ' if path else ''}{why}")


class InterpolationError(ComposeFileError):
    """A ``${...}`` expression failed: a required variable is unset, or the syntax is bad."""
