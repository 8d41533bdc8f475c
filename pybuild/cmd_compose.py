"""``pybuild compose``: multi-container projects from a Compose file. Each subcommand loads the project
(:func:`compose.load.load_project`) and makes one call into :mod:`compose.apply`; renderings are in
:mod:`pybuild.views.compose`. Progress lines go to stderr, data to stdout.
"""

from __future__ import annotations

import sys

import click

from .compose_args import ComposeArgs, pass_args, sink_for
from .context import Settings

__all__ = ["compose_group"]


@click.group("compose")
@click.option("-f", "--file", "files", multiple=True, help="Compose configuration file (repeatable).")
@click.option("-p", "--project-name", default=None, help="Project name.")
@click.option("--profile", "profiles", multiple=True, help="Enable a profile (repeatable).")
@click.option("--env-file", "env_files", multiple=True, help="An alternate environment file.")
@click.option("--project-directory", default=None, help="Working directory of the project (default: the first file's).")
@click.pass_context
def compose_group(ctx: click.Context, files, project_name, profiles, env_files, project_directory) -> None:
    """Define and run multi-container applications (the Compose Specification)."""
    ctx.obj = ComposeArgs(ctx.find_object(Settings), tuple(files), project_name, tuple(profiles), tuple(env_files),
                          project_directory)


@compose_group.command("up")
@click.option("-d", "--detach", is_flag=True, help="Run containers in the background.")
@click.option("--build", "build", flag_value=True, default=None, help="Build images before starting containers.")
@click.option("--no-build", "build", flag_value=False, help="Don't build an image, even if it's missing.")
@click.option("--pull", type=click.Choice(["always", "missing", "never"]), default=None, help="Pull image before running.")
@click.option("--wait", is_flag=True, help="Wait for services to be running|healthy. Implies detached mode.")
@click.option("--wait-timeout", type=float, default=None, help="Maximum duration to wait for the project to be running|healthy.")
@click.option("--force-recreate", is_flag=True, help="Recreate containers even if their configuration hasn't changed.")
@click.option("--no-deps", is_flag=True, help="Don't start linked services.")
@click.option("--remove-orphans", is_flag=True, help="Remove containers for services not defined in the Compose file.")
@click.option("--scale", multiple=True, help="Scale SERVICE to NUM instances (SERVICE=NUM).")
@click.option("--abort-on-container-exit", is_flag=True, help="Stops all containers if any container was stopped.")
@click.option("--exit-code-from", default=None, help="Return the exit code of the selected service container.")
@click.option("-t", "--timeout", type=int, default=None, help="Shutdown timeout in seconds.")
@click.option("--no-color", is_flag=True, help="Produce monochrome output.")
@click.argument("services", nargs=-1)
@pass_args
def up_cmd(args: ComposeArgs, detach, build, pull, wait, wait_timeout, force_recreate, no_deps, remove_orphans,
           scale, abort_on_container_exit, exit_code_from, timeout, no_color, services) -> int:
    """Create and start containers."""
    from compose.apply import UpOptions, attach, project_containers, up

    if (detach or wait) and (abort_on_container_exit or exit_code_from):
        raise click.UsageError("--abort-on-container-exit and --exit-code-from cannot be used with -d/--wait")
    project, engine = args.project(services), args.engine()
    opts = UpOptions(services=tuple(services), no_deps=no_deps, build=build, pull=pull, force_recreate=force_recreate,
                     remove_orphans=remove_orphans, scale=tuple(scale), wait=wait, wait_timeout=wait_timeout,
                     timeout=timeout)
    if detach or wait:
        up(engine, project, opts)
        return 0
    try:
        result = up(engine, project, opts)
    except KeyboardInterrupt:                # Ctrl-C while starting, attached: stop what started
        from compose.apply import ops

        engine.reporter.note("Gracefully stopping...")
        ops.stop(engine, project, timeout=timeout)
        return 130
    names = set(result.names())
    ours = [c for c in project_containers(engine, project.name) if c.name in names]
    return attach(engine, project, ours, sink_for(sys.stdout.isatty() and not no_color), since=result.started_at,
                  abort_on_exit=abort_on_container_exit or bool(exit_code_from), exit_code_from=exit_code_from,
                  stop_timeout=timeout)


