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
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timezone

from layers.config import History, ImageConfig, format_time
from layers.descriptor import Descriptor, Platform
from layers.digest import Digest
from layers.errors import PybuildError
from layers.store.pause import pause_point

from . import instructions as I
from .cache import BuildCache
from .context import BuildContext
from .errors import BuildError
from .options import BuildOptions
from .plan import Plan, Stage, Vertex, cache_key
from .progress import Progress
from .resolver import StoreResolver
from .steps.copy import CopyItem, Ownership, copy_items, select_in_root, write_file
from .steps.meta import apply_meta

__all__ = ["BuildResult", "Executor", "StageImage"]

HISTORY_COMMENT = "buildkit.dockerfile.v0"
#: Steps that touch the filesystem (cache keys, layers); WORKDIR creates its directory, as BuildKit does.
FS_STEPS = (I.Run, I.Copy, I.Workdir)
MAX_SECRET = 4 << 20  # a CA bundle fits; BuildKit stops at 500 KiB


@dataclass(frozen=True)
class StageImage:
    """A stage's image so far: its config and layer descriptors (diff_ids are in the config)."""

    config: ImageConfig
    layers: tuple[Descriptor, ...]
    base_history: int = 0  # history entries inherited from the base image (the rest are this build's)


@dataclass(frozen=True)
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

    def __init__(self, store, options: BuildOptions, context: BuildContext, resolver: StoreResolver,
                 progress: Progress, state_dir: str | None = None) -> None:
        self.store, self.options, self.context, self.resolver = store, options, context, resolver
        self.progress = progress
        self.state_dir = state_dir
        self.cache = BuildCache(store.root, store)
        from .workdir import new_workdir

        self.work = new_workdir(store.root)
        self.hits = 0
        self.steps = 0
        self._lock = threading.Lock()
        self._stage_images: dict[int, StageImage] = {}
        self._hit_times: list[str] = []
        self._target: int | None = None
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
        futures: dict[int, Future] = {}
        with ThreadPoolExecutor(max_workers=max(1, len(plan.order)), thread_name_prefix="stage") as pool:
            for idx in plan.order:
                stage = plan.stages[idx]
                deps = {d: futures[d] for d in stage.deps}
                futures[idx] = pool.submit(self._stage, stage, deps)
            final = futures[plan.target].result()
            for f in futures.values():
                f.result()
        return self._commit(final, plan)

    def _stage(self, stage: Stage, deps: dict[int, Future]) -> StageImage:
        for f in deps.values():
            f.result()  # re-raises a dependency's failure
        total = 1 + sum(isinstance(v.instruction, FS_STEPS) for v in stage.vertices)
        label = "" if stage.index == self._target and stage.name is None else stage.label
        step = self.progress.step(label, stage.from_instruction, (1, total)) if stage.base != "scratch" else None
        image = self._base(stage)
        if step is not None:
            step.done(cached=False)
        position = 1
        for vertex in stage.vertices:
            if isinstance(vertex.instruction, FS_STEPS):
                position += 1
            image = self._vertex(stage, label, vertex, image, (position, total))
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
    def _vertex(self, stage: Stage, label: str, v: Vertex, image: StageImage, position: tuple[int, int]) -> StageImage:
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
        entry = None if self.options.no_cache else self.cache.get(key)
        if entry is not None:
            with self._lock:
                self.hits += 1
                if entry.created:
                    self._hit_times.append(entry.created)
            step.done(cached=True)
            return _append(image, entry.layer, entry.diff_id, history)
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
        return _append(image, layer, diff_id, history)

    def _layer_key(self, v: Vertex) -> str:
        """The cache entry for a step: its plan key, made specific to the options that change the
        layer (``--compression``, ``--timestamp``, ``--network none`` for what RUN can do). The default
        (gzip, no timestamp, host network) is the plan key itself."""
        opts = self.options
        key = v.key
        inst = v.instruction
        if isinstance(inst, I.Copy) and inst.link and (not inst.chown or _numeric_owner(inst.chown)):
            key = v.link_key  # a --link layer does not depend on what is below it: reused across bases
        if opts.compression == "gzip" and opts.timestamp is None and opts.network != "none":
            return key
        return cache_key(key, {"compression": opts.compression, "timestamp": opts.timestamp,
                                 "network": "none" if opts.network == "none" else "host"})

    def _lowerdirs(self, image: StageImage) -> list[str]:
        """The image's snapshots, top-most first; missing ones are unpacked side by side (a pulled base
        of several layers: decompression and file creation of each overlap)."""
        pairs = list(zip(image.layers, image.config.diff_ids))
        snapshots = self.store.snapshots
        missing = [(l, d) for l, d in pairs if not snapshots.ready(d)]
        if len(missing) > 1:
            with ThreadPoolExecutor(max_workers=min(4, len(missing)), thread_name_prefix="unpack") as pool:
                for f in [pool.submit(snapshots.ensure, l, d) for l, d in missing]:
                    f.result()
        dirs = [snapshots.ensure(layer, diff_id) for layer, diff_id in pairs]
        dirs.reverse()  # top-most first
        if not dirs:
            dirs = [_ensure(os.path.join(self.work, "empty"))]
        return dirs

    @contextlib.contextmanager
    def _mounted(self, lowers: list[str], upper: str | None):
        from runner.rootfs import OverlayMount

        base = tempfile.mkdtemp(prefix="mnt-", dir=self.work)
        work = os.path.join(base, "work") if upper else None
        target = os.path.join(base, "root")
        try:
            with OverlayMount(lowers, upper, work, target) as root:
                pause_point("build-mounted")  # a test hook: an overlay of the build is mounted
                yield root
        finally:
            _rmtree(base)

    def _run_or_copy(self, stage: Stage, v: Vertex, image: StageImage, upper: str, step) -> list[str]:
        """Run the step over an overlay of ``image`` with ``upper`` as its upper dir; the lower dirs used
        (what the packer checks opaque markers against)."""
        inst = v.instruction
        lowers = self._lowerdirs(image) if not (isinstance(inst, I.Copy) and inst.link) else \
            [_ensure(os.path.join(self.work, "empty"))]
        stubs: list[str] = []
        with self._mounted(lowers, upper) as root:
            if isinstance(inst, I.Copy):
                self._copy(v, inst, image, root)
            elif isinstance(inst, I.Workdir):
                _make_workdir(inst, v.user, root)
            else:
                stubs = self._run(stage, v, inst, image, root, upper, step)
        if stubs:
            from .steps.run import remove_stubs

            remove_stubs(upper, stubs)  # after the unmount: never touch a live overlay's upper dir
        return lowers

    def _copy(self, v: Vertex, inst: I.Copy, image: StageImage, root: str) -> None:
        if inst.link and inst.chown and not _numeric_owner(inst.chown):
            # --link copies onto an empty tree: user and group names come from the stage's /etc
            with self._mounted(self._lowerdirs(image), None) as stage_root:
                own = _ownership(inst, stage_root)
        else:
            own = _ownership(inst, root)
        docs = {"<<" + h.name: h for h in inst.heredocs}  # the planner names heredoc sources "<<NAME"
        count = len(inst.sources)
        for src in inst.sources:
            if src in docs:
                dest = inst.dest if not inst.dest.endswith("/") else inst.dest + docs[src].name
                write_file(root, dest, docs[src].content.encode(), own)
        if v.from_stage is not None or v.from_image is not None:
            with self._source_root(v) as src_root:
                for src in inst.sources:
                    try:
                        items = select_in_root(src_root, src)
                    except FileNotFoundError:
                        raise _copy_error(inst, f"{src}: not found in stage or image {inst.from_}") from None
                    copy_items(root, items, inst.dest, own, sources=count)
            return
        inputs = dict(v.inputs)
        for src in inst.sources:
            if src in docs:
                continue
            if inst.add and src.startswith(("http://", "https://")):
                self._add_url(inst, src, root, own)
                continue
            entries = list(inputs[src])
            if inst.add:  # ADD unpacks a local archive the source names (not one inside a named directory)
                archives = [e for e in entries if e.top and _archive_kind(self.context.abspath(e.path)) is not False]
                for e in archives:
                    self._add_archive(inst, self.context.abspath(e.path), root, own)
                entries = [e for e in entries if e not in archives]
                if not entries:
                    continue
            items = [CopyItem(self.context.abspath(e.path), e.target) for e in entries]
            copy_items(root, items, inst.dest, own, sources=count)

    @contextlib.contextmanager
    def _source_root(self, v: Vertex, writable: bool = False):
        """Another stage's (or an image's) root, mounted; ``writable`` gives it a throw-away upper dir."""
        if v.from_stage is not None:
            with self._lock:
                src = self._stage_images[v.from_stage]
        else:
            img = self.resolver.load(v.from_image, self.options.platform)
            src = StageImage(img.config, tuple(img.manifest.layers))
        if not writable:
            with self._mounted(self._lowerdirs(src), None) as root:
                yield root
            return
        upper = tempfile.mkdtemp(prefix="rw-", dir=self.work)
        try:
            with self._mounted(self._lowerdirs(src), upper) as root:
                yield root
        finally:
            _rmtree(upper)

    def _add_archive(self, inst: I.Copy, path: str, root: str, own: Ownership) -> None:
        """Unpack a local tar (plain, gzip, zstd, bzip2 or xz) into the destination directory through
        the safe extractor. Owners and modes come from the archive unless ``--chown``/``--chmod`` say
        otherwise (then it is unpacked aside and copied in with them)."""
        import bz2
        import lzma

        from layers import archive
        from runner.rootfs import mkdirs_in_root

        kind = _archive_kind(path)
        with open(path, "rb") as raw:
            stream, compression = raw, kind
            if kind in ("bzip2", "xz"):
                stream, compression = (bz2.BZ2File(raw) if kind == "bzip2" else lzma.LZMAFile(raw)), None
            try:
                if own.uid is None and own.gid is None and own.mode is None:
                    archive.extract(stream, mkdirs_in_root(root, inst.dest), compression=compression, mode="apply",
                                    what="ADD archive")
                    return
                staging = tempfile.mkdtemp(prefix="add-", dir=self.work)
                try:
                    archive.extract(stream, staging, compression=compression, mode="apply", what="ADD archive")
                    items = select_in_root(staging, "/")
                    if items:
                        copy_items(root, items, inst.dest.rstrip("/") + "/", own)
                finally:
                    _rmtree(staging)
            except (EOFError, lzma.LZMAError) as exc:
                raise _copy_error(inst, f"{os.path.basename(path)}: {exc}") from None
            except PybuildError as exc:
                raise _copy_error(inst, f"{os.path.basename(path)}: {exc}") from None

    def _add_url(self, inst: I.Copy, url: str, root: str, own: Ownership) -> None:
        """``ADD URL``: the file the planner already fetched (its digest is in the cache key), or, with
        ``--checksum``, a download checked against it. Mode 0600, mtime from Last-Modified (Docker)."""
        fetched = self.resolver.fetched(url)
        if fetched is None:
            try:
                fetched = self.resolver.fetch(url)
            except PybuildError as exc:
                raise _copy_error(inst, str(exc)) from None
        if inst.checksum and str(fetched.digest) != inst.checksum:
            raise _copy_error(inst, f"{url}: checksum {fetched.digest} does not match {inst.checksum}")
        name = url.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "index.html"
        dest = inst.dest + name if inst.dest.endswith("/") else inst.dest
        copy_items(root, [CopyItem(fetched.path, "")], dest, own)

    def _run(self, stage: Stage, v: Vertex, inst: I.Run, image: StageImage, root: str, upper: str, step) -> list[str]:
        from .steps.mounts import cache_dir, context_bind
        from .steps.run import RunRequest, run_step

        binds: list[tuple[str, str, bool]] = []
        tmpfs: list[tuple[str, str]] = []
        secret_env: list[tuple[str, str]] = []
        with contextlib.ExitStack() as stack:
            for m in inst.mounts:
                if m.type == "cache":
                    binds.append((stack.enter_context(cache_dir(self.cache.mounts_dir, m, self.work)), m.target,
                                  False))
                elif m.type == "tmpfs":
                    # exec, as BuildKit's (builds run what they compile there); nosuid,nodev from the runner
                    tmpfs.append((m.target, "exec" + (f",size={m.size}" if m.size else "")))
                elif m.type == "secret":
                    self._secret(inst, m, binds, secret_env)
                elif m.type == "bind":
                    if m.from_:
                        # the planner replaced a stage name by its index (an image keeps its name);
                        # rw writes go to a throw-away upper dir
                        source = replace(v, from_stage=int(m.from_), from_image=None) if m.from_.isdigit() else \
                            replace(v, from_stage=None, from_image=m.from_)
                        src_root = stack.enter_context(self._source_root(source, writable=not m.readonly))
                        from runner.rootfs import resolve_in_root

                        binds.append((resolve_in_root(src_root, m.source or "/"), m.target, m.readonly))
                    else:
                        try:
                            src = stack.enter_context(context_bind(self.context, m.source, self.work, m.readonly))
                        except FileNotFoundError:
                            raise BuildError(f"--mount source {m.source or '.'}: not found in the build context",
                                             inst.location.file, inst.location.line, "RUN") from None
                        binds.append((src, m.target, m.readonly))
            network = "none" if (inst.network == "none" or self.options.network == "none") else "host"
            if network == "host":
                for f in ("/etc/resolv.conf", "/etc/hosts"):
                    if os.path.exists(f):
                        binds.append((f, f, True))
            req = RunRequest(instruction=inst, config=image.config, rootfs=root, upper=upper, env=v.run_env,
                             shell=v.shell, workdir=v.workdir, user=v.user, network=network, binds=tuple(binds),
                             tmpfs=tuple(tmpfs), container_id="build-" + uuid.uuid4().hex[:20],
                             state_dir=self.state_dir, secret_env=tuple(secret_env), scratch=self.work)
            return run_step(req, step.stdout, step.stderr)

    def _secret(self, inst: I.Run, m: I.Mount, binds: list, secret_env: list) -> None:
        """``--mount=type=secret``: a file staged outside the rootfs and bound read-only at ``target``,
        and/or an environment variable (``env=``) of this RUN only. Neither is in a layer, the history
        or a cache key."""
        from .steps.mounts import stage_secret

        s = next((s for s in self.options.secrets if s.id == m.id), None)
        if s is None:
            if m.required:
                raise BuildError(f"secret {m.id!r} is required but was not given (--secret id={m.id},src=...)",
                                 inst.location.file, inst.location.line, "RUN")
            return
        if s.env:
            data = os.environ.get(s.env, "").encode()
        else:
            try:
                with open(s.src, "rb") as f:
                    data = f.read(MAX_SECRET + 1)
            except OSError as exc:
                raise BuildError(f"secret {m.id!r}: {s.src}: {exc.strerror}", inst.location.file,
                                 inst.location.line, "RUN") from None
        if len(data) > MAX_SECRET:
            raise BuildError(f"secret {m.id!r} is larger than {MAX_SECRET} bytes", inst.location.file,
                             inst.location.line, "RUN")
        if m.env:
            try:
                secret_env.append((m.env, data.decode()))
            except UnicodeDecodeError:
                raise BuildError(f"secret {m.id!r} is not text: it cannot be the variable {m.env}",
                                 inst.location.file, inst.location.line, "RUN") from None
        if m.target:
            sdir = os.path.join(self.work, "secrets")
            path = stage_secret(data, sdir, uuid.uuid4().hex, m.mode if m.mode is not None else 0o400, m.uid, m.gid)
            binds.append((path, m.target, True))

    # -- layers and the final image -------------------------------------------------------------
    def _pack(self, upper: str, lowers: list[str]) -> tuple[Descriptor | None, Digest | None]:
        """Pack an upper dir into a layer blob; ``(None, None)`` when the step changed nothing.

        ``lowers`` are the overlay's lower dirs: overlayfs marks a directory opaque whenever it is made
        where a whiteout was (``rm f; mkdir f``), and the marker is only kept where a lower layer has a
        directory for it to hide."""
        from layers import archive

        if not os.listdir(upper):
            return None, None
        with self.store.blobs.ingest() as ing:
            res = archive.pack(upper, ing, overlay_upper=True, timestamp=self.options.timestamp,
                               compression=self.options.compression, lowerdirs=lowers)
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
        if self.options.format == "oci":
            # OCI image configs have no Healthcheck/OnBuild/Shell: dropped, as buildah does
            config = config.with_config(healthcheck=None, on_build=(), shell=None)
        config = config.with_fields(created=created)
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


