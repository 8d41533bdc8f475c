"""Dockerfile -> build plan (pure): stages, ``--target`` pruning, expanded instructions and
content-addressed cache keys.

A vertex's key is ``sha256(parent key, the instruction after expansion, digests of what it reads)``:
the base image's manifest digest for FROM, the selected context files' digest for COPY/ADD, the source
stage's final key for ``COPY --from=stage``, build-arg values for RUN. Line numbers are not part of a
key, so moving an instruction without changing it keeps its cache. Everything impure (base image
lookup, context hashing) comes in through :class:`Resolver` and :class:`builder.context.BuildContext`.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from dataclasses import dataclass, field, replace
from typing import Protocol

from . import instructions as I
from .context import BuildContext, Entry
from .errors import BuildError, DockerfileError
from .expand import ExpandError, process_heredoc, process_word, process_words
from .parse import Dockerfile, heredoc_name, parse_instruction

__all__ = ["BaseImage", "Resolver", "PlanOptions", "Vertex", "Stage", "Plan", "plan", "PROXY_ARGS", "cache_key"]

PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
              "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ("/bin/sh", "-c")


@dataclass(frozen=True)
class BaseImage:
    """What the planner needs of a base image: its identity (manifest digest) and config bits."""

    key: str
    env: tuple[str, ...] = ()
    working_dir: str = ""
    shell: tuple[str, ...] | None = None
    onbuild: tuple[str, ...] = ()


class Resolver(Protocol):
    """Plan-time lookups. ``base`` is required; a resolver may also have ``fetch(url)`` returning an
    object with a ``digest`` (``ADD URL`` without ``--checksum``: the content goes into the cache key)."""

    def base(self, image: str, platform: str) -> BaseImage:
        """Resolve ``image`` (expanded reference) for ``platform``; raise PybuildError if absent."""


@dataclass(frozen=True)
class PlanOptions:
    target: str | None = None
    build_args: tuple[tuple[str, str], ...] = ()
    platform: str = "linux/amd64"


@dataclass(frozen=True)
class Vertex:
    """One step. ``instruction`` is expanded (absolute WORKDIR/COPY dest, substituted words).
    ``inputs``: for a context COPY/ADD, the entries each source selected; ``run_env``: the environment a
    RUN sees (stage ENV plus build args); ``from_stage``: index of a stage this step reads."""

    stage: int
    instruction: I.Instruction
    key: str
    inputs: tuple[tuple[str, tuple[Entry, ...]], ...] = ()
    run_env: tuple[tuple[str, str], ...] = ()
    from_stage: int | None = None
    from_image: str | None = None
    shell: tuple[str, ...] = DEFAULT_SHELL
    workdir: str = "/"
    user: str = ""
    link_key: str = ""  # COPY --link: the key of its layer alone (no parent), reusable on any base

    def describe(self) -> str:
        return self.instruction.source


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None
    base: str  # expanded image reference, "scratch", or the base stage's name/index
    base_stage: int | None
    platform: str
    base_key: str
    from_instruction: I.From
    vertices: tuple[Vertex, ...]
    deps: frozenset[int] = field(default_factory=frozenset)
    env: tuple[str, ...] = ()  # the stage's final ENV (what ``FROM <stage>`` inherits)
    workdir: str = "/"
    shell: tuple[str, ...] | None = None

    @property
    def key(self) -> str:
        return self.vertices[-1].key if self.vertices else self.base_key

    @property
    def label(self) -> str:
        """How progress names the stage (BuildKit's way): its name, else ``stage-N``."""
        return self.name or f"stage-{self.index}"


@dataclass(frozen=True)
class Plan:
    stages: tuple[Stage, ...]  # every stage (pruned ones are still planned; ``order`` skips them)
    target: int
    order: tuple[int, ...]  # stages the target needs, dependencies first
    unused_args: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """JSON-ready summary (golden files): needed stages with their vertices and keys."""
        return {
            "target": self.target,
            "order": list(self.order),
            "stages": [
                {
                    "index": s.index, "name": s.name, "base": s.base, "base_stage": s.base_stage,
                    "platform": s.platform, "deps": sorted(s.deps), "key": s.key,
                    "vertices": [
                        {"line": v.instruction.location.line, "instruction": _canonical(v.instruction),
                         "key": v.key, "from_stage": v.from_stage,
                         "inputs": {src: [e.path for e in ents] for src, ents in v.inputs}}
                        for v in s.vertices
                    ],
                }
                for s in self.stages if s.index in self.order
            ],
            "unused_args": list(self.unused_args),
        }


def cache_key(parent: str, payload) -> str:
    data = json.dumps([parent, payload], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()


def _canonical(inst: I.Instruction) -> dict:
    d = inst.to_dict()
    d.pop("line", None)
    if isinstance(d.get("inner"), dict):
        d["inner"].pop("line", None)
    return d


def _platform_args(platform: str) -> dict[str, str]:
    parts = platform.split("/")
    os_, arch = parts[0], parts[1] if len(parts) > 1 else "amd64"
    variant = parts[2] if len(parts) > 2 else ""
    out = {}
    for prefix in ("TARGET", "BUILD"):
        out[f"{prefix}PLATFORM"] = platform
        out[f"{prefix}OS"] = os_
        out[f"{prefix}ARCH"] = arch
        out[f"{prefix}VARIANT"] = variant
    return out


class _StageState:
    """Mutable per-stage planning state (private to :func:`plan`)."""

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
        merged = dict(self.args)
        merged.update(self.env)
        return merged


def plan(df: Dockerfile, options: PlanOptions, resolver: Resolver, context: BuildContext | None) -> Plan:
    """Plan ``df``. Raises :class:`DockerfileError` (with the line) for anything the Dockerfile gets wrong."""
    build_args = dict(options.build_args)
    used_args: set[str] = set()
    meta_args: dict[str, str] = dict(_platform_args(options.platform))
    stages: list[Stage] = []
    by_name: dict[str, int] = {}
    instrs = list(df.instructions)
    i = 0
    # global ARGs before the first FROM
    while i < len(instrs) and isinstance(instrs[i], I.Arg):
        for name, default in instrs[i].pairs:
            used_args.add(name)
            value = build_args.get(name)
            if value is None and default is not None:
                value = _word(default, meta_args, df, instrs[i])
            meta_args[name] = value if value is not None else ""
        i += 1
    if i >= len(instrs):
        raise DockerfileError(df.file, None, None, "no FROM instruction")

    while i < len(instrs):
        frm = instrs[i]
        if not isinstance(frm, I.From):
            raise DockerfileError(df.file, frm.location.line, frm.keyword, "must follow a FROM instruction")
        j = i + 1
        while j < len(instrs) and not isinstance(instrs[j], I.From):
            j += 1
        stage = _plan_stage(len(stages), frm, instrs[i + 1 : j], df, options, resolver, context,
                            meta_args, build_args, used_args, stages, by_name)
        if stage.name:
            if stage.name in by_name:
                raise DockerfileError(df.file, frm.location.line, "FROM", f"duplicate stage name {stage.name!r}")
            by_name[stage.name] = stage.index
        stages.append(stage)
        i = j

    target = len(stages) - 1
    if options.target:
        if options.target.lower() not in by_name:
            raise DockerfileError(df.file, None, None, f"target stage {options.target!r} could not be found")
        target = by_name[options.target.lower()]
    order: list[int] = []

    def visit(idx: int) -> None:
        if idx in order:
            return
        for dep in sorted(stages[idx].deps):
            visit(dep)
        order.append(idx)

    visit(target)
    unused = tuple(sorted(a for a in build_args if a not in used_args and a not in PROXY_ARGS))
    return Plan(tuple(stages), target, tuple(order), unused)


def _word(text: str, env: dict[str, str], df: Dockerfile, inst: I.Instruction) -> str:
    try:
        return process_word(text, env, df.escape)
    except ExpandError as exc:
        raise DockerfileError(df.file, inst.location.line, inst.keyword, str(exc)) from None


def _words(text: str, env: dict[str, str], df: Dockerfile, inst: I.Instruction) -> list[str]:
    try:
        return process_words(text, env, df.escape)
    except ExpandError as exc:
        raise DockerfileError(df.file, inst.location.line, inst.keyword, str(exc)) from None


def _plan_stage(index, frm: I.From, body, df, options, resolver, context, meta_args, build_args,
                used_args, stages, by_name) -> Stage:
    image = _word(frm.image, meta_args, df, frm)
    platform = _word(frm.platform, meta_args, df, frm) if frm.platform else options.platform
    name = frm.name
    base_stage = by_name.get(image.lower())
    if base_stage is None and image.isdigit() and int(image) < index:
        base_stage = int(image)
    deps: set[int] = set()
    if image == "scratch":
        base, base_key = BaseImage(key="scratch"), cache_key("", {"from": "scratch", "platform": platform})
    elif base_stage is not None:
        src = stages[base_stage]
        base = _stage_base(src)
        base_key = src.key
        deps.add(base_stage)
    else:
        base = _resolve(resolver, image, platform, df, frm)
        base_key = cache_key("", {"from": image, "digest": base.key, "platform": platform})
    state = _StageState(base)
    body = list(body)
    if base.onbuild:
        triggers = [parse_instruction(t, frm.location, df.escape) for t in base.onbuild]
        body = triggers + body
    vertices: list[Vertex] = []
    parent = base_key
    for inst in body:
        vertex = _plan_instruction(index, inst, parent, state, df, resolver, context, meta_args, build_args,
                                   used_args, stages, by_name, deps, platform)
        vertices.append(vertex)
        parent = vertex.key
    frm_expanded = replace(frm, image=image, platform=platform)
    return Stage(index, name, image, base_stage, platform, base_key, frm_expanded, tuple(vertices),
                 frozenset(deps), env=tuple(f"{k}={v}" for k, v in state.env.items()),
                 workdir=state.workdir, shell=state.shell if state.shell != DEFAULT_SHELL else None)


def _resolve(resolver, image: str, platform: str, df: Dockerfile, inst: I.Instruction) -> BaseImage:
    """``resolver.base`` with the instruction's location added to a failure."""
    from layers.errors import PybuildError

    try:
        return resolver.base(image, platform)
    except DockerfileError:
        raise
    except PybuildError as exc:
        keyword = inst.name if isinstance(inst, I.Copy) else inst.keyword
        raise BuildError(f"{image}: {exc}", df.file, inst.location.line, keyword) from None


def _fetch_digest(resolver, url: str, df: Dockerfile, inst: I.Copy) -> str:
    from layers.errors import PybuildError

    try:
        return str(resolver.fetch(url).digest)
    except PybuildError as exc:
        raise BuildError(str(exc), df.file, inst.location.line, inst.name) from None


def _stage_base(stage: Stage) -> BaseImage:
    """The config bits a later ``FROM <stage>`` inherits."""
    return BaseImage(key=stage.key, env=stage.env, working_dir=stage.workdir, shell=stage.shell)


def _stage_ref(ref: str, index: int, by_name: dict[str, int]) -> int | None:
    if ref.lower() in by_name:
        return by_name[ref.lower()]
    if ref.isdigit():
        n = int(ref)
        return n if n < index else None
    return None


def _abs(path: str, workdir: str) -> str:
    trailing = path.endswith("/") or path in (".", "./") or path.endswith("/.")
    full = posixpath.normpath(posixpath.join(workdir, path))
    return full + "/" if trailing and full != "/" else full


def _plan_instruction(index, inst, parent, state: _StageState, df, resolver, context, meta_args,
                      build_args, used_args, stages, by_name, deps, platform) -> Vertex:
    env = state.lookup()
    common = {"stage": index, "shell": state.shell, "workdir": state.workdir, "user": state.user}

    def err(reason: str) -> DockerfileError:
        return DockerfileError(df.file, inst.location.line, inst.keyword if not isinstance(inst, I.Copy)
                               else inst.name, reason)

    if isinstance(inst, I.From):
        raise err("unexpected FROM")
    if isinstance(inst, I.Arg):
        pairs = []
        for name, default in inst.pairs:
            used_args.add(name)
            if name in build_args:
                value = build_args[name]
            elif default is not None:
                value = _word(default, env, df, inst)
            elif name in meta_args:
                value = meta_args[name]
            else:
                value = None
            if value is not None:
                state.args[name] = value
            pairs.append((name, value))
        inst = replace(inst, pairs=tuple(pairs))
        return Vertex(instruction=inst, key=cache_key(parent, _canonical(inst)), **common)
    if isinstance(inst, I.Env):
        pairs = tuple((_word(k, env, df, inst), _word(v, env, df, inst)) for k, v in inst.pairs)
        for k, v in pairs:
            state.env[k] = v
        inst = replace(inst, pairs=pairs)
    elif isinstance(inst, I.Label):
        inst = replace(inst, pairs=tuple((_word(k, env, df, inst), _word(v, env, df, inst)) for k, v in inst.pairs))
    elif isinstance(inst, I.Workdir):
        path = _word(inst.path, env, df, inst)
        state.workdir = _abs(path, state.workdir).rstrip("/") or "/"
        inst = replace(inst, path=state.workdir)
        common["workdir"] = state.workdir
    elif isinstance(inst, I.User):
        state.user = _word(inst.user, env, df, inst)
        inst = replace(inst, user=state.user)
        common["user"] = state.user
    elif isinstance(inst, I.Expose):
        ports = []
        for p in inst.ports:
            for word in _words(p, env, df, inst):
                if not re.fullmatch(r"\d+(-\d+)?(/(tcp|udp|sctp))?", word.lower()):
                    raise err(f"invalid port {word!r}")
                ports.append(word.lower() if "/" in word else word + "/tcp")
        inst = replace(inst, ports=tuple(ports))
    elif isinstance(inst, I.Volume):
        paths = [_word(p, env, df, inst) for p in inst.paths]
        if not paths or any(not p for p in paths):
            raise err("needs at least one non-empty path")
        inst = replace(inst, paths=tuple(paths))
    elif isinstance(inst, I.Stopsignal):
        inst = replace(inst, signal=_word(inst.signal, env, df, inst))
    elif isinstance(inst, I.Shell):
        state.shell = inst.shell
    elif isinstance(inst, I.Run):
        return _plan_run(inst, parent, state, df, context, build_args, stages, by_name, deps, common, err, index,
                         resolver, platform)
    elif isinstance(inst, I.Copy):
        return _plan_copy(inst, parent, state, df, resolver, context, stages, by_name, deps, common, err,
                          index, platform)
    return Vertex(instruction=inst, key=cache_key(parent, _canonical(inst)), **common)


def _run_env(state: _StageState, build_args: dict[str, str]) -> dict[str, str]:
    out = {"PATH": DEFAULT_PATH} if "PATH" not in state.env else {}
    out.update(state.args)
    out.update(state.env)
    for name in PROXY_ARGS:
        if name in build_args and name not in out:
            out[name] = build_args[name]
    return out


def _plan_run(inst: I.Run, parent, state, df, context, build_args, stages, by_name, deps, common, err, index,
              resolver=None, platform: str = "linux/amd64"):
    run_env = _run_env(state, build_args)
    extra: dict = {"args": sorted((k, v) for k, v in state.args.items()), "workdir": state.workdir,
                   "user": state.user, "shell": list(state.shell)}
    mounts = []
    for m in inst.mounts:
        m = replace(m, target=_word(m.target, state.lookup(), df, inst) if m.target else m.target,
                    source=_word(m.source, state.lookup(), df, inst) if m.source else m.source,
                    from_=_word(m.from_, state.lookup(), df, inst) if m.from_ else m.from_,
                    id=_word(m.id, state.lookup(), df, inst) if m.id else m.id)
        if m.target:
            m = replace(m, target=_abs(m.target, state.workdir).rstrip("/") or "/")
        if m.type == "bind":
            src_stage = _stage_ref(m.from_, index, by_name) if m.from_ else None
            if m.from_ and src_stage is None:  # an image (the executor tells a stage by its digits-only index)
                if resolver is None:
                    raise err(f"--mount from={m.from_!r}: no image resolver")
                extra.setdefault("mounts", []).append([m.target, _resolve(resolver, m.from_, platform, df, inst).key,
                                                       m.source])
            elif src_stage is not None:
                deps.add(src_stage)
                m = replace(m, from_=str(src_stage))
                extra.setdefault("mounts", []).append([m.target, stages[src_stage].key, m.source])
            elif context is not None:
                clean = posixpath.normpath(m.source or ".")
                if clean == ".." or clean.startswith("../"):
                    raise err(f"--mount source {m.source} is outside the build context")
                entries = _select(context, m.source or ".", (), err)
                extra.setdefault("mounts", []).append([m.target, context.digest(entries)])
        if m.type == "cache" and not m.id:
            m = replace(m, id=m.target)
        if m.type == "cache" and m.from_:
            raise err("--mount=type=cache,from= is not supported")
        mounts.append(m)
    inst = replace(inst, mounts=tuple(mounts))
    payload = _canonical(inst)
    payload["extra"] = extra
    return Vertex(instruction=inst, key=cache_key(parent, payload), run_env=tuple(run_env.items()), **common)


def _select(context: BuildContext, source: str, excludes, err):
    try:
        return context.select(source, excludes)
    except FileNotFoundError:
        raise err(f"{source}: not found in the build context (or excluded by .dockerignore)") from None
    except ValueError as exc:  # a malformed pattern (builder.glob)
        raise err(f"{source}: syntax error in pattern: {exc}") from None


def _plan_copy(inst: I.Copy, parent, state, df, resolver, context, stages, by_name, deps, common, err,
               index, platform):
    env = state.lookup()
    docs = {h.name: h for h in inst.heredocs}
    sources, heredocs = [], []
    for s in inst.sources:
        name = heredoc_name(s)
        if name in docs:
            h = docs[name]
            content = process_heredoc(h.content, env) if h.expand else h.content
            heredocs.append(replace(h, content=content, expand=False))
            sources.append("<<" + name)
            continue
        word = _word(s, env, df, inst)
        if inst.add and (re.match(r"^git(\+[a-z]+)?://", word) or word.startswith("git@")
                         or (re.match(r"^https?://", word) and word.split("#", 1)[0].endswith(".git"))):
            raise err(f"{word}: git sources are not supported (clone in a RUN step, or ADD an archive URL)")
        if inst.add and re.match(r"^https?://", word):
            sources.append(word)
            continue
        clean = posixpath.normpath(word)
        if clean == ".." or clean.startswith("../") or (inst.from_ is None and clean.startswith("/..")):
            raise err(f"source {word} is outside the build context")
        sources.append(word)
    dest = _word(inst.dest, env, df, inst)
    if not dest:
        raise err("empty destination")
    dest = _abs(dest, state.workdir)
    if len(sources) > 1 and not dest.endswith("/"):
        raise err(f"with more than one source the destination must be a directory ending in '/': {dest}")
    chown = _word(inst.chown, env, df, inst) if inst.chown else None
    chmod = _word(inst.chmod, env, df, inst) if inst.chmod else None
    if chmod is not None and not re.fullmatch(r"[0-7]{3,4}", chmod):
        raise err(f"--chmod must be an octal mode, got {chmod!r}")
    from_ = _word(inst.from_, env, df, inst) if inst.from_ else None
    excludes = tuple(_word(e, env, df, inst) for e in inst.excludes)
    if inst.checksum and not all(re.match(r"^(https?)://", s) for s in sources):
        raise err("--checksum is only valid for URL sources")
    if inst.checksum and not re.fullmatch(r"sha256:[0-9a-f]{64}", inst.checksum):
        raise err(f"--checksum must be sha256:<64 hex>, got {inst.checksum!r}")
    expanded = replace(inst, sources=tuple(sources), dest=dest, chown=chown, chmod=chmod, from_=from_,
                       excludes=excludes, heredocs=tuple(heredocs))
    payload = _canonical(expanded)
    inputs: list[tuple[str, tuple[Entry, ...]]] = []
    from_stage, from_image = None, None
    if from_:
        from_stage = _stage_ref(from_, index, by_name)
        if from_stage is not None:
            deps.add(from_stage)
            payload["source_key"] = stages[from_stage].key
        else:
            from_image = from_
            payload["source_key"] = _resolve(resolver, from_, platform, df, inst).key
    else:
        digests = {}
        for s in sources:
            if re.match(r"^https?://", s):
                if not inst.checksum and hasattr(resolver, "fetch"):
                    # the content is an input like a context file: a changed remote file is a miss
                    payload.setdefault("urls", {})[s] = _fetch_digest(resolver, s, df, inst)
                continue
            if heredoc_name(s) in docs:
                continue
            if context is None:
                raise err("no build context")
            entries = tuple(_select(context, s, excludes, err))
            inputs.append((s, entries))
            digests[s] = context.digest(list(entries))
        payload["context"] = digests
    link_key = cache_key("link", {**payload, "workdir": state.workdir}) if inst.link else ""
    return Vertex(instruction=expanded, key=cache_key(parent, payload), inputs=tuple(inputs),
                  from_stage=from_stage, from_image=from_image, link_key=link_key, **common)
