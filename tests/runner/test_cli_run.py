"""``pybuild run`` (foreground, ``--rm`` and plain) and ``pybuild bundle`` through the real command.

The image is the shared busybox rootfs imported with ``pybuild import``. Kernel features are real;
``runc`` (Debian's) is the peer for the bundle interop test.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

IMG = "rb/busybox:1"
DOCKER_CAPS = "00000000a80425fb"


def _exe() -> str:
    return str(Path(sys.executable).with_name("pybuild"))


@pytest.fixture
def image(pybuild, busybox_tar):
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, mounts and cgroups")
    pybuild("import", str(busybox_tar), IMG, check=True)
    yield IMG
    for cid in pybuild("ps", "-a", "-q", "--no-trunc").stdout.split():
        pybuild("rm", "-f", cid)


def run(pybuild, *args: str, **kw) -> subprocess.CompletedProcess:
    return pybuild("run", "--rm", "--network", "none", *args, **kw)


def test_echo_hi_and_exit_codes(pybuild, image) -> None:
    r = run(pybuild, image, "echo", "hi")
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr
    assert run(pybuild, image, "sh", "-c", "exit 7").returncode == 7
    r = run(pybuild, image, "no-such-cmd")
    assert r.returncode == 127 and r.stderr.startswith("pybuild: exec 'no-such-cmd'") and r.stderr.count("\n") == 1
    assert pybuild("ps", "-a", "-q").stdout == ""          # --rm left no record


def test_inside_the_container(pybuild, image) -> None:
    script = ("echo pid=$$; hostname; grep CapEff /proc/self/status; "
              "echo keys=$(cat /proc/keys | wc -c) timers=$(cat /proc/timer_list | wc -c); "
              "echo x > /proc/sys/kernel/hostname && echo WROTE; mkdir -p /mnt; mount -t tmpfs t /mnt && echo MOUNTED; "
              "unshare -r true && echo UNSHARED; true")
    r = run(pybuild, "--hostname", "web-1", image, "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == ["pid=1", "web-1", f"CapEff:\t{DOCKER_CAPS}"]
    assert "keys=0 timers=0" in r.stdout
    assert not {"WROTE", "MOUNTED", "UNSHARED"} & set(lines)


def test_options_reach_the_process(pybuild, image, tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("FROM_FILE=1\n")
    (tmp_path / "host").mkdir()
    (tmp_path / "host" / "f").write_text("hostdata\n")
    r = run(pybuild, "-e", "A=b", "--env-file", str(env_file), "-u", "nobody", "-w", "/work", "--read-only",
            "--tmpfs", "/scratch", "-v", f"{tmp_path / 'host'}:/h:ro", "--cap-drop", "ALL", image,
            "sh", "-c", "echo $A $FROM_FILE; id -u; pwd; cat /h/f; touch /x || echo RO; touch /scratch/y && echo TMP; "
                        "grep CapBnd /proc/self/status")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["b 1", "65534", "/work", "hostdata", "RO", "TMP", "CapBnd:\t0000000000000000"]


def test_entrypoint_override(pybuild, image) -> None:
    r = run(pybuild, "--entrypoint", "echo", image, "a", "b")
    assert r.stdout == "a b\n"


def test_pids_limit_and_memory(pybuild, image) -> None:
    r = run(pybuild, "--pids-limit", "30", image, "sh", "-c",
            "b() { b | b & }; b 2>/dev/null; sleep 1; ls /proc | grep -c '^[0-9]'")
    assert r.returncode == 0 and 1 < int(r.stdout) <= 30
    r = pybuild("run", "--network", "none", "--name", "hog", "--memory", "32m", image, "tail", "/dev/zero")
    assert r.returncode == 137
    state = json.loads(pybuild("inspect", "hog", check=True).stdout)
    state = state[0] if isinstance(state, list) else state
    assert state["State"]["OOMKilled"] is True and state["State"]["ExitCode"] == 137
    assert pybuild("rm", "hog").returncode == 0


def test_stdin_only_with_i(pybuild, image) -> None:
    assert run(pybuild, "-i", image, "cat", input="piped\n").stdout == "piped\n"
    assert run(pybuild, image, "cat", input="ignored\n").stdout == ""


def test_tty_is_a_real_pty(pybuild, image) -> None:
    pid, master = pty.fork()
    if pid == 0:
        os.execv(_exe(), [_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state), "run", "--rm",
                          "-it", "--network", "none", image, "sh", "-c", "tty; echo term=$TERM; read x; echo got=$x"])
    os.write(master, b"typed\r")
    out = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(master)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "/dev/pts/0" in text and "term=xterm" in text and "got=typed" in text


# the launcher's signal state reaches ``pybuild`` over fork and execve (see test_sandbox._INHERITED)
_INHERITED = {
    "as-given": "pass",
    "sigterm-blocked": "signal.signal(signal.SIGTERM, signal.SIG_DFL); "
                       "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})",
    "sigterm-ignored": "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM}); "
                       "signal.signal(signal.SIGTERM, signal.SIG_IGN)",
}


@pytest.mark.parametrize("inherited", list(_INHERITED))
def test_signals_reach_the_container(pybuild, image, inherited: str) -> None:
    argv = [_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state), "run", "--rm",
            "--network", "none", image, "sh", "-c", "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done"]
    launcher = f"import os, signal; {_INHERITED[inherited]}; os.execv({argv[0]!r}, {argv!r})"
    proc = subprocess.Popen([sys.executable, "-c", launcher], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready and proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 42
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# a launcher that ignores SIGCHLD (the kernel then reaps children at once: waitpid fails), blocks
# SIGCHLD and SIGTERM and ignores SIGHUP; all of it survives execve into pybuild
HOSTILE_LAUNCHER = ("import os, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); "
                    "signal.signal(signal.SIGHUP, signal.SIG_IGN); "
                    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, signal.SIGTERM}); "
                    "os.execv(sys.argv[1], sys.argv[1:])")


def test_exit_code_and_signal_state_with_sigchld_ignored_by_the_launcher(pybuild, image) -> None:
    argv = [_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state), "run", "--rm", "--network",
            "none", image, "sh", "-c", "grep -E '^Sig(Blk|Ign)' /proc/self/status; exit 7"]
    r = subprocess.run([sys.executable, "-c", HOSTILE_LAUNCHER, *argv], capture_output=True, text=True, timeout=60)
    assert r.returncode == 7, r.stderr
    assert r.stdout.split() == ["SigBlk:", "0000000000000000", "SigIgn:", "0000000000000000"]


def test_plain_run_keeps_an_exited_record(pybuild, image) -> None:
    r = pybuild("run", "--network", "none", "--name", "keep", image, "sh", "-c", "exit 3")
    assert r.returncode == 3
    assert "keep" in pybuild("ps", "-a").stdout
    assert pybuild("rm", "keep").returncode == 0


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [p for p in (line.split()[4] for line in f) if p.startswith(str(path))]


def test_twenty_cli_runs_leave_nothing(pybuild, image, tmp_path: Path) -> None:
    for i in range(20):
        r = run(pybuild, image, "sh", "-c", f"sleep 100 & echo {i}")
        assert r.stdout == f"{i}\n", r.stderr
    assert _mounts_under(tmp_path) == []
    assert pybuild("ps", "-a", "-q").stdout == ""
    assert not os.listdir(pybuild.root / "containers") or os.listdir(pybuild.root / "containers") == [".lock"]


def _cgroup_dirs(cid: str) -> list[str]:
    out = []
    for hierarchy in os.listdir("/sys/fs/cgroup"):
        for candidate in (os.path.join("/sys/fs/cgroup", hierarchy, "pybuild", cid),
                          os.path.join("/sys/fs/cgroup", "pybuild", cid)):
            if os.path.isdir(candidate):
                out.append(candidate)
    return sorted(set(out))


def _cgroup_procs(cid: str) -> list[str]:
    """Pids still in the container's cgroups (none when it has no cgroup yet or any more)."""
    pids = []
    for d in _cgroup_dirs(cid):
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids += f.read().split()
        except FileNotFoundError:
            continue
    return pids


