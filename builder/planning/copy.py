"""Planning of ``COPY``/``ADD``: sources expanded and checked (no escape from the context, no git
URLs), heredoc bodies expanded, and a key over the expanded instruction and the content it reads:
the selected context files' digest, the source stage's key or image digest, a fetched URL's digest."""

from __future__ import annotations

import posixpath
import re
from dataclasses import replace

from .. import instructions as I
from ..context import Entry
from ..expand import process_heredoc
from ..graph import Vertex, cache_key, canonical
from ..parse import heredoc_name
from .context import Step, absolute
from .select import select

__all__ = ["plan_copy"]

_URL = re.compile(r"^https?://")
_GIT = re.compile(r"^git(\+[a-z]+)?://")
_CHMOD = re.compile(r"[0-7]{3,4}")
_CHECKSUM = re.compile(r"sha256:[0-9a-f]{64}")


def _is_git(word: str) -> bool:
    return bool(_GIT.match(word) or word.startswith("git@")
                or (_URL.match(word) and word.split("#", 1)[0].endswith(".git")))


def _sources(step: Step, docs: dict[str, I.Heredoc]) -> tuple[list[str], list[I.Heredoc]]:
    """Expanded sources (heredocs named ``<<NAME``) and the heredocs with their bodies expanded."""
    inst: I.Copy = step.inst
    sources, heredocs = [], []
    for s in inst.sources:
        name = heredoc_name(s)
        if name in docs:
            h = docs[name]
            content = process_heredoc(h.content, step.env) if h.expand else h.content
            heredocs.append(replace(h, content=content, expand=False))
            sources.append("<<" + name)
            continue
        word = step.word(s)
        if inst.add and _is_git(word):
            raise step.error(f"{word}: git sources are not supported (clone in a RUN step, or ADD an archive URL)")
        if inst.add and _URL.match(word):
            sources.append(word)
            continue
        clean = posixpath.normpath(word)
        if clean == ".." or clean.startswith("../") or (inst.from_ is None and clean.startswith("/..")):
            raise step.error(f"source {word} is outside the build context")
        sources.append(word)
    return sources, heredocs


def _expand(step: Step) -> I.Copy:
    """The instruction with every field Docker expands expanded and checked."""
    inst: I.Copy = step.inst
    sources, heredocs = _sources(step, {h.name: h for h in inst.heredocs})
    dest = step.word(inst.dest)
    if not dest:
        raise step.error("empty destination")
    dest = absolute(dest, step.state.workdir)
    if len(sources) > 1 and not dest.endswith("/"):
        raise step.error(f"with more than one source the destination must be a directory ending in '/': {dest}")
    chown = step.word(inst.chown) if inst.chown else None
    chmod = step.word(inst.chmod) if inst.chmod else None
    if chmod is not None and not _CHMOD.fullmatch(chmod):
        raise step.error(f"--chmod must be an octal mode, got {chmod!r}")
    from_ = step.word(inst.from_) if inst.from_ else None
    excludes = tuple(step.word(e) for e in inst.excludes)
    if inst.checksum and not all(_URL.match(s) for s in sources):
        raise step.error("--checksum is only valid for URL sources")
    if inst.checksum and not _CHECKSUM.fullmatch(inst.checksum):
        raise step.error(f"--checksum must be sha256:<64 hex>, got {inst.checksum!r}")
    return replace(inst, sources=tuple(sources), dest=dest, chown=chown, chmod=chmod, from_=from_,
                   excludes=excludes, heredocs=tuple(heredocs))


def _fetch_digest(step: Step, url: str) -> str:
    from layers.errors import PybuildError

    from ..errors import BuildError

    try:
        return str(step.plan.resolver.fetch(url).digest)
    except PybuildError as exc:
        raise BuildError(str(exc), step.plan.df.file, step.inst.location.line, step.inst.name) from None


def _context_inputs(step: Step, expanded: I.Copy, payload: dict) -> tuple[tuple[str, tuple[Entry, ...]], ...]:
    """Key the context files (and fetched URLs) the sources select; the entries each selected."""
    inst: I.Copy = step.inst
    docs = {h.name for h in inst.heredocs}
    plan = step.plan
    inputs, digests = [], {}
    for s in expanded.sources:
        if _URL.match(s):
            if not inst.checksum and hasattr(plan.resolver, "fetch"):
                # the content is an input like a context file: a changed remote file is a miss
                payload.setdefault("urls", {})[s] = _fetch_digest(step, s)
            continue
        if heredoc_name(s) in docs:
            continue
        if plan.context is None:
            raise step.error("no build context")
        entries = tuple(select(step, s, expanded.excludes))
        inputs.append((s, entries))
        digests[s] = plan.context.digest(list(entries))
    payload["context"] = digests
    return tuple(inputs)


def plan_copy(step: Step) -> Vertex:
    inst: I.Copy = step.inst
    expanded = _expand(step)
    payload = canonical(expanded)
    inputs: tuple = ()
    from_stage, from_image = None, None
    if expanded.from_:
        from_stage = step.plan.stage_ref(expanded.from_, step.stage.index)
        if from_stage is not None:
            step.stage.deps.add(from_stage)
            payload["source_key"] = step.plan.stages[from_stage].key
        else:
            from_image = expanded.from_
            payload["source_key"] = step.resolve(expanded.from_).key
    else:
        inputs = _context_inputs(step, expanded, payload)
    link_key = cache_key("link", {**payload, "workdir": step.state.workdir}) if inst.link else ""
    return step.vertex(expanded, payload, inputs=inputs, from_stage=from_stage, from_image=from_image,
                       link_key=link_key)
