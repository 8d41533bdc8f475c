"""The rest of ``pybuild compose``: build, pull, push, run, exec and the per-container commands (start,
stop, restart, kill, rm, pause, unpause, top, images, port). Registered on
:data:`pybuild.cmd_compose.compose_group` (listed in :data:`COMMANDS`); each is a few lines over :mod:`compose.apply`."""

from __future__ import annotations

import sys

import click

from .compose_args import ComposeArgs, pass_args

__all__ = ["COMMANDS"]

COMMANDS: list[click.Command] = []


class _Group:
    """Collects the commands defined here (``pybuild.cmd_compose`` adds them to its group)."""

    @staticmethod
    def command(name: str, **kw):
        def deco(f):
            cmd = click.command(name, **kw)(f)
            COMMANDS.append(cmd)
            return cmd

        return deco


compose_group = _Group()


@compose_group.command("build")
@click.option("--no-cache", is_flag=True, help="Do not use cache when building the image.")
@click.option("--pull", is_flag=True, help="Always attempt to pull a newer version of the image.")
@click.argument("services", nargs=-1)
@pass_args
def build_cmd(args: ComposeArgs, no_cache, pull, services) -> None:
    """Build or rebuild services."""
    from compose.apply import build_service
    from compose.plan import select

    project, engine = args.project(services), args.engine()
    for name in select(project, services, with_deps=False):
        if project.service(name).build is not None:
            build_service(engine, project, project.service(name), no_cache=no_cache, pull=pull)


@compose_group.command("pull")
@click.option("--ignore-buildable", is_flag=True, help="Ignore images that can be built.")
@click.option("-q", "--quiet", is_flag=True, help="Pull without printing progress information.")
@click.argument("services", nargs=-1)
@pass_args
def pull_cmd(args: ComposeArgs, ignore_buildable, quiet, services) -> None:
    """Pull service images."""
    from compose.apply import pull_image
    from compose.plan import image_name, select

    project, engine = args.project(services), args.engine(quiet=quiet)
    for name in select(project, services, with_deps=False):
        svc = project.service(name)
        if svc.image and not (ignore_buildable and svc.build is not None):
            pull_image(engine, svc.image)


@compose_group.command("push")
@click.argument("services", nargs=-1)
@pass_args
def push_cmd(args: ComposeArgs, services) -> None:
    """Push service images (those with an image: name)."""
    from compose.apply import push_image
    from compose.plan import select

    project, engine = args.project(services), args.engine()
    for name in select(project, services, with_deps=False):
        svc = project.service(name)
        if svc.image:
            push_image(engine, svc.image)


