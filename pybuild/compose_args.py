"""What every ``pybuild compose`` subcommand shares: :class:`ComposeArgs` (the group's options; loads
the project and makes the engine) and the log line sink of ``logs`` and attached ``up``."""

from __future__ import annotations

import os
import sys

import click

from layers.value import frozen

from .context import Settings

__all__ = ["ComposeArgs", "pass_args", "sink_for"]


@frozen
class ComposeArgs:
    """The group's options: what the project is loaded from."""

    settings: Settings
    files: tuple[str, ...]
    project_name: str | None
    profiles: tuple[str, ...]
    env_files: tuple[str, ...]
    project_directory: str | None

    def project(self, targets=()):
        """Load the project; ``targets``: services named on the command line (their profiles are
        enabled, as Docker does). The loader's warnings go to stderr."""
        from compose.load import load_project

        profiles = self.profiles or tuple(p for p in os.environ.get("COMPOSE_PROFILES", "").split(",") if p)
        project = load_project(self.files, self.project_name, self.project_directory, self.env_files, profiles,
                               None, targets=tuple(targets))
        for line in getattr(project, "warnings", ()):
            click.echo(f"pybuild: warning: {line}", err=True)
        return project

    def engine(self, *, quiet: bool = False):
        from compose.apply import Engine, Reporter

        from .views.compose import event_line

        def event(kind: str, name: str, status: str) -> None:
            click.echo(event_line(kind, name, status), err=True)

        reporter = Reporter(None if quiet else event, lambda text: click.echo(f"pybuild: {text}", err=True),
                            None if quiet else sys.stderr)
        s = self.settings
        return Engine(s.root, s.state_dir, s.insecure_registries, s.tls_ca, reporter)


pass_args = click.make_pass_decorator(ComposeArgs)


def sink_for(colour: bool):
    from .views.compose import Colours

    colours = Colours(colour)

    def sink(prefix: str, stream: str, text: str) -> None:
        click.echo(colours.paint(prefix) + text, err=False)
        sys.stdout.flush()

    return sink
