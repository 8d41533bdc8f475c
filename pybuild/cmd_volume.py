"""``pybuild volume create|ls|inspect|rm|prune``: a few lines each over :mod:`runner.volumes`."""

from __future__ import annotations

import json

import click

from .context import Settings, pass_settings

__all__ = ["volume_group"]


def _stores(settings: Settings):
    from runner.state import ContainerStore
    from runner.volumes import VolumeStore

    return VolumeStore(settings.root), ContainerStore(settings.root, settings.state_dir)


@click.group("volume")
def volume_group() -> None:
    """Manage named volumes."""


@volume_group.command("create")
@click.option("--label", "labels", multiple=True, help="KEY=VALUE metadata (repeatable).")
@click.argument("name", required=False)
@pass_settings
def create_cmd(settings: Settings, labels: tuple[str, ...], name: str | None) -> None:
    """Create a volume (a random name when none is given)."""
    from layers.errors import InvalidInput

    pairs = {}
    for item in labels:
        key, eq, value = item.partition("=")
        if not key or not eq:
            raise InvalidInput(f"--label {item!r}: expected KEY=VALUE")
        pairs[key] = value
    import os

    vols, _ = _stores(settings)
    click.echo(vols.create(name or os.urandom(32).hex(), pairs).name)


@volume_group.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only names.")
@click.option("--format", "fmt", default=None, help="'table', 'json', or a Go template ('{{.Name}} {{.Mountpoint}}').")
@pass_settings
def ls_cmd(settings: Settings, quiet: bool, fmt: str | None) -> None:
    """List volumes."""
    from .views import contexts as ctx

    template = ctx.template_for(fmt, ctx.VOLUME_TABLE, ("table", "json"))
    vols, _ = _stores(settings)
    listed = vols.list()
    if quiet:
        for v in listed:
            click.echo(v.name)
    elif fmt == "json":
        for v in listed:
            click.echo(json.dumps({"Name": v.name, "Driver": "local", "Mountpoint": v.path}))
    elif template is not None:
        for line in template.lines([ctx.VolumeFields(v.to_inspect()) for v in listed], ctx.VOLUME_TITLES):
            click.echo(line)
    else:
        click.echo(f"{'DRIVER':<10}VOLUME NAME")
        for v in listed:
            click.echo(f"{'local':<10}{v.name}")


@volume_group.command("inspect")
@click.option("-f", "--format", "fmt", default=None, help="Format each volume with a Go template ('{{.Mountpoint}}').")
@click.argument("names", nargs=-1, required=True)
@pass_settings
def inspect_cmd(settings: Settings, fmt: str | None, names: tuple[str, ...]) -> None:
    """Show volumes as JSON."""
    template = None
    if fmt and fmt.strip() != "json":         # Docker: "json" is the plain document
        from .template import Template

        template = Template(fmt)
    vols, _ = _stores(settings)
    docs = [vols.get(n).to_inspect() for n in names]
    if template is None:
        click.echo(json.dumps(docs, indent=2))
        return
    for d in docs:
        click.echo(template.execute(d))


@volume_group.command("rm")
@click.option("-f", "--force", is_flag=True, help="No error for a volume that does not exist.")
@click.argument("names", nargs=-1, required=True)
@pass_settings
def rm_cmd(settings: Settings, force: bool, names: tuple[str, ...]) -> int:
    """Remove volumes (refused while a container, running or not, refers to one)."""
    from layers.errors import NotFound, PybuildError
    from runner.resources import volume_users

    vols, cstore = _stores(settings)
    failed = False
    for n in names:
        try:
            vols.remove(n, lambda n=n: volume_users(cstore, n))
            click.echo(n)
        except NotFound:
            if not force:
                click.echo(f"pybuild: no such volume: {n}", err=True)
                failed = True
        except PybuildError as exc:
            click.echo(f"pybuild: {exc}", err=True)
            failed = True
    return 1 if failed else 0


@volume_group.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not ask (pybuild never asks; accepted for Docker's scripts).")
@pass_settings
def prune_cmd(settings: Settings, force: bool) -> None:
    """Remove every volume no container refers to."""
    from runner.resources import volume_users
    from runner.errors import VolumeInUse

    vols, cstore = _stores(settings)
    vols.sweep()
    removed = []
    for v in vols.list():
        try:
            vols.remove(v.name, lambda n=v.name: volume_users(cstore, n))
            removed.append(v.name)
        except VolumeInUse:
            continue
    for n in removed:
        click.echo(f"Deleted Volume: {n}")
    click.echo(f"Total volumes removed: {len(removed)}")
