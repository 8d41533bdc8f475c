"""State machine, records, names and ids, reconciliation after losing the state dir; the log format."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from layers.errors import AlreadyExists, InvalidInput, NotFound
from runner import state as st
from runner.errors import InvalidState
from runner.logs import LogWriter, parse_since, read_logs
from runner.ocispec import Process, Root, Spec


def _cfg(name: str, cid: str | None = None) -> st.ContainerConfig:
    return st.ContainerConfig(id=cid or st.new_id(), name=name, image="busybox", image_id="sha256:" + "a" * 64,
                              spec=Spec("1.0.2", Process(("true",)), Root("/")), created=time.time())


@pytest.fixture
def store(tmp_path):
    return st.ContainerStore(str(tmp_path / "root"), str(tmp_path / "state"))


def test_transitions_name_from_and_to():
    st.check_transition("web1", st.CREATED, st.RUNNING)
    st.check_transition("web1", st.RUNNING, st.PAUSED)
    st.check_transition("web1", st.EXITED, st.RUNNING)
    with pytest.raises(InvalidState, match="container web1: cannot go from exited to paused"):
        st.check_transition("web1", st.EXITED, st.PAUSED)
    with pytest.raises(InvalidState, match="from dead to running"):
        st.check_transition("web1", st.DEAD, st.RUNNING)
    with pytest.raises(InvalidState):
        st.check_transition("web1", st.CREATED, st.PAUSED)


def test_record_layout_and_image_root(store):
    from layers.store.roots import Roots

    cfg = store.create(_cfg("web"))
    d = store.dir(cfg.id)
    assert sorted(os.listdir(d)) == ["config.json", "state.json"]
    root = Roots(store.root).get("containers", cfg.id)
    assert root is not None and {str(x) for x in root.docs} == {cfg.image_id}
    assert oct(os.stat(d).st_mode & 0o777) == "0o700"
    assert store.read_state(cfg.id).status == st.CREATED
    assert len(cfg.id) == 64 and all(c in "0123456789abcdef" for c in cfg.id)
    store.remove(cfg.id)
    assert Roots(store.root).get("containers", cfg.id) is None


def test_names_unique_and_rename(store):
    a = store.create(_cfg("web"))
    with pytest.raises(AlreadyExists, match="'web' is already in use"):
        store.create(_cfg("web"))
    store.create(_cfg("db"))
    with pytest.raises(AlreadyExists):
        store.rename(a.id, "db")
    store.rename(a.id, "front")
    assert store.resolve("front").id == a.id
    with pytest.raises(NotFound):
        store.resolve("web")
    for bad in ("", "-x", "a/b", "x" * 200, "a" * 64):
        with pytest.raises(InvalidInput):
            st.validate_name(bad)


def test_ids_prefixes_and_ambiguity(store):
    a = store.create(_cfg("x", "ab" + "0" * 62))
    b = store.create(_cfg("y", "ac" + "0" * 62))
    assert store.resolve("ab").id == a.id
    assert store.resolve(b.id).id == b.id
    assert store.resolve(b.id[:12]).id == b.id
    with pytest.raises(InvalidInput, match="matches 2 containers"):
        store.resolve("a")
    with pytest.raises(NotFound, match="no such container: ff"):
        store.resolve("ff")


def test_resolve_many_matches_resolve_and_reads_the_records_once(store, monkeypatch):
    a = store.create(_cfg("x", "ab" + "0" * 62))
    b = store.create(_cfg("ab", "ac" + "0" * 62))         # a name that is also a prefix of a's id
    loads = []
    real = store.load_config
    monkeypatch.setattr(store, "load_config", lambda cid: loads.append(cid) or real(cid))
    refs = ["x", "ab", b.id, "ac", "a", "ff", "", a.id[:20]]
    got = store.resolve_many(refs)
    assert len(loads) == 2                                   # one read of each record for all refs
    assert [g.id if isinstance(g, st.ContainerConfig) else type(g).__name__ for g in got] == \
        [a.id, b.id, b.id, b.id, "AmbiguousId", "ContainerNotFound", "InvalidInput", a.id]
    for ref, g in zip(refs, got):                            # the same answers, one ref at a time
        if isinstance(g, st.ContainerConfig):
            assert store.resolve(ref).id == g.id
        else:
            with pytest.raises(type(g), match=str(g)):
                store.resolve(ref)
    loads.clear()
    assert store.resolve(a.id).id == a.id and loads == [a.id]   # a full id: its own record only
    with pytest.raises(NotFound, match="no such container: " + "f" * 64):
        store.resolve("f" * 64)


def test_lost_state_dir_reads_as_exited(store):
    cfg = store.create(_cfg("web"))
    store.move(cfg.id, cfg.name, st.RUNNING, pid=os.getpid(), started_at=time.time())
    store.write_shim(cfg.id, os.getpid())          # a live "shim"
    assert store.status(cfg.id).status == st.RUNNING
    shutil.rmtree(store.state_dir)                 # reboot: /run is gone
    s = store.status(cfg.id)
    assert s.status == st.EXITED and s.exit_code == 255 and s.pid == 0


def test_dead_shim_pid_reused_is_not_alive(store):
    cfg = store.create(_cfg("web"))
    store.move(cfg.id, cfg.name, st.RUNNING, pid=1)
    os.makedirs(store.live_dir(cfg.id))
    with open(os.path.join(store.live_dir(cfg.id), "shim.json"), "w") as f:
        json.dump({"pid": 1, "start": 12345}, f)   # pid 1 exists, but started at another time
    assert store.shim_pid(cfg.id) is None
    assert store.status(cfg.id).status == st.EXITED


def test_log_lines_streams_and_time(tmp_path):
    path = str(tmp_path / "c.log")
    w = LogWriter(path)
    w.write("stdout", b"hel")
    w.write("stdout", b"lo\nwor")
    w.write("stderr", b"oops\n")
    w.close()
    lines = [json.loads(x) for x in open(path, "rb")]
    assert [(x["stream"], x["log"]) for x in lines] == [("stdout", "hello\n"), ("stderr", "oops\n"), ("stdout", "wor")]
    assert all(x["time"].endswith("Z") and len(x["time"]) == 30 for x in lines)


def test_log_long_line_is_cut(tmp_path):
    path = str(tmp_path / "c.log")
    w = LogWriter(path)
    w.write("stdout", b"x" * 40000 + b"\n")
    w.close()
    sizes = [len(json.loads(x)["log"]) for x in open(path, "rb")]
    assert sizes == [16384, 16384, 40000 - 32768 + 1]


def test_log_rotation_caps_size(tmp_path):
    path = str(tmp_path / "c.log")
    w = LogWriter(path, max_size=4096, max_files=3)
    for i in range(1000):
        w.write("stdout", f"line {i}\n".encode())
    w.close()
    files = sorted(os.listdir(tmp_path))
    assert files == ["c.log", "c.log.1", "c.log.2"]
    assert all(os.path.getsize(tmp_path / f) <= 4096 for f in files)
    texts = [e.text for e in read_logs(path)]
    assert texts[-1] == "line 999\n"
    nums = [int(t.split()[1]) for t in texts]
    assert nums == list(range(nums[0], 1000))      # contiguous across the rotated files, oldest first
    assert [e.text for e in read_logs(path, tail=2)] == ["line 998\n", "line 999\n"]


def test_since_parsing():
    now = 1_000_000.0
    assert parse_since("10m", now) == now - 600
    assert parse_since("1h30m", now) == now - 5400
    assert parse_since("1500000000", now) == 1500000000.0
    assert parse_since("2026-01-01T00:00:00Z", now) == 1767225600.0
    with pytest.raises(InvalidInput, match="--since"):
        parse_since("yesterday", now)


def test_ps_and_logs_stay_light(tmp_path):
    """``pybuild ps``/``logs`` must not import pyroute2, httpx or cryptography (nor the sandbox)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pybuild.cli import cli\n"
        f"cli.main(args=['--root', {str(tmp_path / 'r')!r}, '--state-dir', {str(tmp_path / 's')!r}, 'ps', '-a'],"
        " standalone_mode=False)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pyroute2', 'httpx', 'cryptography')"
        " or m in ('runner.sandbox', 'runner.network'))\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out, out