@compose_group.command("down")
@click.option("-v", "--volumes", is_flag=True, help="Remove named volumes and anonymous volumes.")
@click.option("--rmi", type=click.Choice(["local", "all"]), default=None, help="Remove images used by services.")
@click.option("--remove-orphans", is_flag=True, help="Remove containers for services not defined in the Compose file.")
@click.option("-t", "--timeout", type=int, default=None, help="Shutdown timeout in seconds.")
@pass_args
def down_cmd(args: ComposeArgs, volumes, rmi, remove_orphans, timeout) -> None:
    """Stop and remove containers, networks (and volumes with -v)."""
    from compose.apply import DownOptions, down

    down(args.engine(), args.project(), DownOptions(volumes=volumes, rmi=rmi or "", remove_orphans=remove_orphans,
                                                    timeout=timeout))


@compose_group.command("ps")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all stopped containers.")
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", help="table or json.")
@click.option("--services", is_flag=True, help="Display services.")
@click.argument("services_", nargs=-1, metavar="[SERVICE]...")
@pass_args
def ps_cmd(args: ComposeArgs, show_all, quiet, fmt, services, services_) -> None:
    """List containers."""
    from compose.apply.ops import containers_of

    from .views.compose import ps_json, ps_lines

    cs = containers_of(args.engine(quiet=True), args.project(), services_)
    if not show_all:
        cs = [c for c in cs if c.live or c.status == "restarting"]
    if quiet or services:
        for line in dict.fromkeys(c.id if quiet else c.service for c in cs):
            click.echo(line)
        return
    for line in (ps_json(cs) if fmt == "json" else ps_lines(cs)):
        click.echo(line)


@compose_group.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Follow log output.")
@click.option("-n", "--tail", default="all", help="Number of lines to show from the end of the logs.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.option("--no-color", is_flag=True, help="Produce monochrome output.")
@click.option("--no-log-prefix", is_flag=True, help="Don't print prefix in logs.")
@click.argument("services", nargs=-1)
@pass_args
def logs_cmd(args: ComposeArgs, follow, tail, timestamps, no_color, no_log_prefix, services) -> None:
    """View output from containers."""
    from compose.apply import stream_logs
    from compose.apply.ops import containers_of
    from layers.errors import InvalidInput

    if tail != "all" and not tail.isdigit():
        raise InvalidInput(f"--tail {tail!r}: expected a number or 'all'")
    sink = sink_for(sys.stdout.isatty() and not no_color)
    if no_log_prefix:
        sink = lambda prefix, stream, text: click.echo(text)     # noqa: E731
    engine = args.engine(quiet=True)
    stream_logs(engine, containers_of(engine, args.project(), services), sink, follow=follow,
                tail=None if tail == "all" else int(tail), timestamps=timestamps)


@compose_group.command("config")
@click.option("-q", "--quiet", is_flag=True, help="Only validate the configuration, don't print anything.")
@click.option("--services", is_flag=True, help="Print the service names, one per line.")
@click.option("--volumes", is_flag=True, help="Print the volume names, one per line.")
@pass_args
def config_cmd(args: ComposeArgs, quiet, services, volumes) -> None:
    """Parse, resolve and render the compose file in canonical format."""
    from compose.render import config_text

    project = args.project()
    if not quiet:
        click.echo(config_text(project, services_only=services, volumes_only=volumes), nl=False)


@compose_group.command("ls")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all stopped Compose projects.")
@click.option("-q", "--quiet", is_flag=True, help="Only display project names.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", help="table or json.")
@click.pass_obj
def ls_cmd(args: ComposeArgs, show_all, quiet, fmt) -> None:
    """List running compose projects."""
    from compose.apply import list_projects

    from .views.compose import ls_json, ls_lines

    projects = list_projects(args.engine(quiet=True), all=show_all)
    if quiet:
        for p in projects:
            click.echo(p.name)
    elif fmt == "json":
        click.echo(ls_json(projects))
    else:
        for line in ls_lines(projects):
            click.echo(line)


@compose_group.command("version")
@click.option("--short", is_flag=True, help="Shows only the version number.")
def version_cmd(short) -> None:
    """Show the pybuild compose version information."""
    from importlib.metadata import version

    v = version("pybuild")
    click.echo(v if short else f"pybuild compose version {v}")


def _register() -> None:
    from . import cmd_compose_ops

    for cmd in cmd_compose_ops.COMMANDS:
        compose_group.add_command(cmd)


_register()
