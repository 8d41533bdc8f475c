"""``info`` and ``version`` (also ``system info``): what pybuild is, what the host offers its
sandbox, and how many containers and images the store holds, in Docker's shapes."""

from __future__ import annotations

import click

from .context import Settings, pass_settings

__all__ = ["info_cmd", "version_cmd"]


def _template(fmt: str | None):
    """The parsed ``--format`` (``None`` for the default text), parsed before any work is done."""
    from .template import Template

    template = Template(fmt) if fmt else None
    return None if template is not None and template.is_table else template


def _echo(template, doc: dict, text: str, extra: dict) -> None:
    """``doc`` through ``template``; without one, the default ``text`` template over ``doc`` and ``extra``."""
    from .template import Template

    if template is None:
        click.echo(Template(text).execute({**doc, **extra}))
    elif template.is_json:
        import json

        click.echo(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
    else:
        click.echo(template.execute(doc))


@click.command("info")
@click.option("-f", "--format", "fmt", default=None, help="Format the output with a Go template ('{{json .}}').")
@pass_settings
def info_cmd(settings: Settings, fmt: str | None) -> None:
    """Display system-wide information: counts, storage, cgroups, security options, host."""
    from runner.info import container_counts, host_facts
    from runner.network.rootless import describe
    from runner.overlaykind import overlay_kind
    from runner.procsandbox import choose
    from runner.upperfs import upper_dir_message
    from runner.userns import current

    from .cmd_containers import container_store
    from .views.contexts import bytes_size
    from .views.system import INFO_TEXT, info_document

    template = _template(fmt)
    images = len({s.record.id for s in settings.store().images.summaries(None)})
    doc = info_document(host_facts(), container_counts(container_store(settings)), images, settings.root,
                        settings.state_dir, current(), overlay_kind(), choose("auto"), upper_dir_message(settings.root),
                        describe(settings.root))
    _echo(template, doc, INFO_TEXT, {"MemTotalText": bytes_size(doc["MemTotal"])})


@click.command("version")
@click.option("-f", "--format", "fmt", default=None, help="Format the output with a Go template ('{{json .}}').")
def version_cmd(fmt: str | None) -> None:
    """Show pybuild's version, the runtime's, and the host's OS and architecture."""
    from runner.info import host_facts

    from .views.system import VERSION_TEXT, version_document

    _echo(_template(fmt), version_document(host_facts()), VERSION_TEXT, {})
