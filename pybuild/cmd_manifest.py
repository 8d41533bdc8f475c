"""``pybuild manifest create|add|annotate|remove|rm|inspect|push``: manifest lists by hand, with
podman's and docker's verbs. The lists are index records in the local store
(:mod:`layers.store.manifests`); an image not in the store is pulled first (every platform), so a
list can be made of images already pushed, as ``docker manifest create`` does."""

from __future__ import annotations

import json
import os
import sys

import click

from .context import Settings, pass_settings

__all__ = ["manifest_group"]


@click.group("manifest")
def manifest_group() -> None:
    """Make, inspect and push manifest lists (image indexes)."""


def _pairs(values, option: str) -> tuple[tuple[str, str], ...]:
    out = []
    for v in values:
        key, eq, value = v.partition("=")
        if not key or not eq:
            raise click.BadParameter(f"{v!r}: expected KEY=VALUE", param_hint=option)
        out.append((key, value))
    return tuple(out)


def _present(settings: Settings, store, image: str) -> str:
    """``image`` as the store knows it: pulled (every platform) when it is not there yet."""
    from layers.errors import NotFound

    try:
        store.images.resolve(image)
    except NotFound:
        from .cmd_registry import pull_image

        pull_image(settings, store, image, all_platforms=True, quiet=True)
    return image


def _edit(os_name, arch, variant, os_version, os_features, annotations):
    from layers.store.manifests import EntryEdit

    return EntryEdit(os=os_name or "", architecture=arch or "", variant=variant or "", os_version=os_version or "",
                     os_features=tuple(os_features), annotations=_pairs(annotations, "--annotation"))


def _entry_options(f):
    for opt in reversed([
        click.option("--os", "os_name", default=None, help="Operating system of the entry."),
        click.option("--arch", default=None, help="Architecture of the entry."),
        click.option("--variant", default=None, help="Architecture variant of the entry."),
        click.option("--os-version", default=None, help="OS version of the entry."),
        click.option("--os-features", multiple=True, help="OS feature of the entry (repeatable)."),
        click.option("--annotation", "annotations", multiple=True, help="KEY=VALUE annotation on the entry."),
    ]):
        f = opt(f)
    return f


@manifest_group.command("create")
@click.argument("name")
@click.argument("images", nargs=-1)
@click.option("--amend", "-a", is_flag=True, help="Add to an existing list of that name.")
@click.option("--all", "all_", is_flag=True, help="Add every platform of an index (always done; accepted for podman).")
@click.option("--annotation", "annotations", multiple=True, help="KEY=VALUE annotation on the list.")
@click.option("--format", "fmt", type=click.Choice(["oci", "docker"]), default=None,
              help="OCI index or Docker manifest list (default: docker when every image is a Docker manifest).")
@click.option("--insecure", is_flag=True, help="Accepted for docker (use --insecure-registry HOST).")
@pass_settings
def manifest_create_cmd(settings: Settings, name: str, images, amend: bool, all_: bool, annotations, fmt,
                        insecure: bool) -> None:
    """Create a manifest list NAME from IMAGES (local, or pulled from their registry); print its digest."""
    from layers.store.manifests import create_index

    store = settings.store()
    index = create_index(store, name, [_present(settings, store, i) for i in images], amend=amend,
                         docker=None if fmt is None else fmt == "docker",
                         annotations=dict(_pairs(annotations, "--annotation")))
    click.echo(str(index.digest))


@manifest_group.command("add")
@click.argument("name")
@click.argument("image")
@_entry_options
@click.option("--all", "all_", is_flag=True, help="Add every platform of an index (always done; accepted for podman).")
@pass_settings
def manifest_add_cmd(settings: Settings, name: str, image: str, os_name, arch, variant, os_version, os_features,
                     annotations, all_: bool) -> None:
    """Add IMAGE (every platform of an index) to the manifest list NAME; print the list's digest."""
    from layers.store.manifests import add_to_index

    store = settings.store()
    edit = _edit(os_name, arch, variant, os_version, os_features, annotations)
    click.echo(str(add_to_index(store, name, _present(settings, store, image), edit).digest))


