"""``build(options, store, ...)``: parse -> plan -> execute -> tag -> outputs (-o) -> push.

Everything the Dockerfile gets wrong is reported before the store is touched: parsing and planning
(including context selection and base image lookup) come first.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable

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


__all__ = ["BuildOutcome", "build", "load_plan", "read_dockerfile"]


@dataclass(frozen=True)
class BuildOutcome:
    """``result``/``plan``: the image built (with several platforms, the first's); ``index``: the
    index over every platform's image when more than one was built (``platforms`` in its order)."""

    result: BuildResult
    plan: Plan
    tags: tuple[str, ...]
    pushed: tuple[str, ...] = ()
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

    parsed = read_dockerfile(options)
    if callable(store):
        store = store()

    progress = progress or Progress(None, "quiet")
    tags = tuple(str(Reference.parse(t)) for t in options.tags)  # refuse a bad -t before any work
    platforms = options.platforms
    with store.lease():
        if len(platforms) == 1:
            one = _build_platform(replace(options, platform=platforms[0]), store, registry, progress, state_dir,
                                  parsed)
            builds, index = [one], None
        else:
            from .multiplatform import build_platforms, commit_index

            from .cache import StepLocks

            locks = StepLocks()
            builds = build_platforms(platforms, lambda platform: _build_platform(
                replace(options, platform=platform), store, registry, progress, state_dir, parsed, labelled=True,
                step_locks=locks))
            index = commit_index(store, builds, docker=options.format == "docker")
        outcome = BuildOutcome(builds[0].result, builds[0].plan, tags, index=index,
                               platforms=tuple(builds) if index is not None else ())
        from layers.store.pause import pause_point

        pause_point("build-tag")  # a test hook: the image is stored, not yet named
        for tag in tags:
            store.images.tag(Reference.parse(tag), outcome.document.digest)
    for spec in options.outputs:
        write_output(spec, outcome.document, tags, store)
    pushed = tuple(push_image(t, outcome.document, store, registry, options) for t in tags) if options.push else ()
    return replace(outcome, pushed=pushed)


def _build_platform(options: BuildOptions, store: Store, registry: RegistrySettings | None, progress: Progress,
                    state_dir: str | None, parsed, labelled: bool = False, step_locks=None):
    """Plan and execute for ``options.platform`` (one platform): a :class:`PlatformBuild`."""
    from .multiplatform import PlatformBuild

    resolver = StoreResolver(store, registry, pull=options.pull, progress=progress)
    with contextlib.closing(resolver):
        p, context = load_plan(options, resolver, store.root, parsed)
        if p.unused_args:
            progress.note("[warning] build arguments not consumed: " + ", ".join(p.unused_args))
        executor = Executor(store, options, context, resolver, progress, state_dir=state_dir,
                            label_platform=labelled, step_locks=step_locks)
        try:
            result = executor.run(p)
        finally:
            executor.close()
            context.save_hashes()
    return PlatformBuild(options.platform, result, p)


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


def write_output(spec: str, document, tags: tuple[str, ...], store: LocalStore) -> None:
    """``-o type=oci|docker,dest=PATH``: an archive (OCI layout + manifest.json) of ``document`` (the
    image's manifest, or the index of a multi-platform build), written atomically."""
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
            write_archive(f, [ArchiveImage(document, names)], store.blobs)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def push_image(tag: str, document, store: LocalStore, registry: RegistrySettings | None,
               options: BuildOptions) -> str:
    """Push ``document`` (the built image's manifest, or the index and every image in it) as ``tag``;
    the digest the registry has it under."""
    from layers.reference import Reference
    from registry_client.client import Registry
    from registry_client.credentials import CredentialStore
    from registry_client.push import PushOptions, push

    if registry is None:
        raise BuildError("--push needs registry settings")
    ref = Reference.parse(tag)
    credentials = CredentialStore().get(ref.registry)
    with Registry(ref.api_host, config=registry.transport(), credentials=credentials) as remote:
        res = push(store, remote.repository(ref.repository), document, ref,
                   PushOptions(jobs=options.jobs))
    return str(res.digest)
