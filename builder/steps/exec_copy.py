"""Executing ``COPY``/``ADD`` into a mounted root: heredoc bodies, files of another stage or image,
context files (an ADD of a local archive unpacks it), and ``ADD URL`` (the file the planner fetched)."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING

from layers.errors import PybuildError

from .. import instructions as I
from ..errors import BuildError
from .copy import CopyItem, Ownership, copy_items, select_in_root, write_file
from .job import StepJob

if TYPE_CHECKING:
    from ..execute import Executor

__all__ = ["execute_copy", "numeric_owner"]


def numeric_owner(chown: str) -> bool:
    """``--chown=UID[:GID]`` in numbers (no name to look up in the image's /etc)."""
    return all(part.isdigit() for part in chown.split(":") if part)


def copy_error(inst: I.Copy, reason: str) -> BuildError:
    return BuildError(reason, inst.location.file, inst.location.line, inst.name)


def execute_copy(ex: Executor, job: StepJob) -> list[str]:
    """Copy the step's sources into ``job.root``. No mount stubs to remove afterwards: ``[]``."""
    v, root = job.vertex, job.root
    inst: I.Copy = v.instruction
    if inst.link and inst.chown and not numeric_owner(inst.chown):
        # --link copies onto an empty tree: user and group names come from the stage's /etc
        with ex.mounted(ex.lowerdirs(job.image), None) as stage_root:
            own = _ownership(inst, stage_root)
    else:
        own = _ownership(inst, root)
    docs = {"<<" + h.name: h for h in inst.heredocs}  # the planner names heredoc sources "<<NAME"
    count = len(inst.sources)
    for src in inst.sources:
        if src in docs:
            dest = inst.dest if not inst.dest.endswith("/") else inst.dest + docs[src].name
            write_file(root, dest, docs[src].content.encode(), own)
    if v.from_stage is not None or v.from_image is not None:
        with ex.source_root(v) as src_root:
            for src in inst.sources:
                try:
                    items = select_in_root(src_root, src)
                except FileNotFoundError:
                    raise copy_error(inst, f"{src}: not found in stage or image {inst.from_}") from None
                copy_items(root, items, inst.dest, own, sources=count)
        return []
    inputs = dict(v.inputs)
    for src in inst.sources:
        if src in docs:
            continue
        if inst.add and src.startswith(("http://", "https://")):
            _add_url(ex, inst, src, root, own)
            continue
        entries = list(inputs[src])
        if inst.add:  # ADD unpacks a local archive the source names (not one inside a named directory)
            archives = [e for e in entries if e.top and archive_kind(ex.context.abspath(e.path)) is not False]
            for e in archives:
                _add_archive(ex, inst, ex.context.abspath(e.path), root, own)
            entries = [e for e in entries if e not in archives]
            if not entries:
                continue
        items = [CopyItem(ex.context.abspath(e.path), e.target) for e in entries]
        copy_items(root, items, inst.dest, own, sources=count)
    return []


def _add_archive(ex: Executor, inst: I.Copy, path: str, root: str, own: Ownership) -> None:
    """Unpack a local tar (plain, gzip, zstd, bzip2 or xz) into the destination directory through
    the safe extractor. Owners and modes come from the archive unless ``--chown``/``--chmod`` say
    otherwise (then it is unpacked aside and copied in with them)."""
    import bz2
    import lzma

    from layers import archive
    from runner.rootfs import mkdirs_in_root

    kind = archive_kind(path)
    with open(path, "rb") as raw:
        stream, compression = raw, kind
        if kind in ("bzip2", "xz"):
            stream, compression = (bz2.BZ2File(raw) if kind == "bzip2" else lzma.LZMAFile(raw)), None
        try:
            if own.uid is None and own.gid is None and own.mode is None:
                archive.extract(stream, mkdirs_in_root(root, inst.dest), compression=compression, mode="apply",
                                what="ADD archive")
                return
            staging = tempfile.mkdtemp(prefix="add-", dir=ex.work)
            try:
                archive.extract(stream, staging, compression=compression, mode="apply", what="ADD archive")
                items = select_in_root(staging, "/")
                if items:
                    copy_items(root, items, inst.dest.rstrip("/") + "/", own)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        except (EOFError, lzma.LZMAError) as exc:
            raise copy_error(inst, f"{os.path.basename(path)}: {exc}") from None
        except PybuildError as exc:
            raise copy_error(inst, f"{os.path.basename(path)}: {exc}") from None


def _add_url(ex: Executor, inst: I.Copy, url: str, root: str, own: Ownership) -> None:
    """``ADD URL``: the file the planner already fetched (its digest is in the cache key), or, with
    ``--checksum``, a download checked against it. Mode 0600, mtime from Last-Modified (Docker)."""
    fetched = ex.resolver.fetched(url)
    if fetched is None:
        try:
            fetched = ex.resolver.fetch(url)
        except PybuildError as exc:
            raise copy_error(inst, str(exc)) from None
    if inst.checksum and str(fetched.digest) != inst.checksum:
        raise copy_error(inst, f"{url}: checksum {fetched.digest} does not match {inst.checksum}")
    name = url.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "index.html"
    dest = inst.dest + name if inst.dest.endswith("/") else inst.dest
    copy_items(root, [CopyItem(fetched.path, "")], dest, own)


def _ownership(inst: I.Copy, root: str) -> Ownership:
    mode = int(inst.chmod, 8) if inst.chmod else None
    if not inst.chown:
        return Ownership(mode=mode)
    from runner.rootfs import resolve_in_root
    from runner.spec import resolve_user

    user, _, group = inst.chown.partition(":")
    etc = resolve_in_root(root, "/etc")
    try:
        uid = resolve_user(user, etc).uid
        gid = resolve_user(f"{user}:{group}" if group else user, etc).gid
    except PybuildError as exc:
        raise copy_error(inst, f"--chown={inst.chown}: {exc}") from None
    return Ownership(uid=uid, gid=gid, mode=mode)


def archive_kind(path: str) -> str | None | bool:
    """``"gzip"``, ``"zstd"``, ``"bzip2"``, ``"xz"``, ``None`` (a plain tar) for an archive ADD unpacks,
    or ``False`` for any other file (copied as it is)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except (IsADirectoryError, FileNotFoundError):
        return False
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if head[:3] == b"BZh":
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return None
    return False
