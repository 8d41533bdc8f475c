"""Which stages a build must run when some steps will hit the cache: BuildKit's laziness for the
stages a hit makes unneeded (a ``COPY --from=build`` that hits needs nothing of ``build``).

Pure: ``hit(vertex)`` answers from the cache lookups the executor then uses, so a step judged a hit
here is a hit when it runs.
"""

from __future__ import annotations

from typing import Callable

from .. import instructions as I
from ..graph import Plan, Vertex

__all__ = ["needed_stages"]


def needed_stages(plan: Plan, hit: Callable[[Vertex], bool]) -> frozenset[int]:
    """The stages of ``plan.order`` the target needs: its base-stage chain, and a stage another needed
    stage reads through a step that misses (or through anything but a ``COPY --from`` step)."""
    needed: set[int] = set()

    def need(idx: int) -> None:
        if idx in needed:
            return
        needed.add(idx)
        stage = plan.stages[idx]
        if stage.base_stage is not None:
            need(stage.base_stage)
        copy_reads: set[int] = set()
        for v in stage.vertices:
            if isinstance(v.instruction, I.Copy) and v.from_stage is not None:
                copy_reads.add(v.from_stage)
                if not hit(v):
                    need(v.from_stage)
        for dep in stage.deps:  # read otherwise (RUN --mount from=, ONBUILD...): always needed
            if dep not in copy_reads and dep != stage.base_stage:
                need(dep)

    need(plan.target)
    return frozenset(needed)