def _wait_until(condition, what: str, timeout: float = 10) -> None:
    """Poll ``condition`` until it holds; fail the test with ``what`` if it does not within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _records(pybuild) -> list[str]:
    base = pybuild.root / "containers"
    return sorted(n for n in os.listdir(base) if len(n) == 64) if base.is_dir() else []


def _start_foreground(pybuild, *args: str) -> subprocess.Popen:
    return subprocess.Popen([_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state), "run",
                             "--network", "none", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


@pytest.mark.parametrize("rm", [True, False], ids=["rm", "keep"])
def test_sigkilled_foreground_run_is_cleaned_up_by_the_next_pybuild(pybuild, image, tmp_path: Path, rm: bool) -> None:
    """"Nothing leaks" with the CLI SIGKILLed: the container dies with it (pdeathsig), and the next
    pybuild that touches containers frees the overlay, the cgroup and, with --rm, the record."""
    proc = _start_foreground(pybuild, *(["--rm"] if rm else []), image, "sh", "-c", "echo up; exec sleep 1000")
    try:
        assert proc.stdout.readline() == b"up\n"
        [cid] = _records(pybuild)
        state = pybuild.root / "containers" / cid / "state.json"
        # recorded just after the sandbox reports the exec
        _wait_until(lambda: json.loads(state.read_text())["status"] == "running", "the record never said running")
        pid1 = json.loads(state.read_text())["pid"]
        assert _mounts_under(tmp_path) and _cgroup_dirs(cid)
    finally:
        proc.kill()
        proc.wait()
    _wait_until(lambda: not os.path.exists(f"/proc/{pid1}"), "the container outlived its pybuild")
    assert _mounts_under(tmp_path) and _cgroup_dirs(cid)   # ... and left its overlay and cgroup
    listed = pybuild("ps", "-a", "--format", "json", check=True).stdout.splitlines()
    assert _mounts_under(tmp_path) == [] and _cgroup_dirs(cid) == []
    if rm:
        assert listed == [] and _records(pybuild) == []
    else:
        row = json.loads(listed[0])
        assert (row["ID"], row["State"], row["ExitCode"]) == (cid, "exited", 255)
        assert pybuild("rm", cid).returncode == 0
    assert not os.path.exists(pybuild.state / cid)


def test_foreground_run_killed_at_any_moment_leaves_nothing_once_reaped(pybuild, image, tmp_path: Path) -> None:
    """SIGKILL at spread-out moments of a `run --rm` (record, mount, sandbox start, running, exit):
    whatever the moment, one `ps -a` later nothing is left."""
    for delay in (0.0, 0.03, 0.06, 0.09, 0.12, 0.15, 0.2, 0.3):
        proc = _start_foreground(pybuild, "--rm", image, "sh", "-c", "echo up; exec sleep 1000")
        time.sleep(delay)            # the moment of the kill is what varies, not an order of events
        proc.kill()
        proc.wait()
        ids = _records(pybuild)
        # the container (if it started) dies with its pybuild: its cgroups (if any) empty
        _wait_until(lambda: not any(_cgroup_procs(cid) for cid in ids), f"a container outlived its pybuild ({delay})")
        assert pybuild("ps", "-a", "-q", check=True).stdout == "", delay
        assert _records(pybuild) == [] and _mounts_under(tmp_path) == [], delay
        assert all(_cgroup_dirs(cid) == [] for cid in ids), delay


def test_inspect_says_whether_seccomp_applies(pybuild, image) -> None:
    """Issue 4: the filter where libseccomp is available, and `inspect` says when it is not (tested by
    hiding the library in a private mount namespace: the dynamic loader then fails to load it)."""
    pybuild("create", "--name", "plain", "--network", "none", image, "true", check=True)
    pybuild("create", "--name", "priv", "--privileged", "--network", "none", image, "true", check=True)
    host = {d["Name"]: d["HostConfig"] for d in json.loads(pybuild("container", "inspect", "plain", "priv",
                                                                   check=True).stdout)}
    assert (host["/plain"]["SecurityOpt"], host["/plain"]["Privileged"]) == (["seccomp=default"], False)
    assert (host["/priv"]["SecurityOpt"], host["/priv"]["Privileged"]) == (["seccomp=unconfined"], True)
    r = run(pybuild, image, "grep", "^Seccomp:", "/proc/self/status", check=True)
    assert r.stdout.split() == ["Seccomp:", "2"]
    from runner import seccomp

    if shutil.which("unshare") is None or not seccomp.available():
        pytest.skip("needs unshare(1) and libseccomp to hide it")
    with open("/proc/self/maps") as f:
        lib = next(line.split()[-1] for line in f if "libseccomp" in line)
    base = [_exe(), "--root", str(pybuild.root), "--state-dir", str(pybuild.state)]
    script = (f"mount --bind /dev/null {lib} && {' '.join(base)} container inspect plain && "
              f"{' '.join(base)} run --rm --network none {image} grep ^Seccomp: /proc/self/status")
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    doc, _, tail = r.stdout.rpartition("]")
    assert json.loads(doc + "]")[0]["HostConfig"]["SecurityOpt"] == ["seccomp=unavailable (libseccomp.so.2 not found)"]
    assert tail.split() == ["Seccomp:", "0"]


def test_bundle_runs_under_runc(pybuild, image, tmp_path: Path) -> None:
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed (apt-get install runc)")
    bundle = tmp_path / "bundle"
    r = pybuild("bundle", image, str(bundle), "sh", "-c", "echo from-runc; grep CapEff /proc/self/status; hostname")
    assert r.returncode == 0, r.stderr
    spec = json.loads((bundle / "config.json").read_text())
    assert spec["root"]["path"] == "rootfs" and (bundle / "rootfs" / "bin" / "busybox").exists()
    cid = f"pybuild-bundle-{os.getpid()}"
    state = tmp_path / "runc-state"
    try:
        out = subprocess.run([runc, "--root", str(state), "run", "--bundle", str(bundle), cid],
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    finally:
        subprocess.run([runc, "--root", str(state), "delete", "-f", cid], capture_output=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["from-runc", f"CapEff:\t{DOCKER_CAPS}", "bundle"]
