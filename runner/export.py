"""``export``: a plain tar of a container's whole filesystem (the merged view, volumes left out).

The tar is the layer format of :func:`layers.archive.pack` over the root from
:func:`runner.fsview.container_root`: sorted names, numeric owners, hardlinks, devices, modes with
setuid bits; extracted with any tar it is a root filesystem a runtime can run.
"""

from __future__ import annotations

from typing import BinaryIO

from layers.errors import LayerError

from .fsview import container_root
from .state import ContainerStore

__all__ = ["export"]


def export(store: ContainerStore, ref: str, out: BinaryIO) -> None:
    """Write container ``ref``'s filesystem as an uncompressed tar to ``out``."""
    from layers.archive import pack

    with container_root(store, ref) as view:
        try:
            pack(view.path, out, compression=None)
        except OSError as exc:
            raise LayerError(f"export {view.config.name}: {exc.strerror or exc}") from None
