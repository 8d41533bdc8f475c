"""``events`` (also ``system events``) and ``update``: a few lines each over :mod:`runner.events`
and :mod:`runner.update`."""

from __future__ import annotations

import click

from .context import Settings, pass_settings

__all__ = ["events_cmd", "update_cmd"]


@click.command("events")
@click.option("--since", default=None, help="Show events since a time (RFC3339, Unix time) or duration (10m).")
@click.option("--until", default=None, help="Stream events until this time (without it: until interrupted).")
@click.option("-f", "--filter", "filters", multiple=True,
              help="Filter: container=, image=, event=, type=, label=, since=, until=.")
@click.option("--format", "fmt", default=None, help="'json' or a Go template ('{{json .}}', '{{.Action}}').")
@pass_settings
def events_cmd(settings: Settings, since: str | None, until: str | None, filters: tuple[str, ...],
               fmt: str | None) -> int:
    """Get real time events from containers and images."""
    from runner.events import parse_filters, parse_time, watch

    from .views import contexts as ctx
    from .views.events import EventFields, event_line

    from layers.events import Event
    from .template import TemplateError

    try:       # checked on an empty event first, as Docker does: a bad field fails before the stream
        template = ctx.template_for(fmt or None, "{{json .}}", plain=())
        if template is not None:
            template.execute(EventFields(Event("", "", "")))
    except TemplateError as exc:
        click.echo(f"Error parsing format: {exc}", err=True)
        return 64                      # Docker's status for a bad events format
    flt = parse_filters(filters)
    start = parse_time(since) if since else None
    end = parse_time(until, option="--until") if until else None
    try:
        for ev in watch(settings.root, since=start, until=end, flt=flt):
            click.echo(template.execute(EventFields(ev)) if template is not None else event_line(ev))
    except KeyboardInterrupt:          # Ctrl-C ends the stream, as it does Docker's
        return 0
    return 0


_REFUSED = ("--blkio-weight", "--cpu-rt-period", "--cpu-rt-runtime", "--cpu-shares", "--cpuset-cpus",
            "--cpuset-mems", "--kernel-memory", "--memory-reservation")


def _refuse(ctx: click.Context, param: click.Parameter, value):
    from layers.errors import InvalidInput

    if value is not None:
        raise InvalidInput(f"update {param.opts[0]}: pybuild cannot change this limit of a container "
                           f"(it can change --memory, --memory-swap, --cpus, --cpu-period, --cpu-quota, "
                           f"--pids-limit, --restart)")
    return value


def _refused(f):
    for opt in reversed(_REFUSED):
        f = click.option(opt, default=None, expose_value=False, callback=_refuse, hidden=True)(f)
    return f


@click.command("update")
@click.option("-m", "--memory", default=None, help="Memory limit (512m, 1g).")
@click.option("--memory-swap", default=None, help="Memory plus swap limit (at least --memory).")
@click.option("--cpus", type=float, default=None, help="Number of CPUs.")
@click.option("--cpu-period", type=int, default=None, help="CFS period in microseconds.")
@click.option("--cpu-quota", type=int, default=None, help="CFS quota in microseconds.")
@click.option("--pids-limit", type=int, default=None, help="Maximum number of processes (-1: unlimited).")
@click.option("--restart", default=None, help="Restart policy: no, on-failure[:N], always, unless-stopped.")
@_refused
@click.argument("containers", nargs=-1, required=True)
@pass_settings
def update_cmd(settings: Settings, memory: str | None, memory_swap: str | None, cpus: float | None,
               cpu_period: int | None, cpu_quota: int | None, pids_limit: int | None, restart: str | None,
               containers: tuple[str, ...]) -> int:
    """Update configuration of one or more containers."""
    from layers.errors import InvalidInput, PybuildError
    from runner.options import parse_bytes
    from runner.update import Limits, update

    from .cmd_containers import container_store

    limits = Limits(memory=parse_bytes(memory, "--memory") if memory else None,
                    memory_swap=(-1 if memory_swap == "-1" else parse_bytes(memory_swap, "--memory-swap"))
                    if memory_swap else None,
                    cpus=cpus, cpu_period=cpu_period, cpu_quota=cpu_quota, pids_limit=pids_limit, restart=restart)
    if limits.empty:
        raise InvalidInput("update: you must provide one or more flags when using this command")
    limits.check()
    store = container_store(settings)
    failed = 0
    for ref in containers:
        try:
            update(store, ref, limits)
        except PybuildError as exc:
            click.echo(f"pybuild: {exc}", err=True)
            failed += 1
            continue
        click.echo(ref)
    return 1 if failed else 0
