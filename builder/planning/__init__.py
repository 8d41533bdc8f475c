"""One planning handler per instruction type, in a table keyed by the instruction's class (as
:data:`builder.parsers.PARSERS` is keyed by keyword for parsing).

A handler takes the :class:`~builder.planning.context.Step` (the instruction, its parent key and the
stage state before it) and returns the step's :class:`~builder.graph.Vertex`, updating the stage
state (ENV, ARG, WORKDIR, USER, SHELL) and the stages it depends on as it goes.
"""

from __future__ import annotations

from typing import Callable

from .. import instructions as I
from ..graph import Vertex
from .context import PlanContext, StageContext, Step
from .copy import plan_copy
from .meta import (plan_arg, plan_as_written, plan_env, plan_expose, plan_label, plan_misplaced_from, plan_shell,
                   plan_stopsignal, plan_user, plan_volume, plan_workdir)
from .run import plan_run

__all__ = ["PLANNERS", "plan_step", "PlanContext", "StageContext", "Step"]

PLANNERS: dict[type[I.Instruction], Callable[[Step], Vertex]] = {
    I.From: plan_misplaced_from,
    I.Arg: plan_arg,
    I.Env: plan_env,
    I.Label: plan_label,
    I.Workdir: plan_workdir,
    I.User: plan_user,
    I.Expose: plan_expose,
    I.Volume: plan_volume,
    I.Stopsignal: plan_stopsignal,
    I.Shell: plan_shell,
    I.Run: plan_run,
    I.Copy: plan_copy,
    I.Cmd: plan_as_written,
    I.Entrypoint: plan_as_written,
    I.Healthcheck: plan_as_written,
    I.Onbuild: plan_as_written,
    I.Maintainer: plan_as_written,
}


def plan_step(stage: StageContext, inst: I.Instruction, parent: str) -> Vertex:
    """The vertex of ``inst`` in ``stage``, below the vertex keyed ``parent``."""
    return PLANNERS[type(inst)](Step.start(stage, inst, parent))
