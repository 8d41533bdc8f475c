"""The ``pybuild`` click group: global options and lazily imported subcommands.

Subcommands live in ``pybuild/cmd_*.py`` (see :data:`pybuild.commands.COMMANDS`) and are imported
only when invoked, so ``pybuild CMD`` imports one command module and no heavy library it does not use.
"""

from __future__ import annotations

import importlib
import os

import click

from .commands import COMMANDS, DEFAULT_ROOT, DEFAULT_STATE, DESCRIPTION, OPTION_HELP
from .context import Settings, env_list

__all__ = ["cli", "LazyGroup"]


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = COMMANDS.get(name)
        if entry is None:
            return None
        module, attr, _ = entry
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, help=DESCRIPTION, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", envvar="PYBUILD_ROOT", default=DEFAULT_ROOT, show_default=True, help=OPTION_HELP["--root"])
@click.option("--state-dir", envvar="PYBUILD_STATE", default=DEFAULT_STATE, show_default=True,
              help=OPTION_HELP["--state-dir"])
@click.option("--insecure-registry", "insecure", multiple=True, help=OPTION_HELP["--insecure-registry"])
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), default=None, help=OPTION_HELP["--tls-ca"])
@click.option("--debug", is_flag=True, envvar="PYBUILD_DEBUG", help=OPTION_HELP["--debug"])
@click.version_option(package_name="pybuild", prog_name="pybuild", help=OPTION_HELP["--version"])
@click.pass_context
def cli(ctx: click.Context, root: str, state_dir: str, insecure: tuple[str, ...], tls_ca: str | None,
        debug: bool) -> None:
    """Build the :class:`Settings` every subcommand receives (the group's help is ``DESCRIPTION``)."""
    ctx.obj = Settings(
        root=os.path.abspath(root),
        state_dir=os.path.abspath(state_dir),
        insecure_registries=tuple(insecure) + env_list("PYBUILD_INSECURE_REGISTRIES"),
        tls_ca=tls_ca,
        debug=debug,
    )
