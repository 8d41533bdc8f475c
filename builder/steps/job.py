"""The values an execution handler works with: a stage's image so far, and one step to run."""

from __future__ import annotations

from typing import Any

from layers.config import ImageConfig
from layers.descriptor import Descriptor
from layers.value import frozen

from ..graph import Stage, Vertex

__all__ = ["StageImage", "StepJob"]


@frozen
class StageImage:
    """A stage's image so far: its config and layer descriptors (diff_ids are in the config)."""

    config: ImageConfig
    layers: tuple[Descriptor, ...]
    base_history: int = 0  # history entries inherited from the base image (the rest are this build's)


@frozen
class StepJob:
    """One filesystem step to run: ``root`` is the mounted overlay of ``image`` whose upper dir is
    ``upper`` (the new layer); ``step`` is its progress handle (``stdout``/``stderr`` for RUN)."""

    stage: Stage
    vertex: Vertex
    image: StageImage
    root: str
    upper: str
    step: Any
