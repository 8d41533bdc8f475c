"""``import --change``: Dockerfile instructions applied to an image config, through the builder's own
parser (:func:`builder.parse.parse_instruction`), planning handlers (variables expanded against the
config's ENV, ports and paths checked) and config edits (:data:`builder.steps.meta.EDITS`), exactly
as in a build. Only the instructions Docker accepts for ``--change`` are allowed."""

from __future__ import annotations

from collections.abc import Sequence

from layers.config import ImageConfig

from . import instructions as I
from .errors import BuildError, DockerfileError

__all__ = ["CHANGE_INSTRUCTIONS", "apply_changes"]

#: What ``docker import/commit --change`` accepts (HEALTHCHECK and STOPSIGNAL included).
CHANGE_INSTRUCTIONS: tuple[type[I.Instruction], ...] = (
    I.Cmd, I.Entrypoint, I.Env, I.Expose, I.Label, I.Onbuild, I.Stopsignal, I.User, I.Volume, I.Workdir,
    I.Healthcheck,
)
_NAMES = ", ".join(sorted(t.keyword for t in CHANGE_INSTRUCTIONS))


def _fail(text: str, reason: str, keyword: str | None = None) -> DockerfileError:
    return DockerfileError(f"--change {text!r}", None, keyword, reason)


def apply_changes(config: ImageConfig, changes: Sequence[str]) -> ImageConfig:
    """``config`` with each change applied in order. A change that does not parse, is not one of
    :data:`CHANGE_INSTRUCTIONS`, or fails its checks raises :class:`DockerfileError` whose one-line
    message names the ``--change`` value."""
    from .graph import BaseImage, PlanOptions
    from .parse import Dockerfile, parse_instruction
    from .planning import PlanContext, StageContext, plan_step
    from .planning.context import StageState
    from .steps.meta import apply_meta

    for text in changes:
        where = I.Location(f"--change {text!r}", 0)
        try:
            inst = parse_instruction(text, where)
        except DockerfileError as exc:
            raise _fail(text, exc.reason, exc.instruction) from None
        if not isinstance(inst, CHANGE_INSTRUCTIONS):
            raise _fail(text, f"{inst.keyword} cannot be changed on import (allowed: {_NAMES})")
        c = config.config
        base = BaseImage(key="", env=tuple(c.env), working_dir=c.working_dir,
                         shell=tuple(c.shell) if c.shell else None)
        plan = PlanContext(df=Dockerfile(where.file, "\\", ()), options=PlanOptions(), resolver=None,
                           context=None, build_args={}, meta_args={})
        stage = StageContext(plan=plan, index=0, platform=PlanOptions().platform, state=StageState(base))
        try:
            vertex = plan_step(stage, inst, "")
        except (DockerfileError, BuildError) as exc:
            raise _fail(text, exc.reason, exc.instruction) from None
        config = apply_meta(config, vertex.instruction)
    return config