@manifest_group.command("annotate")
@click.argument("name")
@click.argument("image")
@_entry_options
@pass_settings
def manifest_annotate_cmd(settings: Settings, name: str, image: str, os_name, arch, variant, os_version, os_features,
                          annotations) -> None:
    """Set the platform or annotations of IMAGE's entry (an image name or the entry's digest) in list NAME."""
    from layers.store.manifests import annotate_index

    edit = _edit(os_name, arch, variant, os_version, os_features, annotations)
    click.echo(str(annotate_index(settings.store(), name, image, edit).digest))


@manifest_group.command("remove")
@click.argument("name")
@click.argument("digest")
@pass_settings
def manifest_remove_cmd(settings: Settings, name: str, digest: str) -> None:
    """Remove the entry DIGEST from the manifest list NAME (podman's ``manifest remove``)."""
    from layers.store.manifests import remove_from_index

    click.echo(str(remove_from_index(settings.store(), name, digest).digest))


@manifest_group.command("rm")
@click.argument("names", nargs=-1, required=True)
@pass_settings
def manifest_rm_cmd(settings: Settings, names) -> None:
    """Remove the local manifest lists NAMES (the images in them stay)."""
    from layers.store.manifests import load_index

    store = settings.store()
    for name in names:
        ref, _ = load_index(store, name)
        store.images.untag(ref)
        click.echo(f"Untagged: {ref.familiar}")


@manifest_group.command("inspect")
@click.argument("reference")
@click.option("--raw", is_flag=True, help="Print the bytes exactly as stored or as the registry sent them.")
@click.option("--verbose", "-v", is_flag=True, help="Accepted for docker (the document is printed whole).")
@click.option("--insecure", is_flag=True, help="Accepted for docker (use --insecure-registry HOST).")
@pass_settings
def manifest_inspect_cmd(settings: Settings, reference: str, raw: bool, verbose: bool, insecure: bool) -> None:
    """Print the manifest list REFERENCE names in the store, else the manifest or index on its registry."""
    from layers.errors import InvalidDocument, InvalidInput, NotFound
    from layers.reference import Reference

    data = None
    if os.path.isdir(settings.root):
        from layers.store.manifests import load_index

        try:
            data = load_index(settings.store(), reference)[1].raw
        except (NotFound, InvalidInput):
            data = None
    if data is None:
        from .cmd_registry import open_registry

        ref = Reference.parse(reference)
        with open_registry(settings, ref) as registry:
            data = registry.repository(ref.repository).get_manifest(ref.identifier).raw
    if raw:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        body = json.loads(data)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise InvalidDocument(f"manifest {reference}", "", f"the body is not JSON ({exc}); "
                              "--raw prints it as it is") from None
    click.echo(json.dumps(body, indent=3))


@manifest_group.command("push")
@click.argument("name")
@click.argument("destination", required=False)
@click.option("--all", "all_", is_flag=True, default=True, help="Push every image of the list (always done).")
@click.option("--rm", "--purge", "remove", is_flag=True, help="Remove the local list once pushed.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the pushed digest.")
@click.option("--digestfile", type=click.Path(dir_okay=False), default=None, help="Write the list's digest here.")
@click.option("--insecure", is_flag=True, help="Accepted for docker (use --insecure-registry HOST).")
@pass_settings
def manifest_push_cmd(settings: Settings, name: str, destination: str | None, all_: bool, remove: bool, quiet: bool,
                      digestfile: str | None, insecure: bool) -> None:
    """Push the manifest list NAME and every image in it (to DESTINATION, default NAME)."""
    from layers.reference import Reference
    from layers.store.manifests import load_index
    from registry_client.progress import make_progress
    from registry_client.push import PushOptions, push

    from .cmd_registry import open_registry

    store = settings.store()
    with store.lease():
        ref, index = load_index(store, name)
        target = Reference.parse(destination) if destination else ref
        with open_registry(settings, target) as registry:
            result = push(store, registry.repository(target.repository), index, target, PushOptions(),
                          make_progress(sys.stderr, quiet=quiet))
    if remove:
        store.images.untag(ref)
    if digestfile:
        with open(digestfile, "w") as fh:
            fh.write(f"{result.digest}\n")
    click.echo(str(result.digest))
