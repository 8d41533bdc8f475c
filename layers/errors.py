"""The one exception tree of pybuild.

Every error a library raises on purpose derives from :class:`PybuildError`; the CLI turns
these into a one-line message and an exit code, and anything else is a bug. The tree::

    PybuildError                      base; ``str(err)`` is the user-facing one-line message
    ├── InvalidInput                  the user or a file gave something malformed
    │   ├── InvalidDigest             ``sha256:...`` string fails the grammar
    │   ├── InvalidReference          image reference fails the grammar
    │   └── InvalidDocument           manifest / index / config JSON: names the field and why
    ├── NotFound                      a named thing (blob, image, container, network) is absent
    ├── AlreadyExists                 a name is taken
    ├── IntegrityError                bytes do not match their digest or size
    ├── LayerError                    a layer archive is hostile or malformed
    ├── StoreError                    the local store cannot complete an operation (I/O, disk full, lock)
    ├── RegistryError                 (registry_client) a registry answered with an error
    ├── RuntimeFailure                (runner) the sandbox could not be set up or a state move is invalid
    └── BuildError                    (builder) a Dockerfile or build step failed; carries file:line

Rooms above ``layers`` subclass the matching branch in their own ``errors`` module so that
``layers`` stays at the bottom of the import graph.
"""

from __future__ import annotations

__all__ = [
    "PybuildError",
    "InvalidInput",
    "InvalidDigest",
    "InvalidReference",
    "InvalidDocument",
    "NotFound",
    "AlreadyExists",
    "IntegrityError",
    "LayerError",
    "StoreError",
    "RuntimeFailure",
]


class PybuildError(Exception):
    """Base of every deliberate pybuild error. ``exit_code`` is what the CLI exits with."""

    exit_code: int = 1


class InvalidInput(PybuildError):
    """Malformed input from the user, a file or a peer."""

    exit_code = 2


class InvalidDigest(InvalidInput):
    """A digest string is not ``algorithm:hex`` with a known algorithm and lowercase hex of the right length."""


class InvalidReference(InvalidInput):
    """An image reference does not follow ``[registry[:port]/]repo[:tag][@digest]``."""


class InvalidDocument(InvalidInput):
    """A JSON document (manifest, index, config, layout) is malformed.

    ``field`` is a dotted path such as ``layers[2].digest``; the message names it.
    """

    def __init__(self, kind: str, field: str, reason: str) -> None:
        self.kind = kind
        self.field = field
        self.reason = reason
        where = f" field {field!r}" if field else ""
        super().__init__(f"invalid {kind}:{where} {reason}")


class NotFound(PybuildError):
    """A named object does not exist."""


class AlreadyExists(PybuildError):
    """A name or object that must be unique already exists."""


class IntegrityError(PybuildError):
    """Content does not match the digest or size it claims."""


class LayerError(PybuildError):
    """A layer archive is malformed or hostile (path escape, bad whiteout, bomb, truncation)."""


class StoreError(PybuildError):
    """The local store could not complete an operation (I/O error, disk full, lock)."""


class RuntimeFailure(PybuildError):
    """(runner) The sandbox could not be set up, or a container state move is invalid.

    Defined here, beside its siblings, so the tree is written down in one place; the runner
    subclasses it in :mod:`runner.errors`.
    """
