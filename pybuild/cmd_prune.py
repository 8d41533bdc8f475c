"""``pybuild image prune``: remove what no image name keeps (``-a``: and every image no container uses)."""

from __future__ import annotations

import click

from .context import Settings, pass_settings

__all__ = ["image_prune_cmd"]


@click.command("prune")
@click.option("-a", "--all", "all_images", is_flag=True, help="Remove all unused images, not just dangling ones.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation (pybuild never prompts).")
@pass_settings
def image_prune_cmd(settings: Settings, all_images: bool, force: bool) -> None:
    """Remove dangling images (those without a name, and content no name keeps); with -a, also every
    image no container uses."""
    from layers.store.removal import prune_dangling, untag_unused

    from .views.images import familiar, human_size

    store = settings.store()
    unnamed = prune_dangling(store)
    untagged = untag_unused(store) if all_images else ()
    result = store.gc()
    if untagged or result.blobs_removed or unnamed:
        click.echo("Deleted Images:")
        for name in untagged:
            click.echo(f"untagged: {familiar(name)}")
        for digest in dict.fromkeys(list(unnamed) + list(result.blobs_removed)):
            click.echo(f"deleted: {digest}")
        click.echo("")
    click.echo(f"Total reclaimed space: {human_size(result.bytes_freed)}")
