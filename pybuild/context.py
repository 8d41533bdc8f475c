"""The settings object the CLI group builds once and hands to every subcommand."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .commands import DEFAULT_ROOT, DEFAULT_STATE

__all__ = ["Settings", "pass_settings", "DEFAULT_ROOT", "DEFAULT_STATE", "env_list"]


@dataclass(frozen=True)
class Settings:
    """Global options. Libraries are opened lazily from these so ``--help`` stays cheap."""

    root: str = DEFAULT_ROOT
    state_dir: str = DEFAULT_STATE
    insecure_registries: tuple[str, ...] = ()
    tls_ca: str | None = None
    debug: bool = False
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def store(self):
        """Open the local store under ``root`` (imports ``layers.store`` on first use)."""
        from layers.store import Store

        return Store(self.root)


def pass_settings(f):
    """Decorator: call ``f`` with the group's :class:`Settings` as its first argument."""
    import click

    return click.make_pass_decorator(Settings)(f)


def env_list(name: str) -> tuple[str, ...]:
    """The comma-separated values of the environment variable ``name``, blanks dropped."""
    raw = os.environ.get(name, "")
    return tuple(p.strip() for p in raw.split(",") if p.strip())
