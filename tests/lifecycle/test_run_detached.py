"""``pybuild run -d`` / ``create`` / ``start -a`` end to end with an imported busybox image."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import pytest

from .conftest import free_port, process_alive, wait_for


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.read()
    except OSError:
        return None


def _exe() -> str:
    import sys
    from pathlib import Path

    return str(Path(sys.executable).with_name("pybuild"))


def test_run_d_returns_id_and_serves_after_cli_sigkill(pybuild, image):
    port = free_port()
    t0 = time.monotonic()
    r = pybuild("run", "-d", "--name", "web", "--network", "host", image,
                "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/etc", check=True)
    assert re.fullmatch(r"[0-9a-f]{64}\n", r.stdout) and time.monotonic() - t0 < 10
    assert b"root:" in wait_for(lambda: _get(f"http://127.0.0.1:{port}/passwd"), what="httpd")
    # a second one, with the CLI SIGKILLed while it runs
    port2 = free_port()
    proc = subprocess.Popen([_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state), "run", "-d",
                             "--name", "web2", "--network", "host", image, "httpd", "-f", "-p",
                             f"127.0.0.1:{port2}", "-h", "/etc"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    def shims() -> int:
        """Containers whose shim.json names a shim (the CLI records itself there until the shim takes over)."""
        n = 0
        for d in os.listdir(pybuild.state):
            try:
                with open(os.path.join(pybuild.state, d, "shim.json")) as f:
                    n += len(d) == 64 and json.load(f)["pid"] != proc.pid
            except (FileNotFoundError, ValueError):
                continue
        return n

    wait_for(lambda: shims() >= 2, what="second shim")
    proc.kill()
    proc.wait()
    assert b"root:" in wait_for(lambda: _get(f"http://127.0.0.1:{port2}/passwd"), what="httpd 2")
    names = {json.loads(x)["Names"] for x in pybuild("ps", "--format", "json", check=True).stdout.splitlines()}
    assert names == {"web", "web2"}
    pybuild("stop", "-t", "1", "web", "web2", check=True)
    pybuild("rm", "web", "web2", check=True)
    assert not _get(f"http://127.0.0.1:{port}/passwd") and not _get(f"http://127.0.0.1:{port2}/passwd")


def test_restart_on_failure_3(pybuild, image):
    cid = pybuild("run", "-d", "--network", "none", "--restart", "on-failure:3", image, "sh", "-c",
                  "echo try; exit 1", check=True).stdout.strip()
    assert pybuild("wait", cid, check=True, timeout=60).stdout.strip() == "1"
    doc = json.loads(pybuild("container", "inspect", cid, check=True).stdout)[0]
    assert doc["RestartCount"] == 3 and doc["State"]["Status"] == "exited" and doc["State"]["ExitCode"] == 1
    assert pybuild("logs", cid, check=True).stdout == "try\n" * 4
    time.sleep(1.0)           # and it stays exited
    assert json.loads(pybuild("container", "inspect", cid).stdout)[0]["RestartCount"] == 3


def test_rm_with_detach_and_create_start_attach(pybuild, image):
    cid = pybuild("run", "-d", "--rm", "--network", "none", image, "true", check=True).stdout.strip()
    wait_for(lambda: pybuild("ps", "-a", "-q", "--no-trunc").stdout.strip() == "", what="--rm removal")
    cid = pybuild("create", "--name", "later", "--network", "none", image, "sh", "-c", "echo hi; exit 4",
                  check=True).stdout.strip()
    assert json.loads(pybuild("container", "inspect", "later").stdout)[0]["State"]["Status"] == "created"
    r = pybuild("start", "-a", "later")
    assert r.returncode == 4 and r.stdout == "hi\n"
    r = pybuild("run", "-d", "--name", "later", "--network", "none", image, "true")
    assert r.returncode != 0 and "already in use" in r.stderr


# 100 orphans that live until the test kills them, after `sleep 1000` has replaced the shell: no
# shell can reap them then, so they are reaped by an init or stay zombies (see test_init.py)
ORPHANS = "for i in $(seq 100); do (sleep 999 &); done; exec sleep 1000"


def _top(pybuild, cid: str) -> list[tuple[int, str, str]]:
    """``(host pid, "Z" or "", command)`` from ``top``'s Docker columns (UID PID PPID C STIME TTY TIME
    CMD; a zombie's CMD ends in ``<defunct>``, as ``ps -ef`` writes it)."""
    out = []
    for r in pybuild("top", cid, check=True).stdout.splitlines()[1:]:
        cols = r.split(None, 7)
        cmd = cols[7]
        zombie = cmd.endswith(" <defunct>")
        out.append((int(cols[1]), "Z" if zombie else "", cmd.removesuffix(" <defunct>")))
    return out


