"""The ``pybuild`` click group: global options and lazily imported subcommands.

Subcommands live in ``pybuild/cmd_*.py`` (see :data:`pybuild.commands.COMMANDS`) and are imported
only when invoked, so ``pybuild CMD`` imports one command module and no heavy library it does not use.
Docker's management groups (``image``, ``container``, ``system``; :data:`pybuild.commands.GROUPS`)
are :class:`ManagementGroup` objects over the same table; ``network`` and ``volume`` are their modules'
groups with :data:`pybuild.commands.ALIASES` added. A command whose module is not installed is a
one-line error when invoked, never a traceback.
"""

from __future__ import annotations

import importlib
import os

import click

from .commands import ALIASES, COMMANDS, DEFAULT_ROOT, DOCKER_EXIT_CODES, GROUPS, DEFAULT_STATE, DESCRIPTION, OPTION_HELP
from .context import NO_STORE, Settings, enter_namespaces, env_list

__all__ = ["cli", "LazyGroup", "ManagementGroup", "Unavailable", "image_group", "container_group",
           "system_group"]


class Unavailable(click.ClickException):
    """A command in the table whose module (or attribute) this installation does not have."""

    def show(self, file=None) -> None:
        click.echo(f"pybuild: {self.format_message()}", err=True, file=file)


def load_command(name: str, module: str, attr: str) -> click.Command:
    """``module.attr``, imported now; :class:`Unavailable` if the module or attribute is missing
    (a missing module *inside* it is a bug and propagates)."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module.startswith(exc.name):
            raise
        raise Unavailable(f"'{name}' is not available in this installation (no module {module})") from None
    cmd = getattr(mod, attr, None)
    if cmd is None:
        raise Unavailable(f"'{name}' is not available in this installation (no {module}.{attr})")
    if (module, attr) in DOCKER_EXIT_CODES:
        from .exitcodes import with_docker_exit_codes

        cmd = with_docker_exit_codes(cmd, DOCKER_EXIT_CODES[module, attr])
    if name.split()[0] not in NO_STORE:
        _joining(cmd)
    return cmd


def _joining(cmd: click.Command) -> None:
    """Make ``cmd`` (every leaf of it, for a module's group) join the rootless user namespace
    (:func:`pybuild.context.enter_namespaces`) before its body runs: after click parsed its options,
    so ``--help`` (which exits while parsing) and bad options never create or join anything."""
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            _joining(sub)
        return
    inner = cmd.callback
    if inner is None or getattr(inner, "_pybuild_joins", False):
        return

    def callback(*args, **kwargs):
        ctx = click.get_current_context()
        settings = ctx.find_object(Settings)
        if settings is not None:
            enter_namespaces(settings.state_dir)
        return inner(*args, **kwargs)

    callback._pybuild_joins = True  # type: ignore[attr-defined]
    cmd.callback = callback


def _with_aliases(group: str, cmd: click.Command) -> click.Command:
    """A module's own group with the subcommand aliases of :data:`ALIASES` added."""
    if isinstance(cmd, click.Group):
        for alias, target in ALIASES.get(group, {}).items():
            if alias not in cmd.commands and target in cmd.commands:
                cmd.add_command(cmd.commands[target], alias)
    return cmd


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = COMMANDS.get(name)
        if entry is None:
            return None
        module, attr, _ = entry
        return _with_aliases(name, load_command(name, module, attr))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


class ManagementGroup(click.Group):
    """One of Docker's management groups (``pybuild image ls``): its subcommands come from
    :data:`GROUPS` and are imported on first use, like the top-level ones."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(GROUPS[self.name])

    def _entry(self, name: str) -> tuple[str, str, str, tuple[str, ...]] | None:
        entry = GROUPS[self.name].get(name)
        if isinstance(entry, str):
            module, attr, text = COMMANDS[entry]
            return module, attr, text, ()
        if entry is None:
            return None
        module, attr, text, *preset = entry
        return module, attr, text, tuple(preset[0]) if preset else ()

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = self._entry(name)
        if entry is None:
            return None
        module, attr, text, preset = entry
        cmd = load_command(f"{self.name} {name}", module, attr)
        return _preset(cmd, preset, text) if preset else cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self._entry(name)[2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _preset(cmd: click.Command, preset: tuple[str, ...], text: str) -> click.Command:
    """A copy of ``cmd`` that parses ``preset`` before the user's arguments (``image inspect`` is
    ``inspect --type image``), with ``text`` as its help."""
    import copy

    clone = copy.copy(cmd)
    parse = type(cmd).parse_args
    clone.parse_args = lambda ctx, args: parse(clone, ctx, [*preset, *args])
    clone.help = clone.short_help = text
    return clone


image_group = ManagementGroup("image", help="Manage images.")
container_group = ManagementGroup("container", help="Manage containers.")
system_group = ManagementGroup("system", help="Manage pybuild.")


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
