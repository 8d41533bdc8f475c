"""One build's shared cache: the imports done before the plan runs, the records kept while it runs,
the exports done after it (:class:`CacheSession`), and the lines progress prints about them."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from layers.errors import PybuildError

from ..errors import BuildError
from .exporter import inline_config, make_cache, recompressor, store_cache, write_local
from .importer import RemoteCache
from .records import Recorder
from .spec import CacheSpec

if TYPE_CHECKING:
    from layers.store import Store

    from ..execute import BuildResult
    from ..plan import Plan

__all__ = ["CacheSession"]


class CacheSession:
    """``imports``/``exports`` are parsed specs; ``transport`` a ``registry_client`` TransportConfig."""

    def __init__(self, store: Store, imports: tuple[CacheSpec, ...], exports: tuple[CacheSpec, ...],
                 transport=None, jobs: int = 4) -> None:
        from registry_client.remotes import Remotes

        self.store, self.imports, self.exports, self.jobs = store, imports, exports, jobs
        self.remotes = Remotes(transport)
        self.remote = RemoteCache(store, self.remotes)
        self.recorder = Recorder()
        self.lines: list[str] = []

    @property
    def may_prune(self) -> bool:
        """Whether stages that hits make moot may be skipped: yes, unless a mode=max export wants them."""
        return not any(s.mode == "max" for s in self.exports)

    def close(self) -> None:
        self.remotes.close()

    def load(self, warn) -> None:
        self.remote.load(self.imports, warn)
        for rep in self.remote.reports:
            if not rep.error:
                self.lines.append(f"cache: imported {rep.records} records from {rep.source}")

    def summary(self, hits: int) -> list[str]:
        out = list(self.lines)
        if self.imports:
            out.append(f"cache: {hits} steps hit the imported cache; {self.remotes.fetched_blobs} cached layers "
                       f"downloaded ({self.remotes.fetched_bytes} bytes)")
        return out

    # -- exports --------------------------------------------------------------------------------------
    def _stages(self, plan: Plan, mode: str) -> frozenset[int] | None:
        if mode == "max":
            return None
        chain, s = set(), plan.target
        while s is not None:
            chain.add(s)
            s = plan.stages[s].base_stage
        return frozenset(chain)

    def export_inline(self, plan: Plan, result: BuildResult, platform: str | None = None) -> BuildResult:
        """The result with its cache in its config (``--cache-to type=inline``); unchanged otherwise.
        ``platform`` (a multi-platform build): only the records of that platform's image go in."""
        specs = [s for s in self.exports if s.type == "inline"]
        if not specs:
            return result
        from layers.config import ImageConfig
        from layers.descriptor import Descriptor
        from layers.manifest import Manifest

        export = make_cache(self.recorder.records(self._stages(plan, "min"), platform))
        config = ImageConfig.parse(inline_config(result.config.raw, export))
        digest = self.store.blobs.put_bytes(config.raw)
        cdesc = Descriptor(result.manifest.config.media_type, digest, len(config.raw))
        manifest = Manifest.build(cdesc, result.layers, docker=result.manifest.is_docker)
        self.store.blobs.put_bytes(manifest.raw)
        where = f"the {platform} image's config" if platform else "the image config"
        self.lines.append(f"cache: exported {len(export.config.records)} records inline in {where}")
        return replace(result, config=config, manifest=manifest)

    def export(self, plan: Plan, warn) -> None:
        """Every registry and local export; a failure is an error unless the spec says ignore-error=true."""
        for spec in self.exports:
            if spec.type == "inline":
                continue
            try:
                self._export_one(plan, spec)
            except (PybuildError, OSError) as exc:
                text = f"--cache-to {spec.describe()}: {exc}"
                if not spec.ignore_error:
                    raise BuildError(text) from None
                warn(f"[warning] {text} (ignored: ignore-error=true)")

    def _export_one(self, plan: Plan, spec: CacheSpec) -> None:
        records = self.recorder.records(self._stages(plan, spec.mode))
        convert = recompressor(self.store, spec.compression, self.remote.ensure) if spec.compression else None
        export = make_cache(records, convert)
        manifest = store_cache(self.store, export)
        if spec.type == "local":
            write_local(self.store, manifest, spec.path, self.remote.ensure)
        else:
            from layers.reference import Reference
            from registry_client.cache import push_cache_manifest

            ref = Reference.parse(spec.ref)
            if ref.tag is None and ref.digest is None:
                ref = Reference.parse(spec.ref + ":latest")
            for desc in manifest.layers:  # a lazy layer from another registry cannot be mounted: fetch it
                self._fetch_unless_mountable(desc, ref.api_host)
            push_cache_manifest(self.store, self.remotes, manifest.digest, ref, self.jobs)
        self.lines.append(f"cache: exported {len(export.config.records)} records, {len(export.layers)} layers "
                          f"(mode={spec.mode}) to {spec.describe()}")

    def _fetch_unless_mountable(self, desc, host: str) -> None:
        from registry_client.sources import SourceIndex

        if self.store.blobs.has(desc.digest):
            return
        if any(h == host for h, _ in SourceIndex(self.store.root).locations(desc.digest)):
            return
        self.remote.ensure(desc)

    def prepare_push(self, manifest, host: str) -> None:
        """Before a push to ``host``: fetch the lazy layers that no repository of ``host`` has."""
        for desc in manifest.layers:
            self._fetch_unless_mountable(desc, host)
