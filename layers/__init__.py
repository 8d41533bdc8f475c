"""layers: the OCI image model and everything pybuild keeps on local disk.

The bottom of the import graph: imports only the standard library and zstandard/isal.
Public names are re-exported here; submodules are private in spirit.

The re-exports are loaded on first use (PEP 562 ``__getattr__``): ``from layers import Digest``
works as before, but importing ``layers.errors`` alone (every ``pybuild ps``/``stop``/``rm``, and
each container's long-lived shim) no longer loads the whole image model (hashlib, dataclasses,
datetime, platform ...), about 30 ms and 3.5 MiB per process.
"""

from __future__ import annotations

import importlib

# public name -> the submodule that defines it
_EXPORTS: dict[str, str] = {
    "AlreadyExists": ".errors",
    "IntegrityError": ".errors",
    "InvalidDigest": ".errors",
    "InvalidDocument": ".errors",
    "InvalidInput": ".errors",
    "InvalidReference": ".errors",
    "LayerError": ".errors",
    "NotFound": ".errors",
    "PybuildError": ".errors",
    "StoreError": ".errors",
    "Descriptor": ".descriptor",
    "Platform": ".descriptor",
    "Digest": ".digest",
    "VerifyingReader": ".digest",
    "MediaType": ".mediatype",
    # image model (manifest, index, config, reference)
    "ContainerConfig": ".config",
    "Healthcheck": ".config",
    "History": ".config",
    "ImageConfig": ".config",
    "RootFS": ".config",
    "Index": ".index",
    "Manifest": ".manifest",
    "parse_document": ".manifest",
    "Reference": ".reference",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'layers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
