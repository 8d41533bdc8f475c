"""Compose fixtures: a per-test ``pybuild`` whose store holds ``busybox:latest`` (imported once per
session, copied per test), a project directory to write compose files into, and a teardown that
removes whatever a failed test left running (containers, then networks) so no shim, bridge or
port outlives the test."""

from __future__ import annotations

import calendar
import json
import shutil
import time
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def compose_base(busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import PybuildRunner

    base = tmp_path_factory.mktemp("compose-base")
    root, state = base / "root", base / "state"
    root.mkdir(mode=0o700)
    state.mkdir(mode=0o700)
    PybuildRunner(root, state)("import", str(busybox_tar), "busybox:latest", "--change", 'CMD ["sh"]', check=True)
    return root


def _cleanup(pb) -> None:
    ids = pb("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        pb("rm", "-f", *ids)
    for name in pb("network", "ls", "--format", "{{.Name}}").stdout.split():
        if name not in ("pybuild", "bridge", "host", "none"):
            pb("network", "rm", name)


@pytest.fixture
def cpybuild(pybuild, compose_base: Path):
    """``pybuild`` on a store holding ``busybox:latest``; cleans up after the test."""
    shutil.rmtree(pybuild.root)
    shutil.copytree(compose_base, pybuild.root, symlinks=True)
    yield pybuild
    _cleanup(pybuild)


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    d = tmp_path / "demo"
    d.mkdir()
    return d


class Compose:
    """``pybuild compose -f <dir>/compose.yaml -p <name> ...`` for one project."""

    def __init__(self, pb, directory: Path, name: str = "demo") -> None:
        self.pb, self.dir, self.name = pb, directory, name

    def write(self, text: str) -> None:
        (self.dir / "compose.yaml").write_text(text)

    def __call__(self, *args: str, **kw):
        return self.pb("compose", "-f", str(self.dir / "compose.yaml"), "-p", self.name, *args, **kw)

    def inspect(self, container: str) -> dict:
        return json.loads(self.pb("inspect", container, check=True).stdout)[0]

    def ids(self) -> dict[str, str]:
        """container name -> id of the project's containers (every state)."""
        out = self.pb("ps", "-a", "--no-trunc", "--filter", f"label=com.docker.compose.project={self.name}",
                      "--format", "{{.Names}} {{.ID}}", check=True).stdout
        return dict(line.split() for line in out.splitlines() if line.strip())


@pytest.fixture
def compose(cpybuild, project_dir: Path) -> Compose:
    return Compose(cpybuild, project_dir)


def times(doc: dict) -> tuple[float, float | None]:
    """(StartedAt, FinishedAt or None) of an inspect document, as epoch seconds."""

    def parse(text: str) -> float | None:
        if not text or text.startswith("0001-"):
            return None
        base, _, frac = text.rstrip("Z").partition(".")
        return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + (float("0." + frac) if frac else 0.0)

    return parse(doc["State"]["StartedAt"]), parse(doc["State"]["FinishedAt"])
