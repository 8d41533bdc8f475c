"""``build(options, store, ...)``: parse -> plan -> execute -> tag -> outputs (-o) -> push.

Everything the Dockerfile gets wrong is reported before the store is touched: parsing and planning
(including context selection and base image lookup) come first.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace
from typing import TYPE_CHECKING, Callable

from layers.value import frozen

from . import instructions as I
from .attest import attach_sbom, attach_sboms, write_sbom
from .context import BuildContext
from .dockerignore import load_ignore
from .errors import BuildError
from .execute import BuildResult, Executor
from .options import BuildOptions, RegistrySettings
from .parse import parse, parse_file
from .plan import Plan, PlanOptions, plan
from .progress import Progress
from .resolver import StoreResolver

if TYPE_CHECKING:
    from layers.store import Store
    from registry_client.store import LocalStore
    from runner.procsandbox import ProcessSandbox


__all__ = ["BuildOutcome", "build", "load_plan", "read_dockerfile", "attach_sbom", "attach_sboms", "write_sbom"]


@frozen
class BuildOutcome:
    """``result``/``plan``: the image built (with several platforms, the first's); ``index``: the
    index over every platform's image when more than one was built (``platforms`` in its order)."""

    result: BuildResult
    plan: Plan
    tags: tuple[str, ...]
    pushed: tuple[str, ...] = ()
    cache_lines: tuple[str, ...] = ()  # what the shared cache imported and exported
    index: object | None = None  # layers.index.Index
    platforms: tuple = ()        # builder.multiplatform.PlatformBuild, one per --platform

    @property
    def document(self):
        """What the tags name: the index, or the one image's manifest."""
        return self.index if self.index is not None else self.result.manifest

    @property
    def image_id(self) -> str:
        """The image id Docker prints: the config digest, or for an index the index's digest."""
        return str(self.index.digest) if self.index is not None else self.result.image_id

    @property
    def steps(self) -> tuple[int, int]:
        """``(cache hits, steps)`` over every platform built."""
        builds = [b.result for b in self.platforms] or [self.result]
        return sum(r.cache_hits for r in builds), sum(r.steps for r in builds)


def read_dockerfile(options: BuildOptions):
    """Parse the Dockerfile the options name (a path, or text from ``-f -``): ``(Dockerfile, path)``."""
    if options.dockerfile_text is not None:
        return parse(options.dockerfile_text, "Dockerfile"), None
    df_path = options.dockerfile or os.path.join(options.context_dir, "Dockerfile")
    if not os.path.isfile(df_path):
        raise BuildError(f"Dockerfile {df_path}: no such file")
    return parse_file(df_path), df_path


def load_plan(options: BuildOptions, resolver, cache_root: str | None = None, parsed=None) -> tuple[Plan, BuildContext]:
    """Parse and plan (pure apart from reading the context and resolving base images)."""
    df, df_path = parsed or read_dockerfile(options)
    hash_cache = os.path.join(cache_root, "cache", "context-hashes.json") if cache_root else None
    context = BuildContext(options.context_dir, load_ignore(options.context_dir, df_path), hash_cache)
    p = plan(df, PlanOptions(target=options.target, build_args=options.build_args, platform=options.platforms[0]),
             resolver, context)
    return p, context


def build(options: BuildOptions, store: Store | Callable[[], Store], *, registry: RegistrySettings | None = None,
          progress: Progress | None = None, state_dir: str | None = None) -> BuildOutcome:
    """Build and commit the image; tag it with every ``options.tags``; write ``-o`` outputs; push.

    ``store`` may be a callable that opens the store: it is called only after the Dockerfile parsed,
    so a malformed Dockerfile never touches (or creates) the store. ``registry`` is how base images
    are pulled and ``--push`` pushes; without it only images already in the store are used.
    ``state_dir`` is the runtime state directory of RUN steps' sandboxes."""
    from layers.reference import Reference

    from .remotecache.spec import parse_cache_spec

    parsed = read_dockerfile(options)
    imports = tuple(parse_cache_spec(s, "from") for s in options.cache_from)  # refused before any work
    exports = tuple(parse_cache_spec(s, "to") for s in options.cache_to)
    if callable(store):
        store = store()

    progress = progress or Progress(None, "quiet")
    sandbox = _prepare_runs(parsed[0], options, store.root, progress)
    tags = tuple(str(Reference.parse(t)) for t in options.tags)  # refuse a bad -t before any work
    if len(options.platforms) > 1:
        return _build_index(options, store, registry, progress, state_dir, parsed, tags, sandbox,
                            (imports, exports))
    options = replace(options, platform=options.platforms[0])
    resolver = StoreResolver(store, registry, pull=options.pull, progress=progress, lazy=bool(imports))
    shared = _cache_session(store, imports, exports, registry, options)
    with store.lease(), contextlib.closing(resolver), contextlib.ExitStack() as stack:
        if shared is not None:
            stack.callback(shared.close)
        p, context = load_plan(options, resolver, store.root, parsed)
        if p.unused_args:
            progress.note("[warning] build arguments not consumed: " + ", ".join(p.unused_args))
        if shared is not None and not options.no_cache:
            shared.load(progress.note)
        executor = Executor(store, options, context, resolver, progress, state_dir=state_dir, shared=shared,
                            sandbox=sandbox)
        try:
            result = executor.run(p)
        finally:
            executor.close()
            context.save_hashes()
        if shared is not None:
            shared.remote.settle_local(result.layers)
            result = shared.export_inline(p, result)
        from layers.store.pause import pause_point

        pause_point("build-tag")  # a test hook: the image is stored, not yet named
        for tag in tags:
            if shared is not None:  # its layers may be lazy cache hits
                store.images.tag(Reference.parse(tag), result.manifest.digest, lazy=True)
            else:
                store.images.tag(Reference.parse(tag), result.manifest.digest)
        if not tags:
            store.images.add_dangling(result.manifest.digest, lazy=shared is not None)  # <none>:<none>
        if options.sbom:
            if shared is not None:
                _complete(shared, result.manifest)  # the scan reads every layer's bytes
            write_sbom(store, result, p, resolver, tags, options)
        if shared is not None:
            shared.export(p, progress.note)
        for spec in options.outputs:
            if shared is not None:
                _complete(shared, result.manifest)
            write_output(spec, result, tags, store)
        pushed = tuple(push_image(t, result, store, registry, options, shared) for t in tags) if options.push else ()
        lines = tuple(shared.summary(executor.remote_hits)) if shared is not None else ()
    return BuildOutcome(result, p, tags, pushed, lines)


def _build_index(options: BuildOptions, store: Store, registry: RegistrySettings | None, progress: Progress,
                 state_dir: str | None, parsed, tags: tuple[str, ...], sandbox: ProcessSandbox | None = None,
                 caches: tuple[tuple, tuple] = ((), ())) -> BuildOutcome:
    """Several ``--platform``s: one plan and executor per platform, side by side, sharing one lock per
    step (a shared ``$BUILDPLATFORM`` step runs once) and one cache session (imports read once; one
    export holding every platform's records, whose keys differ by platform); each image gets its own
    SBOM (``--sbom``) and inline cache; then the index, tagged, written, pushed."""
    from layers.reference import Reference

    from .cache import StepLocks
    from .multiplatform import PlatformBuild, build_platforms, commit_index

    imports, exports = caches  # parsed cache specs
    shared = _cache_session(store, imports, exports, registry, options)
    locks = StepLocks()

    def one(platform: str) -> PlatformBuild:
        opts = replace(options, platform=platform)
        resolver = StoreResolver(store, registry, pull=opts.pull, progress=progress, lazy=bool(imports))
        with contextlib.closing(resolver):
            p, context = load_plan(opts, resolver, store.root, parsed)
            if p.unused_args:
                progress.note(f"[warning] {platform}: build arguments not consumed: " + ", ".join(p.unused_args))
            executor = Executor(store, opts, context, resolver, progress, state_dir=state_dir, label_platform=True,
                                step_locks=locks, sandbox=sandbox, shared=shared)
            try:
                result = executor.run(p)
            finally:
                executor.close()
                context.save_hashes()
            if shared is not None:
                shared.remote.settle_local(result.layers)
                result = shared.export_inline(p, result, platform)
            if options.sbom:  # from this platform's own layers (lazy cache hits fetched first)
                if shared is not None:
                    _complete(shared, result.manifest)
                write_sbom(store, result, p, resolver, tags, opts)
        return PlatformBuild(platform, result, p, executor.remote_hits)

    with store.lease(), contextlib.ExitStack() as stack:
        if shared is not None:
            stack.callback(shared.close)
            if not options.no_cache:
                shared.load(progress.note)
        builds = build_platforms(options.platforms, one)
        index = commit_index(store, builds, docker=options.format == "docker")
        from layers.store.pause import pause_point

        pause_point("build-tag")  # a test hook: the image is stored, not yet named
        for tag in tags:
            store.images.tag(Reference.parse(tag), index, lazy=shared is not None)
        if shared is not None:
            shared.export(builds[0].plan, progress.note)  # the plans differ only by platform
        for spec in options.outputs:
            if shared is not None:
                for b in builds:
                    _complete(shared, b.result.manifest)
            write_output(spec, index, tags, store)
        pushed = tuple(push_image(t, index, store, registry, options, shared, builds) for t in tags) \
            if options.push else ()
        lines = tuple(shared.summary(sum(b.remote_hits for b in builds))) if shared is not None else ()
    return BuildOutcome(builds[0].result, builds[0].plan, tags, pushed, lines, index=index, platforms=tuple(builds))


def _prepare_runs(df, options: BuildOptions, store_root: str, progress: Progress) -> ProcessSandbox | None:
    """What RUN steps need, checked once per build before any work: a store where overlay can keep
    upper dirs (not a container's own overlay root), and the process sandbox
    (:func:`runner.procsandbox.choose`), noted once when there is none. ``None`` (a PID namespace
    and /proc of their own, nothing probed) for a Dockerfile without RUN."""
    from runner.upperfs import check_upper_dir

    check_upper_dir(store_root)
    if not any(isinstance(i, I.Run) for i in df.instructions):
        return None
    from runner.procsandbox import choose

    sandbox = choose(options.process_sandbox)
    if sandbox.note:
        progress.note(sandbox.note)
    return sandbox


def _cache_session(store, imports, exports, registry: RegistrySettings | None, options: BuildOptions):
    if not imports and not exports:
        return None
    from .remotecache.session import CacheSession

    return CacheSession(store, imports, exports, registry.transport() if registry else None, options.jobs)


def _complete(shared, manifest) -> None:
    """Fetch every lazy layer of ``manifest`` (an archive output needs the bytes)."""
    for desc in manifest.layers:
        shared.remote.ensure(desc)


def _output_spec(spec: str) -> dict[str, str]:
    out = {}
    for part in spec.split(","):
        key, eq, value = part.partition("=")
        if not eq:
            raise BuildError(f"-o {spec}: expected type=oci|docker,dest=PATH")
        out[key.strip()] = value.strip()
    if out.get("type") not in ("oci", "docker") or not out.get("dest"):
        raise BuildError(f"-o {spec}: expected type=oci|docker,dest=PATH")
    return out


def write_output(spec: str, result, tags: tuple[str, ...], store: LocalStore) -> None:
    """``-o type=oci|docker,dest=PATH``: an archive (OCI layout + manifest.json), written atomically, of
    ``result`` (a :class:`BuildResult`, or the index of a multi-platform build)."""
    import tempfile

    from layers.layout import ArchiveImage, write_archive
    from layers.reference import Reference

    out = _output_spec(spec)
    dest = out["dest"]
    names = tuple(Reference.parse(t) for t in tags)
    directory = os.path.dirname(os.path.abspath(dest))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".pybuild-out-")
    try:
        with os.fdopen(fd, "wb") as f:
            write_archive(f, [ArchiveImage(getattr(result, "manifest", result), names)], store.blobs)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def push_image(tag: str, result, store: LocalStore, registry: RegistrySettings | None,
               options: BuildOptions, shared=None, builds=()) -> str:
    """Push the built image as ``tag`` (``result``: a :class:`BuildResult`, or a multi-platform build's
    index, pushed with every image in it, ``builds`` its platforms' images); the digest the registry
    has it under."""
    from layers.reference import Reference
    from registry_client.client import Registry
    from registry_client.credentials import CredentialStore
    from registry_client.push import PushOptions, push

    if registry is None:
        raise BuildError("--push needs registry settings")
    ref = Reference.parse(tag)
    credentials = CredentialStore().get(ref.registry)
    if shared is not None:  # lazy layers: mounted from the cache's repository, or fetched if none can be
        for manifest in [b.result.manifest for b in builds] or [result.manifest]:
            shared.prepare_push(manifest, ref.api_host)
    document = getattr(result, "manifest", result)
    with Registry(ref.api_host, config=registry.transport(), credentials=credentials) as remote:
        repo = remote.repository(ref.repository)
        res = push(store, repo, document, ref, PushOptions(jobs=options.jobs))
        if options.sbom:
            attach_sboms(store, repo, ref, document, res.digest)
    return str(res.digest)
