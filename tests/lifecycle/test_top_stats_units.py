"""The pieces of ``top`` and ``stats`` that need no container: ``ps -ef`` wording of a process,
Docker's tabwriter layout, and the block I/O and memory counters of both cgroup versions (the kernel's
files written into a temporary directory: the machine has one cgroup version only); and the CPU
sampling window of ``stats``, the last test with a container."""

from __future__ import annotations

import os
import time

from pybuild.template import Template
from pybuild.views.contexts import STATS_TABLE, STATS_TITLES, StatsFields
from pybuild.views.processes import TOP_HEAD, tabwriter, top_row
from pybuild.views.stats import stats_table
from runner.cgroupview import Window, _block_io, _memory, _net_io, _read
from runner.listing import Stats
from runner.procinfo import Process, processes


def _proc(**kw) -> Process:
    now = time.time()
    base = dict(uid=0, pid=42, ppid=1, state="S", tty_nr=0, cpu_seconds=3.0, started=now - 60, cmd="sleep 9")
    return Process(**{**base, **kw})


def test_top_row_words_as_ps_ef():
    now = time.time()
    row = top_row(_proc(started=now - 60, cpu_seconds=30.0), now)
    assert row[:4] == ("root", "42", "1", "50") and row[4] == time.strftime("%H:%M", time.localtime(now - 60))
    assert row[5:] == ("?", "00:00:30", "sleep 9")
    assert top_row(_proc(tty_nr=(136 << 8) | 3, cpu_seconds=90061.0, started=now - 200000), now)[5:7] == \
        ("pts/3", "1-01:01:01")
    assert top_row(_proc(state="Z", cmd="[sh]"), now)[-1] == "[sh] <defunct>"
    assert top_row(_proc(uid=54321), now)[0] == "54321"                    # no such user: the number


def test_tabwriter_pads_all_but_the_last_column():
    lines = tabwriter([TOP_HEAD, ("root", "1", "0", "0", "10:00", "?", "00:00:00", "a long command")])
    assert lines[0].startswith("UID" + " " * 17 + "PID") and lines[0].endswith("TIME" + " " * 16 + "CMD")
    assert lines[1].endswith("00:00:00" + " " * 12 + "a long command")


def test_processes_of_this_process_are_read_from_proc():
    (me,) = [p for p in processes(os.getpid()) if p.pid == os.getpid()]
    assert me.uid == os.getuid() and me.ppid == os.getppid() and me.state in "RS"
    assert me.started <= time.time() and ("python" in me.cmd or "pytest" in me.cmd)


def test_block_io_of_v1_and_v2(tmp_path):
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    v1.mkdir(), v2.mkdir()
    (v1 / "blkio.throttle.io_service_bytes").write_text(
        "8:0 Read 4096\n8:0 Write 100\n8:0 Sync 1\n8:0 Total 4196\n8:16 Read 4\nTotal 4200\n")
    (v2 / "io.stat").write_text("8:0 rbytes=10 wbytes=20 rios=1 wios=2\n8:16 rbytes=1 wbytes=2 dbytes=0\n")
    assert _block_io({"blkio": str(v1)}) == (4100, 100)
    assert _block_io({"": str(v2)}) == (11, 22)
    assert _block_io({"": str(tmp_path / "missing")}) == (0, 0)


def test_net_io_of_the_host_network_is_zero():
    assert _net_io(os.getpid()) == (0, 0) == _net_io(1)


def test_memory_usage_leaves_out_inactive_page_cache_as_docker(tmp_path):
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    v1.mkdir(), v2.mkdir()
    (v1 / "memory.usage_in_bytes").write_text("100000000\n")
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (v1 / "memory.stat").write_text("cache 90000000\ninactive_file 5\ntotal_inactive_file 60000000\n")
    (v2 / "memory.current").write_text("50000000\n")
    (v2 / "memory.max").write_text("67108864\n")
    (v2 / "memory.stat").write_text("anon 1000\nfile 40000000\ninactive_file 30000000\n")
    assert _memory({"memory": str(v1)}) == (40000000, 0)
    assert _memory({"": str(v2)}) == (20000000, 67108864)
    (v2 / "memory.stat").write_text("inactive_file 60000000\n")           # never below zero
    assert _memory({"": str(v2)}) == (50000000, 67108864)
    assert _memory({}) == (0, 0)


def test_stats_table_is_what_the_template_engine_prints():
    samples = [Stats("a" * 64, "web", 12.3456, 1536, 8 << 30, 3, 1234, 5_000_000, 0, 2_500_000_000),
               Stats("b" * 64, "a-much-longer-container-name", 0.0, 0, 0, 0),
               Stats("c" * 64, "x", 250.0, 3 << 30, 4 << 30, 1024, 999, 1000, 10**13, 1)]
    engine = Template("table", STATS_TABLE)
    for rows in (samples, samples[:1], []):
        assert stats_table(rows) == engine.lines([StatsFields(s) for s in rows], STATS_TITLES)
    assert stats_table(samples)[1].split()[:3] == ["aaaaaaaaaaaa", "web", "12.35%"]


def test_kernel_files_are_read_whole(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"x" * 200_000)
    assert _read(str(big)) == b"x" * 200_000
    assert _read(str(tmp_path / "missing")) is None
    stat = _read("/proc/stat")
    assert stat.startswith(b"cpu ") and stat.endswith(b"\n")


def test_window_waits_only_for_what_is_left_of_it():
    """Work done between opening and closing the window counts toward its interval; a pid that is
    gone reads None."""
    gone = os.fork()
    if gone == 0:
        os._exit(0)
    os.waitpid(gone, 0)
    w = Window(0.3)
    w.add([os.getpid(), gone])
    time.sleep(0.35)                                        # the caller's work, longer than the window
    t1 = time.monotonic()
    mine, dead = w.close()
    assert time.monotonic() - t1 < 0.2 and dead is None and mine.pids >= 1
    t0 = time.monotonic()
    w = Window(0.3)
    w.add([os.getpid()])
    w.close()
    assert time.monotonic() - t0 >= 0.3 and w.early_hits == 0   # this process is no container


def test_window_samples_every_container_when_opened(lifecycle):
    """The first sample is taken before the containers are known (the records are read inside the
    window); a container's PID 1 added later keeps it, and its CPU % is its own."""
    cid = lifecycle.run("spin", ["sh", "-c", "while :; do :; done"])
    pid = lifecycle.state(cid).pid
    w = Window(0.3)
    time.sleep(0.1)                                         # the records being read
    w.add([pid])
    (u,) = w.close()
    assert w.early_hits == 1 and u.pids == 1 and 10 < u.cpu_percent <= 105, u
