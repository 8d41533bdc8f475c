"""``commit``: a new image from a container, as ``docker commit`` makes it.

The new image is the container's image plus one layer packed from the container's overlay upper dir
(:func:`layers.archive.pack` with whiteouts and opaque markers, as a RUN step's layer is made), a
history entry carrying the message (``-m``) and author (``-a``), and the image config edited by
``--change`` (:func:`builder.changes.apply_changes`, applied before anything is written, so a bad
change leaves the store as it was). A running container is paused while its upper dir is packed
(``pause``, Docker's default) and unpaused after, whatever happens. Everything is written inside a
store lease and the name, when one is given, is tagged last. Test hook: ``commit-layer`` (the layer
is stored, the container still paused).
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime, timezone

from layers.config import History, ImageConfig, format_time
from layers.descriptor import Descriptor
from layers.errors import InvalidInput
from layers.manifest import Manifest
from layers.mediatype import MediaType
from layers.reference import Reference
from layers.store.pause import pause_point
from layers.value import frozen

__all__ = ["CommitOptions", "CommitResult", "commit"]


@frozen(slots=True)
class CommitOptions:
    """``docker commit``'s options: ``reference`` is ``REPO[:TAG]`` or None (an untagged image)."""

    reference: str | None = None
    changes: tuple[str, ...] = ()
    message: str = ""
    author: str = ""
    pause: bool = True


@frozen(slots=True)
class CommitResult:
    manifest: Manifest
    config: ImageConfig
    config_digest: str      # the image id (sha256:...), as ``docker commit`` prints it
    reference: Reference | None


def commit(images, containers, ref: str, options: CommitOptions) -> CommitResult:
    """Commit container ``ref`` (a ``runner.state.ContainerStore`` record) into the image store ``images``
    (a ``layers.store.Store``); see the module docstring."""
    from runner import records as r
    from runner.lifecycle import pause, unpause

    from .changes import apply_changes

    target = Reference.parse(options.reference) if options.reference else None
    if target is not None and target.digest is not None:
        raise InvalidInput(f"commit: {target} names a digest; give REPO[:TAG]")
    cfg = containers.resolve(ref)
    now = format_time(datetime.now(timezone.utc))
    with images.lease():
        image = images.images.load(cfg.image_id)
        config = _with_container_config(image.config, cfg)
        config = apply_changes(config, options.changes) if options.changes else config
        paused = False
        if options.pause and containers.status(cfg.id).status == r.RUNNING:
            pause(containers, cfg.id)
            paused = True
        try:
            layer, diff_id = _pack_upper(images, containers, cfg)
            pause_point("commit-layer")  # a test hook: the layer is stored, the container still paused
        finally:
            if paused:
                unpause(containers, cfg.id)
        args = " ".join(cfg.spec.process.args) if cfg.spec.process.args else ""
        history = History(created=now, created_by=args, author=options.author, comment=options.message)
        config = config.with_layer(diff_id, history).with_fields(created=now, author=options.author)
        config_digest = images.blobs.put_bytes(config.raw)
        layers = tuple(replace(l, media_type=MediaType.OCI_LAYER_GZIP) if l.media_type == MediaType.DOCKER_LAYER_GZIP
                       else l for l in image.manifest.layers) + (layer,)
        manifest = Manifest.build(Descriptor(MediaType.OCI_CONFIG, config_digest, len(config.raw)), layers)
        images.blobs.put_bytes(manifest.raw, expected=manifest.digest)
        if target is not None:
            images.images.tag(target, manifest.digest)
        else:
            images.images.add_dangling(manifest.digest)      # Docker's <none>:<none>, found by its id
    return CommitResult(manifest, config, str(config_digest), target)


def _with_container_config(config: ImageConfig, cfg) -> ImageConfig:
    """The image config with what the container was run with, as Docker keeps it in a commit: its
    command (Cmd after the image's Entrypoint; a new Entrypoint when it was replaced), its environment
    (without what the runtime adds: HOSTNAME, TERM of a tty, a HOME the image did not set), its
    working directory and its labels."""
    c = config.config
    process = cfg.spec.process
    args = list(process.args)
    entrypoint = list(c.entrypoint or ())
    edits: dict = {}
    if args[:len(entrypoint)] == entrypoint:
        if args[len(entrypoint):] != list(c.cmd or ()):
            edits["cmd"] = args[len(entrypoint):]
    else:
        edits.update(entrypoint=args, cmd=None)
    drop = {"HOSTNAME", "HOME"} | ({"TERM"} if cfg.tty else set())
    drop -= {e.partition("=")[0] for e in c.env}     # ... unless the image set them itself
    env = [e for e in process.env if e.partition("=")[0] not in drop]
    if env != list(c.env):
        edits["env"] = env
    if process.cwd and process.cwd != (c.working_dir or "/"):
        edits["working_dir"] = process.cwd
    if cfg.labels:
        edits["labels"] = {**dict(c.labels), **dict(cfg.labels)}
    return config.with_config(**edits) if edits else config


def _pack_upper(images, containers, cfg):
    """The container's upper dir as a gzip layer in the store, mount stubs left out
    (:func:`runner.fsdiff.mount_stubs`): packed to a plain tar first, then copied entry by entry."""
    import hashlib
    import tempfile

    from layers import archive
    from layers.archive import tarformat as tf
    from layers.archive.reader import TarReader
    from layers.digest import Digest
    from runner.fsdiff import mount_stubs
    from runner.resources import rootfs_paths
    from runner.overlaykind import overlay_kind

    upper = rootfs_paths(containers, cfg.id).upper
    if not os.path.isdir(upper):
        os.makedirs(upper, mode=0o755, exist_ok=True)   # created, never started: an empty layer
    stubs = mount_stubs(containers, cfg)
    with tempfile.TemporaryFile(dir=images.root) as plain:
        archive.pack(upper, plain, overlay_upper=True, compression=None, lowerdirs=list(cfg.lowerdirs),
                     marker_files=overlay_kind() == "fuse-overlayfs")
        plain.seek(0)
        reader = TarReader(plain, f"upper dir of {cfg.name}")
        comp = archive.Compressor("gzip")
        diff_id = hashlib.sha256()
        with images.blobs.ingest() as ing:
            def write(data: bytes) -> None:
                diff_id.update(data)
                out = comp.compress(data)
                if out:
                    ing.write(out)
            for entry in reader.entries():
                if entry.name in stubs:
                    continue
                write(tf.encode(entry))
                for chunk in reader.chunks():
                    write(chunk)
                write(tf.padding(entry.size))
            write(tf.end_of_archive())
            tail = comp.flush()
            if tail:
                ing.write(tail)
            digest = ing.commit()
            size = ing.written
    return Descriptor(MediaType.OCI_LAYER_GZIP, digest, size), Digest("sha256", diff_id.hexdigest())
