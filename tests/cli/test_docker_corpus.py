"""Docker's CLI reference, replayed against the real ``pybuild`` binary.

``testdata/docker-cli-corpus/corpus.json`` holds invocations from the reference
(docs.docker.com/reference/cli/docker/...), with ``docker`` standing for the tool, and the shapes
the reference documents: exit code, a regex of the output, one id per line, JSON keys, a tar.
They run in order on one store (busybox imported as ``busybox``, ``nginx`` and ``ubuntu``; the
seed walk-through's busybox httpd image built as ``test:latest``), so each entry may rely on the
ones before it. ``unsupported.txt`` (missing features) and ``pending.txt`` (features being built)
name the invocations left out; ``bench/cli_corpus.py`` replays all of them through pybuild and podman.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, pybuild_exe

CORPUS_DIR = ROOT / "testdata" / "docker-cli-corpus"


def _bench():
    spec = importlib.util.spec_from_file_location("cli_corpus", ROOT / "bench" / "cli_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


corpus = _bench()


def _listed(name: str) -> dict[str, str]:
    """``invocation -> reason`` of a list file (``#`` comments and blank lines ignored)."""
    lines = (ln for ln in (CORPUS_DIR / name).read_text().splitlines() if ln.strip() and not ln.startswith("#"))
    return dict(ln.split("\t", 1) for ln in lines)


ENTRIES = corpus.load_corpus()
LEFT_OUT = {**_listed("unsupported.txt"), **_listed("pending.txt")}
REPLAYED = [(i, e) for i, e in enumerate(ENTRIES) if e.id not in LEFT_OUT]


@pytest.fixture(scope="module")
def session(busybox_tar, tmp_path_factory):
    """One store for the whole corpus; every container and the test network are removed after it."""
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, mounts and cgroups")
    work = tmp_path_factory.mktemp("docker-corpus")
    prefix = [pybuild_exe(), "--root", str(work / "root"), "--state-dir", str(work / "state")]
    s = corpus.Session(prefix, corpus.prepare(work, busybox_tar))
    yield s
    corpus._cleanup(s)


def test_corpus_is_docker_reference_and_lists_name_its_entries():
    assert len(ENTRIES) >= 150
    assert all(e.cmd.startswith("docker ") and e.ref.startswith("https://docs.docker.com/reference/cli/docker/")
               for e in ENTRIES)
    ids = {e.id for e in ENTRIES}
    assert sorted(set(LEFT_OUT) - ids) == []
    # an invocation typed twice in the corpus is listed once per occurrence, so leaving out a
    # failing one never silently drops a working one with the same words
    lines = [ln.split("\t", 1)[0] for name in ("unsupported.txt", "pending.txt")
             for ln in (CORPUS_DIR / name).read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert {i: lines.count(i) for i in LEFT_OUT} == {i: [e.id for e in ENTRIES].count(i) for i in LEFT_OUT}
    assert not set(_listed("unsupported.txt")) & set(_listed("pending.txt"))


def test_checks_refuse_other_shapes():
    """The shape checks fail on output that is not the documented one."""
    E = corpus.Entry
    assert corpus.check(E("docker x", exit=0), 1, b"", b"boom").startswith("exit 1")
    assert corpus.check(E("docker x", lines="[0-9a-f]{12}"), 0, b"abc\n", b"") is not None
    assert corpus.check(E("docker x", lines="[0-9a-f]{12}"), 0, b"", b"") is not None
    assert corpus.check(E("docker x", json=("Id",)), 0, b'[{"id": 1}]', b"") is not None
    assert corpus.check(E("docker x", jsonl=("ID",)), 0, b'{"ID": 1}\nnot json\n', b"") is not None
    assert corpus.check(E("docker x", tar="bin/sh"), 0, b"not a tar", b"") is not None
    assert corpus.check(E("docker x", out="^a$"), 0, b"b\na\n", b"") is None


@pytest.mark.parametrize("index,entry", REPLAYED, ids=[f"{i:03d} {e.id}" for i, e in REPLAYED])
def test_invocation(session, index, entry):
    why = corpus.run_entry(session, entry)
    assert why is None, f"{entry.cmd}\n  ({entry.ref})\n  {why}"
