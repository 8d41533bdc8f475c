"""What a planning handler works with: the whole plan's context, one stage's, one step's.

:class:`PlanContext` is made once per :func:`builder.plan.plan` call (the Dockerfile, options,
resolver, build context, arguments and the stages planned so far); :class:`StageContext` once per
stage (its index, platform, the stages it reads and its mutable :class:`StageState`); :class:`Step`
once per instruction, holding the stage state as it was *before* the instruction (what the vertex
records unless the handler says otherwise).
"""

from __future__ import annotations

import posixpath
from dataclasses import field

from layers.value import frozen

from .. import instructions as I
from ..context import BuildContext
from ..errors import BuildError, DockerfileError
from ..expand import ExpandError, process_word, process_words
from ..graph import DEFAULT_SHELL, BaseImage, PlanOptions, Resolver, Stage, Vertex, cache_key, canonical
from ..parse import Dockerfile

__all__ = ["PlanContext", "StageState", "StageContext", "Step", "expand_word", "absolute", "resolve_base"]


def _keyword(inst: I.Instruction) -> str:
    return inst.name if isinstance(inst, I.Copy) else inst.keyword


def expand_word(df: Dockerfile, inst: I.Instruction, text: str, env: dict[str, str]) -> str:
    """:func:`process_word`, a bad substitution reported at the instruction's line."""
    try:
        return process_word(text, env, df.escape)
    except ExpandError as exc:
        raise DockerfileError(df.file, inst.location.line, inst.keyword, str(exc)) from None


def absolute(path: str, workdir: str) -> str:
    """``path`` against ``workdir``, normalised; a trailing ``/`` (a directory) is kept."""
    trailing = path.endswith("/") or path in (".", "./") or path.endswith("/.")
    full = posixpath.normpath(posixpath.join(workdir, path))
    return full + "/" if trailing and full != "/" else full


def resolve_base(resolver: Resolver, df: Dockerfile, inst: I.Instruction, image: str, platform: str) -> BaseImage:
    """``resolver.base`` with the instruction's location added to a failure."""
    from layers.errors import PybuildError

    try:
        return resolver.base(image, platform)
    except DockerfileError:
        raise
    except PybuildError as exc:
        raise BuildError(f"{image}: {exc}", df.file, inst.location.line, _keyword(inst)) from None


@frozen
class PlanContext:
    """One planning run. ``stages``/``by_name`` grow as stages are planned; ``used_args`` collects the
    build arguments some ARG declared (the rest are reported unused)."""

    df: Dockerfile
    options: PlanOptions
    resolver: Resolver
    context: BuildContext | None
    build_args: dict[str, str]
    meta_args: dict[str, str]
    used_args: set[str] = field(default_factory=set)
    stages: list[Stage] = field(default_factory=list)
    by_name: dict[str, int] = field(default_factory=dict)

    def stage_ref(self, ref: str, index: int) -> int | None:
        """The stage ``ref`` (a name, or an index below ``index``) names, or None (an image)."""
        if ref.lower() in self.by_name:
            return self.by_name[ref.lower()]
        if ref.isdigit():
            n = int(ref)
            return n if n < index else None
        return None


class StageState:
    """Mutable per-stage state: ENV, declared ARGs, WORKDIR, SHELL and USER so far."""

    def __init__(self, base: BaseImage) -> None:
        self.env: dict[str, str] = {}
        for item in base.env:
            k, _, v = item.partition("=")
            self.env[k] = v
        self.args: dict[str, str] = {}
        self.workdir = base.working_dir or "/"
        self.shell = tuple(base.shell) if base.shell else DEFAULT_SHELL
        self.user = ""

    def lookup(self) -> dict[str, str]:
        """What ``$NAME`` expands to: declared ARGs, overridden by ENV."""
        merged = dict(self.args)
        merged.update(self.env)
        return merged


@frozen
class StageContext:
    """One stage being planned; ``deps`` collects the stages it reads."""

    plan: PlanContext
    index: int
    platform: str
    state: StageState
    deps: set[int] = field(default_factory=set)


@frozen
class Step:
    """One instruction being planned, with the stage state from before it."""

    stage: StageContext
    inst: I.Instruction
    parent: str
    env: dict[str, str]
    shell: tuple[str, ...]
    workdir: str
    user: str

    @classmethod
    def start(cls, stage: StageContext, inst: I.Instruction, parent: str) -> "Step":
        s = stage.state
        return cls(stage, inst, parent, s.lookup(), s.shell, s.workdir, s.user)

    @property
    def plan(self) -> PlanContext:
        return self.stage.plan

    @property
    def state(self) -> StageState:
        return self.stage.state

    def word(self, text: str) -> str:
        """``text`` expanded with the stage's variables as they were before this instruction."""
        return expand_word(self.plan.df, self.inst, text, self.env)

    def words(self, text: str) -> list[str]:
        """``text`` expanded and split into words (EXPOSE)."""
        try:
            return process_words(text, self.env, self.plan.df.escape)
        except ExpandError as exc:
            raise DockerfileError(self.plan.df.file, self.inst.location.line, self.inst.keyword, str(exc)) from None

    def error(self, reason: str) -> DockerfileError:
        return DockerfileError(self.plan.df.file, self.inst.location.line, _keyword(self.inst), reason)

    def resolve(self, image: str) -> BaseImage:
        """An image this step reads (``COPY --from``, ``RUN --mount=from``), for the stage's platform."""
        return resolve_base(self.plan.resolver, self.plan.df, self.inst, image, self.stage.platform)

    def vertex(self, inst: I.Instruction, payload: dict | None = None, **fields) -> Vertex:
        """The vertex of ``inst`` (expanded), keyed on ``payload`` (default: the instruction itself).
        Shell, workdir and user are the stage's before this step unless ``fields`` set them."""
        values = {"stage": self.stage.index, "shell": self.shell, "workdir": self.workdir, "user": self.user}
        values.update(fields)
        key = cache_key(self.parent, canonical(inst) if payload is None else payload)
        return Vertex(instruction=inst, key=key, **values)
