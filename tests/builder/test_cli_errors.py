"""SECURITY.md case 25 through the real ``pybuild build``: the error names file and line, the exit
code is non-zero, and the store is not touched (not even created)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

NEGATIVE = Path(__file__).resolve().parents[2] / "testdata" / "dockerfiles" / "negative"
CASES = ["empty", "comments", "unknown", "broken-json", "nul", "escape"]


@pytest.mark.parametrize("name", CASES)
def test_bad_dockerfile(pybuild, tmp_path: Path, name: str) -> None:
    shutil.rmtree(pybuild.root)
    proc = pybuild("build", "-t", "x:1", "-f", str(NEGATIVE / f"{name}.Dockerfile"), str(NEGATIVE))
    expected = (NEGATIVE / f"{name}.error").read_text().strip()
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("pybuild: " + expected), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not pybuild.root.exists()  # the store was never opened
