"""``--platform linux/amd64,linux/arm64``: one build graph per target platform, run side by side, then
one index over the images.

Each platform is planned and executed on its own (its own resolver, so each base image is taken for
that platform, and its own :class:`~builder.execute.Executor`); steps a platform shares with another
(a ``FROM --platform=$BUILDPLATFORM`` stage that does not read ``TARGET*``) have the same cache key, so
the second finds the first's layer when they do not run at the same moment. Graphs run in parallel up
to the machine's cores. :func:`commit_index` writes the OCI index (or, with ``--format docker``, the
Docker manifest list) whose entries carry each image's platform as its config records it.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from layers.descriptor import Descriptor
from layers.index import Index
from layers.value import frozen

from .execute import BuildResult

__all__ = ["PlatformBuild", "build_platforms", "commit_index"]


@frozen
class PlatformBuild:
    """One target platform's finished image and the plan it came from."""

    platform: str
    result: BuildResult
    plan: object  # builder.plan.Plan
    remote_hits: int = 0  # steps that hit an imported (--cache-from) cache


def build_platforms(platforms: tuple[str, ...], build_one: Callable[[str], PlatformBuild]) -> list[PlatformBuild]:
    """``build_one`` for each platform, at most one per core at once; results in ``platforms`` order.
    The first failure is raised once the others have stopped."""
    workers = max(1, min(len(platforms), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="platform") as pool:
        futures = [pool.submit(build_one, p) for p in platforms]
        return [f.result() for f in futures]


def commit_index(store, builds: list[PlatformBuild], *, docker: bool) -> Index:
    """Store the index over ``builds`` (each manifest already stored); returns it."""
    entries = []
    for b in builds:
        manifest = b.result.manifest
        entries.append(Descriptor(media_type=manifest.media_type, digest=manifest.digest, size=len(manifest.raw),
                                  platform=b.result.config.platform))
    index = Index.build(entries, docker=docker)
    store.blobs.put_bytes(index.raw, index.digest)
    return index
