"""RUN: the command in the runner's sandbox, with the stage's rootfs as an overlay whose upper dir
becomes the layer. Build mounts (cache, secret, bind, tmpfs) are bind/tmpfs mounts of the spec; the
mount points they needed are removed from the upper dir afterwards, so nothing of them reaches the layer.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from typing import TYPE_CHECKING

from layers.config import ImageConfig
from layers.store.location import opaque_xattr
from layers.value import frozen

from .. import instructions as I
from ..errors import BuildError
from .meta import shell_command

if TYPE_CHECKING:
    from runner.procsandbox import ProcessSandbox

__all__ = ["RunRequest", "run_step", "remove_stubs"]


@frozen
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
    tmpfs: tuple[tuple[str, str], ...] = ()  # (target, mount options)
    container_id: str = ""
    state_dir: str | None = None
    secret_env: tuple[tuple[str, str], ...] = ()  # RUN --mount=type=secret,env=: this process only
    scratch: str | None = None  # a private host dir for files the step needs (heredoc scripts)
    sandbox: ProcessSandbox | None = None  # None: a PID namespace and /proc of its own


def run_step(req: RunRequest, stdout, stderr) -> list[str]:
    """Run ``req`` to completion; :class:`BuildError` (with the location) on a non-zero exit.

    Returns the mount stubs (paths the sandbox had to create as mount points); once the overlay is
    unmounted, :func:`remove_stubs` takes them (and directories left empty by them) out of the upper dir."""
    from runner import sandbox
    from runner.options import BindMount, RunOptions, TmpfsMount
    from runner.rootfs import mkdirs_in_root, resolve_in_root
    from runner.spec import make_spec

    inst = req.instruction
    argv = shell_command(inst.command, inst.shell_form, req.shell)
    binds = req.binds
    script = _shebang_script(inst)
    if script is not None:
        # ``RUN <<EOF`` whose body starts with ``#!``: run as a file, as BuildKit does (/dev/pipes/NAME)
        if req.scratch is None:
            raise BuildError("a heredoc script needs a scratch directory", inst.location.file,
                             inst.location.line, "RUN")
        pipes = tempfile.mkdtemp(prefix="pipes-", dir=req.scratch)
        os.chmod(pipes, 0o755)
        name, body = script
        fd = os.open(os.path.join(pipes, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o755)
        with os.fdopen(fd, "w") as f:
            f.write(body)
        os.chmod(os.path.join(pipes, name), 0o755)
        binds = (*binds, (pipes, "/dev/pipes", True))
        argv = ("/dev/pipes/" + name,)
    if req.workdir and req.workdir != "/":
        mkdirs_in_root(req.rootfs, req.workdir)  # Docker creates the WORKDIR; it stays in the layer
    created = _missing_targets(req, resolve_in_root)
    opts = RunOptions(
        command=argv, entrypoint=(), env=tuple(f"{k}={v}" for k, v in (*req.env, *req.secret_env)),
        user=req.user or None, workdir=req.workdir or "/", network=req.network, pids_limit=None,
        mounts=tuple(BindMount(src, dst, ro) for src, dst, ro in binds),
        tmpfs=tuple(TmpfsMount(t, o) for t, o in req.tmpfs), hostname="buildkitsandbox",
        nofile=min(1048576, _nofile_hard()),
    )
    etc = resolve_in_root(req.rootfs, "/etc")
    spec = make_spec(req.config, opts, rootfs=req.rootfs, etc_dir=etc if os.path.isdir(etc) else None,
                     container_id=req.container_id)
    if req.sandbox is not None:
        spec = req.sandbox.apply(spec)  # no process sandbox: the builder's PID namespace, /proc bound
    if req.scratch:  # after a SIGKILL of the build, workdir.reap_stale removes this step's cgroup
        with open(os.path.join(req.scratch, "runs"), "a") as f:
            f.write(req.container_id + "\n")
    with open(os.devnull, "rb") as devnull:
        code = sandbox.execute(spec, container_id=req.container_id, state_dir=req.state_dir,
                               stdin=devnull, stdout=stdout, stderr=stderr, forward_signals=False)
    if code != 0:
        loc = inst.location
        raise BuildError(f"{inst.source[:200]!r} exited with status {code}", loc.file, loc.line, "RUN")
    return created


def _shebang_script(inst: I.Run) -> tuple[str, str] | None:
    """``(name, body)`` when the RUN is a lone heredoc whose body starts with ``#!``."""
    if len(inst.heredocs) != 1:
        return None
    doc = inst.heredocs[0]
    if inst.command != (doc.content,) or not doc.content.startswith("#!"):
        return None
    return doc.name, doc.content


def _nofile_hard() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def _missing_targets(req: RunRequest, resolve_in_root) -> list[str]:
    """Mount targets (and their missing parents) that the sandbox will create: removed afterwards."""
    out = []
    for target in [b[1] for b in req.binds] + [t[0] for t in req.tmpfs]:
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
    the stubs were all they held (the lower's directory shows through again, as BuildKit leaves it).

    Every step goes through directory fds opened with ``O_NOFOLLOW``: a command that replaced a stub's
    parent with a symlink (``ln -s / /run``) cannot make this delete anything outside the upper dir
    (BuildKit CVE-2024-23652)."""
    parents: set[str] = set()
    for path in sorted(set(stubs), key=lambda p: -p.count("/")):
        if _remove_in(upper, path, only_empty_dir=False):
            parent = posixpath.dirname(path)
            while parent not in ("/", ""):
                parents.add(parent)
                parent = posixpath.dirname(parent)
    for path in sorted(parents, key=lambda p: -p.count("/")):
        _remove_in(upper, path, only_empty_dir=True)


def _remove_in(upper: str, path: str, *, only_empty_dir: bool) -> bool:
    """Remove ``path`` under ``upper`` if it is an empty dir or (unless ``only_empty_dir``) an empty
    regular file; never following a symlink. True when something was removed."""
    import stat as st

    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return False
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(upper, flags)
    except OSError:
        return False
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, flags, dir_fd=fd)
            except OSError:
                return False  # missing, not a directory, or a symlink: leave it
            os.close(fd)
            fd = nxt
        name = parts[-1]
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            return False
        try:
            if st.S_ISDIR(info.st_mode):
                sub = os.open(name, flags, dir_fd=fd)
                try:
                    if os.listdir(sub) or _opaque_fd(sub):
                        return False
                finally:
                    os.close(sub)
                os.rmdir(name, dir_fd=fd)
                return True
            if not only_empty_dir and st.S_ISREG(info.st_mode) and info.st_size == 0:
                os.unlink(name, dir_fd=fd)
                return True
        except OSError:
            return False  # e.g. the command made it non-empty meanwhile: it stays
        return False
    finally:
        os.close(fd)


def _opaque_fd(fd: int) -> bool:
    try:
        return os.getxattr(fd, opaque_xattr()) == b"y"
    except OSError:
        return False