def _kill_orphans_once_exec_done(pybuild, cid: str) -> None:
    def ready():
        rows = _top(pybuild, cid)
        orphans = [pid for pid, stat, cmd in rows if cmd == "sleep 999" and stat != "Z"]
        return orphans if len(orphans) == 100 and any(cmd == "sleep 1000" for _, _, cmd in rows) else None

    for pid in wait_for(ready, timeout=30, what="100 orphans and the exec of sleep 1000"):
        os.kill(pid, 9)


def test_init_reaps_100_zombies_and_sigterm_gives_143(pybuild, image):
    """SECURITY.md case 21 through `pybuild run -d --init`: zero zombies, SIGTERM forwarded, 143."""
    cid = pybuild("run", "-d", "--init", "--network", "none", image, "sh", "-c", ORPHANS,
                  check=True).stdout.strip()
    _kill_orphans_once_exec_done(pybuild, cid)
    left = wait_for(lambda: (lambda rows: rows if len(rows) == 2 else None)(_top(pybuild, cid)),
                    timeout=30, what="the init to reap 100 zombies")
    assert "Z" not in {stat for _, stat, _ in left} and "sleep 1000" in {cmd for _, _, cmd in left}, left
    # PID 1 is the init, the user's command is its child; nothing of the host (the interpreter's
    # path, the store root, the container id of the shim's command line) shows in its command line
    cmdline = pybuild("exec", cid, "cat", "/proc/1/cmdline").stdout
    assert cmdline.rstrip("\0") == "pybuild-init" and str(pybuild.root) not in cmdline
    assert pybuild("exec", cid, "cat", "/proc/1/comm").stdout == "pybuild-init\n"
    t0 = time.monotonic()
    pybuild("stop", "-t", "10", cid, check=True)
    assert time.monotonic() - t0 < 5            # SIGTERM worked: no wait for the SIGKILL
    state = json.loads(pybuild("container", "inspect", cid, check=True).stdout)[0]["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 143)


def test_without_init_the_zombies_stay_and_sigterm_does_nothing(pybuild, image):
    """The control for the test above: same workload, no --init."""
    cid = pybuild("run", "-d", "--network", "none", image, "sh", "-c", ORPHANS, check=True).stdout.strip()
    _kill_orphans_once_exec_done(pybuild, cid)
    wait_for(lambda: sum(stat == "Z" for _, stat, _ in _top(pybuild, cid)) >= 100, timeout=30, what="zombies")
    time.sleep(0.3)
    assert sum(stat == "Z" for _, stat, _ in _top(pybuild, cid)) == 100
    t0 = time.monotonic()
    pybuild("stop", "-t", "1", cid, check=True)
    assert time.monotonic() - t0 >= 0.9         # PID 1 ignored SIGTERM: SIGKILL after the timeout
    state = json.loads(pybuild("container", "inspect", cid, check=True).stdout)[0]["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)


HOSTILE_LAUNCHER = ("import os, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); "
                    "signal.signal(signal.SIGHUP, signal.SIG_IGN); "
                    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, signal.SIGTERM, signal.SIGUSR1}); "
                    "os.execv(sys.argv[1], sys.argv[1:])")


def _hostile(pybuild, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    """``pybuild ARGS`` started by a launcher with SIGCHLD ignored and signals blocked."""
    argv = [_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state), *args]
    return subprocess.run([sys.executable, "-c", HOSTILE_LAUNCHER, *argv], capture_output=True, text=True,
                          timeout=60, input=input)


def _sig_lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.startswith(("SigBlk", "SigIgn"))]


