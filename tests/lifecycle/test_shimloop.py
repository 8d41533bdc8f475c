"""The shim's resident loop (runner/shimloop.py): its JSON, its exit record and its log lines are the
same bytes the full code writes; the loop is what supervises a plain detached container, imports
no more than it says, and hands a run back for the restart policy."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from layers import events
from runner import containers as C
from runner import records
from runner import shimloop, shimrecord
from runner import state as st
from runner.logfile import LogWriter, rfc3339
from runner.ocispec import Process, Root, Spec

from .conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]


def _host(store, name: str, script: str, **kw) -> st.ContainerConfig:
    cfg = st.ContainerConfig(id=st.new_id(), name=name, image="host", image_id="sha256:" + "0" * 64,
                             spec=Spec("1.0.2", Process(("/bin/sh", "-c", script), env=("PATH=/usr/bin:/bin",)),
                                       Root("/")),
                             created=time.time(), launcher="host", **kw)
    return C.create(store, cfg)


def test_json_is_the_json_modules():
    docs = [{"b": 1, "a": [1.5, None, True, "é\u2028\"\\"], "c": {"z": -3, "y": 1e300}}, [], "x", 0.1 + 0.2]
    for doc in docs:
        assert shimrecord.dumps(doc) == json.dumps(doc, separators=(",", ":"))
        assert shimrecord.dumps(doc, sort_keys=True) == json.dumps(doc, separators=(",", ":"), sort_keys=True)
        assert shimrecord.loads(json.dumps(doc, indent=2)) == doc
    for bad in ("{", '{"a": 1} x', ""):
        try:
            shimrecord.loads(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} parsed")


def test_state_keys_and_times_are_the_records():
    assert shimrecord.STATE_KEYS == {f.name for f in dataclasses.fields(records.ContainerState)}
    assert records.rfc3339 is rfc3339          # one definition, the log writer's (no record types in the loop)
    assert [rfc3339(ts) for ts in (None, 0.0, 1.9999999999, 1700000000.25)] == [
        "0001-01-01T00:00:00Z", "1970-01-01T00:00:00.000000000Z", "1970-01-01T00:00:02.000000000Z",
        "2023-11-14T22:13:20.250000000Z"]


def test_log_lines_are_json_dumps(tmp_path):
    w = LogWriter(str(tmp_path / "log"))
    w.write("stderr", 'tab\t "q" \\ \x01 \u2028 é\n'.encode() + b"\xff bad\n" + b"x" * 20000)
    w.close()
    lines = (tmp_path / "log").read_bytes().splitlines(keepends=True)
    assert len(lines) == 4
    for line in lines:
        assert json.dumps(json.loads(line), ensure_ascii=False).encode() + b"\n" == line


def test_record_exit_writes_what_move_writes(tmp_path):
    store = st.ContainerStore(str(tmp_path / "a" / "root"), str(tmp_path / "a" / "state"))
    cfg = _host(store, "rec", "true", labels={"k": "v", "name": "label-first"})
    health = records.Health().after(records.HealthResult(1700000000.6, 1700000000.7, 0, "ok\n"), records.HealthConfig(
        ("CMD", "true")), 1700000000.5)
    store.move(cfg.id, cfg.name, st.RUNNING, pid=4242, started_at=1700000000.5, shim_pid=4241, health=health)
    shutil.copytree(tmp_path / "a", tmp_path / "b", symlinks=True)
    other = st.ContainerStore(str(tmp_path / "b" / "root"), str(tmp_path / "b" / "state"))
    finished = 1700000001.123456789
    store.move(cfg.id, cfg.name, st.EXITED, pid=0, exit_code=137, finished_at=finished, oom_killed=True,
               health=health.stopped())
    assert shimrecord.record_exit(other.root, cfg.id, 137, finished, True)
    state = "containers/" + cfg.id + "/state.json"
    assert (tmp_path / "a" / "root" / state).read_bytes() == (tmp_path / "b" / "root" / state).read_bytes()

    def journal(root):
        return [(e.action, e.actor_id, e.attributes) for e in events.read(root)[0]][-2:]
    assert journal(store.root) == journal(other.root)
    assert [a for a, _, _ in journal(other.root)] == ["oom", "die"]
    # not running any more: left to the full shim, nothing written
    before = (tmp_path / "b" / "root" / state).read_bytes()
    assert not shimrecord.record_exit(other.root, cfg.id, 1, finished + 1, False)
    assert (tmp_path / "b" / "root" / state).read_bytes() == before
    assert not shimrecord.record_exit(other.root, "0" * 64, 1, finished, False)     # no such container


def test_the_loop_imports_little():
    code = ("import sys; sys.path.insert(0, sys.argv[1]); before = set(sys.modules); import runner.shimloop; "
            "print(' '.join(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(ROOT)], capture_output=True, text=True,
                         check=True).stdout.split()
    # no _json (an extension module on Debian's Python), no __future__, no record code (runner.shimrecord
    # is loaded at the exit): a running loop is the interpreter, os (frozen), select and these two modules
    assert set(out) <= {"runner", "runner.shimloop", "runner.logfile", "select", "os", "os.path", "stat", "_stat",
                        "posixpath", "genericpath", "_collections_abc"}, out


def _maps(pid: int) -> set[str]:
    with open(f"/proc/{pid}/maps") as f:
        rows = [line.split(None, 5) for line in f]
    return {row[5].strip() for row in rows if len(row) == 6 and row[5].startswith("/")}


def _status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def test_a_running_loop_holds_little_more_than_a_bare_interpreter(tmp_path):
    """Issue 18's guard against the loop's memory growing back: the shim of a running container that
    logs maps no file that a bare ``python -I -S`` does not map (no extension module such as ``_json``,
    no locale file), and its private memory (RssAnon) stays within 160 KiB of that bare interpreter's
    (today ~110 KiB; the loop before this guard held ~200-240 KiB more, and importing ``json``,
    ``socket`` or ``ctypes`` costs 0.5-2.6 MiB)."""
    store = st.ContainerStore(str(tmp_path / "root"), str(tmp_path / "state"))
    cfg = _host(store, "mem", "i=0; while [ $i -lt 300 ]; do echo tick $i; i=$((i+1)); sleep 0.05; done")
    C.start(store, "mem")
    try:
        shim = store.shim_pid(cfg.id)
        wait_for(lambda: b"runner.shimloop" in Path(f"/proc/{shim}/cmdline").read_bytes(), what="the shim loop")
        log = tmp_path / "root" / "containers" / cfg.id / "container.log"
        wait_for(lambda: log.exists() and log.read_bytes().count(b"\n") >= 20, what="the loop copying the log")
        bare = subprocess.Popen([sys.executable, "-I", "-S", "-c", "import os; os.write(1, b'.'); os.read(0, 1)"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            assert bare.stdout.read(1) == b"."
            loop_maps, bare_maps = _maps(shim), _maps(bare.pid)
            loop_anon, bare_anon = _status_kib(shim, "RssAnon"), _status_kib(bare.pid, "RssAnon")
        finally:
            bare.communicate(b".")
        assert loop_maps <= bare_maps, loop_maps - bare_maps
        assert loop_anon - bare_anon <= 160, (loop_anon, bare_anon)
        assert store.status(cfg.id).status == st.RUNNING
        assert b"tick 19" in log.read_bytes()
    finally:
        C.remove(store, "mem", force=True)


def test_a_plain_detached_container_runs_under_the_loop_and_comes_back_to_restart(tmp_path):
    store = st.ContainerStore(str(tmp_path / "root"), str(tmp_path / "state"))
    cfg = _host(store, "loop", "echo run; sleep 1; exit 2", restart_policy="on-failure:1")
    C.start(store, "loop")
    shim = store.shim_pid(cfg.id)
    wait_for(lambda: b"runner.shimloop" in Path(f"/proc/{shim}/cmdline").read_bytes(), what="the shim loop")
    assert C.wait(store, "loop", timeout=20) == 2
    s = store.status(cfg.id)
    assert s.restart_count == 1 and s.status == st.EXITED and store.shim_pid(cfg.id) is None
    runs = [line for line in (tmp_path / "root" / "containers" / cfg.id / "container.log").read_text().splitlines()]
    assert len(runs) == 2
    assert [e.action for e in events.read(store.root)[0] if e.actor_id == cfg.id].count("die") == 2