def test_follow_across_rotation(tmp_path):
    import threading

    path = str(tmp_path / "c.log")
    w = LogWriter(path, max_size=2048, max_files=2)
    w.write("stdout", b"before\n")
    done = threading.Event()

    def writer():
        time.sleep(0.2)
        for i in range(300):                 # several rotations while the reader follows
            w.write("stdout", f"n{i}\n".encode())
            time.sleep(0.001)
        w.close()
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    got = [e.text for e in read_logs(path, follow=True, alive=lambda: not done.is_set(), poll=0.01)]
    t.join()
    assert got[0] == "before\n" and got[-1] == "n299\n"
    assert [int(x[1:]) for x in got[1:]] == list(range(300))     # none lost, none twice


def test_follow_reader_that_slept_through_two_rotations_loses_nothing(tmp_path):
    """The generator reads only when pulled: pause it while the writer rotates twice (A -> .1, then
    B -> .1 with A unlinked). The file between (B) is then at .1 and must still be read, in order."""
    path = str(tmp_path / "c.log")
    w = LogWriter(path, max_size=1024, max_files=2)
    w.write("stdout", b"a0\n")
    closed: list[bool] = []
    follow = read_logs(path, follow=True, alive=lambda: not closed, poll=0.01)
    assert next(follow).text == "a0\n"                 # the reader now holds file A
    inodes = {os.stat(path).st_ino}
    n = 1
    while len(inodes) < 3:                             # A, B, and now C: two rotations
        w.write("stdout", f"a{n}\n".encode())
        inodes.add(os.stat(path).st_ino)
        n += 1
    w.write("stdout", f"a{n}\n".encode())
    w.close()
    closed.append(True)
    assert [e.text for e in follow] == [f"a{k}\n" for k in range(1, n + 1)]


def test_killed_create_and_remove_leave_no_root(store):
    """What a killed create (``.<id>.creating``) or rm (``.<id>.removing``) left is collected with its
    image root, so a dead record never pins its image."""
    from layers.store.roots import Roots

    roots = Roots(store.root)
    for leftover in ("creating", "removing"):
        cid = st.new_id()
        roots.put("containers", cid, docs=[])
        os.makedirs(os.path.join(store.base, f".{cid}.{leftover}"))
        store.create(_cfg(f"next-{leftover}"))      # collects a killed create
        store.collect_half_removed()                # collects a killed rm
        assert roots.get("containers", cid) is None, leftover
        assert not os.path.exists(os.path.join(store.base, f".{cid}.{leftover}"))