def test_inherited_signal_state_reaches_neither_shim_nor_exec(pybuild, image):
    r = _hostile(pybuild, "run", "-d", "--network", "none", image, "sleep", "1000")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    from runner.state import ContainerStore

    shim = ContainerStore(str(pybuild.root), str(pybuild.state)).shim_pid(cid)
    # the shim blocks its signals across the execve into its resident loop (held, not lost), and
    # the loop unblocks them once its handlers are in place
    wait_for(lambda: b"runner.shimloop" in open(f"/proc/{shim}/cmdline", "rb").read(), what="the shim loop")
    wait_for(lambda: "SigBlk:\t0000000000000000" in open(f"/proc/{shim}/status").read(),
             what="nothing blocked in the shim's loop")     # SIGCHLD reaches the shim's loop
    # pybuild exec waits for its command (its exit code is the command's) and the command gets a
    # clean signal state: nothing blocked, nothing ignored
    r = _hostile(pybuild, "exec", cid, "sh", "-c", "grep -E '^Sig(Blk|Ign)' /proc/self/status; exit 5")
    assert r.returncode == 5, r.stderr
    assert _sig_lines(r.stdout) == ["SigBlk: 0000000000000000", "SigIgn: 0000000000000000"]
    r = _hostile(pybuild, "exec", "-i", cid, "sh", "-c", "cat; exit 6", input="through\n")
    assert (r.returncode, r.stdout) == (6, "through\n"), r.stderr
    assert _sig_lines(pybuild("exec", cid, "cat", "/proc/1/status").stdout) == \
        ["SigBlk: 0000000000000000", "SigIgn: 0000000000000000"]
    pybuild("rm", "-f", cid, check=True)
    # the shim records the exit code of a container whose CLI had SIGCHLD ignored
    r = _hostile(pybuild, "run", "-d", "--network", "none", image, "sh", "-c", "exit 3")
    assert r.returncode == 0, r.stderr
    assert pybuild("wait", r.stdout.strip(), check=True).stdout.strip() == "3"


@pytest.mark.parametrize("rm", [True, False], ids=["rm", "keep"])
def test_run_d_killed_before_its_shim_took_over_is_reaped(pybuild, image, tmp_path, rm):
    """`run -d` SIGKILLed with the container recorded and its bridge network attached but no shim yet
    (the run-start-shim test hook): the next pybuild frees the network (netns, endpoint) and, with
    --rm, the record; without, the container stays created and starts later."""
    marker = tmp_path / "paused"
    proc = subprocess.Popen([_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state), "run", "-d",
                             *(["--rm"] if rm else []), "--name", "early", image, "sleep", "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYBUILD_TEST_PAUSE_AT="run-start-shim",
                                     PYBUILD_TEST_PAUSE_FILE=str(marker)))
    try:
        wait_for(marker.exists, timeout=30, what="the run to pause before its shim")
        netns = pybuild.state / "netns"
        [cid] = os.listdir(netns)                      # the attachment made for it
        assert cid in pybuild("network", "inspect", "pybuild", check=True).stdout
    finally:
        proc.kill()
        proc.wait()
    listed = pybuild("ps", "-a", "-q", "--no-trunc", check=True).stdout.split()
    assert not (netns / cid).exists()
    # the endpoint is gone (and with it the default network, which goes with its last endpoint)
    r = pybuild("network", "inspect", "pybuild")
    assert cid not in r.stdout and (r.returncode == 0 or "not found" in r.stderr), r.stderr
    if rm:
        assert listed == []
        return
    assert listed == [cid]
    assert json.loads(pybuild("container", "inspect", "early", check=True).stdout)[0]["State"]["Status"] == "created"
    pybuild("start", "early", check=True)
    assert pybuild("exec", "early", "true").returncode == 0


