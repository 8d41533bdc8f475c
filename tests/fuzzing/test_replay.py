"""Every fuzz target over its seeds and over every input the fuzzer ever crashed on
(``testdata/fuzz/<target>/``): the regression suite that ``scripts/fuzz.sh`` feeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.seeds import seeds
from fuzz.targets import TARGETS

CRASHES = Path(__file__).resolve().parents[2] / "testdata" / "fuzz"


def _cases():
    for name in sorted(TARGETS):
        for i, data in enumerate(seeds(name)):
            yield pytest.param(name, data, id=f"{name}-seed{i}")
        for path in sorted((CRASHES / name).glob("*")) if (CRASHES / name).is_dir() else ():
            yield pytest.param(name, path.read_bytes(), id=f"{name}-{path.name}")


@pytest.mark.parametrize(("target", "data"), list(_cases()))
def test_target_accepts_its_input(target, data):
    TARGETS[target](data)


def test_every_target_has_seeds():
    assert all(list(seeds(name)) for name in TARGETS)
