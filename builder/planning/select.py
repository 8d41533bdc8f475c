"""Context selection for a step, its failures reported at the step's line."""

from __future__ import annotations

from ..context import Entry
from .context import Step

__all__ = ["select"]


def select(step: Step, source: str, excludes) -> list[Entry]:
    """The context entries ``source`` (a path or pattern) selects, minus ``excludes``."""
    try:
        return step.plan.context.select(source, excludes)
    except FileNotFoundError:
        raise step.error(f"{source}: not found in the build context (or excluded by .dockerignore)") from None
    except ValueError as exc:  # a malformed pattern (builder.glob)
        raise step.error(f"{source}: syntax error in pattern: {exc}") from None
