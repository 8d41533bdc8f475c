"""Image and store commands: import, images, tag, rmi, inspect, history, save, load, system df/prune, fsck.

Each command is a few lines over ``layers.store``; nothing here imports httpx, cryptography or
pyroute2 (``inspect --remote`` and container inspection load theirs lazily).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone

import click

from .context import Settings, pass_settings

__all__ = ["import_cmd", "images_cmd", "tag_cmd", "rmi_cmd", "inspect_cmd", "history_cmd", "save_cmd",
           "load_cmd", "system_group", "fsck_cmd"]


# -- formatting helpers -----------------------------------------------------------------------------


def human_size(n: float) -> str:
    """Docker's decimal sizes: ``4.26MB``, ``512B``."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}B"  # unreachable


def human_ago(created: str) -> str:
    if not created:
        return "N/A"
    try:
        when = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return created
    secs = max(0, int((datetime.now(timezone.utc) - when).total_seconds()))
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400), ("day", 86400),
                       ("hour", 3600), ("minute", 60)):
        if secs >= size:
            k = secs // size
            return f"{k} {unit}{'s' if k > 1 else ''} ago"
    return "Less than a minute ago" if secs >= 1 else "Less than a second ago"


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _split_name(name: str | None) -> tuple[str, str, str]:
    """``(repository, tag, digest)`` as ``docker images`` shows them."""
    from layers.reference import Reference

    if not name:
        return "<none>", "<none>", ""
    ref = Reference.parse(name)
    return ref.familiar_name, ref.tag or "<none>", str(ref.digest) if ref.digest else ""


# -- import ----------------------------------------------------------------------------------------


@click.command("import")
@click.argument("source")
@click.argument("name")
@click.option("--change", "-c", "changes", multiple=True,
              help="Dockerfile instruction to apply: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME.")
