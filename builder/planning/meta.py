"""Planning of the instructions that only edit the image config (and ARG, SHELL, FROM misplaced):
expand the fields Docker expands, update the stage state, key the vertex on the result."""

from __future__ import annotations

import re
from dataclasses import replace

from .. import instructions as I
from ..graph import Vertex
from .context import Step, absolute

__all__ = ["plan_arg", "plan_env", "plan_label", "plan_workdir", "plan_user", "plan_expose", "plan_volume",
           "plan_stopsignal", "plan_shell", "plan_as_written", "plan_misplaced_from"]

_PORT = re.compile(r"\d+(-\d+)?(/(tcp|udp|sctp))?")


def plan_misplaced_from(step: Step) -> Vertex:
    raise step.error("unexpected FROM")


def plan_as_written(step: Step) -> Vertex:
    """CMD, ENTRYPOINT, HEALTHCHECK, ONBUILD, MAINTAINER: not expanded (Docker does not either)."""
    return step.vertex(step.inst)


def plan_arg(step: Step) -> Vertex:
    """Declare arguments: a ``--build-arg`` value, else the default (expanded), else a global ARG's value."""
    inst: I.Arg = step.inst
    plan, pairs = step.plan, []
    for name, default in inst.pairs:
        plan.used_args.add(name)
        if name in plan.build_args:
            value = plan.build_args[name]
        elif default is not None:
            value = step.word(default)
        elif name in plan.meta_args:
            value = plan.meta_args[name]
        else:
            value = None
        if value is not None:
            step.state.args[name] = value
        pairs.append((name, value))
    return step.vertex(replace(inst, pairs=tuple(pairs)))


def plan_env(step: Step) -> Vertex:
    inst: I.Env = step.inst
    pairs = tuple((step.word(k), step.word(v)) for k, v in inst.pairs)
    for k, v in pairs:
        step.state.env[k] = v
    return step.vertex(replace(inst, pairs=pairs))


def plan_label(step: Step) -> Vertex:
    inst: I.Label = step.inst
    return step.vertex(replace(inst, pairs=tuple((step.word(k), step.word(v)) for k, v in inst.pairs)))


def plan_workdir(step: Step) -> Vertex:
    """The new working directory, absolute (relative to the previous one)."""
    inst: I.Workdir = step.inst
    state = step.state
    state.workdir = absolute(step.word(inst.path), state.workdir).rstrip("/") or "/"
    return step.vertex(replace(inst, path=state.workdir), workdir=state.workdir)


def plan_user(step: Step) -> Vertex:
    inst: I.User = step.inst
    step.state.user = step.word(inst.user)
    return step.vertex(replace(inst, user=step.state.user), user=step.state.user)


def plan_expose(step: Step) -> Vertex:
    """Ports as ``N[-M]/proto`` (``/tcp`` when none is given); anything else is an error."""
    inst: I.Expose = step.inst
    ports = []
    for p in inst.ports:
        for word in step.words(p):
            if not _PORT.fullmatch(word.lower()):
                raise step.error(f"invalid port {word!r}")
            ports.append(word.lower() if "/" in word else word + "/tcp")
    return step.vertex(replace(inst, ports=tuple(ports)))


def plan_volume(step: Step) -> Vertex:
    inst: I.Volume = step.inst
    paths = [step.word(p) for p in inst.paths]
    if not paths or any(not p for p in paths):
        raise step.error("needs at least one non-empty path")
    return step.vertex(replace(inst, paths=tuple(paths)))


def plan_stopsignal(step: Step) -> Vertex:
    inst: I.Stopsignal = step.inst
    return step.vertex(replace(inst, signal=step.word(inst.signal)))


def plan_shell(step: Step) -> Vertex:
    inst: I.Shell = step.inst
    step.state.shell = inst.shell
    return step.vertex(inst)
