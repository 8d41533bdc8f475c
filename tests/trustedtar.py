"""Unpack the tests' own archives (written by the tests or by testdata/), never foreign ones.

``TarFile.extractall(filter=...)`` came in Python 3.11.4; Debian 12's python3 is 3.11.2. Where the
interpreter has extraction filters, the named one is used; otherwise the archive is one the test
wrote itself, so the unfiltered extraction is what it would have been anyway.
"""

from __future__ import annotations

import tarfile
from pathlib import Path


def extract_trusted(tar: tarfile.TarFile, dest: Path | str, kind: str = "tar") -> None:
    """Extract all of ``tar`` (one of the tests' own archives) under ``dest`` (``kind``: "tar" or "data")."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter=kind)
    else:
        tar.extractall(dest)  # noqa: S202 - the tests' own archive; no filters before Python 3.11.4
