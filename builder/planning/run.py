"""Planning of ``RUN``: the environment it sees, its mounts expanded and resolved, and a key over the
command, the declared arguments, workdir, user, shell and the content of whatever it mounts."""

from __future__ import annotations

import posixpath
from dataclasses import replace

from .. import instructions as I
from ..graph import DEFAULT_PATH, PROXY_ARGS, Vertex, canonical
from .context import Step, absolute
from .select import select

__all__ = ["plan_run"]


def _run_env(step: Step) -> dict[str, str]:
    """Stage ENV over declared ARGs, a default PATH, and the proxy build arguments (never keyed)."""
    state, build_args = step.state, step.plan.build_args
    out = {"PATH": DEFAULT_PATH} if "PATH" not in state.env else {}
    out.update(state.args)
    out.update(state.env)
    for name in PROXY_ARGS:
        if name in build_args and name not in out:
            out[name] = build_args[name]
    return out


def _expand_mount(step: Step, m: I.Mount) -> I.Mount:
    m = replace(m, target=step.word(m.target) if m.target else m.target,
                source=step.word(m.source) if m.source else m.source,
                from_=step.word(m.from_) if m.from_ else m.from_,
                id=step.word(m.id) if m.id else m.id)
    if m.target:
        m = replace(m, target=absolute(m.target, step.state.workdir).rstrip("/") or "/")
    return m


def _bind_input(step: Step, m: I.Mount, keyed: list) -> I.Mount:
    """A bind mount's source goes into the key: an image's digest, a stage's key, or the digest of
    the context files it selects. A stage name becomes its index (how the executor tells it apart)."""
    plan = step.plan
    src_stage = plan.stage_ref(m.from_, step.stage.index) if m.from_ else None
    if m.from_ and src_stage is None:  # an image
        keyed.append([m.target, step.resolve(m.from_).key, m.source])
    elif src_stage is not None:
        step.stage.deps.add(src_stage)
        m = replace(m, from_=str(src_stage))
        keyed.append([m.target, plan.stages[src_stage].key, m.source])
    elif plan.context is not None:
        clean = posixpath.normpath(m.source or ".")
        if clean == ".." or clean.startswith("../"):
            raise step.error(f"--mount source {m.source} is outside the build context")
        entries = select(step, m.source or ".", ())
        keyed.append([m.target, plan.context.digest(entries)])
    return m


def plan_run(step: Step) -> Vertex:
    inst: I.Run = step.inst
    state = step.state
    run_env = _run_env(step)
    extra: dict = {"args": sorted((k, v) for k, v in state.args.items()), "workdir": state.workdir,
                   "user": state.user, "shell": list(state.shell)}
    keyed: list = []
    mounts = []
    for m in inst.mounts:
        m = _expand_mount(step, m)
        if m.type == "bind":
            m = _bind_input(step, m, keyed)
        if m.type == "cache" and not m.id:
            m = replace(m, id=m.target)
        if m.type == "cache" and m.from_:
            raise step.error("--mount=type=cache,from= is not supported")
        mounts.append(m)
    if keyed:
        extra["mounts"] = keyed
    inst = replace(inst, mounts=tuple(mounts))
    payload = canonical(inst)
    payload["extra"] = extra
    return step.vertex(inst, payload, run_env=tuple(run_env.items()))
