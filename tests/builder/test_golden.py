"""Golden files: every ``testdata/dockerfiles/<case>/Dockerfile`` parses and plans to the JSON beside it;
every ``negative/<name>.Dockerfile`` fails with the message in ``<name>.error`` (SECURITY.md case 25).

Regenerate the expected files after a deliberate change with ``PYBUILD_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from builder.context import BuildContext
from builder.dockerignore import load_ignore
from builder.errors import DockerfileError
from builder.parse import parse_file
from builder.plan import BaseImage, PlanOptions, plan

CASES = Path(__file__).resolve().parents[2] / "testdata" / "dockerfiles"
UPDATE = os.environ.get("PYBUILD_UPDATE_GOLDEN") == "1"
BUILD_ARGS = {"args": (("FLAVOUR", "spicy"), ("HTTP_PROXY", "http://proxy:3128"), ("UNUSED", "x"))}


class FixedResolver:
    """Base images stand in by name (no store needed for a pure planner test)."""

    def base(self, image: str, platform: str) -> BaseImage:
        digest = "sha256:" + hashlib.sha256(image.encode()).hexdigest()
        return BaseImage(key=digest, env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",))


def _plan_case(case: Path) -> dict:
    dockerfile = case / "Dockerfile"
    df = parse_file(str(dockerfile))
    ctx = BuildContext(str(case), load_ignore(str(case), str(dockerfile)))
    p = plan(df, PlanOptions(build_args=BUILD_ARGS.get(case.name, ())), FixedResolver(), ctx)
    return {"instructions": df.to_list(), "plan": p.to_dict()}


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if (p / "Dockerfile").exists()))
def test_golden(case: str) -> None:
    got = _plan_case(CASES / case)
    expected_path = CASES / case / "expected.json"
    if UPDATE:
        expected_path.write_text(json.dumps(got, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    assert expected_path.exists(), f"{expected_path} is missing (write it with PYBUILD_UPDATE_GOLDEN=1 and review it)"
    assert got == json.loads(expected_path.read_text())


@pytest.mark.parametrize("name", sorted(p.stem for p in (CASES / "negative").glob("*.Dockerfile")))
def test_negative(name: str) -> None:
    path = CASES / "negative" / f"{name}.Dockerfile"
    expected = (CASES / "negative" / f"{name}.error").read_text().strip()
    with pytest.raises(DockerfileError) as info:
        df = parse_file(str(path))
        plan(df, PlanOptions(), FixedResolver(), BuildContext(str(CASES / "negative")))
    assert str(info.value).startswith(expected), str(info.value)
    assert info.value.exit_code != 0


def test_golden_keys_follow_inputs(tmp_path: Path) -> None:
    """Changing one COPYed file changes that COPY's key and everything after, nothing before."""
    (tmp_path / "a").write_text("1")
    (tmp_path / "b").write_text("1")
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo x\nCOPY a /a\nRUN echo y\nCOPY b /b\n")

    def keys():
        df = parse_file(str(tmp_path / "Dockerfile"))
        return [v.key for v in plan(df, PlanOptions(), FixedResolver(), BuildContext(str(tmp_path))).stages[0].vertices]

    before = keys()
    (tmp_path / "b").write_text("2")
    after = keys()
    assert before[:3] == after[:3] and before[3] != after[3]
    (tmp_path / "Dockerfile").write_text("FROM busybox\n\n\nRUN echo x\nCOPY a /a\nRUN echo y\nCOPY b /b\n")
    assert keys() == after  # line numbers are not part of a key


def test_onbuild_triggers_of_a_base_image_run_first(tmp_path: Path) -> None:
    class WithTriggers(FixedResolver):
        def base(self, image: str, platform: str) -> BaseImage:
            return BaseImage(key="sha256:" + "1" * 64, onbuild=("RUN echo triggered", "ENV T=1"))

    (tmp_path / "Dockerfile").write_text("\nFROM parent\nRUN echo $T\n")
    df = parse_file(str(tmp_path / "Dockerfile"))
    vertices = plan(df, PlanOptions(), WithTriggers(), BuildContext(str(tmp_path))).stages[0].vertices
    assert [v.instruction.source for v in vertices] == ["RUN echo triggered", "ENV T=1", "RUN echo $T"]
    assert vertices[0].instruction.location.line == 2 and dict(vertices[2].run_env)["T"] == "1"


def test_missing_base_image_is_located(tmp_path: Path) -> None:
    from builder.errors import BuildError
    from layers.errors import NotFound

    class Empty:
        def base(self, image: str, platform: str) -> BaseImage:
            raise NotFound(f"image {image!r} not found")

    (tmp_path / "Dockerfile").write_text("ARG V=3\nFROM alpine:$V\n")
    with pytest.raises(BuildError, match=r"^Dockerfile:2: FROM: alpine:3: image 'alpine:3' not found"):
        plan(parse_file(str(tmp_path / "Dockerfile")), PlanOptions(), Empty(), BuildContext(str(tmp_path)))


def test_target_prunes_and_build_args_reach_run_env(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM a AS one\nFROM b AS two\nARG X\nARG Y=d\nRUN echo\nFROM one AS three\nCOPY --from=two / /\n")
    df = parse_file(str(tmp_path / "Dockerfile"))
    p = plan(df, PlanOptions(target="two", build_args=(("X", "1"), ("HTTP_PROXY", "p"))), FixedResolver(),
             BuildContext(str(tmp_path)))
    assert p.order == (1,) and p.target == 1
    env = dict(p.stages[1].vertices[2].run_env)
    assert env["X"] == "1" and env["Y"] == "d" and env["HTTP_PROXY"] == "p"
    full = plan(df, PlanOptions(), FixedResolver(), BuildContext(str(tmp_path)))
    assert full.order == (0, 1, 2) and full.stages[2].deps == frozenset({0, 1})
