"""Builder end-to-end fixtures: a store with ``busybox:latest`` imported from busybox-static.

The store (``layers.store``) and archive (``layers.archive``) are another room's work; until they are
in the tree these tests skip with that reason.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest


def _store_ready() -> str | None:
    for mod in ("layers.store", "layers.archive"):
        try:
            if importlib.util.find_spec(mod) is None:
                return f"{mod} is not in the tree yet"
        except ImportError:
            return f"{mod} is not importable yet"
    try:
        from layers.store import Store  # noqa: F401
        from layers.archive import pack  # noqa: F401
    except ImportError as exc:
        return f"store/archive not usable yet: {exc}"
    return None


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
