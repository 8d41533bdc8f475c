"""layers: the OCI image model and everything pybuild keeps on local disk.

The bottom of the import graph: imports only the standard library and zstandard/isal.
Public names are re-exported here; submodules are private in spirit.
"""

from .descriptor import Descriptor, Platform
from .digest import Digest, VerifyingReader
from .errors import (
    AlreadyExists,
    IntegrityError,
    InvalidDigest,
    InvalidDocument,
    InvalidInput,
    InvalidReference,
    LayerError,
    NotFound,
    PybuildError,
    StoreError,
)
from .mediatype import MediaType

__all__ = [
    "AlreadyExists",
    "Descriptor",
    "Digest",
    "IntegrityError",
    "InvalidDigest",
    "InvalidDocument",
    "InvalidInput",
    "InvalidReference",
    "LayerError",
    "MediaType",
    "NotFound",
    "Platform",
    "PybuildError",
    "StoreError",
    "VerifyingReader",
]

# -- image model (manifest, index, config, reference) -------------------------------------------
from .config import ContainerConfig, Healthcheck, History, ImageConfig, RootFS  # noqa: E402
from .index import Index  # noqa: E402
from .manifest import Manifest, parse_document  # noqa: E402
from .reference import Reference  # noqa: E402

__all__ += [
    "ContainerConfig",
    "Healthcheck",
    "History",
    "ImageConfig",
    "Index",
    "Manifest",
    "Reference",
    "RootFS",
    "parse_document",
]
