"""Container filesystem commands: cp, diff, commit, export (Docker's, over ``runner.fscopy``,
``runner.fsdiff``, ``runner.export`` and ``builder.commit``)."""

from __future__ import annotations

import re
import sys

import click

from .context import Settings, pass_settings

__all__ = ["cp_cmd", "diff_cmd", "commit_cmd", "export_cmd"]


def _store(settings: Settings):
    from .cmd_containers import container_store

    return container_store(settings)


def _split(arg: str) -> tuple[str | None, str]:
    """``CONTAINER:PATH`` -> (container, path); a local path (``-``, ``/x``, ``./a:b``) -> (None, arg)."""
    if arg == "-" or arg.startswith(("/", ".")):
        return None, arg
    name, sep, path = arg.partition(":")
    if not sep or not name:
        return None, arg
    return name, path


@click.command("cp")
@click.argument("src")
@click.argument("dest")
@click.option("--archive", "-a", is_flag=True, help="Archive mode (copy all uid/gid information).")
@click.option("--follow-link", "-L", "follow", is_flag=True, help="Always follow symbol link in SRC_PATH.")
@click.option("--quiet", "-q", is_flag=True, help="Suppress progress output (there is none).")
@pass_settings
def cp_cmd(settings: Settings, src: str, dest: str, archive: bool, follow: bool, quiet: bool) -> None:
    """Copy files/folders between a container and the local filesystem.

    CONTAINER:SRC_PATH DEST_PATH|-  or  SRC_PATH|- CONTAINER:DEST_PATH"""
    from layers.errors import InvalidInput
    from runner import fscopy

    (s_ctr, s_path), (d_ctr, d_path) = _split(src), _split(dest)
    if (s_ctr is None) == (d_ctr is None):
        raise InvalidInput("cp: copying between containers or between local paths is not supported: "
                           "give exactly one CONTAINER:PATH")
    if not (s_path if s_ctr else d_path):
        raise InvalidInput(f"cp: {src if s_ctr else dest}: the container path is empty")
    store = _store(settings)
    if s_ctr is not None:
        if d_path == "-":
            fscopy.archive_from_container(store, s_ctr, s_path, sys.stdout.buffer, follow=follow)
        else:
            fscopy.copy_from_container(store, s_ctr, s_path, d_path, archive=archive, follow=follow)
    elif s_path == "-":
        fscopy.extract_into_container(store, d_ctr, sys.stdin.buffer, d_path)
    else:
        fscopy.copy_into_container(store, d_ctr, s_path, d_path, archive=archive, follow=follow)


@click.command("diff")
@click.argument("container")
@pass_settings
def diff_cmd(settings: Settings, container: str) -> None:
    """Inspect changes to files or directories on a container's filesystem."""
    from runner.fsdiff import diff

    for change in diff(_store(settings), container):
        click.echo(str(change))


@click.command("export")
@click.argument("container")
@click.option("--output", "-o", default=None, help="Write to a file, instead of STDOUT.")
@pass_settings
def export_cmd(settings: Settings, container: str, output: str | None) -> None:
    """Export a container's filesystem as a tar archive."""
    from layers.errors import InvalidInput
    from runner.export import export

    if output is None and sys.stdout.isatty():
        raise InvalidInput("export: refusing to write a tar to a terminal: use -o FILE or a redirect")
    store = _store(settings)
    if output is None:
        export(store, container, sys.stdout.buffer)
        return
    try:
        out = open(output, "wb")
    except OSError as exc:
        raise InvalidInput(f"export: {output}: {exc.strerror}") from None
    with out:
        export(store, container, out)


_PAUSE_WORD = re.compile(r"(--pause|-p)=(.*)")


class _CommitCommand(click.Command):
    """``-p``/``--pause`` is Docker's boolean flag: bare it means true, ``--pause=false`` turns it off.

    Click's optional-value options would take the next word (the container) as the value, so
    ``=VALUE`` forms are rewritten to ``--pause``/``--no-pause`` before parsing.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, [_pause_word(a) for a in args])


def _pause_word(arg: str) -> str:
    m = _PAUSE_WORD.fullmatch(arg)
    if m is None:
        return arg
    text = m.group(2).lower()
    if text in ("1", "t", "true"):
        return "--pause"
    if text in ("0", "f", "false"):
        return "--no-pause"
    raise click.BadParameter(f"invalid boolean value {m.group(2)!r}", param_hint="'--pause' / '-p'")


@click.command("commit", cls=_CommitCommand)
@click.argument("container")
@click.argument("reference", required=False)
@click.option("--change", "-c", "changes", multiple=True, help="Apply Dockerfile instruction to the created image.")
@click.option("--message", "-m", default="", help="Commit message.")
@click.option("--author", "-a", default="", help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>").')
@click.option("--pause/--no-pause", "-p", "pause", default=True, show_default=True,
              help="Pause container during commit (--pause=false to not).")
@pass_settings
def commit_cmd(settings: Settings, container: str, reference: str | None, changes: tuple[str, ...], message: str,
               author: str, pause: bool) -> None:
    """Create a new image from a container's changes."""
    from builder.commit import CommitOptions, commit

    store = _store(settings)
    result = commit(settings.store(), store, container,
                    CommitOptions(reference=reference, changes=changes, message=message, author=author, pause=pause))
    click.echo(result.config_digest)
