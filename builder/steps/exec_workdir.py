"""Executing ``WORKDIR``: make the missing directories (0755), owned by the stage's USER, as BuildKit
does; a new directory is a layer."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from layers.errors import PybuildError

from .. import instructions as I
from ..errors import BuildError
from .job import StepJob

if TYPE_CHECKING:
    from ..execute import Executor

__all__ = ["execute_workdir"]


def execute_workdir(ex: Executor, job: StepJob) -> list[str]:
    """Make ``WORKDIR``'s path in ``job.root``; no mount stubs: ``[]``."""
    _make_workdir(job.vertex.instruction, job.vertex.user, job.root)
    return []


def _make_workdir(inst: I.Workdir, user: str, root: str) -> None:
    from runner.rootfs import resolve_in_root
    from runner.spec import resolve_user

    if inst.path == "/":
        return
    owner = (0, 0)
    if user:
        try:
            u = resolve_user(user, resolve_in_root(root, "/etc"))
        except PybuildError as exc:
            raise BuildError(f"USER {user}: {exc}", inst.location.file, inst.location.line, "WORKDIR") from None
        owner = (u.uid, u.gid)
    path = ""
    for part in inst.path.strip("/").split("/"):
        path += "/" + part
        host = resolve_in_root(root, path)
        if os.path.isdir(host):
            continue
        if os.path.lexists(host):
            raise BuildError(f"{path} exists and is not a directory", inst.location.file, inst.location.line,
                             "WORKDIR")
        os.mkdir(host, 0o755)
        os.lchown(host, *owner)
        os.chmod(host, 0o755)
