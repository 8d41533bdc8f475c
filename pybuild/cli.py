"""Entry point: run one command and map its outcome to an exit code; the only place that exits.

A command returns its exit code (``None`` is 0) or raises :class:`click.exceptions.Exit`. A bad flag
(unknown, missing its value, or a value of the wrong type) is 125, as Docker's CLI makes it. A
:class:`layers.errors.PybuildError` becomes ``pybuild: message`` and the error's ``exit_code``;
an I/O error no library translated, or a bug, becomes one line and 1. ``--debug`` (or
``PYBUILD_DEBUG``) adds the traceback; without it there is never one.

``pybuild``, ``pybuild --help`` and ``pybuild -h`` are answered from :mod:`pybuild.commands`
without importing click, and a plain ``ps`` by :mod:`pybuild.fastps`; everything else builds the
click group in :mod:`pybuild.group`.
``pybuild.cli.cli`` is that group, imported on first access.
"""

from __future__ import annotations

import os
import sys

__all__ = ["main", "run", "exit_now", "cli"]


#: the cyclic collector's first threshold in a pybuild process (Python's default: 700 allocations)
GC_THRESHOLD = 10_000


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run ``argv`` (default ``sys.argv[1:]``), then end the process.

    Start-up (modules, click's command tree, frozen value classes) allocates some 10^5 objects
    and frees almost none; at Python's default threshold the collector walks them ~150 times
    before a command does anything (~2 ms of each command, 2-3% of ``run``'s CPU). Collections
    still run in a long command (build, pull, logs -f), every ``GC_THRESHOLD`` allocations."""
    import gc

    gc.set_threshold(GC_THRESHOLD)
    exit_now(run(sys.argv[1:] if argv is None else argv))


def exit_now(code: int) -> None:
    """End the process with ``code``: output flushed, then ``os._exit``.

    By then everything a command held is released (records written, files and locks closed,
    mounts and cgroups gone, thread pools joined) and no pybuild module registers exit handlers;
    what is skipped is the interpreter's teardown, freeing every module and object one by one
    (~20 ms of each command). A reader that went away while we flushed makes it 141 (SIGPIPE's).
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            code = code or 141
        except (AttributeError, ValueError, OSError):  # closed or replaced stream: nothing to keep
            pass
    os._exit(code)


def run(argv: list[str]) -> int:
    """Run one ``pybuild`` command line and return its exit code; never exits."""
    args = list(argv)
    if args in ([], ["--help"], ["-h"]):
        from .commands import top_help

        # as click: asked for, help goes to stdout; with no command at all, to stderr with usage's 2
        try:
            (sys.stdout if args else sys.stderr).write(top_help())
        except BrokenPipeError:
            return 141
        return 0 if args else 2
    _reset_inherited_signals()
    if "ps" in args:
        code = _run_fast(args)
        if code is not None:
            return code
    return _run_group(args)


def _run_fast(args: list[str]) -> int | None:
    """:func:`pybuild.fastps.try_fast`, its errors reported as :func:`_run_group` reports them."""
    try:
        from .fastps import try_fast

        return try_fast(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 141
    except Exception as exc:  # noqa: BLE001 -- as in _run_group
        return _report(exc, debug=False)


def _run_group(args: list[str]) -> int:
    import click

    from .context import Settings
    from .group import cli as group

    ctx = None
    try:
        with group.make_context("pybuild", args) as ctx:
            return _exit_code(group.invoke(ctx))
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        if _bad_flag(exc):
            exc.exit_code = 125
        exc.show()
        return exc.exit_code
    except (click.Abort, EOFError):  # a prompt answered with ^C or end of input
        _write_err("pybuild: aborted")
        return 130
    except KeyboardInterrupt:
        return 130
    except SystemExit as exc:  # a command that still exits by itself
        return _exit_code(exc.code)
    except BrokenPipeError:
        return 141
    except Exception as exc:  # noqa: BLE001 -- the one place every error becomes a message
        settings = ctx.obj if ctx is not None else None
        debug = settings.debug if isinstance(settings, Settings) else bool(os.environ.get("PYBUILD_DEBUG"))
        return _report(exc, debug)


def _report(exc: Exception, debug: bool) -> int:
    """One line for ``exc`` (and the traceback with ``debug``); its exit code."""
    from layers.errors import PybuildError

    if debug:
        import traceback

        traceback.print_exc()
    if isinstance(exc, PybuildError):
        _write_err(f"pybuild: {exc}")
        return exc.exit_code
    if isinstance(exc, OSError):  # an I/O failure no library turned into a PybuildError
        where = f": {exc.filename}" if exc.filename else ""
        _write_err(f"pybuild: {exc.strerror or exc}{where}")
        return 1
    _write_err(f"pybuild: internal error: {type(exc).__name__}: {exc}"
               + ("" if debug else " (--debug shows the traceback)"))
    return 1


def _bad_flag(exc: Exception) -> bool:
    """An unknown option, an option without its value, or an option value of the wrong type: Docker's
    CLI exits 125 for these (its flag errors), whatever the command."""
    import click

    if isinstance(exc, (click.NoSuchOption, click.BadOptionUsage)):
        return True
    return isinstance(exc, click.BadParameter) and isinstance(exc.param, click.Option)


def _exit_code(value: object) -> int:
    """A command's return value (or ``SystemExit.code``) as an exit code: ``None`` is 0."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    _write_err(f"pybuild: {value}")
    return 1


def _write_err(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
    except (BrokenPipeError, ValueError):
        pass


def _reset_inherited_signals() -> None:
    """SIGCHLD ignored by whatever started us (it survives execve) makes the kernel reap our
    children at once: every wait for a container, shim or exec'd process would then fail."""
    import signal

    if signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def __getattr__(name: str):
    """``pybuild.cli.cli``: the click group, imported only when asked for (PEP 562)."""
    if name == "cli":
        from .group import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
