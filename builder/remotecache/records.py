"""What a build did, step by step, as the cache exporter needs it: :class:`StepRecord` per step (its
key, the record below it, the layer chain the step leaves and when it ran), collected by a
thread-safe :class:`Recorder` while stages run in parallel.

A stage's base gets a record too (key :func:`base_key`, never looked up as a step key): it carries the
chain a stage starts from, so an importer can tell a step that added a layer from one that did not
(its chain is longer than its parent's).
"""

from __future__ import annotations

import hashlib
import threading

from layers.descriptor import Descriptor
from layers.digest import Digest
from layers.value import frozen

__all__ = ["StepRecord", "Recorder", "base_key"]


def base_key(stage_base_key: str) -> str:
    """The record key of a stage's base (distinct from every step key)."""
    return hashlib.sha256(b"pybuild-cache-base\0" + stage_base_key.encode()).hexdigest()


@frozen
class StepRecord:
    key: str  # 64 hex: the step's cache key (the executor's layer key)
    parent: str  # the key of the record below ("" for a base)
    layers: tuple[Descriptor, ...]
    diff_ids: tuple[Digest, ...]
    created: str
    stage: int


class Recorder:
    """Records in the order they were made; the first record of a key wins. Each key remembers the
    target platforms whose builds reached it (a ``$BUILDPLATFORM`` step is reached by all)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, StepRecord] = {}
        self._platforms: dict[str, set[str]] = {}

    def add(self, record: StepRecord, platform: str = "") -> None:
        with self._lock:
            self._records.setdefault(record.key, record)
            self._platforms.setdefault(record.key, set()).add(platform)

    def records(self, stages: frozenset[int] | None = None, platform: str | None = None) -> list[StepRecord]:
        """Every record (``stages`` None) or those of ``stages``, with the records they stand on;
        ``platform``: only those a build for that target platform made (and what they stand on, which
        may be of the build platform)."""
        with self._lock:
            all_ = dict(self._records)
            reached = {k: frozenset(v) for k, v in self._platforms.items()}
        if stages is None and platform is None:
            return list(all_.values())
        keep: dict[str, StepRecord] = {}
        for rec in all_.values():
            if (stages is None or rec.stage in stages) and (platform is None or platform in reached[rec.key]):
                keep[rec.key] = rec
        for rec in list(keep.values()):  # the parents they link to, even from another stage
            parent = all_.get(rec.parent)
            while parent is not None and parent.key not in keep:
                keep[parent.key] = parent
                parent = all_.get(parent.parent)
        return [r for r in all_.values() if r.key in keep]
