"""``stats``' own table (no ``--format``, or ``table``): Docker's default columns, each cell worded by
:class:`pybuild.views.contexts.StatsFields` and laid out by Go's tabwriter rules, exactly what the
template engine prints for :data:`pybuild.views.contexts.STATS_TABLE`, without loading the engine
or running a template a hundred times."""

from __future__ import annotations

from collections.abc import Iterable

from .contexts import STATS_TITLES, StatsFields
from .processes import tabwriter

__all__ = ["stats_table", "COLUMNS"]

#: The fields of :data:`pybuild.views.contexts.STATS_TABLE`, in order.
COLUMNS = ("ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs")


def stats_table(samples: Iterable) -> list[str]:
    """The lines of ``docker stats``' default table (title line first) for :class:`runner.listing.Stats` samples."""
    rows = [tuple(STATS_TITLES[c] for c in COLUMNS)]
    for s in samples:
        f = StatsFields(s)
        rows.append((f.ID(), f.Name(), f.CPUPerc(), f.MemUsage(), f.MemPerc(), f.NetIO(), f.BlockIO(), f.PIDs()))
    return tabwriter(rows, minwidth=10, padding=3)
