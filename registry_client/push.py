"""Push: local manifest (or index) and its blobs -> a registry repository -> tag.

For each blob (config and layers, in parallel, bounded): ``HEAD`` and skip when the registry has
it; else a cross-repository mount from a repository of the same registry known to hold it
(:mod:`registry_client.sources`); else an upload (one PUT up to ``chunk_size``, PATCH chunks
beyond). The manifest goes last, so the tag never names missing content; for an index, each
image manifest goes up by digest before the index. ``--format`` and ``--compression`` rewrite
the manifest, re-encoding layers only when their compression must change.
"""

from __future__ import annotations

from dataclasses import replace

from layers import events
from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.errors import InvalidInput, NotFound
from layers.index import Index
from layers.manifest import Manifest, parse_document
from layers.mediatype import MediaType
from layers.reference import Reference
from layers.store.pause import pause_point
from layers.value import frozen

from .repository import CHUNK_SIZE, Repository
from .parallel import checkpoint, run_parallel
from .progress import Progress, QuietProgress
from .sources import SourceIndex
from .store import LocalStore

__all__ = ["PushOptions", "PushResult", "push", "convert_manifest"]

_DOC_MAX = 4 << 20


@frozen
class PushOptions:
    """``compression``: gzip/zstd/None (as stored); ``format``: oci/docker/None (as stored)."""

    compression: str | None = None
    format: str | None = None
    jobs: int = 4
    chunk_size: int = CHUNK_SIZE
    mount: bool = True


@frozen
class PushResult:
    reference: Reference
    digest: Digest
    size: int
    uploaded: int = 0
    mounted: int = 0
    skipped: int = 0


def _layer_type(desc: Descriptor, compression: str | None, docker: bool) -> str:
    try:
        current = MediaType.compression(desc.media_type)
    except KeyError:
        return desc.media_type  # not a layer type we know (foreign, artifact): leave alone
    want = compression if compression is not None else current
    if docker and want != "gzip":
        raise InvalidInput(f"layer {desc.digest.short}: docker format needs gzip layers, this one is "
                           f"{want or 'uncompressed'} (add --compression gzip)")
    return MediaType.layer_type(want, docker)


def convert_manifest(store: LocalStore, manifest: Manifest, options: PushOptions, transport=None) -> Manifest:
    """``manifest`` in the requested format and compression; same object when nothing changes (a lazy
    layer to re-encode is fetched first, through ``transport``)."""
    if options.format is None and options.compression is None:
        return manifest
    docker = manifest.is_docker if options.format is None else options.format == "docker"
    if docker and options.compression not in (None, "gzip"):
        raise InvalidInput(f"the docker manifest format carries only gzip layers, not {options.compression}")
    def encoded(desc: Descriptor) -> Descriptor:
        current = MediaType.compression(desc.media_type) if MediaType.is_layer(desc.media_type) else None
        want = options.compression if options.compression is not None else current
        if MediaType.is_layer(desc.media_type) and want != current:
            desc = _recompress(store, desc, want, transport)
        return replace(desc, media_type=_layer_type(desc, options.compression, docker),
                       annotations=() if docker else desc.annotations)

    # layers are re-encoded in parallel (the codecs release the GIL), as many at once as transfers
    layers = run_parallel(encoded, manifest.layers, options.jobs, "recompress")
    config_type = MediaType.DOCKER_CONFIG if docker else MediaType.OCI_CONFIG
    config = replace(manifest.config, media_type=config_type, annotations=() if docker else manifest.config.annotations)
    if docker:
        return Manifest.build(config, layers, docker=True)
    return Manifest.build(config, layers, annotations=manifest.annotation_map or None, subject=manifest.subject,
                          artifact_type=manifest.artifact_type)


def _recompress(store: LocalStore, desc: Descriptor, compression: str | None, transport=None) -> Descriptor:
    """Re-encode one stored layer (same diff_id) and put it in the store."""
    from layers.archive import recompress

    _fetch_lazy(store, desc, transport)  # a lazy layer (a registry cache hit): its bytes, verified, to re-encode
    with store.blobs.open(desc.digest, desc.size) as src:
        digest, size = recompress(src, store, MediaType.compression(desc.media_type), compression)
        src.verify_rest()
    return Descriptor(MediaType.layer_type(compression), digest, size)


def _fetch_lazy(store: LocalStore, desc: Descriptor, transport=None) -> None:
    """Make a layer the store knows only lazily present, from a registry that holds it (verified)."""
    if store.blobs.has(desc.digest):
        return
    from .remotes import Remotes

    remotes = Remotes(transport)
    try:
        remotes.fetch_missing(store, desc)
    finally:
        remotes.close()


