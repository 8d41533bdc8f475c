"""Image and store commands: import, images, tag, rmi, inspect, history, save, load, system df/prune, fsck.

Each command is options in, one library call (``layers.store``, ``builder.cache`` for the build
cache), output out; renderings are in :mod:`pybuild.views.images`. Nothing here imports httpx,
cryptography or pyroute2 (``inspect --remote`` and container inspection load theirs lazily).
"""

from __future__ import annotations

import json
import os
import sys

import click

from .context import Settings, pass_settings

__all__ = ["import_cmd", "images_cmd", "tag_cmd", "rmi_cmd", "inspect_cmd", "history_cmd", "save_cmd",
           "load_cmd", "system_df_cmd", "system_prune_cmd", "fsck_cmd"]


def _echo_table(rows) -> None:
    from .views.images import table

    for line in table(rows):
        click.echo(line)


# -- import ----------------------------------------------------------------------------------------


@click.command("import")
@click.argument("source")
@click.argument("name")
@click.option("--change", "-c", "changes", multiple=True,
              help="Dockerfile instruction to apply: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, "
              "STOPSIGNAL, USER, VOLUME, WORKDIR.")
@click.option("--message", "-m", default="", help="Commit message for the layer's history.")
@click.option("--compression", type=click.Choice(["gzip", "zstd", "none"]), default="gzip", show_default=True)
@click.option("--platform", default=None, help="os/arch[/variant] to record in the config (default: this host).")
@pass_settings
def import_cmd(settings: Settings, source: str, name: str, changes: tuple[str, ...], message: str,
               compression: str, platform: str | None) -> None:
    """Create an image NAME[:TAG] from a root filesystem tarball (SOURCE: .tar, .tar.gz, .tar.zst, or - for stdin)."""
    from builder.changes import apply_changes
    from layers.descriptor import Platform
    from layers.errors import NotFound, StoreError
    from layers.reference import Reference
    from layers.store.importer import import_rootfs

    ref = Reference.parse(name)
    plat = Platform.parse(platform) if platform else None
    edit = (lambda config: apply_changes(config, changes)) if changes else None
    if source == "-":
        stream = sys.stdin.buffer
    else:
        try:
            stream = open(source, "rb")
        except FileNotFoundError:
            raise NotFound(f"import: {source}: no such file") from None
        except OSError as exc:
            raise StoreError(f"import: {source}: {exc.strerror}") from None
    store = settings.store()
    try:
        result = import_rootfs(store, stream, ref, edit=edit, message=message,
                               compression=None if compression == "none" else compression, source=source,
                               platform=plat)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    click.echo(str(result.config.digest))


# -- images ----------------------------------------------------------------------------------------


@click.command("images")
@click.argument("repository", required=False)
@click.option("--quiet", "-q", is_flag=True, help="Only show image ids.")
@click.option("--format", "fmt", default=None,
              help="'table', 'json', or a Go template ('table {{.Repository}}\\t{{.Tag}}', '{{json .}}').")
@click.option("--no-trunc", is_flag=True, help="Show full image ids.")
@click.option("--digests", is_flag=True, help="Show manifest digests.")
@click.option("--filter", "-f", "filters", multiple=True,
              help="Filter: reference=GLOB, dangling=true|false, label=KEY[=VALUE], before=IMAGE, since=IMAGE.")
@pass_settings
def images_cmd(settings: Settings, repository: str | None, quiet: bool, fmt: str | None, no_trunc: bool,
               digests: bool, filters: tuple[str, ...]) -> None:
    """List images."""
    from layers.store.imagefilter import filter_images, parse_image_filters

    from .views import contexts as ctx
    from .views import images as view

    template = ctx.template_for(fmt, ctx.IMAGES_TABLE)
    wanted = parse_image_filters(filters)
    images = settings.store().images
    listed = filter_images(images, images.summaries(repository), wanted)
    if quiet:
        for ident in dict.fromkeys(str(s.record.id) if no_trunc else s.record.id.short for s in listed):
            click.echo(ident)
    elif template is not None:
        rows = [ctx.ImageFields(s.record, s.created, s.size, trunc=not no_trunc, platforms=s.platforms,
                                missing=s.missing, entries=s.entries) for s in listed]
        for line in template.lines(rows, ctx.IMAGE_TITLES):
            click.echo(line)
    else:  # an index is one entry; a PLATFORMS column names its platforms when the list holds one
        multi = any(s.platforms or s.missing for s in listed)
        head = view.images_head(digests) + (["PLATFORMS"] if multi else [])
        _echo_table([head] + [view.image_row(s.record, s.created, s.size, no_trunc=no_trunc, digests=digests)
                              + ([view.platforms_cell(s.platforms, s.missing)] if multi else []) for s in listed])


