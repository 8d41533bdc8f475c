"""Pull: reference -> verified manifests and blobs in the local store -> tag.

Order of commits, so a killed pull never leaves a tag on missing content: config and layers
first (in parallel, bounded), then each image manifest, then the index, then the tag. Blobs the
store has are skipped; a blob whose ingest was interrupted resumes with ``Range`` from the
store's ingest offset; a connection lost mid-blob is retried from where it stopped. A blob whose
write into the store fails (disk full) is dropped, not kept for a resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from layers import events
from layers.descriptor import Descriptor, Platform
from layers.digest import Digest
from layers.errors import InvalidDocument, InvalidInput, StoreError
from layers.index import Index
from layers.manifest import Manifest, parse_document
from layers.reference import Reference
from layers.store.pause import pause_point
from layers.value import frozen

from .repository import Repository
from .responses import Document
from .errors import RegistryUnavailable
from .parallel import checkpoint, run_parallel
from .progress import Progress, QuietProgress
from .sources import SourceIndex
from .store import LocalStore, SnapshotFollow

if TYPE_CHECKING:
    from .policy import Policy

__all__ = ["PullOptions", "PullResult", "pull", "resolve", "fetch_blob", "select_manifests"]

_BLOB_ATTEMPTS = 3
_CONFIG_MAX = 8 << 20


@frozen
class PullOptions:
    """``platform``: None means this host's. ``jobs``: blobs transferred at once. ``policy``: a
    :class:`registry_client.policy.Policy` enforced on what the reference resolves to before anything
    is fetched or stored (None: no policy, the library caller decides)."""

    platform: Platform | None = None
    all_platforms: bool = False
    jobs: int = 4
    policy: Policy | None = None
    #: fetch manifests and configs only; layers are fetched when something needs their bytes, from the
    #: repository the source index records for them (a build that may hit a shared cache)
    lazy: bool = False
    #: leave every layer unpacked too (the store's snapshots, ready for a run or a build): each layer is
    #: unpacked while it downloads (``store.snapshots.follow``), published only once its blob verified
    unpack: bool = False


@frozen
class PullResult:
    reference: Reference
    digest: Digest                     # what the reference resolved to on the registry (manifest or index)
    image: Digest                      # what was tagged locally (one platform's manifest, when ``digest`` is
                                       # an index and not every platform was pulled: the record keeps both)
    manifests: tuple[Digest, ...]      # image manifests now in the store
    fetched: int = 0                   # blobs downloaded
    skipped: int = 0                   # blobs the store already had
    bytes: int = 0                     # bytes downloaded (resumed parts excluded)
    tagged: bool = True


@dataclass
class _Counters:
    """Mutable tallies of one pull (threads add to them; int += under the GIL is enough for a report)."""

    fetched: int = 0
    skipped: int = 0
    bytes: int = 0


def resolve(repo: Repository, ref: Reference) -> tuple[Document, Manifest | Index]:
    """Fetch and parse what ``ref`` names (digest-verified; see :meth:`Repository.get_manifest`)."""
    doc = repo.get_manifest(ref.identifier)
    sep = "@" if ref.digest is not None else ":"
    return doc, parse_remote(doc, f"{repo.registry.host}/{repo.name}{sep}{ref.identifier}")


def parse_remote(doc: Document, where: str, media_type: str | None = None) -> Manifest | Index:
    """Parse a fetched document; a malformed one is an error that names where it came from."""
    try:
        return parse_document(doc.raw, doc.media_type or media_type or None)
    except InvalidDocument as exc:
        raise InvalidDocument(f"{exc.kind} {where}", exc.field, exc.reason) from None


def select_manifests(index: Index, options: PullOptions) -> tuple[Descriptor, ...]:
    """The index entries to pull: one for the wanted platform, or every runnable one."""
    if options.all_platforms:
        images = index.images()
        if not images:
            raise InvalidInput(f"index {index.digest} lists no runnable images")
        return images
    return (index.select(options.platform or Platform.host()),)


def fetch_blob(store: LocalStore, repo: Repository, desc: Descriptor, progress: Progress, counters: _Counters | None = None,
               follow: SnapshotFollow | None = None) -> bool:
    """Make ``desc`` present in ``store``; True if it was downloaded, False if it was there already.
    ``follow`` (``store.snapshots.follow``) unpacks the layer from the ingest as it is written and
    publishes it once the blob is committed (its digest checked)."""
    if store.blobs.has(desc.digest):
        progress.end(desc.digest.short, "Already exists")
        if counters is not None:
            counters.skipped += 1
        return False
    for attempt in range(_BLOB_ATTEMPTS):
        with store.blobs.ingest(expected=desc.digest, size=desc.size) as ingest:
            if ingest.present:       # a concurrent pull stored it while this one waited for its lock
                progress.end(desc.digest.short, "Already exists")
                if counters is not None:
                    counters.skipped += 1
                return False
            start = ingest.offset
            progress.begin(desc.digest.short, desc.size, "Downloading", start)

            def counted(n: int) -> None:
                checkpoint()  # stop here when a sibling transfer failed or the user pressed Ctrl-C
                pause_point("pull-blob-write")  # a test hook (bytes of a blob are in the ingest)
                progress.advance(desc.digest.short, n)
                if counters is not None:
                    counters.bytes += n

            write = ingest.write if follow is None else follow.writer(ingest)
            try:
                repo.fetch_blob(desc, write, offset=start, on_bytes=counted)
                ingest.commit()
            except RegistryUnavailable:
                if attempt == _BLOB_ATTEMPTS - 1:
                    raise
                continue  # the ingest keeps what arrived; the next attempt resumes with Range
            except StoreError:
                # writing to the store failed (a full disk, an I/O error): drop the partial bytes,
                # so a full disk does not stay full and what is already stored keeps working
                try:
                    ingest.restart()
                except OSError:
                    pass
                raise
        if follow is not None:
            follow.complete(desc.size)  # the blob is committed: digest and size checked
        progress.end(desc.digest.short, "Pull complete")
        if counters is not None:
            counters.fetched += 1
        return True
    raise AssertionError("unreachable")  # pragma: no cover


def _check_platform(store: LocalStore, manifest: Manifest, want: Platform) -> None:
    """A single (non-index) image pulled with an explicit ``--platform`` must be that platform."""
    from layers.config import ImageConfig

    config = ImageConfig.parse(store.blobs.read_bytes(manifest.config.digest, _CONFIG_MAX))
    if not config.platform.matches(want):
        raise InvalidInput(f"image {manifest.digest} is {config.platform}, not the requested {want}")


@frozen
class _Download:
    """One pull: where from, where to, how many blobs at once, and the progress and counters it shares."""

    store: LocalStore
    repo: Repository
    jobs: int
    progress: Progress
    counters: _Counters
    lazy: bool = False
    unpack: bool = False


def _fetch_image(down: _Download, manifest: Manifest, platform: Platform | None = None) -> None:
    """Config and layers of ``manifest`` into the store (in parallel); with ``platform``, the config
    first, so a wrong platform is refused before the layers come down."""
    store, repo, progress, counters = down.store, down.repo, down.progress, down.counters
    unpack = down.unpack and not down.lazy
    config_first = platform is not None or unpack
    if config_first:
        fetch_blob(store, repo, manifest.config, progress, counters)
    if platform is not None:
        _check_platform(store, manifest, platform)
    diff_ids = _diff_ids(store, manifest) if unpack else {}
    layers = () if down.lazy else manifest.layers
    blobs = [d for d in (manifest.config, *layers) if not config_first or d is not manifest.config]
    seen: set[Digest] = set()
    unique = [d for d in blobs if not (d.digest in seen or seen.add(d.digest))]

    def one(d: Descriptor) -> None:
        diff_id = diff_ids.get(d.digest)
        if diff_id is None:
            fetch_blob(store, repo, d, progress, counters)
            return
        with store.snapshots.follow(d, diff_id) as follow:
            fetch_blob(store, repo, d, progress, counters, follow)

    try:
        run_parallel(one, unique, down.jobs, "pull")
    except StoreError:
        _drop_partials(store, unique)  # a full disk: the siblings stopped mid-blob give their bytes back too
        raise
    if unpack:  # what was stored already, or could not be followed: unpacked from the stored blob now
        todo = [(d, diff_ids[d.digest]) for d in unique if d.digest in diff_ids]
        run_parallel(lambda pair: store.snapshots.ensure(*pair), todo, down.jobs, "unpack")


def _diff_ids(store: LocalStore, manifest: Manifest) -> dict[Digest, Digest]:
    """Layer digest -> diff_id from the stored config (empty when the config does not match the layers:
    loading the image reports that)."""
    from layers.config import ImageConfig

    config = ImageConfig.parse(store.blobs.read_bytes(manifest.config.digest, _CONFIG_MAX))
    if len(config.diff_ids) != len(manifest.layers):
        return {}
    return {layer.digest: diff_id for layer, diff_id in zip(manifest.layers, config.diff_ids)}


def _drop_partials(store: LocalStore, descs: list[Descriptor]) -> None:
    """Truncate the resumable ingests of ``descs`` not yet in the store (best effort)."""
    for desc in descs:
        if store.blobs.has(desc.digest):
            continue
        try:
            with store.blobs.ingest(expected=desc.digest, size=desc.size) as ingest:
                if ingest.offset:
                    ingest.restart()
        except (StoreError, OSError):
            pass


def _put_document(store: LocalStore, raw: bytes, digest: Digest) -> None:
    if not store.blobs.has(digest):
        store.blobs.put_bytes(raw, expected=digest)


def pull(store: LocalStore, repo: Repository, ref: Reference, options: PullOptions = PullOptions(),
         progress: Progress | None = None, *, tag: bool = True) -> PullResult:
    """Pull ``ref`` from ``repo`` into ``store`` (the ``layers.store.Store`` contract) and tag it."""
    progress = progress or QuietProgress()
    counters = _Counters()
    doc, top = resolve(repo, ref)
    if options.policy is not None:  # before a byte of the image reaches the store
        options.policy.enforce(repo, ref, doc.digest)
    manifests: list[Manifest] = []
    with store.lease():
        if isinstance(top, Index):
            for desc in select_manifests(top, options):
                child_doc = repo.get_manifest(str(desc.digest))
                child = parse_remote(child_doc, f"{repo.registry.host}/{repo.name}@{desc.digest}", desc.media_type)
                if not isinstance(child, Manifest):
                    raise InvalidInput(f"index {top.digest}: entry {desc.digest} is a nested index; not supported")
                if child.size != desc.size:
                    from layers.errors import IntegrityError

                    raise IntegrityError(f"manifest {desc.digest}: {child.size} bytes, the index says {desc.size}")
                manifests.append(child)
        else:
            manifests.append(top)
        for manifest in manifests:
            explicit = options.platform if isinstance(top, Manifest) else None
            _fetch_image(_Download(store, repo, options.jobs, progress, counters, options.lazy, options.unpack), manifest, explicit)
            pause_point("pull-manifest")  # a test hook: every blob of the image is in, no manifest yet
            _put_document(store, manifest.raw, manifest.digest)
        if isinstance(top, Index):
            _put_document(store, top.raw, top.digest)
        image = top.digest if (isinstance(top, Index) and options.all_platforms) else manifests[0].digest
        _record_sources(store, repo, manifests)
        if tag:
            pause_point("pull-tag")
            # one platform out of an index: the name keeps the index digest as its repo digest (Docker's
            # RepoDigests), so `pull`/`run NAME@<index digest>` find this image again
            index = top.digest if isinstance(top, Index) and image != top.digest else None
            store.images.tag(ref, image, lazy=options.lazy, index=index)
    events.emit(store.root, "image", "pull", events.familiar(str(ref)), name=events.familiar(str(ref)))
    return PullResult(ref, doc.digest, image, tuple(m.digest for m in manifests), counters.fetched,
                      counters.skipped, counters.bytes, tag)


def _record_sources(store: LocalStore, repo: Repository, manifests: list[Manifest]) -> None:
    sources = SourceIndex(store.root)
    for manifest in manifests:
        for desc in (manifest.config, *manifest.layers):
            sources.record(desc.digest, repo.registry.host, repo.name)