@frozen
class _Upload:
    """One push: where from, where to, how, and the mount hints and progress it shares."""

    store: LocalStore
    repo: Repository
    options: PushOptions
    sources: SourceIndex
    progress: Progress


def _push_blob(up: _Upload, desc: Descriptor) -> str:
    """Make ``desc`` present in the remote repository: ``skipped``, ``mounted`` or ``uploaded``."""
    store, repo, options, sources, progress = up.store, up.repo, up.options, up.sources, up.progress
    key = desc.digest.short
    if repo.blob_exists(desc):
        progress.end(key, "Layer already exists")
        return "skipped"
    if options.mount:
        for source in sources.lookup(desc.digest, repo.registry.host):
            if source != repo.name and repo.mount_blob(desc, source):
                progress.end(key, f"Mounted from {source}")
                return "mounted"
    _fetch_lazy(store, desc, repo.registry.config)  # a lazy layer no mount could bring: fetched (verified) first
    progress.begin(key, desc.size, "Pushing")
    def sent(n: int) -> None:
        checkpoint()  # stop here when a sibling transfer failed or the user pressed Ctrl-C
        pause_point("push-blob-upload")  # a test hook: an upload session is open, part of the blob sent
        progress.advance(key, n)

    repo.upload_blob(desc, lambda: store.blobs.open(desc.digest, desc.size), chunk_size=options.chunk_size,
                     on_bytes=sent)
    progress.end(key, "Pushed")
    return "uploaded"


def _push_image(up: _Upload, manifest: Manifest, counts: dict[str, int]) -> None:
    """Every blob of ``manifest`` up (in parallel); outcomes counted into ``counts``."""
    blobs = [manifest.config, *manifest.layers]
    seen: set[Digest] = set()
    unique = [d for d in blobs if not (d.digest in seen or seen.add(d.digest))]
    outcomes = run_parallel(lambda d: _push_blob(up, d), unique, up.options.jobs, "push")
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    for desc in unique:
        up.sources.record(desc.digest, up.repo.registry.host, up.repo.name)


def _load(store: LocalStore, desc_digest: Digest) -> Manifest | Index:
    raw = store.blobs.read_bytes(desc_digest, _DOC_MAX)
    return parse_document(raw)


def _check_target(target: Reference, top: Manifest | Index) -> None:
    """A target named by digest must be that content: checked before a byte goes up."""
    if target.digest is not None and target.digest != top.digest:
        raise InvalidInput(f"push target {target} names digest {target.digest}, but the content is {top.digest}")


def push(store: LocalStore, repo: Repository, document: Manifest | Index, target: Reference,
         options: PushOptions = PushOptions(), progress: Progress | None = None) -> PushResult:
    """Push ``document`` (already in ``store``) and everything it references to ``repo`` as ``target``."""
    progress = progress or QuietProgress()
    repo.want_push()
    up = _Upload(store, repo, options, SourceIndex(store.root), progress)
    counts: dict[str, int] = {}
    identifier = target.tag if target.tag is not None else None
    if isinstance(document, Index):
        _check_target(target, document)
        if options.format is not None or options.compression is not None:
            raise InvalidInput("--format/--compression apply to single images, not to an index")
        for entry in document.manifests:
            if not store.blobs.has(entry.digest):
                raise NotFound(f"index {document.digest}: manifest {entry.digest} ({entry.platform or 'no platform'}) "
                               "is not in the local store; pull the index with --all-platforms first")
            child = _load(store, entry.digest)
            if not isinstance(child, Manifest):
                raise InvalidInput(f"index {document.digest}: nested index {entry.digest} is not supported")
            _push_image(up, child, counts)
            repo.put_manifest(str(child.digest), child.raw, child.media_type)
        top: Manifest | Index = document
    else:
        top = convert_manifest(store, document, options, repo.registry.config)
        _check_target(target, top)
        _push_image(up, top, counts)
    pause_point("push-manifest")  # a test hook: every blob is up, the manifest (the tag) not yet
    repo.put_manifest(identifier or str(top.digest), top.raw, top.media_type)
    events.emit(store.root, "image", "push", events.familiar(str(target)), name=events.familiar(str(target)))
    return PushResult(target, top.digest, len(top.raw), counts.get("uploaded", 0), counts.get("mounted", 0),
                      counts.get("skipped", 0))
