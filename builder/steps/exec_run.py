"""Executing ``RUN``: its build mounts made ready on the host (cache dirs, secrets, binds of the
context, another stage or an image, tmpfs), then the command in the runner's sandbox
(:func:`builder.steps.run.run_step`)."""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .. import instructions as I
from ..errors import BuildError
from .job import StepJob

if TYPE_CHECKING:
    from ..execute import Executor

__all__ = ["execute_run", "MAX_SECRET"]

MAX_SECRET = 4 << 20  # a CA bundle fits; BuildKit stops at 500 KiB


@dataclass
class _Mounts:
    """What the sandbox gets for the step's ``--mount``s (filled as each is prepared)."""

    binds: list[tuple[str, str, bool]] = field(default_factory=list)
    tmpfs: list[tuple[str, str]] = field(default_factory=list)
    secret_env: list[tuple[str, str]] = field(default_factory=list)


def _run_error(inst: I.Run, reason: str) -> BuildError:
    return BuildError(reason, inst.location.file, inst.location.line, "RUN")


def _bind(ex: Executor, job: StepJob, m: I.Mount, stack: contextlib.ExitStack) -> tuple[str, str, bool]:
    if m.from_:
        from runner.rootfs import resolve_in_root

        # the planner replaced a stage name by its index (an image keeps its name);
        # rw writes go to a throw-away upper dir
        v = job.vertex
        source = replace(v, from_stage=int(m.from_), from_image=None) if m.from_.isdigit() else \
            replace(v, from_stage=None, from_image=m.from_)
        src_root = stack.enter_context(ex.source_root(source, writable=not m.readonly))
        return resolve_in_root(src_root, m.source or "/"), m.target, m.readonly
    from .mounts import context_bind

    try:
        src = stack.enter_context(context_bind(ex.context, m.source, ex.work, m.readonly))
    except FileNotFoundError:
        raise _run_error(job.vertex.instruction, f"--mount source {m.source or '.'}: not found in the build "
                         "context") from None
    return src, m.target, m.readonly


def _prepare(ex: Executor, job: StepJob, stack: contextlib.ExitStack) -> _Mounts:
    from .mounts import cache_dir

    inst: I.Run = job.vertex.instruction
    out = _Mounts()
    for m in inst.mounts:
        if m.type == "cache":
            out.binds.append((stack.enter_context(cache_dir(ex.cache.mounts_dir, m, ex.work)), m.target, False))
        elif m.type == "tmpfs":
            # exec, as BuildKit's (builds run what they compile there); nosuid,nodev from the runner
            out.tmpfs.append((m.target, "exec" + (f",size={m.size}" if m.size else "")))
        elif m.type == "secret":
            _secret(ex, inst, m, out)
        elif m.type == "bind":
            out.binds.append(_bind(ex, job, m, stack))
    return out


def execute_run(ex: Executor, job: StepJob) -> list[str]:
    """Run the command over ``job.root``; the mount points it needed that are now stubs in the upper
    dir (to remove once the overlay is unmounted)."""
    from .run import RunRequest, run_step

    v = job.vertex
    inst: I.Run = v.instruction
    with contextlib.ExitStack() as stack:
        mounts = _prepare(ex, job, stack)
        network = "none" if (inst.network == "none" or ex.options.network == "none") else "host"
        if network == "host":
            for f in ("/etc/resolv.conf", "/etc/hosts"):
                if os.path.exists(f):
                    mounts.binds.append((f, f, True))
        req = RunRequest(instruction=inst, config=job.image.config, rootfs=job.root, upper=job.upper,
                         env=v.run_env, shell=v.shell, workdir=v.workdir, user=v.user, network=network,
                         binds=tuple(mounts.binds), tmpfs=tuple(mounts.tmpfs),
                         container_id="build-" + uuid.uuid4().hex[:20], state_dir=ex.state_dir,
                         secret_env=tuple(mounts.secret_env), scratch=ex.work, sandbox=ex.sandbox)
        return run_step(req, job.step.stdout, job.step.stderr)


def _secret_bytes(ex: Executor, inst: I.Run, m: I.Mount) -> bytes | None:
    s = next((s for s in ex.options.secrets if s.id == m.id), None)
    if s is None:
        if m.required:
            raise _run_error(inst, f"secret {m.id!r} is required but was not given (--secret id={m.id},src=...)")
        return None
    if s.env:
        data = os.environ.get(s.env, "").encode()
    else:
        try:
            with open(s.src, "rb") as f:
                data = f.read(MAX_SECRET + 1)
        except OSError as exc:
            raise _run_error(inst, f"secret {m.id!r}: {s.src}: {exc.strerror}") from None
    if len(data) > MAX_SECRET:
        raise _run_error(inst, f"secret {m.id!r} is larger than {MAX_SECRET} bytes")
    return data


def _secret(ex: Executor, inst: I.Run, m: I.Mount, out: _Mounts) -> None:
    """``--mount=type=secret``: a file staged outside the rootfs and bound read-only at ``target``,
    and/or an environment variable (``env=``) of this RUN only. Neither is in a layer, the history
    or a cache key."""
    from .mounts import stage_secret

    data = _secret_bytes(ex, inst, m)
    if data is None:
        return
    if m.env:
        try:
            out.secret_env.append((m.env, data.decode()))
        except UnicodeDecodeError:
            raise _run_error(inst, f"secret {m.id!r} is not text: it cannot be the variable {m.env}") from None
    if m.target:
        sdir = os.path.join(ex.work, "secrets")
        path = stage_secret(data, sdir, uuid.uuid4().hex, m.mode if m.mode is not None else 0o400, m.uid, m.gid)
        out.binds.append((path, m.target, True))
