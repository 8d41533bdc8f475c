"""Go ``text/template`` for ``--format``: :mod:`.parse` (source to tree), :mod:`.execute` (tree on
data), :mod:`.render` (Docker's ``table`` / ``json`` formats and tabwriter alignment)."""

from .parse import TemplateError
from .render import Template, render, render_one, tabwrite

__all__ = ["TemplateError", "Template", "render", "render_one", "tabwrite"]
