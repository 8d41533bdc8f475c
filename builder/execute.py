"""Walk a :class:`builder.plan.Plan`: each needed stage in its own thread (a stage waits only for the
stages it reads), each vertex either a cache hit or run. Layers are packed from overlay upper dirs
into the store; the result is an image (config + manifest) committed to the store.

The store is the ``layers.store.Store`` contract (docs/INTERFACES.md); the runner does RUN.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Callable

from layers.config import History, ImageConfig, format_time
from layers.descriptor import Descriptor, Platform
from layers.digest import Digest
from layers.store.pause import pause_point
from layers.value import frozen

from . import instructions as I
from .cache import BuildCache, StepLocks
from .context import BuildContext
from .errors import BuildError
from .options import BuildOptions
from .plan import Plan, Stage, Vertex, cache_key
from .progress import Progress
from .remotecache.records import StepRecord, base_key
from .resolver import StoreResolver
from .steps.exec_copy import execute_copy, numeric_owner
from .steps.exec_run import execute_run
from .steps.exec_workdir import execute_workdir
from .steps.job import StageImage, StepJob
from .steps.meta import apply_meta

if TYPE_CHECKING:
    from layers.store import Store
    from runner.procsandbox import ProcessSandbox


__all__ = ["BuildResult", "Executor", "StageImage", "STEP_HANDLERS"]

HISTORY_COMMENT = "buildkit.dockerfile.v0"

#: One execution handler per filesystem step (a cache key, a layer); every other instruction is a
#: config edit (:data:`builder.steps.meta.EDITS`). WORKDIR is both: it creates its directory, as
#: BuildKit does. A handler returns the mount stubs to remove from the upper dir after the unmount.
STEP_HANDLERS: dict[type[I.Instruction], Callable[["Executor", StepJob], list[str]]] = {
    I.Run: execute_run,
    I.Copy: execute_copy,
    I.Workdir: execute_workdir,
}
FS_STEPS = tuple(STEP_HANDLERS)


@frozen
class BuildResult:
    config: ImageConfig
    manifest: object  # layers.manifest.Manifest
    layers: tuple[Descriptor, ...]
    cache_hits: int
    steps: int

    @property
    def image_id(self) -> str:
        return str(self.config.digest)


class Executor:
    """Runs one plan. Not a value: holds the store, cache, progress and the work directory."""

    def __init__(self, store: Store, options: BuildOptions, context: BuildContext, resolver: StoreResolver,
                 progress: Progress, state_dir: str | None = None, shared=None, label_platform: bool = False,
                 step_locks: StepLocks | None = None, sandbox: ProcessSandbox | None = None) -> None:
        self.store, self.options, self.context, self.resolver = store, options, context, resolver
        #: the build's :class:`builder.remotecache.CacheSession` (``--cache-from``/``--cache-to``), or None
        self.shared = shared
        self.remote = shared.remote if shared is not None else None
        self.progress = progress
        self.label_platform = label_platform  # a multi-platform build names each step's platform
        self.state_dir = state_dir
        #: RUN steps' :class:`runner.procsandbox.ProcessSandbox` (None: their own PID namespace and /proc)
        self.sandbox = sandbox
        self.cache = BuildCache(store.root, store)
        self.step_locks = step_locks or StepLocks()
        from .workdir import new_workdir

        self.work = new_workdir(store.root)
        self.hits = 0
        self.remote_hits = 0
        self._looked_up: dict[str, tuple] = {}
        self.steps = 0
        self._lock = threading.Lock()
        self._stage_images: dict[int, StageImage] = {}
        self._hit_times: list[str] = []
        self._target: int | None = None
        self._platforms: dict[int, str] = {}
        when = options.timestamp
        self.created = format_time(when if when is not None else datetime.now(UTC))

    def close(self) -> None:
        try:
            self.cache.save()
        finally:
            shutil.rmtree(self.work, ignore_errors=True)

    # -- whole build ------------------------------------------------------------------------------
    def run(self, plan: Plan) -> BuildResult:
        self._target = plan.target
        self._platforms = {s.index: s.platform for s in plan.stages}
        self._check_emulation(plan)
        futures: dict[int, Future] = {}
        order = plan.order
        if self.shared is not None and self.shared.may_prune and not self.options.no_cache:
            # with a shared cache: skip the stages hits make moot (not when mode=max must record them all)
            from .remotecache.prune import needed_stages

            needed = needed_stages(plan, lambda v: self._lookup(self._layer_key(v))[0] is not None)
            order = tuple(i for i in order if i in needed)
        with ThreadPoolExecutor(max_workers=max(1, len(order)), thread_name_prefix="stage") as pool:
            for idx in order:
                stage = plan.stages[idx]
                deps = {d: futures[d] for d in stage.deps if d in futures}
                futures[idx] = pool.submit(self._stage, stage, deps)
            final = futures[plan.target].result()
            for f in futures.values():
                f.result()
        return self._commit(final, plan)

    def _check_emulation(self, plan: Plan) -> None:
        """Every RUN of a stage of another platform needs a QEMU handler: refused before any work."""
        from runner import binfmt
        from runner.errors import EmulationUnavailable

        for idx in plan.order:
            stage = plan.stages[idx]
            run = next((v.instruction for v in stage.vertices if isinstance(v.instruction, I.Run)), None)
            if run is None:
                continue
            platform = Platform.parse(stage.platform)
            try:
                binfmt.require(platform.os, platform.architecture, platform.variant)
            except EmulationUnavailable as exc:
                raise BuildError(str(exc), run.location.file, run.location.line, run.keyword) from None

    def _stage(self, stage: Stage, deps: dict[int, Future]) -> StageImage:
        for f in deps.values():
            f.result()  # re-raises a dependency's failure
        total = 1 + sum(isinstance(v.instruction, FS_STEPS) for v in stage.vertices)
        label = "" if stage.index == self._target and stage.name is None else stage.label
        if self.label_platform:
            label = f"{stage.platform} {label}".strip()
        step = self.progress.step(label, stage.from_instruction, (1, total)) if stage.base != "scratch" else None
        image = self._base(stage)
        if step is not None:
            step.done(cached=False)
        position = 1
        parent = self._record(stage, base_key(stage.base_key), "", image, "")
        for vertex in stage.vertices:
            if isinstance(vertex.instruction, FS_STEPS):
                position += 1
            image = self._vertex(stage, label, vertex, image, (position, total), parent)
            if isinstance(vertex.instruction, FS_STEPS):
                parent = self._layer_key(vertex)
        with self._lock:
            self._stage_images[stage.index] = image
        return image

    def _base(self, stage: Stage) -> StageImage:
        if stage.base_stage is not None:
            with self._lock:
                return self._stage_images[stage.base_stage]
        platform = Platform.parse(stage.platform)
        if stage.base == "scratch":
            return StageImage(ImageConfig.new(platform, created=self.created), ())
        img = self.resolver.load(stage.base, stage.platform)
        config = img.config
        if config.config.on_build:  # the planner ran the triggers; they do not pass on (Docker)
            config = config.with_config(on_build=())
        return StageImage(config, tuple(img.manifest.layers), len(img.config.history))

    # -- one vertex -------------------------------------------------------------------------------
    def _record(self, stage: Stage, key: str, parent: str, image: StageImage, created: str) -> str:
        """Note a step (or a stage's base) for ``--cache-to``: the chain it leaves; its key."""
        if self.shared is not None:
            self.shared.recorder.add(StepRecord(key, parent, image.layers, image.config.diff_ids, created,
                                                stage.index), self.options.platform)
        return key

    def _lookup(self, key: str):
        """The cache entry of ``key`` and where it came from ("" local, "registry", "local"), or (None, "")."""
        if self.options.no_cache:
            return None, ""
        with self._lock:
            if key in self._looked_up:  # the answer the stage pruning relied on
                return self._looked_up[key]
        entry = self.cache.get(key)
        found = (entry, "") if entry is not None else (None, "")
        if entry is None and self.remote is not None:
            remote = self.remote.get(key)
            found = (remote, remote.origin) if remote is not None else (None, "")
        with self._lock:
            return self._looked_up.setdefault(key, found)

    def _vertex(self, stage: Stage, label: str, v: Vertex, image: StageImage, position: tuple[int, int],
                parent: str = "") -> StageImage:
        inst = v.instruction
        history = History(created=self.created, created_by=_created_by(inst), comment=HISTORY_COMMENT)
        step = self.progress.step(label, inst, position if isinstance(inst, FS_STEPS) else None)
        if not isinstance(inst, FS_STEPS):
            config = apply_meta(image.config, inst)
            step.done(cached=False, meta=True)
            return replace(image, config=config.with_history(history))
        if isinstance(inst, I.Workdir):  # the config edit, then the directory (a layer when it is new)
            image = replace(image, config=apply_meta(image.config, inst))
        with self._lock:
            self.steps += 1
        key = self._layer_key(v)
        if self.options.no_cache:
            return self._run_step(stage, v, image, step, history, key, parent)
        with self.step_locks.hold(key):  # another platform's graph running the same step: wait, then hit
            return self._run_step(stage, v, image, step, history, key, parent)

    def _run_step(self, stage: Stage, v: Vertex, image: StageImage, step, history: History, key: str,
                  parent: str) -> StageImage:
        inst = v.instruction
        entry, origin = self._lookup(key)
        if entry is not None:
            with self._lock:
                self.hits += 1
                self.remote_hits += bool(origin)
                if entry.created:
                    self._hit_times.append(entry.created)
            step.done(cached=True, source=origin)
            image = _append(image, entry.layer, entry.diff_id, history)
            self._record(stage, key, parent, image, entry.created)
            return image
        upper = tempfile.mkdtemp(prefix="upper-", dir=self.work)
        os.chmod(upper, 0o755)  # overlayfs gives the merged root the upper dir's mode
        try:
            lowers = self._run_or_copy(stage, v, image, upper, step)
            layer, diff_id = self._pack(upper, lowers)
        except (BuildError, OSError) as exc:
            raise _disk_full(exc, self.store.root, upper, inst) from None
        finally:
            _rmtree(upper)
        pause_point("build-cache-entry")  # a test hook: the layer is committed, its cache entry not yet
        self.cache.put(key, layer, diff_id, self.created)
        step.done(cached=False)
        image = _append(image, layer, diff_id, history)
        self._record(stage, key, parent, image, self.created)
        return image

    def _layer_key(self, v: Vertex) -> str:
        """The cache entry for a step: its plan key, made specific to the options that change the
        layer (``--compression``, ``--timestamp``, ``--network none`` for what RUN can do). The default
        (gzip, no timestamp, host network) is the plan key itself."""
        opts = self.options
        key = v.key
        inst = v.instruction
        if isinstance(inst, I.Copy) and inst.link and (not inst.chown or numeric_owner(inst.chown)):
            key = v.link_key  # a --link layer does not depend on what is below it: reused across bases
        if opts.compression == "gzip" and opts.timestamp is None and opts.network != "none":
            return key
        return cache_key(key, {"compression": opts.compression, "timestamp": opts.timestamp,
                                 "network": "none" if opts.network == "none" else "host"})

    def lowerdirs(self, image: StageImage) -> list[str]:
        """The image's snapshots, top-most first; missing ones are unpacked side by side (a pulled base
        of several layers: decompression and file creation of each overlap)."""
        pairs = list(zip(image.layers, image.config.diff_ids))
        snapshots = self.store.snapshots
        missing = [(l, d) for l, d in pairs if not snapshots.ready(d)]

        def unpack(layer: Descriptor, diff_id: Digest) -> str:
            if self.remote is not None:
                self.remote.ensure(layer)  # a lazy cache hit: its bytes now, checked against the digest
            return snapshots.ensure(layer, diff_id)

        if len(missing) > 1:
            with ThreadPoolExecutor(max_workers=min(4, len(missing)), thread_name_prefix="unpack") as pool:
                for f in [pool.submit(unpack, l, d) for l, d in missing]:
                    f.result()
        dirs = [unpack(layer, diff_id) for layer, diff_id in pairs]
        dirs.reverse()  # top-most first
        if not dirs:
            dirs = [_ensure(os.path.join(self.work, "empty"))]
        return dirs

    @contextlib.contextmanager
    def mounted(self, lowers: list[str], upper: str | None):
        from runner.rootfs import OverlayMount

        base = tempfile.mkdtemp(prefix="mnt-", dir=self.work)
        work = os.path.join(base, "work") if upper else None
        target = os.path.join(base, "root")
        try:
            # volatile: the upper dir is thrown away after the step (its layer is made durable when it
            # is stored), so fsyncs inside RUN (dpkg makes hundreds) need not reach the disk
            with OverlayMount(lowers, upper, work, target, volatile=True) as root:
                pause_point("build-mounted")  # a test hook: an overlay of the build is mounted
                yield root
        finally:
            _rmtree(base)

    def _run_or_copy(self, stage: Stage, v: Vertex, image: StageImage, upper: str, step) -> list[str]:
        """Run the step over an overlay of ``image`` with ``upper`` as its upper dir; the lower dirs used
        (what the packer checks opaque markers against)."""
        inst = v.instruction
        lowers = self.lowerdirs(image) if not (isinstance(inst, I.Copy) and inst.link) else \
            [_ensure(os.path.join(self.work, "empty"))]
        with self.mounted(lowers, upper) as root:
            stubs = STEP_HANDLERS[type(inst)](self, StepJob(stage, v, image, root, upper, step))
        if stubs:
            from .steps.run import remove_stubs

            remove_stubs(upper, stubs)  # after the unmount: never touch a live overlay's upper dir
        return lowers

    @contextlib.contextmanager
    def source_root(self, v: Vertex, writable: bool = False):
        """Another stage's (or an image's) root, mounted; ``writable`` gives it a throw-away upper dir."""
        if v.from_stage is not None:
            with self._lock:
                src = self._stage_images[v.from_stage]
        else:
            img = self.resolver.load(v.from_image, self._platforms.get(v.stage, self.options.platform))
            src = StageImage(img.config, tuple(img.manifest.layers))
        if not writable:
            with self.mounted(self.lowerdirs(src), None) as root:
                yield root
            return
        upper = tempfile.mkdtemp(prefix="rw-", dir=self.work)
        try:
            with self.mounted(self.lowerdirs(src), upper) as root:
                yield root
        finally:
            _rmtree(upper)

    # -- layers and the final image -------------------------------------------------------------
    def _pack(self, upper: str, lowers: list[str]) -> tuple[Descriptor | None, Digest | None]:
        """Pack an upper dir into a layer blob; ``(None, None)`` when the step changed nothing.

        ``lowers`` are the overlay's lower dirs: overlayfs marks a directory opaque whenever it is made
        where a whiteout was (``rm f; mkdir f``), and the marker is only kept where a lower layer has a
        directory for it to hide."""
        from layers import archive
        from runner.overlaykind import overlay_kind

        if not os.listdir(upper):
            return None, None
        with self.store.blobs.ingest() as ing:
            res = archive.pack(upper, ing, overlay_upper=True, timestamp=self.options.timestamp,
                               compression=self.options.compression, lowerdirs=lowers,
                               marker_files=overlay_kind() == "fuse-overlayfs")
            ours = _inode(getattr(ing, "path", None))
            pause_point("build-layer-write")  # a test hook: the whole layer is in the ingest, not committed
            digest = ing.commit()
        if digest != res.digest:
            raise BuildError(f"layer digest mismatch: packed {res.digest}, stored {digest}")
        media_type = res.media_type
        if self.options.format == "docker":
            media_type = "application/vnd.docker.image.rootfs.diff.tar.gzip"
        desc = Descriptor(media_type=media_type, digest=res.digest, size=res.size)
        if ours is not None and _inode(self.store.blobs.path(digest)) == ours:
            self.cache.remember(desc)  # the stored file is the one just hashed while written
        return desc, res.diff_id

    def _build_time(self) -> str:
        """The created time of this build's history and config: ``--timestamp`` when given; when every
        step was a cache hit, the time those steps ran (a no-change rebuild keeps its image id); else now."""
        if self.options.timestamp is None and self.steps and self.hits == self.steps and self._hit_times:
            return max(self._hit_times)
        return self.created

    def _commit(self, final: StageImage, plan: Plan) -> BuildResult:
        from layers.manifest import Manifest
        from layers.mediatype import MediaType

        created = self._build_time()
        history = final.config.history
        history = history[: final.base_history] + tuple(replace(h, created=created)
                                                       for h in history[final.base_history:])
        config = final.config.with_fields(history=history)
        if self.options.labels:
            labels = dict(config.config.labels)
            labels.update(dict(self.options.labels))
            config = config.with_config(labels=labels)
        platform = Platform.parse(plan.stages[plan.target].platform)  # what the image is for, whatever its base said
        variant = platform.variant or (config.variant if config.architecture == platform.architecture else "")
        config = config.with_fields(created=created, os=platform.os, architecture=platform.architecture,
                                    variant=variant)
        docker = self.options.format == "docker"
        config_digest = self.store.blobs.put_bytes(config.raw)
        config_desc = Descriptor(media_type=MediaType.DOCKER_CONFIG if docker else MediaType.OCI_CONFIG,
                                 digest=config_digest, size=len(config.raw))
        layers = final.layers
        if docker:
            layers = tuple(replace(l, media_type=MediaType.DOCKER_LAYER_GZIP) if "gzip" in l.media_type else l
                           for l in layers)
        else:  # a docker-format base image's layers, named as OCI (same bytes)
            layers = tuple(replace(l, media_type=MediaType.OCI_LAYER_GZIP)
                           if l.media_type == MediaType.DOCKER_LAYER_GZIP else l for l in layers)
        manifest = Manifest.build(config_desc, layers, docker=docker)
        pause_point("build-manifest")  # a test hook: the config is stored, the manifest not yet
        self.store.blobs.put_bytes(manifest.raw)
        return BuildResult(config=config, manifest=manifest, layers=layers, cache_hits=self.hits, steps=self.steps)


def _disk_full(exc: BaseException, root: str, upper: str, inst: I.Instruction) -> BaseException:
    """A step that filled the store's disk says so, with the store, the space it needed and the space
    free once its upper dir is gone (SECURITY.md case 24): a COPY's ENOSPC, or a RUN that failed while
    no space was left. Any other error is returned as it is."""
    from layers.store.space import NOSPACE, free_bytes, human, tree_size

    full = isinstance(exc, OSError) and exc.errno in NOSPACE
    if isinstance(exc, BuildError) and isinstance(inst, I.Run):
        full = (free_bytes(root) or 0) < (64 << 10)
    if not full:
        return exc
    written = tree_size(upper)
    free = (free_bytes(root) or 0) + written  # what is free once this step's partial layer is removed
    need = f"needs more than {human(written)}, {human(free)} free"
    loc, name = inst.location, inst.name if isinstance(inst, I.Copy) else inst.keyword
    if isinstance(exc, BuildError):
        return BuildError(f"{exc.reason} (store {root}: No space left on device; the step {need})",
                          loc.file, loc.line, name)
    return BuildError(f"store {root}: No space left on device ({need})", loc.file, loc.line, name)


def _append(image: StageImage, layer: Descriptor | None, diff_id: Digest | None, history: History) -> StageImage:
    if layer is None:
        return replace(image, config=image.config.with_history(history))
    return StageImage(image.config.with_layer(diff_id, history), image.layers + (layer,), image.base_history)


def _created_by(inst: I.Instruction) -> str:
    """History text: the instruction as written (secrets are only ever referenced by id there)."""
    return inst.source if len(inst.source) < 4096 else inst.source[:4093] + "..."


def _inode(path: str | None) -> tuple[int, int] | None:
    try:
        st = os.stat(path) if path else None
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if st else None


def _ensure(path: str) -> str:
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def _rmtree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