# -- tag / rmi -------------------------------------------------------------------------------------


@click.command("tag")
@click.argument("source")
@click.argument("target")
@pass_settings
def tag_cmd(settings: Settings, source: str, target: str) -> None:
    """Give the image SOURCE the name TARGET[:TAG]."""
    from layers.errors import InvalidReference
    from layers.reference import Reference

    ref = Reference.parse(target)
    if ref.digest is not None:
        raise InvalidReference(f"tag: {target!r} names a digest; a tag target is NAME[:TAG]")
    store = settings.store()
    store.images.tag(ref, store.images.resolve(source).manifest_digest)


@click.command("rmi")
@click.argument("images", nargs=-1, required=True)
@click.option("--force", "-f", is_flag=True, help="Remove every name of an image given by id, even if a container uses it.")
@pass_settings
def rmi_cmd(settings: Settings, images: tuple[str, ...], force: bool) -> None:
    """Remove images (names); their content goes once nothing else references it."""
    from layers.store.removal import remove_images

    from .views.images import familiar

    result = remove_images(settings.store(), images, force=force)
    for removed in result.removed:
        for name in removed.untagged:
            click.echo(f"Untagged: {familiar(name)}")
    for digest in result.deleted:
        click.echo(f"Deleted: {digest}")
    if len(images) > 1:
        for failed in result.failed:
            click.echo(f"pybuild: {failed.error}", err=True)
    error = result.error()
    if error is not None:
        raise error


# -- inspect / history -----------------------------------------------------------------------------


def _inspect_container(settings: Settings, name: str) -> dict:
    from runner.details import details

    from .cmd_containers import container_store
    from .views.containers import inspect_document

    return inspect_document(details(container_store(settings), name))


@click.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("--type", "kind", type=click.Choice(["image", "container", "any"]), default="any", show_default=True)
@click.option("--remote", is_flag=True, help="Inspect the image in its registry without pulling (skopeo inspect shape).")
@click.option("--format", "-f", "fmt", default=None,
              help="Format each document with a Go template ('{{.State.Status}}', '{{json .Config}}').")
@pass_settings
def inspect_cmd(settings: Settings, names: tuple[str, ...], kind: str, remote: bool, fmt: str | None) -> None:
    """Show low-level information on images (or containers) as JSON."""
    from layers.errors import NotFound

    from .views.images import image_document

    template = None
    if fmt and fmt.strip() != "json":             # Docker: "json" is the plain document
        from .template import Template

        template = Template(fmt)
    docs = []
    if remote:
        from .cmd_registry import inspect_remote

        docs = [inspect_remote(settings, n) for n in names]
    else:
        store = settings.store()
        for n in names:
            # Docker's order: a container of that name or id first, then an image (a short name
            # like "db" is also a prefix of image ids)
            if kind in ("container", "any"):
                try:
                    docs.append(_inspect_container(settings, n))
                    continue
                except NotFound:
                    if kind == "container":
                        raise
            try:
                rec = store.images.resolve(n)
                docs.append(image_document(store.images.load(rec), rec, store.images.records_for(rec.id)))
            except NotFound:
                if kind == "image":
                    raise
                raise NotFound(f"no such image or container: {n}") from None
    if template is not None:
        for d in docs:
            click.echo(template.execute(d))
        return
    click.echo(json.dumps(docs if not remote or len(docs) != 1 else docs[0], indent=4))


@click.command("history")
@click.argument("image")
@click.option("--no-trunc", is_flag=True)
@click.option("--quiet", "-q", is_flag=True)
@click.option("--format", "fmt", default=None,
              help="'table', 'json', or a Go template ('{{.ID}}: {{.CreatedBy}}').")
