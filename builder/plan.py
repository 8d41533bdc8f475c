"""Dockerfile -> build plan (pure): stages, ``--target`` pruning, expanded instructions and
content-addressed cache keys.

A vertex's key is ``sha256(parent key, the instruction after expansion, digests of what it reads)``:
the base image's manifest digest for FROM, the selected context files' digest for COPY/ADD, the source
stage's final key for ``COPY --from=stage``, build-arg values for RUN. Line numbers are not part of a
key, so moving an instruction without changing it keeps its cache. Everything impure (base image
lookup, context hashing) comes in through :class:`Resolver` and :class:`builder.context.BuildContext`.
"""

from __future__ import annotations

from dataclasses import replace

from . import instructions as I
from .context import BuildContext
from .errors import DockerfileError
from .graph import (DEFAULT_SHELL, PROXY_ARGS, BaseImage, Plan, PlanOptions, Resolver, Stage, Vertex, cache_key,
                    canonical)
from .parse import Dockerfile, parse_instruction
from .planning import PlanContext, StageContext, plan_step
from .planning.context import StageState, expand_word, resolve_base

__all__ = ["BaseImage", "Resolver", "PlanOptions", "Vertex", "Stage", "Plan", "plan", "PROXY_ARGS", "cache_key",
           "canonical"]


def _platform_args(target: str, build: str) -> dict[str, str]:
    """BuildKit's automatic args: TARGET* from the target platform, BUILD* from the machine building."""
    out = {}
    for prefix, platform in (("TARGET", target), ("BUILD", build)):
        parts = platform.split("/")
        out[f"{prefix}PLATFORM"] = platform
        out[f"{prefix}OS"] = parts[0]
        out[f"{prefix}ARCH"] = parts[1] if len(parts) > 1 else "amd64"
        out[f"{prefix}VARIANT"] = parts[2] if len(parts) > 2 else ""
    return out


def _normal_platform(df: Dockerfile, frm: I.From, text: str) -> str:
    """``os/arch[/variant]`` in its normal form (``linux/aarch64`` -> ``linux/arm64``), or the FROM line's error."""
    from layers.descriptor import Platform
    from layers.errors import InvalidInput

    try:
        return str(Platform.parse(text))
    except InvalidInput as exc:
        raise DockerfileError(df.file, frm.location.line, "FROM", f"--platform={text}: {exc}") from None


def _global_args(ctx: PlanContext, instrs: list[I.Instruction]) -> int:
    """The ARGs before the first FROM (usable in FROM lines); the index of the first other instruction."""
    i = 0
    while i < len(instrs) and isinstance(instrs[i], I.Arg):
        for name, default in instrs[i].pairs:
            ctx.used_args.add(name)
            value = ctx.build_args.get(name)
            if value is None and default is not None:
                value = expand_word(ctx.df, instrs[i], default, ctx.meta_args)
            ctx.meta_args[name] = value if value is not None else ""
        i += 1
    return i


def plan(df: Dockerfile, options: PlanOptions, resolver: Resolver, context: BuildContext | None) -> Plan:
    """Plan ``df``. Raises :class:`DockerfileError` (with the line) for anything the Dockerfile gets wrong."""
    ctx = PlanContext(df=df, options=options, resolver=resolver, context=context,
                      build_args=dict(options.build_args), meta_args=_platform_args(options.platform, options.build_platform))
    instrs = list(df.instructions)
    i = _global_args(ctx, instrs)
    if i >= len(instrs):
        raise DockerfileError(df.file, None, None, "no FROM instruction")
    while i < len(instrs):
        frm = instrs[i]
        if not isinstance(frm, I.From):
            raise DockerfileError(df.file, frm.location.line, frm.keyword, "must follow a FROM instruction")
        j = i + 1
        while j < len(instrs) and not isinstance(instrs[j], I.From):
            j += 1
        stage = _plan_stage(ctx, frm, instrs[i + 1 : j])
        if stage.name:
            if stage.name in ctx.by_name:
                raise DockerfileError(df.file, frm.location.line, "FROM", f"duplicate stage name {stage.name!r}")
            ctx.by_name[stage.name] = stage.index
        ctx.stages.append(stage)
        i = j
    target = len(ctx.stages) - 1
    if options.target:
        if options.target.lower() not in ctx.by_name:
            raise DockerfileError(df.file, None, None, f"target stage {options.target!r} could not be found")
        target = ctx.by_name[options.target.lower()]
    unused = tuple(sorted(a for a in ctx.build_args if a not in ctx.used_args and a not in PROXY_ARGS))
    return Plan(tuple(ctx.stages), target, _order(ctx.stages, target), unused)


def _order(stages: list[Stage], target: int) -> tuple[int, ...]:
    """The stages ``target`` needs, each after the stages it reads."""
    order: list[int] = []

    def visit(idx: int) -> None:
        if idx in order:
            return
        for dep in sorted(stages[idx].deps):
            visit(dep)
        order.append(idx)

    visit(target)
    return tuple(order)


def _stage_base(stage: Stage) -> BaseImage:
    """The config bits a later ``FROM <stage>`` inherits."""
    return BaseImage(key=stage.key, env=stage.env, working_dir=stage.workdir, shell=stage.shell)


def _plan_stage(ctx: PlanContext, frm: I.From, body: list[I.Instruction]) -> Stage:
    """One stage: its base (scratch, an earlier stage, or an image), then its instructions, the
    base image's ONBUILD triggers first."""
    df, index = ctx.df, len(ctx.stages)
    image = expand_word(df, frm, frm.image, ctx.meta_args)
    base_stage = ctx.by_name.get(image.lower())
    if base_stage is None and image.isdigit() and int(image) < index:
        base_stage = int(image)
    if frm.platform:
        platform = _normal_platform(df, frm, expand_word(df, frm, frm.platform, ctx.meta_args))
    else:  # a stage built on an earlier stage is of that stage's platform (BuildKit)
        platform = ctx.stages[base_stage].platform if base_stage is not None else ctx.options.platform
    deps: set[int] = set()
    if image == "scratch":
        base, base_key = BaseImage(key="scratch"), cache_key("", {"from": "scratch", "platform": platform})
    elif base_stage is not None:
        src = ctx.stages[base_stage]
        base, base_key = _stage_base(src), src.key
        deps.add(base_stage)
    else:
        base = resolve_base(ctx.resolver, df, frm, image, platform)
        base_key = cache_key("", {"from": image, "digest": base.key, "platform": platform})
    stage = StageContext(plan=ctx, index=index, platform=platform, state=StageState(base), deps=deps)
    if base.onbuild:
        body = [parse_instruction(t, frm.location, df.escape) for t in base.onbuild] + list(body)
    vertices: list[Vertex] = []
    parent = base_key
    for inst in body:
        vertex = plan_step(stage, inst, parent)
        vertices.append(vertex)
        parent = vertex.key
    state = stage.state
    return Stage(index, frm.name, image, base_stage, platform, base_key, replace(frm, image=image, platform=platform),
                 tuple(vertices), frozenset(deps), env=tuple(f"{k}={v}" for k, v in state.env.items()),
                 workdir=state.workdir, shell=state.shell if state.shell != DEFAULT_SHELL else None)