@compose_group.command("run", context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run container in background (not supported: refused).")
@click.option("--rm", is_flag=True, help="Automatically remove the container when it exits.")
@click.option("-e", "--env", "env", multiple=True, help="Set environment variables.")
@click.option("--no-deps", is_flag=True, help="Don't start linked services.")
@click.option("-T", "--no-TTY", "no_tty", is_flag=True, help="Disable pseudo-TTY allocation.")
@click.option("-u", "--user", default=None, help="Run as specified username or uid.")
@click.option("-w", "--workdir", default=None, help="Working directory inside the container.")
@click.option("--entrypoint", default=None, help="Override the entrypoint of the image.")
@click.option("--name", default=None, help="Assign a name to the container.")
@click.option("--service-ports", is_flag=True, help="Run with the service's ports published.")
@click.option("--build", is_flag=True, default=None, help="Build the image before starting the container.")
@click.argument("service")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@pass_args
def run_cmd(args: ComposeArgs, detach, rm, env, no_deps, no_tty, user, workdir, entrypoint, name, service_ports,
            build, service, command) -> int:
    """Run a one-off command on a service."""
    from compose.apply import RunRequest, run
    from layers.errors import InvalidInput

    if detach:
        raise InvalidInput("compose run -d is not supported: use compose up -d SERVICE")
    tty = not no_tty and sys.stdin.isatty() and sys.stdout.isatty()
    ep = None if entrypoint is None else ((entrypoint,) if entrypoint else ())
    return run(args.engine(), args.project((service,)), RunRequest(
        service=service, command=tuple(command) or None, env=tuple(env), rm=rm, no_deps=no_deps, tty=tty,
        interactive=tty, user=user, workdir=workdir, entrypoint=ep, name=name, service_ports=service_ports,
        build=build))


@compose_group.command("exec", context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run command in the background.")
@click.option("-e", "--env", "env", multiple=True, help="Set environment variables.")
@click.option("-T", "--no-TTY", "no_tty", is_flag=True, help="Disable pseudo-TTY allocation.")
@click.option("-u", "--user", default=None, help="Run the command as this user.")
@click.option("-w", "--workdir", default=None, help="Path to workdir directory for this command.")
@click.option("--index", type=int, default=1, help="Index of the container if service has multiple replicas.")
@click.argument("service")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_args
def exec_cmd(args: ComposeArgs, detach, env, no_tty, user, workdir, index, service, command) -> int:
    """Execute a command in a running container."""
    from compose.apply import exec_in_service

    tty = not no_tty and sys.stdin.isatty() and sys.stdout.isatty()
    return exec_in_service(args.engine(quiet=True), args.project((service,)), service, tuple(command), index=index, env=env,
                           user=user, workdir=workdir, tty=tty, interactive=tty, detach=detach)


def _simple(name: str, help_text: str, call, *options):
    """A subcommand ``name [SERVICE...]`` that makes one :mod:`compose.apply.ops` call."""

    def cmd(args: ComposeArgs, services, **kw) -> None:
        from compose.apply import ops

        getattr(ops, call)(args.engine(), args.project(), services, **kw)

    cmd.__doc__ = help_text
    f = pass_args(cmd)
    f = click.argument("services", nargs=-1)(f)
    for opt in options:
        f = opt(f)
    compose_group.command(name)(f)


_timeout = click.option("-t", "--timeout", type=int, default=None, help="Shutdown timeout in seconds.")
_simple("start", "Start services.", "start")
_simple("stop", "Stop services.", "stop", _timeout)
_simple("restart", "Restart service containers.", "restart", _timeout)
_simple("kill", "Force stop service containers.", "kill",
        click.option("-s", "--signal", "signal", default="SIGKILL", help="SIGNAL to send to the container."))
_simple("pause", "Pause services.", "pause")
_simple("unpause", "Unpause services.", "unpause")


@compose_group.command("rm")
@click.option("-f", "--force", is_flag=True, help="Don't ask to confirm removal (there is no prompt).")
@click.option("-s", "--stop", "stop_first", is_flag=True, help="Stop the containers, if required, before removing.")
@click.option("-v", "--volumes", is_flag=True, help="Remove any anonymous volumes attached to containers.")
@click.argument("services", nargs=-1)
@pass_args
def rm_cmd(args: ComposeArgs, force, stop_first, volumes, services) -> None:
    """Removes stopped service containers."""
    from compose.apply import ops

    if not ops.remove(args.engine(), args.project(), services, stop_first=stop_first, volumes=volumes):
        click.echo("No stopped containers", err=True)


@compose_group.command("top")
@click.argument("services", nargs=-1)
@pass_args
def top_cmd(args: ComposeArgs, services) -> None:
    """Display the running processes."""
    from compose.apply import ops

    from .views.processes import TOP_HEAD, tabwriter, top_row

    for name, procs in ops.top(args.engine(quiet=True), args.project(), services):
        click.echo(name)
        for line in tabwriter([TOP_HEAD] + [top_row(p) for p in procs]):
            click.echo(line)
        click.echo()


@compose_group.command("images")
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
@click.argument("services", nargs=-1)
@pass_args
def images_cmd(args: ComposeArgs, quiet, services) -> None:
    """List images used by the created containers."""
    from compose.apply import ops

    from .views.compose import images_lines

    rows = ops.images(args.engine(quiet=True), args.project(), services)
    for line in ([r.image_id for r in rows] if quiet else images_lines(rows)):
        click.echo(line)


@compose_group.command("port")
@click.option("--protocol", type=click.Choice(["tcp", "udp"]), default="tcp", help="tcp or udp.")
@click.option("--index", type=int, default=1, help="Index of the container if service has multiple replicas.")
@click.argument("service")
@click.argument("private_port", type=int)
@pass_args
def port_cmd(args: ComposeArgs, protocol, index, service, private_port) -> None:
    """Print the public port for a port binding."""
    from compose.apply import ops

    click.echo(ops.port(args.engine(quiet=True), args.project(), service, private_port, protocol, index))