@pass_settings
def history_cmd(settings: Settings, image: str, no_trunc: bool, quiet: bool, fmt: str | None) -> None:
    """Show the history of an image, newest first."""
    from .views import contexts as ctx
    from .views import images as view

    template = ctx.template_for(fmt, ctx.HISTORY_TABLE, ("table", "json"))
    store = settings.store()
    rows = view.history_rows(store.images.load(store.images.resolve(image)), no_trunc=no_trunc)
    if quiet:
        for ident, *_ in rows:
            click.echo(ident)
    elif fmt == "json":
        for ident, h, diff_id, size in rows:
            click.echo(json.dumps(view.history_json(ident, h, diff_id, size), sort_keys=True))
    elif template is not None:
        for line in template.lines([ctx.HistoryFields(r, trunc=not no_trunc) for r in rows], ctx.HISTORY_TITLES):
            click.echo(line)
    else:
        _echo_table([view.HISTORY_HEAD] + [view.history_line(ident, h, size, no_trunc=no_trunc)
                                           for ident, h, _d, size in rows])


# -- save / load -------------------------------------------------------------------------------------


@click.command("save")
@click.argument("images", nargs=-1, required=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write to this file (default: stdout).")
@pass_settings
def save_cmd(settings: Settings, images: tuple[str, ...], output: str | None) -> None:
    """Save images to a tar archive: an OCI image layout plus Docker's manifest.json."""
    from layers.atomic import atomic_writer
    from layers.store.archives import save_images

    store = settings.store()
    if output is None and sys.stdout.isatty():
        raise click.UsageError("refusing to write a tar archive to a terminal; use -o FILE or redirect")
    _complete(settings, store, images, "save")
    if output is None:
        save_images(store, images, sys.stdout.buffer)
        return
    with atomic_writer(os.path.abspath(output), 0o644) as f:
        save_images(store, images, f)


def _complete(settings: Settings, store, names, purpose: str) -> None:
    """Layers known only lazily (a registry build cache hit) come down first, verified, as Docker does."""
    from registry_client.cache import complete_images
    from registry_client.transport import TransportConfig

    complete_images(store, names, TransportConfig(insecure_registries=settings.insecure_registries,
                                                  tls_ca=settings.tls_ca), purpose)


@click.command("load")
@click.option("--input", "-i", "source", type=click.Path(), default="-", help="Archive or OCI layout dir (default: stdin).")
@click.option("--quiet", "-q", is_flag=True)
@pass_settings
def load_cmd(settings: Settings, source: str, quiet: bool) -> None:
    """Load images from an OCI layout (tar or directory) or a docker-archive tar."""
    from layers.store.archives import load_images

    from .views.images import familiar

    for loaded in load_images(settings.store(), sys.stdin.buffer if source == "-" else source):
        for name in loaded.names if not quiet else ():
            click.echo(f"Loaded image: {familiar(name)}")


# -- system ----------------------------------------------------------------------------------------


@click.command("df")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_settings
def system_df_cmd(settings: Settings, fmt: str) -> None:
    """Show disk usage of the store."""
    from layers.store.usage import disk_usage

    from .views import images as view

    store = settings.store()
    usage = disk_usage(store)
    rows = [usage.images, usage.snapshots, _containers_usage_from_dirs(store.root), _volumes_usage(settings, store.root),
            _build_cache_usage_from_dirs(store.root), usage.ingest]
    if fmt == "json":
        for u in rows:
            click.echo(json.dumps(view.df_json(u)))
    else:
        _echo_table(view.df_rows(rows))


def _containers_usage_from_dirs(root: str):
    """The Containers line of ``system df``, measured by walking ``<root>/containers`` (the runner's
    folders; it has no usage API yet)."""
    from layers.store.space import tree_size
    from layers.store.usage import DiskUsage

    cdir = os.path.join(root, "containers")
    count = len(os.listdir(cdir)) if os.path.isdir(cdir) else 0
    return DiskUsage("Containers", count, count, tree_size(cdir), 0)


def _volumes_usage(settings: Settings, root: str):
    """The Local Volumes line: the runner's volumes, their sizes, and which a container uses."""
    from layers.store.space import tree_size
    from layers.store.usage import DiskUsage
    from runner.containers import volume_users
    from runner.state import ContainerStore
    from runner.volumes import VolumeStore

    cstore = ContainerStore(root, settings.state_dir)
    volumes = [(tree_size(v.path), bool(volume_users(cstore, v.name))) for v in VolumeStore(root).list()]
    return DiskUsage("Local Volumes", len(volumes), sum(used for _, used in volumes), sum(s for s, _ in volumes),
                     sum(s for s, used in volumes if not used))


def _build_cache_usage_from_dirs(root: str):
    """The Build cache line, measured by walking ``<root>/cache`` (the builder's folders; it has no
    usage API yet)."""
    from layers.store.space import tree_size
    from layers.store.usage import DiskUsage

    entries = sum(len(files) for _d, _s, files in os.walk(os.path.join(root, "cache", "keys")))
    return DiskUsage("Build cache", entries, 0, tree_size(os.path.join(root, "cache")), 0)


@click.command("prune")
@click.option("--all", "-a", "all_images", is_flag=True, help="Also remove every image no container uses.")
@click.option("--force", "-f", is_flag=True, help="Accepted for Docker compatibility; pybuild does not prompt.")
@pass_settings
def system_prune_cmd(settings: Settings, all_images: bool, force: bool) -> None:
    """Remove unreferenced blobs, snapshots and partial ingests (-a: and unused images)."""
    from builder.cache import prune, reap_stale_build_dirs
    from layers.store.removal import prune_dangling, untag_unused

    from .views.images import familiar, human_size

    store = settings.store()
    for image_id in prune_dangling(store):
        click.echo(f"Deleted: {image_id}")
    if all_images:
        for name in untag_unused(store):
            click.echo(f"Untagged: {familiar(name)}")
        freed = prune(store.root)
        if freed:
            click.echo(f"Deleted build cache: {human_size(freed)}")
    reaped = reap_stale_build_dirs(store.root)
    if reaped:
        click.echo(f"Deleted work directories of killed builds: {reaped}")
    result = store.gc()
    for d in result.blobs_removed:
        click.echo(f"Deleted: {d}")
    for s in result.snapshots_removed:
        click.echo(f"Deleted snapshot: {s}")
    click.echo(f"Total reclaimed space: {human_size(result.bytes_freed)}")


# -- fsck ------------------------------------------------------------------------------------------


@click.command("fsck")
@click.option("--repair", is_flag=True, help="After reporting, remove corrupt blobs, broken image records, incomplete "
              "snapshots and everything unreferenced (never fetches anything).")
@pass_settings
def fsck_cmd(settings: Settings, repair: bool) -> None:
    """Check every blob against its name, every image record's references and every snapshot."""
    store = settings.store()
    report = store.fsck(repair=repair)
    stale = _killed_build_dirs_from_dirs(store.root)
    if stale:
        report.notes.append(f"{stale} work director{'y' if stale == 1 else 'ies'} of killed builds in "
                            f"{os.path.join(store.root, 'tmp')} (system prune removes them)")
        if repair:
            from builder.cache import reap_stale_build_dirs

            reaped = reap_stale_build_dirs(store.root)
            if reaped:
                report.removed.append(f"removed {reaped} work directories of killed builds")
    for p in report.problems:
        click.echo(f"problem: {p}")
    for n in report.notes:
        click.echo(f"note: {n}")
    for r in report.repaired:
        click.echo(f"repaired: {r}")
    for r in report.removed:
        click.echo(f"removed: {r.removeprefix('removed ')}")
    state = "ok" if not report.problems else ("repaired" if report.ok else "BROKEN")
    click.echo(f"{report.blobs} blobs, {report.records} images, {report.snapshots} snapshots: {state}")
    if not report.ok:
        from layers.errors import IntegrityError

        raise IntegrityError(f"store {store.root}: {len(report.problems)} problem(s) found (see above; --repair removes them)")


def _killed_build_dirs_from_dirs(root: str) -> int:
    """How many ``<root>/tmp/build-*`` work dirs have no live build process, read from the builder's
    folders (its ``pid`` files): a read-only count for fsck's note until the builder offers one."""
    base = os.path.join(root, "tmp")
    try:
        names = [n for n in os.listdir(base) if n.startswith("build-")]
    except FileNotFoundError:
        return 0
    stale = 0
    for name in names:
        try:
            with open(os.path.join(base, name, "pid")) as f:
                os.kill(int(f.read().strip() or 0), 0)
        except (OSError, ValueError):  # no pid file, a bad one, or the process is gone
            stale += 1
    return stale
