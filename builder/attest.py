"""``--sbom`` attestations of a build: the SPDX document of each image made (one per platform of a
multi-platform build, each from that platform's own layers) saved beside the store, and, on push,
attached as an OCI 1.1 referrer whose subject is that image's manifest on the registry (BuildKit
attaches attestations per platform too). An index gets no SBOM of its own: its entries have theirs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from layers.store import Store

    from .execute import BuildResult
    from .options import BuildOptions
    from .plan import Plan

__all__ = ["write_sbom", "attach_sbom", "attach_sboms"]


def _base_layers(p: Plan, resolver) -> int:
    """How many layers of the target's image come from its base image (the rest the build made)."""
    stage = p.stages[p.target]
    while stage.base_stage is not None:
        stage = p.stages[stage.base_stage]
    if stage.base == "scratch":
        return 0
    return len(resolver.load(stage.base, stage.platform).manifest.layers)


def write_sbom(store: Store, result: BuildResult, p: Plan, resolver, tags: tuple[str, ...],
               options: BuildOptions) -> bytes:
    """``--sbom``: the SPDX document of the built image ``result`` (packages of every layer, files of
    the layers this build made), saved beside the store under its manifest digest for push."""
    from layers.sbom import sbom_for_image

    image = store.images.load(result.manifest.digest)
    own = len(image.manifest.layers) - _base_layers(p, resolver)
    return sbom_for_image(store, image, tags[0] if tags else result.image_id, max(own, 0),
                          float(options.timestamp) if options.timestamp is not None else None)


def attach_sbom(store, repo, ref, local, pushed) -> None:
    """Push the SBOM saved for the local manifest ``local`` as a referrer of ``pushed`` (the digest the
    registry holds); nothing when no SBOM was made."""
    from layers.sbom import load_sbom
    from registry_client.sbom import push_sbom
    from registry_client.trust import resolve_digest

    data = load_sbom(store.root, local)
    if data is not None:
        push_sbom(repo, resolve_digest(repo, ref.with_digest(pushed)), data)


def attach_sboms(store, repo, ref, document, pushed) -> int:
    """After ``document`` (a manifest or an index) was pushed as ``pushed``: attach the SBOM saved for
    it, or for an index the SBOM of each platform image to that image's manifest on the registry
    (paired by platform with the pushed index, so a push that rewrote an entry still finds it).
    The number of SBOMs attached."""
    from layers.descriptor import Descriptor
    from layers.index import Index
    from layers.sbom import load_sbom
    from registry_client.sbom import push_sbom

    if not isinstance(document, Index):
        before = load_sbom(store.root, document.digest)
        attach_sbom(store, repo, ref, document.digest, pushed)
        return int(before is not None)
    saved = [(d, load_sbom(store.root, d.digest)) for d in document.images()]
    saved = [(d, data) for d, data in saved if data is not None]
    if not saved:
        return 0
    remote = repo.get_manifest(str(pushed))
    remote_index = Index.parse(remote.raw, remote.media_type or None)
    for local, data in saved:
        entry = remote_index.select(local.platform) if local.platform is not None else local
        push_sbom(repo, Descriptor(entry.media_type, entry.digest, entry.size), data)
    return len(saved)
