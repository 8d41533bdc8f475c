"""Builder end-to-end fixtures: a store with ``busybox:latest`` imported from busybox-static.

The store (``layers.store``) and archive (``layers.archive``) are another room's work; until they are
in the tree these tests skip with that reason.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def _store_ready() -> str | None:
    """None when the installed ``pybuild`` (a subprocess) can use the store; else why not."""
    layers_dir = Path(__file__).resolve().parents[2] / "layers"
    for name in ("store", "archive"):
        if not ((layers_dir / name).is_dir() or (layers_dir / f"{name}.py").is_file()):
            return f"layers.{name} is not in the tree yet"
    return None


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
    if not (Path(__file__).resolve().parents[2] / "layers" / "store").is_dir():
        pytest.skip("layers.store is not in the tree yet")
    return _import_base(busybox_tar, tmp_path_factory)


@pytest.fixture
def meta_pybuild(pybuild, meta_base: Path):
    shutil.rmtree(pybuild.root)
    shutil.copytree(meta_base, pybuild.root, symlinks=True)
    return pybuild


@pytest.fixture(scope="session")
def builder_base(busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory):
    """A store root holding ``busybox:latest``; tests copy it (cheap) so they never share state."""
    reason = _store_ready()
    if reason:
        pytest.skip(reason)
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
