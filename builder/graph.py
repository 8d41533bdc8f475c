"""The plan graph: :class:`Plan` of :class:`Stage` of :class:`Vertex`, what the planner reads of a base
image (:class:`BaseImage`, through a :class:`Resolver`) and the content-addressed :func:`cache_key`.

Values only; :mod:`builder.plan` makes them, :mod:`builder.execute` walks them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import field
from typing import Protocol

from layers.value import frozen

from . import instructions as I
from .context import Entry

__all__ = ["BaseImage", "Resolver", "PlanOptions", "Vertex", "Stage", "Plan", "cache_key", "canonical",
           "PROXY_ARGS", "DEFAULT_PATH", "DEFAULT_SHELL"]

PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
              "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ("/bin/sh", "-c")


@frozen
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


def host_platform() -> str:
    """This machine's ``os/arch``: the BUILDPLATFORM of every build."""
    from layers.descriptor import Platform

    return str(Platform.host())


@frozen
class PlanOptions:
    """``platform`` is the target (TARGETPLATFORM, the default of every FROM); ``build_platform`` is
    where the build runs (BUILDPLATFORM, what ``FROM --platform=$BUILDPLATFORM`` runs natively)."""

    target: str | None = None
    build_args: tuple[tuple[str, str], ...] = ()
    platform: str = "linux/amd64"
    build_platform: str = field(default_factory=host_platform)


@frozen
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


@frozen
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


@frozen
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
                        {"line": v.instruction.location.line, "instruction": canonical(v.instruction),
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
    """``sha256`` of the parent key and a JSON payload (sorted keys): a vertex's identity."""
    data = json.dumps([parent, payload], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()


def canonical(inst: I.Instruction) -> dict:
    """The instruction as a cache key and golden files see it: its typed fields, no line number."""
    d = inst.to_dict()
    d.pop("line", None)
    if isinstance(d.get("inner"), dict):
        d["inner"].pop("line", None)
    return d
