"""Builder end-to-end fixtures: a store with ``busybox:latest`` imported from busybox-static (the Debian
root filesystem, ``debian_tar``, is tests/conftest.py's: one debootstrap per session)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def _import_base(busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import PybuildRunner

    base = tmp_path_factory.mktemp("builder-base")
    root, state = base / "root", base / "state"
    root.mkdir(mode=0o700)
    state.mkdir(mode=0o700)
    PybuildRunner(root, state)("import", str(busybox_tar), "busybox:latest", check=True)
    return root


@pytest.fixture(scope="session")
def meta_base(busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``busybox:latest`` imported (needs only the store): for builds of metadata-only Dockerfiles."""
    return _import_base(busybox_tar, tmp_path_factory)


@pytest.fixture
def meta_pybuild(pybuild, meta_base: Path):
    shutil.rmtree(pybuild.root)
    shutil.copytree(meta_base, pybuild.root, symlinks=True)
    return pybuild


@pytest.fixture(scope="session")
def builder_base(busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory):
    """A store root holding ``busybox:latest``; tests copy it (cheap) so they never share state."""
    from tests.conftest import PybuildRunner

    base = tmp_path_factory.mktemp("builder-base")
    root, state = base / "root", base / "state"
    root.mkdir(mode=0o700)
    state.mkdir(mode=0o700)
    runner = PybuildRunner(root, state)
    runner("import", str(busybox_tar), "busybox:latest", check=True)
    return root


@pytest.fixture
def bpybuild(pybuild, builder_base: Path):
    """The per-test ``pybuild`` runner, its root pre-filled with the busybox base image."""
    shutil.rmtree(pybuild.root)
    shutil.copytree(builder_base, pybuild.root, symlinks=True)
    return pybuild