@click.option("--message", "-m", default="", help="Commit message for the layer's history.")
@click.option("--compression", type=click.Choice(["gzip", "zstd", "none"]), default="gzip", show_default=True)
@click.option("--platform", default=None, help="os/arch[/variant] to record in the config (default: this host).")
@pass_settings
def import_cmd(settings: Settings, source: str, name: str, changes: tuple[str, ...], message: str,
               compression: str, platform: str | None) -> None:
    """Create an image NAME[:TAG] from a root filesystem tarball (SOURCE: .tar, .tar.gz, .tar.zst, or - for stdin)."""
    from layers.descriptor import Platform
    from layers.errors import NotFound, StoreError
    from layers.reference import Reference
    from layers.store.importer import import_rootfs

    ref = Reference.parse(name)
    plat = Platform.parse(platform) if platform else None
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
        result = import_rootfs(store, stream, ref, changes=changes, message=message,
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
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--no-trunc", is_flag=True, help="Show full image ids.")
@click.option("--digests", is_flag=True, help="Show manifest digests.")
@pass_settings
def images_cmd(settings: Settings, repository: str | None, quiet: bool, fmt: str, no_trunc: bool,
               digests: bool) -> None:
    """List images."""
    from layers.errors import PybuildError

    store = settings.store()
    rows = []
    for rec in store.images.list():
        repo, tag, _dig = _split_name(rec.name)
        if repository and repository not in (repo, rec.reference.name if rec.reference else ""):
            continue
        try:
            image = store.images.load(rec)
            created, size = image.config.created, image.size
        except PybuildError:
            created, size = "", 0  # fsck reports it; the list still shows the name
        rows.append((rec, repo, tag, created, size))
    if quiet:
        seen = []
        for rec, *_ in rows:
            ident = str(rec.id) if no_trunc else rec.id.short
            if ident not in seen:
                seen.append(ident)
                click.echo(ident)
        return
    if fmt == "json":
        for rec, repo, tag, created, size in rows:
            click.echo(json.dumps({"Repository": repo, "Tag": tag, "ID": str(rec.id),
                                   "Digest": str(rec.manifest_digest), "CreatedAt": created,
                                   "Size": size, "Names": [rec.name]}, sort_keys=True))
        return
    head = ["REPOSITORY", "TAG"] + (["DIGEST"] if digests else []) + ["IMAGE ID", "CREATED", "SIZE"]
    table = [head]
    for rec, repo, tag, created, size in rows:
        table.append([repo, tag] + ([str(rec.manifest_digest)] if digests else [])
                     + [str(rec.id) if no_trunc else rec.id.short, human_ago(created), human_size(size)])
    _table(table)


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
    rec = store.images.resolve(source)
    store.images.tag(ref, rec.manifest_digest)


def _container_users(store) -> set:
    from layers.store.gc import container_roots

    return container_roots(store.root)


@click.command("rmi")
@click.argument("images", nargs=-1, required=True)
@click.option("--force", "-f", is_flag=True, help="Remove every name of an image given by id, even if a container uses it.")
@pass_settings
def rmi_cmd(settings: Settings, images: tuple[str, ...], force: bool) -> None:
    """Remove images (names); their content goes once nothing else references it."""
    from layers.errors import AlreadyExists, PybuildError
    from layers.reference import Reference

    store = settings.store()
    failed = []
    first_error: PybuildError | None = None
    removed_ids = set()
    for text in images:
        try:
            rec = store.images.resolve(text)
            used = _container_users(store)
            by_name = rec.name is not None and _is_name(text, rec.name, Reference)
            names = [rec.name] if by_name else store.images.names_for(rec.id)
            if not by_name and len(names) > 1 and not force:
                raise AlreadyExists(f"image {rec.id.short} is referenced by {len(names)} names "
                                    f"({', '.join(names[:3])}); remove by name or use -f")
            remaining = [r for r in store.images.list() if r.id == rec.id and r.name not in names]
            if not remaining and not force and (rec.id in used or rec.manifest_digest in used):
                raise AlreadyExists(f"image {text} is used by a container; stop and remove it first, or use -f")
            store.images.remove_names(names)
            for n in names:
                click.echo(f"Untagged: {_familiar(n)}")
            if not remaining:
                removed_ids.add(rec.id)
        except PybuildError as exc:
            if len(images) == 1:
                first_error = exc  # one image: its own error is the one line (after any GC below)
            else:
                click.echo(f"pybuild: {exc}", err=True)
            failed.append(text)
    if removed_ids:
        from layers.errors import StoreError

        try:
            # partial pulls stay resumable; GC waits only for commits in progress (never whole builds)
            result = store.gc(timeout=10, ingests=False)
        except StoreError:
            result = None  # the store stayed busy: `system prune` frees the space later
        for d in sorted(removed_ids):
            if result is not None and d in result.blobs_removed:
                click.echo(f"Deleted: {d}")
    if first_error is not None:
        raise first_error
    if failed:
        # click's Exit is swallowed by standalone_mode=False in cli.main, so fail with our own error
        raise PybuildError(f"{len(failed)} of {len(images)} images not removed: {', '.join(failed)}")


def _is_name(text: str, name: str, Reference) -> bool:
    from layers.errors import InvalidInput

    try:
        return str(Reference.parse(text)) == name
    except InvalidInput:
        return False


def _familiar(name: str) -> str:
    from layers.reference import Reference

    return Reference.parse(name).familiar


# -- inspect / history -----------------------------------------------------------------------------


def image_document(store, rec) -> dict:
    """The Docker-like ``inspect`` document of one image record."""
    image = store.images.load(rec)
    cfg = image.config
    names = store.images.names_for(rec.id)
    tags, digests = [], []
    from layers.reference import Reference

    for n in names:
        ref = Reference.parse(n)
        if ref.tag and not ref.digest:
            tags.append(ref.familiar)
        digests.append(f"{ref.familiar_name}@{rec.manifest_digest}")
    last = cfg.history[-1] if cfg.history else None
    return {
        "Id": str(image.id),
        "RepoTags": tags,
        "RepoDigests": sorted(set(digests)),
        "Parent": "",
        "Comment": last.comment if last else "",
        "Created": cfg.created,
        "Author": cfg.author,
        "Config": cfg.config.to_dict(),
        "Architecture": cfg.architecture,
        "Os": cfg.os,
        **({"Variant": cfg.variant} if cfg.variant else {}),
        "Size": image.size,
        "RootFS": {"Type": cfg.rootfs.type, "Layers": [str(d) for d in cfg.diff_ids]},
        "Descriptor": {"mediaType": image.manifest.media_type, "digest": str(image.manifest.digest),
                       "size": image.manifest.size},
        **({"Index": {"mediaType": image.index.media_type, "digest": str(image.index.digest)}}
           if image.index is not None else {}),
        "Layers": [{"mediaType": d.media_type, "digest": str(d.digest), "size": d.size} for d in image.layers],
        "Metadata": {"LastTagTime": datetime.fromtimestamp(rec.created, timezone.utc).isoformat()
                     if rec.created else ""},
    }


def _inspect_container(settings: Settings, name: str) -> dict:
    from runner.details import details

    from .cmd_containers import container_store
    from .views.containers import inspect_document

    return inspect_document(details(container_store(settings), name))


@click.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("--type", "kind", type=click.Choice(["image", "container", "any"]), default="any", show_default=True)
@click.option("--remote", is_flag=True, help="Inspect the image in its registry without pulling (skopeo inspect shape).")
@click.option("--format", "-f", "fmt", default=None, help="Print only this top-level field ('{{.Id}}' or 'Id').")
@pass_settings
def inspect_cmd(settings: Settings, names: tuple[str, ...], kind: str, remote: bool, fmt: str | None) -> None:
    """Show low-level information on images (or containers) as JSON."""
    from layers.errors import NotFound

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
                docs.append(image_document(store, store.images.resolve(n)))
            except NotFound:
                if kind == "image":
                    raise
                raise NotFound(f"no such image or container: {n}") from None
    if fmt:
        key = fmt.strip().removeprefix("{{").removesuffix("}}").strip().removeprefix(".")
        for d in docs:
            value = d
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            click.echo(value if isinstance(value, str) else json.dumps(value))
        return
    click.echo(json.dumps(docs if not remote or len(docs) != 1 else docs[0], indent=4))


@click.command("history")
@click.argument("image")
@click.option("--no-trunc", is_flag=True)
@click.option("--quiet", "-q", is_flag=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_settings
def history_cmd(settings: Settings, image: str, no_trunc: bool, quiet: bool, fmt: str) -> None:
    """Show the history of an image, newest first."""
    store = settings.store()
    rec = store.images.resolve(image)
    img = store.images.load(rec)
    sizes = {d: layer.size for d, layer in zip(img.config.diff_ids, img.manifest.layers)}
    entries = list(reversed(img.config.layer_history()))
    rows = [["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]]
    for i, (h, diff_id) in enumerate(entries):
        ident = (str(img.id) if no_trunc else img.id.short) if i == 0 else "<missing>"
        size = sizes.get(diff_id, 0) if diff_id else 0
        if quiet:
            click.echo(ident)
            continue
        if fmt == "json":
            click.echo(json.dumps({"ID": ident, "CreatedAt": h.created, "CreatedBy": h.created_by,
                                   "Size": size, "Comment": h.comment, "EmptyLayer": h.empty_layer,
                                   "DiffID": str(diff_id) if diff_id else None}, sort_keys=True))
            continue
        by = h.created_by if no_trunc or len(h.created_by) <= 45 else h.created_by[:44] + "…"
        rows.append([ident, human_ago(h.created), by, human_size(size), h.comment])
    if fmt == "table" and not quiet:
        _table(rows)


# -- save / load -------------------------------------------------------------------------------------


@click.command("save")
@click.argument("images", nargs=-1, required=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write to this file (default: stdout).")
@pass_settings
def save_cmd(settings: Settings, images: tuple[str, ...], output: str | None) -> None:
    """Save images to a tar archive: an OCI image layout plus Docker's manifest.json."""
    from layers.atomic import atomic_writer
    from layers.layout import ArchiveImage, write_archive
    from layers.manifest import parse_document
    from layers.reference import Reference

    store = settings.store()
    todo: dict[str, tuple] = {}
    for text in images:
        rec = store.images.resolve(text)
        doc = parse_document(store.blobs.read_bytes(rec.manifest_digest, 8 << 20))
        names = [Reference.parse(rec.name)] if rec.name and Reference.parse(rec.name).tag else []
        key = str(rec.manifest_digest)
        prev = todo.get(key)
        todo[key] = (doc, (prev[1] if prev else []) + [n for n in names if prev is None or n not in prev[1]])
    archive = [ArchiveImage(doc, tuple(names)) for doc, names in todo.values()]
    if output is None:
        if sys.stdout.isatty():
            raise click.UsageError("refusing to write a tar archive to a terminal; use -o FILE or redirect")
        write_archive(sys.stdout.buffer, archive, store.blobs)
        return
    with atomic_writer(os.path.abspath(output), 0o644) as f:
        write_archive(f, archive, store.blobs)


@click.command("load")
@click.option("--input", "-i", "source", type=click.Path(), default="-", help="Archive or OCI layout dir (default: stdin).")
@click.option("--quiet", "-q", is_flag=True)
@pass_settings
def load_cmd(settings: Settings, source: str, quiet: bool) -> None:
    """Load images from an OCI layout (tar or directory) or a docker-archive tar."""
    from layers import layout
    from layers.errors import InvalidInput, NotFound
    from layers.reference import Reference

    store = settings.store()
    with store.lease():
        if source == "-":
            loaded = layout.read_archive(sys.stdin.buffer, store.blobs)
        else:
            if not os.path.exists(source):
                raise NotFound(f"load: {source}: no such file or directory")
            loaded = layout.read_path(source, store.blobs)
        for img in loaded:
            names = list(img.names)
            for rn in (img.ref_names if not names else ()):
                try:
                    names.append(str(Reference.parse(rn if (":" in rn or "/" in rn) else f"localhost/{rn}")))
                except InvalidInput:
                    continue
            if not names:
                names = [f"localhost/{img.config.digest.short}:latest"]
            for n in dict.fromkeys(names):
                store.images.tag(n, img.manifest.digest)
                if not quiet:
                    click.echo(f"Loaded image: {_familiar(n)}")


# -- system ----------------------------------------------------------------------------------------


@click.group("system")
def system_group() -> None:
    """Manage the local store."""


@system_group.command("df")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_settings
def system_df_cmd(settings: Settings, fmt: str) -> None:
    """Show disk usage of the store."""
    from layers.store.gc import container_roots, mark
    from layers.store.space import tree_size

    store = settings.store()
    records = store.images.list()
    used = container_roots(store.root)
    marks = mark(store)
    blob_total = blob_reclaim = 0
    for d in store.blobs.digests():
        size = os.stat(store.blobs.path(d)).st_size
        blob_total += size
        if d not in marks.blobs:
            blob_reclaim += size
    snaps = store.snapshots.list()
    keep = {d.hex for d in marks.diff_ids}
    snap_total = snap_reclaim = 0
    for name, _ready in snaps:
        size = tree_size(os.path.join(store.snapshots.base, name))
        snap_total += size
        if name not in keep:
            snap_reclaim += size
    ids = {r.id for r in records}
    active = {r.id for r in records if r.id in used or r.manifest_digest in used}
    ingest = tree_size(os.path.join(store.root, "ingest"))
    cdir = os.path.join(store.root, "containers")
    containers = sorted(os.listdir(cdir)) if os.path.isdir(cdir) else []
    from runner.containers import volume_users
    from runner.state import ContainerStore
    from runner.volumes import VolumeStore

    cstore = ContainerStore(store.root, settings.state_dir)
    volumes = [(v, tree_size(v.path), bool(volume_users(cstore, v.name))) for v in VolumeStore(store.root).list()]
    rows = [
        ("Images", len(ids), len(active), blob_total, blob_reclaim),
        ("Snapshots", len(snaps), len(snaps) - len([n for n, _ in snaps if n not in keep]), snap_total, snap_reclaim),
        ("Containers", len(containers), len(containers), tree_size(cdir), 0),
        ("Local Volumes", len(volumes), sum(used for _, _, used in volumes), sum(size for _, size, _ in volumes),
         sum(size for _, size, used in volumes if not used)),
        ("Build cache", sum(len(f) for _d, _s, f in os.walk(os.path.join(store.root, "cache", "keys"))), 0,
         tree_size(os.path.join(store.root, "cache")), 0),
        ("Ingest", len([n for n in os.listdir(os.path.join(store.root, "ingest")) if not n.endswith(".lock")]),
         0, ingest, ingest),
    ]
    if fmt == "json":
        for t, total, act, size, rec in rows:
            click.echo(json.dumps({"Type": t, "TotalCount": total, "Active": act, "Size": size, "Reclaimable": rec}))
        return
    _table([["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]]
           + [[t, str(total), str(act), human_size(size), human_size(rec)] for t, total, act, size, rec in rows])


@system_group.command("prune")
@click.option("--all", "-a", "all_images", is_flag=True, help="Also remove every image no container uses.")
@click.option("--force", "-f", is_flag=True, help="Accepted for Docker compatibility; pybuild does not prompt.")
@pass_settings
def system_prune_cmd(settings: Settings, all_images: bool, force: bool) -> None:
    """Remove unreferenced blobs, snapshots and partial ingests (-a: and unused images)."""
    store = settings.store()
    if all_images:
        used = _container_users(store)
        drop = [r.name for r in store.images.list() if r.id not in used and r.manifest_digest not in used and r.name]
        store.images.remove_names(drop)
        for n in drop:
            click.echo(f"Untagged: {_familiar(n)}")
        dropped = _drop_build_cache(store.root)
        if dropped:
            click.echo(f"Deleted build cache entries: {dropped}")
    reaped = _reap_build_dirs(store.root)
    if reaped:
        click.echo(f"Deleted work directories of killed builds: {reaped}")
    result = store.gc()
    for d in result.blobs_removed:
        click.echo(f"Deleted: {d}")
    for s in result.snapshots_removed:
        click.echo(f"Deleted snapshot: {s}")
    click.echo(f"Total reclaimed space: {human_size(result.bytes_freed)}")


def _stale_build_dirs(root: str) -> list[str]:
    """``<root>/tmp/build-*`` work directories whose build process is gone (killed mid-build)."""
    base = os.path.join(root, "tmp")
    try:
        names = sorted(n for n in os.listdir(base) if n.startswith("build-"))
    except FileNotFoundError:
        return []
    stale = []
    for name in names:
        try:
            with open(os.path.join(base, name, "pid")) as f:
                pid = int(f.read().strip() or 0)
            os.kill(pid, 0)
        except (OSError, ValueError):  # no pid file, a bad one, or the process is gone
            stale.append(name)
    return stale


def _reap_build_dirs(root: str) -> int:
    """Unmount and remove the work directories of killed builds (the builder's own reaper)."""
    stale = _stale_build_dirs(root)
    if stale:
        from builder.workdir import reap_stale

        reap_stale(os.path.join(root, "tmp"))
    return len(stale) - len(_stale_build_dirs(root))


def _drop_build_cache(root: str) -> int:
    """Remove the build cache index entries (``<root>/cache/keys/*/*.json``; ``cache/mounts`` stays), as
    ``docker system prune -a`` drops the build cache. Entry by entry, and the directories stay: a build
    running meanwhile only sees misses, and the entry it writes lands (renaming the whole index aside
    made such a build fail writing its entry; tests/reliability/test_concurrency.py)."""
    keys = os.path.join(root, "cache", "keys")
    count = 0
    for dirpath, _dirs, files in os.walk(keys):
        for name in files:
            if name.endswith(".json"):
                try:
                    os.unlink(os.path.join(dirpath, name))
                    count += 1
                except FileNotFoundError:
                    pass
    return count


# -- fsck ------------------------------------------------------------------------------------------


@click.command("fsck")
@click.option("--repair", is_flag=True, help="After reporting, remove corrupt blobs, broken image records, incomplete "
              "snapshots and everything unreferenced (never fetches anything).")
@pass_settings
def fsck_cmd(settings: Settings, repair: bool) -> None:
    """Check every blob against its name, every image record's references and every snapshot."""
    store = settings.store()
    report = store.fsck(repair=repair)
    stale = _stale_build_dirs(store.root)
    if stale:
        report.notes.append(f"{len(stale)} work director{'y' if len(stale) == 1 else 'ies'} of killed builds in "
                            f"{os.path.join(store.root, 'tmp')} (system prune removes them)")
        if repair and _reap_build_dirs(store.root):
            report.removed.append(f"removed {len(stale)} work directories of killed builds")
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
