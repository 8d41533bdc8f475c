"""The build cache shared through a registry, an OCI layout directory or an image's config.

:mod:`.model` (BuildKit's cacheconfig.v0 as frozen values), :mod:`.spec` (``--cache-to``/
``--cache-from`` values), :mod:`.records` (what a build did, step by step), :mod:`.exporter`
(records -> cache manifest -> registry / directory / inline), :mod:`.importer` (caches -> a table
of lazy entries; bytes fetched only when a step needs them), :mod:`.session` (one build's imports,
records and exports). Keys are pybuild's own content keys (:mod:`builder.plan`).
"""

from __future__ import annotations

__all__ = ["CACHE_CONFIG_TYPE", "CacheConfig", "CacheSpec", "parse_cache_spec"]

_WHERE = {"CACHE_CONFIG_TYPE": "model", "CacheConfig": "model", "CacheSpec": "spec", "parse_cache_spec": "spec"}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(name)
