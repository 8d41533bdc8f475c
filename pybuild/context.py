"""The settings object the CLI group builds once and hands to every subcommand."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .commands import DEFAULT_ROOT, DEFAULT_STATE

__all__ = ["Settings", "pass_settings", "DEFAULT_ROOT", "DEFAULT_STATE", "env_list", "enter_namespaces"]

# commands that never touch the store or containers: no user namespace to join for them
_NO_STORE = frozenset({"version", "login", "logout", "key", "completion"})


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


def enter_namespaces(state_dir: str, command: str | None, args) -> None:
    """Join the rootless user namespace (``runner.userns.enter``) before a command that touches the
    store; nothing for root, for ``--help`` anywhere on the line, or for :data:`_NO_STORE` commands.
    The one place the CLI does it (the click group and ``fastps`` call this)."""
    from layers.store.location import is_rootless

    if not is_rootless() or command in _NO_STORE or any(a in ("--help", "-h") for a in args):
        return
    from runner.userns import enter

    enter(state_dir)
