"""Docker's exit codes for ``run``, ``create``, ``start -a`` and ``exec``.

Docker: 125 when the tool itself fails (a bad option, no such image, a setup step), 126 when the
container's command cannot be invoked, 127 when it cannot be found, else the command's own code.
:func:`with_docker_exit_codes` applies that to a click command: usage errors become 125, an
:class:`runner.errors.ExecFailed` keeps its 126/127, a start the shim reports as failed is read as
Docker reads a daemon's start error (by its message), and any other :class:`PybuildError` becomes
``own_failure`` (``None``: its own code).
"""

from __future__ import annotations

import click

__all__ = ["with_docker_exit_codes", "docker_exit_code"]

OWN_FAILURE = 125
NOT_FOUND = 127
NOT_RUNNABLE = 126

_NOT_FOUND_TEXTS = ("executable file not found", "no such file or directory")
_NOT_RUNNABLE_TEXTS = ("permission denied", "is a directory")


def docker_exit_code(exc: Exception, own_failure: int | None) -> int:
    """The exit code Docker gives for ``exc`` raised by a run-like command."""
    from runner.errors import ExecFailed, ShimFailed

    if isinstance(exc, ExecFailed):
        return exc.exit_code
    if isinstance(exc, ShimFailed):
        text = str(exc).lower()
        if any(t in text for t in _NOT_FOUND_TEXTS):
            return NOT_FOUND
        if any(t in text for t in _NOT_RUNNABLE_TEXTS):
            return NOT_RUNNABLE
    return exc.exit_code if own_failure is None else own_failure


def with_docker_exit_codes(cmd: click.Command, own_failure: int | None = OWN_FAILURE) -> click.Command:
    """``cmd`` (changed in place, once) failing with Docker's exit codes; returns it."""
    if getattr(cmd, "_docker_exit_codes", False):
        return cmd
    parse, invoke = cmd.parse_args, cmd.invoke

    def parse_args(ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return parse(ctx, args)
        except click.UsageError as exc:
            exc.exit_code = OWN_FAILURE
            raise

    def invoke_(ctx: click.Context):
        from layers.errors import PybuildError

        try:
            return invoke(ctx)
        except PybuildError as exc:
            exc.exit_code = docker_exit_code(exc, own_failure)
            raise

    cmd.parse_args, cmd.invoke = parse_args, invoke_
    cmd._docker_exit_codes = True
    return cmd
