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


_BOOKKEEPING = ("leases", "locks")  # a lease or lock taken and given back: no content of the store


def _tree(root: Path) -> list[tuple[str, int, int, int]]:
    """Every path of the store with mode, size and mtime; lease and lock files (and the mtimes of the
    directories that hold them) are left out."""
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if rel.parts[0] in _BOOKKEEPING or p.name.endswith(".lock"):
            continue
        st = p.lstat()
        holds_locks = p.is_dir() and any(c.name.endswith(".lock") for c in p.iterdir())
        out.append((str(rel), st.st_mode, st.st_size, 0 if holds_locks else st.st_mtime_ns))
    return out


def test_errors_found_while_planning_leave_an_existing_store_unchanged(bpybuild, tmp_path: Path) -> None:
    """Errors only the planner sees (a missing COPY source after hashed ones, ``${X:?}``, a base image
    that is not there, an unknown --target) and every negative case: located, non-zero, and not one
    file of the store created, changed or touched."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("a\n")
    cases = {
        "late-missing": "FROM busybox\nCOPY a.txt /\nRUN true\nCOPY missing.txt /\n",
        "unset": "FROM busybox\nCOPY a.txt /\nARG V\nWORKDIR /w\nENV X=${V:?is required here}\n",
        "no-base": "FROM busybox\nCOPY a.txt /\nFROM localhost:1/none/here:1\n",
        "bad-from-image": "FROM busybox\nCOPY --from=localhost:1/none/img:1 /x /\n",
    }
    expected = {
        "late-missing": "pybuild: Dockerfile:4: COPY: missing.txt: not found in the build context",
        "unset": "pybuild: Dockerfile:5: ENV: V: is required here",
        "no-base": "pybuild: Dockerfile:3: FROM: localhost:1/none/here:1:",
        "bad-from-image": "pybuild: Dockerfile:2: COPY: localhost:1/none/img:1:",
    }
    before = _tree(bpybuild.root)
    env = {"PYBUILD_INSECURE_REGISTRIES": "localhost:1"}
    for name, text in cases.items():
        (ctx / "Dockerfile").write_text(text)
        proc = bpybuild("build", "-t", "x:1", str(ctx), env=env)
        assert proc.returncode != 0 and expected[name] in proc.stderr, (name, proc.stderr)
        assert "Traceback" not in proc.stderr
    (ctx / "Dockerfile").write_text("FROM busybox AS one\nCOPY a.txt /\n")
    proc = bpybuild("build", "--target", "nope", "-t", "x:1", str(ctx))
    assert proc.returncode != 0 and "target stage 'nope' could not be found" in proc.stderr
    for dockerfile in sorted(NEGATIVE.glob("*.Dockerfile")):
        proc = bpybuild("build", "-t", "x:1", "-f", str(dockerfile), str(NEGATIVE))
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert _tree(bpybuild.root) == before
