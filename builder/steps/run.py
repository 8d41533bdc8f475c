"""RUN: the command in the runner's sandbox, with the stage's rootfs as an overlay whose upper dir
becomes the layer. Build mounts (cache, secret, bind, tmpfs) are bind/tmpfs mounts of the spec; the
mount points they needed are removed from the upper dir afterwards, so nothing of them reaches the layer.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from dataclasses import dataclass

from layers.config import ImageConfig

from .. import instructions as I
from ..errors import BuildError
from .meta import shell_command

__all__ = ["RunRequest", "run_step", "remove_stubs", "stage_file"]


@dataclass(frozen=True)
class RunRequest:
    """Everything one RUN needs; ``binds`` are (host source, target, readonly) prepared by the executor."""

    instruction: I.Run
    config: ImageConfig
    rootfs: str  # mounted overlay (lower = parent snapshots, upper = the new layer)
    upper: str
    env: tuple[tuple[str, str], ...]
    shell: tuple[str, ...]
    workdir: str
    user: str
    network: str  # host | none
    binds: tuple[tuple[str, str, bool], ...] = ()
    tmpfs: tuple[str, ...] = ()
    container_id: str = ""
    state_dir: str | None = None


def run_step(req: RunRequest, stdout, stderr) -> list[str]:
    """Run ``req`` to completion; :class:`BuildError` (with the location) on a non-zero exit.

    Returns the mount stubs (paths the sandbox had to create as mount points); once the overlay is
    unmounted, :func:`remove_stubs` takes them (and directories left empty by them) out of the upper dir."""
    from runner import sandbox
    from runner.options import BindMount, RunOptions, TmpfsMount
    from runner.rootfs import _mkdirs_in_root, resolve_in_root
    from runner.spec import make_spec

    inst = req.instruction
    argv = shell_command(inst.command, inst.shell_form, req.shell)
    if req.workdir and req.workdir != "/":
        _mkdirs_in_root(req.rootfs, req.workdir)  # Docker creates the WORKDIR; it stays in the layer
    created = _missing_targets(req, resolve_in_root)
    opts = RunOptions(
        command=argv, entrypoint=(), env=tuple(f"{k}={v}" for k, v in req.env),
        user=req.user or None, workdir=req.workdir or "/", network=req.network, pids_limit=None,
        mounts=tuple(BindMount(src, dst, ro) for src, dst, ro in req.binds),
        tmpfs=tuple(TmpfsMount(t) for t in req.tmpfs), hostname="buildkitsandbox",
        nofile=min(1048576, _nofile_hard()),
    )
    etc = resolve_in_root(req.rootfs, "/etc")
    spec = make_spec(req.config, opts, rootfs=req.rootfs, etc_dir=etc if os.path.isdir(etc) else None,
                     container_id=req.container_id)
    with open(os.devnull, "rb") as devnull:
        code = sandbox.execute(spec, container_id=req.container_id, state_dir=req.state_dir,
                               stdin=devnull, stdout=stdout, stderr=stderr, forward_signals=False)
    if code != 0:
        loc = inst.location
        raise BuildError(f"{inst.source[:200]!r} exited with status {code}", loc.file, loc.line, "RUN")
    return created


def _nofile_hard() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def _missing_targets(req: RunRequest, resolve_in_root) -> list[str]:
    """Mount targets (and their missing parents) that the sandbox will create: removed afterwards."""
    out = []
    for target in [b[1] for b in req.binds] + list(req.tmpfs):
        path = target
        chain = []
        while path not in ("/", ""):
            if os.path.lexists(resolve_in_root(req.rootfs, path)):
                break
            chain.append(path)
            path = posixpath.dirname(path)
        out.extend(chain)
    return out


def remove_stubs(upper: str, stubs: list[str]) -> None:
    """Remove mount stubs from an (unmounted) upper dir, deepest first, then their parent dirs when
    the stubs were all they held (the lower's directory shows through again, as BuildKit leaves it)."""
    parents: set[str] = set()
    for path in sorted(set(stubs), key=lambda p: -p.count("/")):
        host = os.path.join(upper, path.lstrip("/"))
        try:
            if os.path.isdir(host) and not os.path.islink(host):
                os.rmdir(host)
            elif os.path.isfile(host) and os.path.getsize(host) == 0:
                os.unlink(host)
        except OSError:
            continue  # the command wrote there itself: it stays
        parent = posixpath.dirname(path)
        while parent not in ("/", ""):
            parents.add(parent)
            parent = posixpath.dirname(parent)
    for path in sorted(parents, key=lambda p: -p.count("/")):
        host = os.path.join(upper, path.lstrip("/"))
        try:
            if os.path.isdir(host) and not os.path.islink(host) and not os.listdir(host) \
                    and not _opaque(host):
                os.rmdir(host)
        except OSError:
            continue


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def stage_file(src: str, directory: str, name: str, mode: int = 0o400) -> str:
    """Copy a secret to a private directory for a bind mount (never into the rootfs)."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    dest = os.path.join(directory, name)
    shutil.copyfile(src, dest)
    os.chmod(dest, mode)
    return dest
