"""Images of a project: build (``build:``, through :func:`builder.build.build`), pull and push (through
:mod:`registry_client`), and the id each service runs, which goes into its config hash.

Policies (Compose v2): ``up`` builds a service with ``build:`` whose image is missing (``--build``:
always, ``--no-build``: never, a missing image is then an error), pulls a missing image of a service
without ``build:`` (``--pull always``: every time; ``pull_policy`` of the service likewise).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from compose.model import Project, Service
from compose.plan import image_name
from layers.errors import NotFound, PybuildError

from .errors import ServiceFailed

__all__ = ["image_id", "build_service", "pull_image", "push_image", "ensure_images", "service_images"]


def image_id(engine, ref: str) -> str:
    """The id of the local image ``ref``, or "" if the store has none."""
    try:
        return str(engine.images().images.resolve(ref).id)
    except NotFound:
        return ""


def build_service(engine, project: Project, svc: Service, *, no_cache: bool = False, pull: bool = False) -> str:
    """Build ``svc``'s image and tag it :func:`compose.plan.image_name`; return its id."""
    from builder.build import build
    from builder.options import BuildOptions
    from builder.progress import Progress

    b = svc.build
    env = dict(project.environment)
    args = []
    for k, v in b.args:
        if v is None:
            if k in env:
                args.append((k, env[k]))
        else:
            args.append((k, v))
    if b.platforms or (b.network not in (None, "host", "default", "none")):
        raise ServiceFailed(f"services.{svc.name}.build: platforms and networks other than "
                            "host/none are not supported", svc.name)
    secrets, cache_from = build_secrets(svc), build_cache_from(svc)
    tag = image_name(project, svc)
    options = BuildOptions(
        context_dir=b.context,
        dockerfile=None if b.dockerfile_inline is not None else os.path.join(b.context, b.dockerfile),
        dockerfile_text=b.dockerfile_inline.encode() if b.dockerfile_inline is not None else None,
        tags=(tag,) + tuple(b.tags), target=b.target, build_args=tuple(args), labels=tuple(b.labels),
        no_cache=no_cache or b.no_cache, pull=pull or b.pull, network="none" if b.network == "none" else "host",
        secrets=secrets, cache_from=cache_from,
    )
    stream = engine.reporter.progress
    progress = Progress(stream, "plain" if stream is not None else "quiet")
    engine.reporter.event("Service", svc.name, "Building")
    try:
        outcome = build(options, engine.images, registry=engine.registry_settings(), progress=progress,
                        state_dir=engine.state_dir)
    finally:
        progress.close()
    engine.reporter.event("Image", tag, "Built")
    return outcome.result.image_id


def build_secrets(svc: Service) -> tuple:
    """``build.secrets`` -> the builder's ``--secret id=TARGET,src=FILE``: the id a Dockerfile's
    ``RUN --mount=type=secret,id=...`` names is the long syntax's ``target`` (default: the secret's key);
    the file is the top-level secret's ``file:``. A secret given by ``environment``/``content`` is refused."""
    from builder.options import Secret

    out = []
    for ref in svc.build.secrets:
        where = f"services.{svc.name}.build.secrets[{ref.source}]"
        if ref.file is None:
            raise ServiceFailed(f"{where}: only file-based build secrets are supported", svc.name)
        if not os.path.isfile(ref.file):
            raise ServiceFailed(f"{where}: secret file {ref.file} does not exist", svc.name)
        if "/" in ref.target or "," in ref.target:
            raise ServiceFailed(f"{where}: target {ref.target!r} is not a secret id", svc.name)
        out.append(Secret(id=ref.target, src=ref.file))
    return tuple(out)


def build_cache_from(svc: Service) -> tuple[str, ...]:
    """``build.cache_from`` -> the builder's ``--cache-from`` specs (an image ref is ``type=registry,ref=REF``,
    BuildKit's spelling is kept), each checked here so a bad entry names the service."""
    from builder.errors import BuildError
    from builder.remotecache.spec import parse_cache_spec

    for i, text in enumerate(svc.build.cache_from):
        try:
            parse_cache_spec(text, "from")
        except BuildError as exc:
            raise ServiceFailed(f"services.{svc.name}.build.cache_from[{i}]: {exc}", svc.name) from None
    return tuple(svc.build.cache_from)


