"""The settings object the CLI group builds once and hands to every subcommand."""

from __future__ import annotations

import os
import sys
from dataclasses import field

from layers.value import frozen

from .commands import DEFAULT_ROOT, DEFAULT_STATE

__all__ = ["Settings", "pass_settings", "DEFAULT_ROOT", "DEFAULT_STATE", "env_list", "enter_namespaces", "NO_STORE", "warn"]

# commands that never touch the store or containers: no user namespace to join for them
NO_STORE = frozenset({"version", "login", "logout", "key", "kube"})


@frozen
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

        return Store(self.root, notes=warn)


def warn(text: str) -> None:
    """A one-line warning the libraries hand up (e.g. device nodes a rootless unpack skipped)."""
    import sys

    sys.stderr.write(f"pybuild: warning: {text}\n")
    sys.stderr.flush()


def pass_settings(f):
    """Decorator: call ``f`` with the group's :class:`Settings` as its first argument."""
    import click

    return click.make_pass_decorator(Settings)(f)


def env_list(name: str) -> tuple[str, ...]:
    """The comma-separated values of the environment variable ``name``, blanks dropped."""
    raw = os.environ.get(name, "")
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def enter_namespaces(state_dir: str) -> None:
    """Join the rootless user namespace (``runner.userns.enter``) and print its one-time notice;
    nothing as root. The one call of the CLI: every command but :data:`NO_STORE` ones runs it first,
    once click has parsed it (``pybuild.group.load_command``), and so does the click-free ``ps``."""
    from layers.store.location import is_rootless

    if not is_rootless():
        return
    from runner.userns import enter

    notice = enter(state_dir).notice
    if notice:
        sys.stderr.write(notice + "\n")