def test_image_volumes_are_anonymous_volumes_seeded_from_the_image(pybuild, busybox_tar):
    """VOLUME in the image config: a bind of the container's own volume dir, seeded from the image at
    the first start, written outside the rootfs (so even --read-only can write it), kept across a
    restart, overridden by -v, listed in inspect as a volume, and gone with rm."""
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, mounts and cgroups")
    img = "lc/volumes:1"
    pybuild("import", "-c", "VOLUME /www", "-c", "VOLUME /data", str(busybox_tar), img, check=True)
    r = pybuild("run", "--rm", "--read-only", "--network", "none", img, "sh", "-c",
                "cat /www/index.html; ls -l /www/index.html | cut -c1-10; echo x > /data/f && echo wrote; "
                "touch /nope 2>/dev/null || echo read-only-root", check=True)
    assert r.stdout.splitlines() == ["<h1>hello from busybox</h1>", "-rw-r--r--", "wrote", "read-only-root"]
    cid = pybuild("run", "-d", "--network", "none", img, "sh", "-c",
                  "echo $(cat /www/count 2>/dev/null)x > /www/count; sleep 1000", check=True).stdout.strip()
    doc = json.loads(pybuild("container", "inspect", cid, check=True).stdout)[0]
    vols = {m["Destination"]: m["Source"] for m in doc["Mounts"] if m["Type"] == "volume"}
    assert set(vols) == {"/www", "/data"}
    wait_for(lambda: os.path.exists(os.path.join(vols["/www"], "count")), what="the write in the volume")
    upper = pybuild.root / "containers" / cid / "upper"
    assert not (upper / "www").exists()                       # not in the container's rootfs
    assert os.path.exists(os.path.join(vols["/www"], "index.html"))   # seeded from the image
    pybuild("restart", "-t", "0", cid, check=True)
    assert wait_for(lambda: pybuild("exec", cid, "cat", "/www/count").stdout.strip() == "xx",
                    what="the volume kept across a restart")
    pybuild("rm", "-f", "-v", cid, check=True)
    assert not os.path.exists(vols["/www"])
    host = pybuild.root.parent / "hostdir"
    host.mkdir()
    r = pybuild("run", "--rm", "--network", "none", "-v", f"{host}:/www", img, "ls", "-A", "/www", check=True)
    assert r.stdout == ""                                     # -v replaces the image's volume


def test_fifty_run_d_and_rm_cycles_leave_nothing(pybuild, image):
    """Issue 5: 50 containers started (`run -d`) and removed (`rm -f`) in a loop leave no processes,
    mounts, cgroups, records or live state."""
    from runner.state import ContainerStore

    store = ContainerStore(str(pybuild.root), str(pybuild.state))
    seen = []
    for _ in range(50):
        cid = pybuild("run", "-d", "--network", "none", image, "sleep", "1000", check=True).stdout.strip()
        seen.append((cid, store.status(cid).pid, store.shim_pid(cid)))
        pybuild("rm", "-f", cid, check=True)
    assert all(pid and shim for _, pid, shim in seen)
    wait_for(lambda: not any(process_alive(p) for _, pid, shim in seen for p in (pid, shim)),
             what="every container and shim process gone")
    with open("/proc/self/mountinfo") as f:
        assert str(pybuild.root) not in f.read()
    cgroups = [os.path.join(base, "pybuild", cid) for base in
               [os.path.join("/sys/fs/cgroup", h) for h in os.listdir("/sys/fs/cgroup")] + ["/sys/fs/cgroup"]
               for cid, _, _ in seen]
    assert [c for c in cgroups if os.path.exists(c)] == []
    assert pybuild("ps", "-a", "-q").stdout == ""
    assert [n for n in os.listdir(pybuild.state) if len(n) == 64] == []


def test_inspect_prefers_a_container_to_an_image_id_prefix(pybuild, image):
    """Docker's order: ``inspect NAME`` is the container when one has that name, even when the name
    is also a prefix of an image id (CI once named a container "db" with an image id "db...")."""
    image_id = json.loads(pybuild("inspect", "--type", "image", image, check=True).stdout)[0]["Id"]
    prefix = image_id.removeprefix("sha256:")[:4]
    pybuild("create", "--name", prefix, image, "true", check=True)
    doc = json.loads(pybuild("inspect", prefix, check=True).stdout)[0]
    assert doc["Name"].lstrip("/") == prefix and "State" in doc
    assert json.loads(pybuild("inspect", "--type", "image", prefix, check=True).stdout)[0]["Id"] == image_id
    missing = pybuild("inspect", "nosuchthing")
    assert missing.returncode == 1 and missing.stderr.strip() == "pybuild: no such image or container: nosuchthing"