def pull_image(engine, ref_text: str) -> str:
    """Pull ``ref_text`` into the store; return its id."""
    from layers.reference import Reference
    from registry_client.progress import make_progress
    from registry_client.pull import PullOptions, pull

    ref = Reference.parse(ref_text)
    stream = engine.reporter.progress
    progress = make_progress(stream, quiet=stream is None)
    engine.reporter.event("Image", ref_text, "Pulling")
    with engine.open_registry(ref) as registry:
        pull(engine.images(), registry.repository(ref.repository), ref, PullOptions(), progress)
    engine.reporter.event("Image", ref_text, "Pulled")
    return image_id(engine, ref_text)


def push_image(engine, ref_text: str) -> str:
    """Push the local image ``ref_text`` to its registry; return the pushed digest."""
    from layers.manifest import parse_document
    from layers.reference import Reference
    from registry_client.progress import make_progress
    from registry_client.push import PushOptions, push

    ref = Reference.parse(ref_text)
    store = engine.images()
    stream = engine.reporter.progress
    with store.lease():
        record = store.images.resolve(ref_text)
        document = parse_document(store.blobs.read_bytes(record.manifest_digest, 4 << 20))
        engine.reporter.event("Image", ref_text, "Pushing")
        with engine.open_registry(ref) as registry:
            result = push(store, registry.repository(ref.repository), document, ref, PushOptions(),
                          make_progress(stream, quiet=stream is None))
    engine.reporter.event("Image", ref_text, "Pushed")
    return str(result.digest)


def _policy(svc: Service, build: bool | None, pull: str | None) -> str:
    """What to do for ``svc``: build, build-missing, pull, pull-missing, or never."""
    if svc.build is not None:
        if build is True:
            return "build"
        if build is False:
            return "never"
        return "build-missing" if svc.pull_policy != "build" else "build"
    if pull == "always" or svc.pull_policy == "always":
        return "pull"
    if pull == "never" or svc.pull_policy == "never":
        return "never"
    return "pull-missing"


def ensure_images(engine, project: Project, names, *, build: bool | None = None, pull: str | None = None,
                  no_cache: bool = False) -> dict[str, str]:
    """Make sure every service of ``names`` has its image; return ``{service: image id}``.
    Builds run one after the other (each uses both cores); pulls in parallel."""
    ids: dict[str, str] = {}
    to_pull: dict[str, list[str]] = {}
    for n in names:
        svc = project.service(n)
        ref = image_name(project, svc)
        policy = _policy(svc, build, pull)
        have = image_id(engine, ref)
        if policy == "build" or (policy == "build-missing" and not have):
            ids[n] = build_service(engine, project, svc, no_cache=no_cache, pull=pull == "always")
        elif policy == "pull" or (policy == "pull-missing" and not have):
            to_pull.setdefault(ref, []).append(n)
        elif not have:
            raise ServiceFailed(f"service {n}: image {ref} is not in the store"
                                + (" (build it: up --build)" if svc.build else " (pull it: --pull missing)"), n)
        else:
            ids[n] = have
    if to_pull:
        def pull_for(ref: str) -> str:
            try:
                return pull_image(engine, ref)
            except PybuildError as exc:
                raise ServiceFailed(f"service {', '.join(to_pull[ref])}: pull {ref}: {exc}", to_pull[ref][0]) from None

        with ThreadPoolExecutor(max_workers=min(4, len(to_pull)), thread_name_prefix="pull") as pool:
            for ref, iid in zip(to_pull, pool.map(pull_for, list(to_pull))):
                for n in to_pull[ref]:
                    ids[n] = iid
    return ids


def service_images(engine, project: Project, names) -> dict[str, str]:
    """``{service: image id}`` of what the store has now ("" for a missing image)."""
    return {n: image_id(engine, image_name(project, project.service(n))) for n in names}
