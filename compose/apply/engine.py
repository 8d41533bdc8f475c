"""The one context object every engine operation takes: where the stores are, how registries are
reached, and where progress goes.

The engine never prints: it reports through :class:`Reporter` (the CLI's writes to the terminal;
tests may collect). Stores are opened on first use and shared by the threads of one operation.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Engine", "Reporter"]


class Reporter:
    """Where the engine says what it does. ``event`` is one line per resource and step, as
    ``docker compose`` prints them (``Container demo-web-1  Started``); ``note`` a warning;
    ``progress`` the stream build and pull progress is written to (None: quiet)."""

    def __init__(self, event: Callable[[str, str, str], None] | None = None,
                 note: Callable[[str], None] | None = None, progress=None) -> None:
        self._event = event
        self._note = note
        self.progress = progress
        self._lock = threading.Lock()

    def event(self, kind: str, name: str, status: str) -> None:
        if self._event is not None:
            with self._lock:
                self._event(kind, name, status)

    def note(self, text: str) -> None:
        if self._note is not None:
            with self._lock:
                self._note(text)


@dataclass
class Engine:
    """``root``/``state_dir``: pybuild's store and runtime state; ``insecure_registries``/``tls_ca``:
    how registries are reached (as the global options say)."""

    root: str
    state_dir: str
    insecure_registries: tuple[str, ...] = ()
    tls_ca: str | None = None
    reporter: Reporter = field(default_factory=Reporter)
    _containers: object = None
    _images: object = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def containers(self):
        """The :class:`runner.state.ContainerStore` (what killed pybuild processes left is reaped once)."""
        with self._lock:
            if self._containers is None:
                from runner.lifecycle import reap_abandoned
                from runner.state import ContainerStore

                store = ContainerStore(self.root, self.state_dir)
                reap_abandoned(store, on_error=lambda cid, exc: self.reporter.note(
                    f"container {cid[:12]}: cleaning up after a killed pybuild: {exc}"))
                self._containers = store
            return self._containers

    def images(self):
        """The image store (:class:`layers.store.Store`)."""
        with self._lock:
            if self._images is None:
                from layers.store import Store

                self._images = Store(self.root, notes=self.reporter.note)
            return self._images

    def registry_settings(self):
        from builder.options import RegistrySettings

        return RegistrySettings(insecure_registries=self.insecure_registries, tls_ca=self.tls_ca)

    def open_registry(self, ref):
        """A :class:`registry_client.client.Registry` for ``ref``'s host, with stored credentials."""
        from registry_client.client import Registry
        from registry_client.credentials import CredentialStore
        from registry_client.transport import TransportConfig

        config = TransportConfig(insecure_registries=self.insecure_registries, tls_ca=self.tls_ca)
        return Registry(ref.api_host, config=config, credentials=CredentialStore().get(ref.registry))