def _make_workdir(inst: I.Workdir, user: str, root: str) -> None:
    """``WORKDIR /a/b``: make the missing directories (0755), owned by the stage's USER (BuildKit)."""
    from runner.rootfs import resolve_in_root
    from runner.spec import resolve_user

    if inst.path == "/":
        return
    owner = (0, 0)
    if user:
        try:
            u = resolve_user(user, resolve_in_root(root, "/etc"))
        except PybuildError as exc:
            raise BuildError(f"USER {user}: {exc}", inst.location.file, inst.location.line, "WORKDIR") from None
        owner = (u.uid, u.gid)
    path = ""
    for part in inst.path.strip("/").split("/"):
        path += "/" + part
        host = resolve_in_root(root, path)
        if os.path.isdir(host):
            continue
        if os.path.lexists(host):
            raise BuildError(f"{path} exists and is not a directory", inst.location.file, inst.location.line,
                             "WORKDIR")
        os.mkdir(host, 0o755)
        os.lchown(host, *owner)
        os.chmod(host, 0o755)


def _numeric_owner(chown: str) -> bool:
    return all(part.isdigit() for part in chown.split(":") if part)


def _copy_error(inst: I.Copy, reason: str) -> BuildError:
    return BuildError(reason, inst.location.file, inst.location.line, inst.name)


def _ownership(inst: I.Copy, root: str) -> Ownership:
    mode = int(inst.chmod, 8) if inst.chmod else None
    if not inst.chown:
        return Ownership(mode=mode)
    from runner.rootfs import resolve_in_root
    from runner.spec import resolve_user

    user, _, group = inst.chown.partition(":")
    etc = resolve_in_root(root, "/etc")
    try:
        uid = resolve_user(user, etc).uid
        gid = resolve_user(f"{user}:{group}" if group else user, etc).gid
    except PybuildError as exc:
        raise _copy_error(inst, f"--chown={inst.chown}: {exc}") from None
    return Ownership(uid=uid, gid=gid, mode=mode)


def _archive_kind(path: str) -> str | None | bool:
    """``"gzip"``, ``"zstd"``, ``"bzip2"``, ``"xz"``, ``None`` (a plain tar) for an archive ADD unpacks,
    or ``False`` for any other file (copied as it is)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except (IsADirectoryError, FileNotFoundError):
        return False
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if head[:3] == b"BZh":
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return None
    return False


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
