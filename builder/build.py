"""``build(options, store, ...)``: parse -> plan -> execute -> tag -> outputs (-o) -> push.

Everything the Dockerfile gets wrong is reported before the store is touched: parsing and planning
(including context selection and base image lookup) come first.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
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
    result: BuildResult
    plan: Plan
    tags: tuple[str, ...]
    pushed: tuple[str, ...] = ()


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
    p = plan(df, PlanOptions(target=options.target, build_args=options.build_args, platform=options.platform),
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
    resolver = StoreResolver(store, registry, pull=options.pull, progress=progress)
    with store.lease(), contextlib.closing(resolver):
        p, context = load_plan(options, resolver, store.root, parsed)
        if p.unused_args:
            progress.note("[warning] build arguments not consumed: " + ", ".join(p.unused_args))
        executor = Executor(store, options, context, resolver, progress, state_dir=state_dir)
        try:
            result = executor.run(p)
        finally:
            executor.close()
            context.save_hashes()
        from layers.store.pause import pause_point

        pause_point("build-tag")  # a test hook: the image is stored, not yet named
        for tag in tags:
            store.images.tag(Reference.parse(tag), result.manifest.digest)
        if not tags:
            store.images.add_dangling(result.manifest.digest)   # Docker's <none>:<none>, found by its id
    for spec in options.outputs:
        write_output(spec, result, tags, store)
    pushed = tuple(push_image(t, result, store, registry, options) for t in tags) if options.push else ()
    return BuildOutcome(result, p, tags, pushed)


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


def write_output(spec: str, result: BuildResult, tags: tuple[str, ...], store: LocalStore) -> None:
    """``-o type=oci|docker,dest=PATH``: an archive (OCI layout + manifest.json), written atomically."""
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
            write_archive(f, [ArchiveImage(result.manifest, names)], store.blobs)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def push_image(tag: str, result: BuildResult, store: LocalStore, registry: RegistrySettings | None,
               options: BuildOptions) -> str:
    """Push the built image as ``tag``; its manifest digest."""
    from layers.reference import Reference
    from registry_client.client import Registry
    from registry_client.credentials import CredentialStore
    from registry_client.push import PushOptions, push

    if registry is None:
        raise BuildError("--push needs registry settings")
    ref = Reference.parse(tag)
    credentials = CredentialStore().get(ref.registry)
    with Registry(ref.api_host, config=registry.transport(), credentials=credentials) as remote:
        res = push(store, remote.repository(ref.repository), result.manifest, ref,
                   PushOptions(jobs=options.jobs))
    return str(res.digest)
