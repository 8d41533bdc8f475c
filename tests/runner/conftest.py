"""Fixtures of the runner tests: a busybox root filesystem directory and an imported busybox image.

``busybox_rootfs`` extracts the shared ``busybox_tar`` with Python's tarfile (the fixture's own
deterministic tar, not a hostile one) so the sandbox can be tested without the store.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest
from tests.trustedtar import extract_trusted


@pytest.fixture(scope="session")
def busybox_rootfs(busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bbroot") / "rootfs"
    root.mkdir()
    with tarfile.open(busybox_tar) as tar:
        extract_trusted(tar, root, "tar")
    return root


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, mounts and cgroups")
