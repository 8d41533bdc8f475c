"""The event journal (layers.events): one line per event, concurrent writers, rotation, time windows."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from layers import events

ROOT = Path(__file__).resolve().parents[2]


def _writer(root: str, n: int, tag: str) -> None:
    for i in range(n):
        events.emit(root, "container", "start", f"{tag}-{i}", name=tag, pad="x" * 2000)


def test_append_then_read_gives_typed_events_in_order(tmp_path):
    events.emit(str(tmp_path), "container", "create", "a" * 64, name="web", image="busybox")
    events.emit(str(tmp_path), "container", "die", "a" * 64, exitCode=3, skipped=None)
    got, cursor = events.read(str(tmp_path))
    assert [(e.type, e.action) for e in got] == [("container", "create"), ("container", "die")]
    assert got[1].attrs == {"exitCode": "3"}
    assert got[0].time_nano <= got[1].time_nano
    assert cursor.offset == os.path.getsize(events.journal_path(str(tmp_path)))
    assert not events.changed(str(tmp_path), cursor)
    doc = got[0].to_docker()
    assert doc["Actor"] == {"ID": "a" * 64, "Attributes": {"name": "web", "image": "busybox"}}
    assert doc["scope"] == "local" and doc["time"] == got[0].time_nano // 10**9 and doc["from"] == "busybox"


def test_read_from_an_offset_gives_only_later_events(tmp_path):
    events.emit(str(tmp_path), "image", "tag", "sha256:1", name="a")
    _, cursor = events.read(str(tmp_path))
    events.emit(str(tmp_path), "image", "untag", "sha256:1", name="a")
    assert events.changed(str(tmp_path), cursor)
    got, _ = events.read(str(tmp_path), cursor=cursor)
    assert [e.action for e in got] == ["untag"]


def test_since_and_until_bound_the_events(tmp_path):
    for i, ns in enumerate((100, 200, 300)):
        events.append(str(tmp_path), events.Event("container", f"a{i}", "id", time_nano=ns))
    got, _ = events.read(str(tmp_path), since=150, until=300)
    assert [e.action for e in got] == ["a1", "a2"]


def test_lines_never_exceed_pipe_buf(tmp_path):
    events.emit(str(tmp_path), "container", "start", "id", name="n", big="y" * 10000)
    raw = Path(events.journal_path(str(tmp_path))).read_bytes()
    assert len(raw) <= events.LINE_MAX and raw.endswith(b"\n")
    (ev,), _ = events.read(str(tmp_path))
    assert ev.attrs["name"] == "n" and len(ev.attrs["big"]) < 10000


def test_concurrent_writers_never_interleave(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), 200, f"w{k}")) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    lines = Path(events.journal_path(str(tmp_path))).read_bytes().splitlines()
    assert len(lines) == 800
    docs = [json.loads(line) for line in lines]           # every line is whole
    for k in range(4):
        ids = [d["id"] for d in docs if d["at"]["name"] == f"w{k}"]
        assert ids == [f"w{k}-{i}" for i in range(200)]    # each writer's order kept


def test_the_journal_rotates_keeping_one_old_file(tmp_path, monkeypatch):
    monkeypatch.setattr(events, "MAX_BYTES", 1000)
    for i in range(40):
        events.emit(str(tmp_path), "container", "start", f"id{i}")
    path = events.journal_path(str(tmp_path))
    assert os.path.exists(path + ".1")
    assert os.path.getsize(path) <= 1000 + events.LINE_MAX
    assert sorted(os.listdir(os.path.dirname(path))) == ["events.jsonl", "events.jsonl.1"]
    got, _ = events.read(str(tmp_path))
    ids = [int(e.actor_id[2:]) for e in got]
    assert ids == sorted(ids) and ids[-1] == 39 and 0 < len(ids) < 40


def test_a_reader_past_a_rotation_reads_the_rest_of_the_old_file_then_the_new(tmp_path):
    events.emit(str(tmp_path), "container", "a", "1")
    _, cursor = events.read(str(tmp_path))
    events.emit(str(tmp_path), "container", "b", "1")
    os.replace(events.journal_path(str(tmp_path)), events.journal_path(str(tmp_path)) + ".1")
    events.emit(str(tmp_path), "container", "c", "1")
    events.emit(str(tmp_path), "container", "d", "1")     # the new file is longer than the offset
    assert events.changed(str(tmp_path), cursor)
    got, cursor = events.read(str(tmp_path), cursor=cursor)
    assert [e.action for e in got] == ["b", "c", "d"]
    assert events.read(str(tmp_path), cursor=cursor)[0] == []


def test_an_unwritable_journal_never_raises(tmp_path):
    (tmp_path / "events").write_text("not a directory")
    assert events.emit(str(tmp_path), "container", "start", "id") is False


def test_the_journal_imports_nothing_heavy():
    code = "import sys, layers.events; print(' '.join(sorted(sys.modules)))"
    mods = set(subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True,
                              cwd=str(ROOT), env={"PYTHONPATH": str(ROOT)}).stdout.split())
    assert not mods & {"layers.store", "layers.digest", "hashlib", "subprocess", "shutil", "runner"}


def test_a_rotation_with_no_new_file_yet_reports_nothing_twice(tmp_path):
    events.emit(str(tmp_path), "container", "a", "1")
    os.replace(events.journal_path(str(tmp_path)), events.journal_path(str(tmp_path)) + ".1")
    got, cursor = events.read(str(tmp_path))
    assert [e.action for e in got] == ["a"]
    assert events.read(str(tmp_path), cursor=cursor)[0] == []
    events.emit(str(tmp_path), "container", "b", "1")
    assert [e.action for e in events.read(str(tmp_path), cursor=cursor)[0]] == ["b"]
