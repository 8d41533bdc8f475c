"""Detached containers in the real sandbox, driven through the real ``pybuild`` command.

Containers are recorded from a busybox root directory (see conftest ``Lab``) and then handled only
with ``pybuild start/ps/logs/exec/stop/kill/pause/rm/...``; the store-backed ``run -d`` path has its
own tests in test_run_detached.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request

import pytest

from .conftest import free_port, process_alive, wait_for

IGNORE_TERM = "trap '' TERM; echo ready; while true; do sleep 0.1; done"


def _cgroup_dirs(cid: str) -> list[str]:
    out = []
    for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        for dirpath, dirnames, _ in os.walk(base):
            out += [os.path.join(dirpath, d) for d in dirnames if cid in d]
            if dirpath.count("/") > 6:
                dirnames[:] = []
    return out


def test_httpd_serves_after_cli_is_gone(lifecycle):
    port = free_port()
    cid = lifecycle.run("web", ["httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/etc"], network="host")
    body = wait_for(lambda: _get(f"http://127.0.0.1:{port}/passwd"), what="httpd")
    assert b"root:" in body
    # no pybuild process is left: only the shim (own session, not our child) and the container
    shim = lifecycle.store.shim_pid(cid)
    assert shim and os.getsid(shim) != os.getsid(0) and os.getsid(shim) != shim  # setsid, then forked again
    ps = lifecycle.pybuild("ps", "--format", "json", check=True).stdout.splitlines()
    row = json.loads(ps[0])
    assert (row["Names"], row["State"]) == ("web", "running") and row["ID"] == cid
    assert lifecycle.pybuild("ps", "-q", check=True).stdout.split() == [cid[:12]]
    doc = lifecycle.inspect("web")
    assert doc["State"]["Status"] == "running" and doc["State"]["Pid"] > 0
    # `pybuild inspect` (the image command) falls back to containers
    assert json.loads(lifecycle.pybuild("inspect", "--type", "container", "web", check=True).stdout)[0]["Id"] == cid
    assert doc["State"]["StartedAt"].endswith("Z") and doc["Id"] == cid
    top = lifecycle.pybuild("top", "web", check=True).stdout.splitlines()
    assert top[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"] and len(top) == 2
    uid, pid, _ppid, c, stime, tty, cputime, cmd = top[1].split(None, 7)
    assert (uid, int(pid), tty) == ("root", doc["State"]["Pid"], "?") and cmd.startswith("httpd -f -p ")
    assert c.isdigit() and re.fullmatch(r"\d\d:\d\d", stime) and re.fullmatch(r"\d\d:\d\d:\d\d", cputime)
    assert lifecycle.pybuild("top", "web", "-ef", check=True).stdout.splitlines()[0] == top[0]
    bad = lifecycle.pybuild("top", "web", "aux")
    assert bad.returncode != 0 and "not supported" in bad.stderr and len(bad.stderr.splitlines()) == 1
    stats = lifecycle.pybuild("stats", "--no-stream", "--format", "json", "web", check=True).stdout
    assert json.loads(stats)["PIDs"] >= 1
    bad = lifecycle.pybuild("stats", "--no-stream", "web", "nosuch")
    assert bad.returncode == 1 and bad.stderr.strip() == "pybuild: no such container: nosuch"
    t0 = time.monotonic()
    lifecycle.pybuild("stop", "-t", "1", "web", check=True)
    assert time.monotonic() - t0 < 4          # httpd as PID 1 has no SIGTERM handler: SIGKILL after 1 s
    assert not _get(f"http://127.0.0.1:{port}/passwd")
    assert lifecycle.pybuild("ps", "-q", check=True).stdout.strip() == ""
    assert lifecycle.pybuild("ps", "-a", "-q", "--filter", "status=exited", check=True).stdout.split() == [cid[:12]]


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.read()
    except OSError:
        return None


def test_stop_kills_pid1_that_ignores_sigterm(lifecycle):
    cid = lifecycle.run("stubborn", ["sh", "-c", IGNORE_TERM])
    wait_for(lambda: "ready" in lifecycle.pybuild("logs", "stubborn").stdout, what="ready")
    pid = lifecycle.state(cid).pid
    t0 = time.monotonic()
    lifecycle.pybuild("stop", "-t", "1", "stubborn", check=True)
    took = time.monotonic() - t0
    assert 0.9 <= took < 4, took
    s = lifecycle.state(cid)
    assert s.status == "exited" and s.exit_code == 137 and not process_alive(pid)
    r = lifecycle.pybuild("kill", "stubborn")
    assert r.returncode != 0 and "container stubborn is not running" in r.stderr
    r = lifecycle.pybuild("pause", "stubborn")
    assert r.returncode != 0 and "is not running" in r.stderr


def test_logs_follow_tail_timestamps(lifecycle):
    lifecycle.run("talker", ["sh", "-c", "for i in 1 2 3; do echo line$i; done; echo oops >&2; "
                                         "sleep 1; echo late; sleep 0.3"])
    wait_for(lambda: "line3" in lifecycle.pybuild("logs", "talker").stdout, what="first lines")
    follow = subprocess.Popen([lifecycle.pybuild_exe, "--root", str(lifecycle.pybuild.root), "--state-dir",
                               str(lifecycle.pybuild.state), "logs", "-f", "talker"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = follow.communicate(timeout=20)      # ends by itself when the container exits
    assert out.splitlines() == ["line1", "line2", "line3", "late"]
    assert err == "oops\n"
    r = lifecycle.pybuild("logs", "--tail", "1", "-t", "talker", check=True)
    ts, text = r.stdout.strip().split(" ", 1)
    assert text == "late" and ts.endswith("Z") and ts[4] == "-"
    assert lifecycle.pybuild("logs", "--since", "1h", "talker", check=True).stdout.count("line") == 3
    assert lifecycle.pybuild("wait", "talker", check=True).stdout.strip() == "0"


def test_stats_of_several_containers_sample_each_one(lifecycle):
    lifecycle.run("busy", ["sh", "-c", "while :; do :; done"])
    lifecycle.run("idle", ["sleep", "1000"])
    lifecycle.run("gone", ["true"])
    wait_for(lambda: lifecycle.inspect("gone")["State"]["Status"] == "exited", what="gone exits")
    rows = [json.loads(line) for line in
            lifecycle.pybuild("stats", "--no-stream", "--format", "json", "busy", "idle", "gone",
                              check=True).stdout.splitlines()]
    assert [r["Name"] for r in rows] == ["busy", "idle", "gone"]
    assert rows[0]["CPUPerc"] > 30 and rows[1]["CPUPerc"] < 10      # one window, each its own cgroup
    assert rows[0]["PIDs"] == rows[1]["PIDs"] == 1 and rows[0]["MemUsage"] > 0
    assert (rows[2]["CPUPerc"], rows[2]["PIDs"], rows[2]["MemUsage"]) == (0, 0, 0)
    listed = lifecycle.pybuild("stats", "--no-stream", "--format", "json", check=True).stdout.splitlines()
    assert sorted(json.loads(line)["Name"] for line in listed) == ["busy", "idle"]   # running ones only
    with open("/proc/meminfo") as f:
        host = int(next(line for line in f if line.startswith("MemTotal:")).split()[1]) * 1024
    assert rows[1]["MemLimit"] == host and rows[2]["MemLimit"] == 0     # no memory limit: the host's
    table = lifecycle.pybuild("stats", "--no-stream", "idle", check=True).stdout.splitlines()
    assert re.split(r"\s{2,}", table[0]) == ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %",
                                              "NET I/O", "BLOCK I/O", "PIDS"]
    size = r"[\d.]+[kMGT]?B"
    row = re.split(r"\s{2,}", table[1])
    assert row[1] == "idle" and re.fullmatch(rf"[\d.]+(Ki|Mi|Gi)?B / [\d.]+(Ki|Mi|Gi)B", row[3])
    assert re.fullmatch(r"\d+\.\d\d%", row[4]) and row[7] == "1"
    assert all(re.fullmatch(rf"{size} / {size}", v) for v in row[5:7]), row


def test_stats_memory_leaves_out_the_page_cache(lifecycle):
    """The page cache of a file the container wrote is not its memory use (Docker subtracts inactive_file)."""
    lifecycle.run("cache", ["sh", "-c", "dd if=/dev/zero of=/big bs=1M count=64 2>/dev/null && touch /done && sleep 1000"])
    wait_for(lambda: lifecycle.pybuild("exec", "cache", "test", "-e", "/done").returncode == 0, timeout=60,
             what="the 64 MiB write")
    (cache,) = [json.loads(line) for line in lifecycle.pybuild("stats", "--no-stream", "--format", "json", "cache",
                                                               check=True).stdout.splitlines()]
    assert 0 < cache["MemUsage"] < 32 << 20, cache


def test_exec_pause_unpause_kill(lifecycle):
    cid = lifecycle.run("box", ["sh", "-c", "echo $$ > /tmp/pid1; sleep 1000"])
    wait_for(lambda: lifecycle.pybuild("exec", "box", "cat", "/tmp/pid1").stdout.strip() == "1", what="exec")
    r = lifecycle.pybuild("exec", "-e", "X=42", "-w", "/etc", "box", "sh", "-c", "echo $X $(pwd) $(hostname); exit 3")
    assert r.returncode == 3 and r.stdout.split() == ["42", "/etc", cid[:12]]
    r = lifecycle.pybuild("exec", "-i", "box", "sh", "-c", "tr a-z A-Z", input="piped\n")
    assert r.returncode == 0 and r.stdout == "PIPED\n"
    r = lifecycle.pybuild("exec", "-t", "box", "sh", "-c", "test -t 0 && echo tty")
    assert r.returncode == 0 and r.stdout.strip() == "tty"
    r = lifecycle.pybuild("exec", "-u", "65534:65534", "box", "id")
    assert r.stdout.startswith("uid=65534") and "gid=65534" in r.stdout
    r = lifecycle.pybuild("exec", "-u", "nobody", "box", "id", "-u")
    assert r.returncode == 0 and r.stdout.strip() == "65534"
    r = lifecycle.pybuild("exec", "-u", "ghost", "box", "id")
    assert r.returncode != 0 and "unable to find user ghost" in r.stderr
    r = lifecycle.pybuild("exec", "box", "/no/such/thing")
    assert r.returncode == 127
    # same namespaces: the exec'd process sees the container's PID 1 as pid 1
    assert lifecycle.pybuild("exec", "box", "cat", "/proc/1/cmdline").stdout.startswith("sleep")  # sh exec()s its last command
    lifecycle.pybuild("pause", "box", check=True)
    assert lifecycle.inspect("box")["State"]["Status"] == "paused"
    r = lifecycle.pybuild("exec", "box", "true")
    assert r.returncode != 0 and "paused" in r.stderr
    lifecycle.pybuild("unpause", "box", check=True)
    assert lifecycle.inspect("box")["State"]["Status"] == "running"
    lifecycle.pybuild("kill", "-s", "KILL", "box", check=True)
    assert lifecycle.pybuild("wait", "box", check=True).stdout.strip() == "137"
    r = lifecycle.pybuild("kill", "-s", "NOPE", "box")
    assert r.returncode != 0 and "invalid signal" in r.stderr


def test_rename_start_restart_rm(lifecycle):
    cid = lifecycle.create("one", ["sh", "-c", "echo started; sleep 1000"])
    assert lifecycle.inspect("one")["State"]["Status"] == "created"
    lifecycle.pybuild("rename", "one", "two", check=True)
    r = lifecycle.pybuild("start", "one")
    assert r.returncode != 0 and "no such container: one" in r.stderr
    lifecycle.pybuild("start", cid[:8], check=True)
    r = lifecycle.pybuild("start", "two")
    assert r.returncode != 0 and "already running" in r.stderr
    r = lifecycle.pybuild("rm", "two")
    assert r.returncode != 0 and "stop it first or use rm -f" in r.stderr
    pid = lifecycle.state(cid).pid
    lifecycle.pybuild("restart", "-t", "1", "two", check=True)
    s = lifecycle.state(cid)
    assert s.status == "running" and s.pid != pid
    lifecycle.pybuild("rm", "-f", "two", check=True)
    assert lifecycle.pybuild("ps", "-a", "-q").stdout.strip() == ""
    assert not os.path.exists(lifecycle.store.dir(cid))


def test_many_containers_leave_nothing_behind(lifecycle):
    seen = []
    for i in range(10):                      # one after the other: start, stop, rm
        cid = lifecycle.run(f"loop{i}", ["sleep", "1000"])
        seen += [cid, lifecycle.state(cid).pid, lifecycle.store.shim_pid(cid)]
        lifecycle.pybuild("stop", "-t", "0", cid, check=True)
        lifecycle.pybuild("rm", cid, check=True)
    for cid, pid, shim in zip(seen[::3], seen[1::3], seen[2::3]):
        wait_for(lambda: not process_alive(pid) and not process_alive(shim), what="loop processes gone")
        assert _cgroup_dirs(cid) == []
    ids = []
    for i in range(12):                      # and many at once
        ids.append(lifecycle.run(f"c{i}", ["sleep", "1000"]))
    pids = [lifecycle.state(c).pid for c in ids]
    shims = [lifecycle.store.shim_pid(c) for c in ids]
    assert all(process_alive(p) for p in pids + shims)
    r = lifecycle.pybuild("rm", "-f", *[f"c{i}" for i in range(12)], check=True)
    assert len(r.stdout.split()) == 12
    wait_for(lambda: not any(process_alive(p) for p in pids + shims), what="processes gone")
    with open("/proc/self/mounts") as f:
        assert str(lifecycle.pybuild.root) not in f.read()
    for c in ids:
        assert _cgroup_dirs(c) == []
    assert lifecycle.pybuild("ps", "-a", "-q").stdout.strip() == ""


def test_lost_state_dir_then_rm_and_start(lifecycle):
    import shutil

    a = lifecycle.run("keep", ["sh", "-c", "echo run; sleep 1000"])
    b = lifecycle.create("later", ["true"])
    # the first run's line is logged before the kill (a SIGKILLed shim loses what it had not read yet)
    wait_for(lambda: lifecycle.pybuild("logs", "keep").stdout.count("run") == 1, what="first run")
    # a reboot-like loss: the processes and /run are gone, the records under the root stay
    shim, pid = lifecycle.store.shim_pid(a), lifecycle.state(a).pid
    os.kill(shim, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not process_alive(pid), what="container gone")
    with open("/proc/self/mounts") as f:
        mounted = [line.split()[1] for line in f
                   if str(lifecycle.pybuild.root) in line or str(lifecycle.pybuild.state) in line]
    from runner.syscalls import MNT_DETACH, umount2

    for m in mounted:                       # a reboot unmounts everything
        umount2(m, MNT_DETACH)
    shutil.rmtree(lifecycle.pybuild.state)
    out = lifecycle.pybuild("ps", "-a", "--format", "json", check=True).stdout.splitlines()
    states = {json.loads(x)["Names"]: json.loads(x)["State"] for x in out}
    assert states == {"keep": "exited", "later": "created"}
    lifecycle.pybuild("start", "keep", check=True)
    wait_for(lambda: lifecycle.pybuild("logs", "keep").stdout.count("run") == 2, what="second run")
    lifecycle.pybuild("rm", "-f", "keep", "later", check=True)
    assert lifecycle.pybuild("ps", "-a", "-q").stdout.strip() == ""


def test_start_killed_mid_way_leaves_a_usable_container(lifecycle):
    """SECURITY.md case 22 / moby#15397: SIGKILL the CLI while it starts a container."""
    cid = lifecycle.create("victim", ["sh", "-c", "echo alive; sleep 1000"])
    proc = subprocess.Popen([lifecycle.pybuild_exe, "--root", str(lifecycle.pybuild.root), "--state-dir",
                             str(lifecycle.pybuild.state), "start", "victim"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # until its shim records itself, the CLI holds the container (shim.json names it)
    wait_for(lambda: lifecycle.store.shim_pid(cid) not in (None, proc.pid), what="shim started")
    proc.kill()
    proc.wait()
    wait_for(lambda: lifecycle.state(cid).status == "running", what="container running")
    assert "alive" in wait_for(lambda: lifecycle.pybuild("logs", "victim").stdout, what="logs")
    assert lifecycle.pybuild("ps", "-q").stdout.split() == [cid[:12]]
    lifecycle.pybuild("stop", "-t", "1", "victim", check=True)
    lifecycle.pybuild("rm", "victim", check=True)
    assert lifecycle.pybuild("ps", "-a", "-q").stdout.strip() == ""


def test_detached_tty_is_logged(lifecycle):
    cid = lifecycle.run("term", ["sh", "-c", "test -t 1 && echo on-a-tty; sleep 0.2"], tty=True)
    assert lifecycle.pybuild("wait", "term", check=True).stdout.strip() == "0"
    assert lifecycle.pybuild("logs", "term", check=True).stdout.replace("\r", "") == "on-a-tty\n"
    assert lifecycle.inspect("term")["Config"]["Tty"] is True


def test_stop_paused_filters_attach_prune(lifecycle):
    a = lifecycle.run("frozen", ["sleep", "1000"])
    lifecycle.pybuild("pause", "frozen", check=True)
    r = lifecycle.pybuild("pause", "frozen")
    assert r.returncode != 0 and "already paused" in r.stderr
    lifecycle.pybuild("stop", "-t", "1", "frozen", check=True)       # a frozen task is thawed to die
    assert lifecycle.state(a).status == "exited"
    b = lifecycle.run("chatty", ["sh", "-c", "head -c 3000 /dev/zero >/blob; sleep 0.5; echo from-attach; exit 5"])
    r = lifecycle.pybuild("attach", "chatty")
    assert r.returncode == 5 and r.stdout == "from-attach\n"
    fresh = lifecycle.create("fresh", ["true"])
    q = lambda *f: lifecycle.pybuild("ps", "-a", "-q", *f, check=True).stdout.split()  # noqa: E731
    assert q("--filter", "name=chat") == [b[:12]]
    assert q("--filter", "exited=5") == [b[:12]]
    assert sorted(q("--filter", "status=exited")) == sorted([a[:12], b[:12]])
    assert len(q("--filter", "status=created")) == 1
    latest = lambda *f: lifecycle.pybuild("ps", "-q", *f, check=True).stdout.split()  # noqa: E731
    assert latest("-l") == [fresh[:12]] and latest("-n", "2") == [fresh[:12], b[:12]]
    assert latest("-n", "1", "--filter", "exited=5") == [b[:12]]
    table = lifecycle.pybuild("ps", "-a", "-s", "--filter", "name=chat", check=True).stdout.splitlines()
    assert table[0].split()[-1] == "SIZE" and re.search(r"\b3(\.\d+)?kB \(virtual [\d.]+[kM]B\)$", table[1])
    sized = lifecycle.pybuild("ps", "-a", "--format", "{{.Names}} {{.Size}}", "-f", "name=chat", check=True).stdout
    assert re.fullmatch(r"chatty 3(\.\d+)?kB \(virtual [\d.]+[kM]B\)\n", sized)     # {{.Size}} measures too
    r = lifecycle.pybuild("ps", "--filter", "colour=red")
    assert r.returncode != 0 and "invalid filter" in r.stderr
    running = lifecycle.run("runner", ["sleep", "1000"])
    out = lifecycle.pybuild("container", "prune", "-f", check=True).stdout.splitlines()
    assert out[0] == "Deleted Containers:" and out[-2] == "" and out[-1].startswith("Total reclaimed space: ")
    assert sorted(out[1:-2]) == sorted([a, b, fresh])
    assert re.fullmatch(r"Total reclaimed space: 3(\.\d+)?kB", out[-1])   # chatty's blob
    assert lifecycle.pybuild("ps", "-a", "-q", check=True).stdout.split() == [running[:12]]


def test_start_attach_sees_the_first_line(lifecycle):
    lifecycle.create("quick", ["sh", "-c", "echo first; echo second >&2; exit 4"])
    r = lifecycle.pybuild("start", "-a", "quick")
    assert (r.returncode, r.stdout, r.stderr) == (4, "first\n", "second\n")
    r = lifecycle.pybuild("start", "-a", "quick")          # a second run shows only its own output
    assert (r.returncode, r.stdout) == (4, "first\n")


def test_killed_shim_leaves_a_stoppable_container(lifecycle):
    cid = lifecycle.run("orphan", ["sleep", "1000"])
    pid = lifecycle.state(cid).pid
    os.kill(lifecycle.store.shim_pid(cid), signal.SIGKILL)
    wait_for(lambda: lifecycle.store.shim_pid(cid) is None, what="shim gone")
    assert process_alive(pid)
    assert lifecycle.inspect("orphan")["State"]["Status"] == "running"     # still there, and says so
    t0 = time.monotonic()
    lifecycle.pybuild("stop", "-t", "1", "orphan", check=True)
    assert time.monotonic() - t0 < 5 and not process_alive(pid)
    assert lifecycle.inspect("orphan")["State"]["Status"] == "exited"
    lifecycle.pybuild("rm", "orphan", check=True)
    with open("/proc/self/mounts") as f:
        assert str(lifecycle.pybuild.root) not in f.read()
    assert _cgroup_dirs(cid) == []


def test_container_of_a_killed_shim_that_then_exits_is_reaped(lifecycle):
    """The shim is SIGKILLed, then the container ends on its own: nobody saw the exit. The next
    pybuild command frees its overlay and cgroup and settles the record as exited (255)."""
    cid = lifecycle.run("lonely", ["sleep", "1000"])
    pid = lifecycle.state(cid).pid
    os.kill(lifecycle.store.shim_pid(cid), signal.SIGKILL)
    wait_for(lambda: lifecycle.store.shim_pid(cid) is None, what="shim gone")
    assert lifecycle.inspect("lonely")["State"]["Status"] == "running"   # PID 1 lives: left alone
    assert _cgroup_dirs(cid)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not process_alive(pid), what="container gone")
    with open("/proc/self/mounts") as f:
        assert str(lifecycle.pybuild.root) in f.read()           # the overlay the shim mounted is left
    row = json.loads(lifecycle.pybuild("ps", "-a", "--format", "json", check=True).stdout)
    assert (row["State"], row["ExitCode"]) == ("exited", 255)
    with open("/proc/self/mounts") as f:
        assert str(lifecycle.pybuild.root) not in f.read()
    assert _cgroup_dirs(cid) == [] and not os.path.exists(os.path.join(lifecycle.store.live_dir(cid), "shim.json"))
    assert lifecycle.store.read_state(cid).status == "exited"     # settled on disk, not only displayed
    lifecycle.pybuild("start", "lonely", check=True)              # and it can run again
    assert lifecycle.state(cid).status == "running"
