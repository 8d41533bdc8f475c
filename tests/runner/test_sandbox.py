"""runner.sandbox on real namespaces, overlayfs and cgroups, over a busybox rootfs directory.

These call the library (``OverlayMount`` + ``make_spec`` + ``sandbox.execute``), the path the builder
uses; ``test_cli_run.py`` covers the same through the ``pybuild`` command. SECURITY.md case 20.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from pathlib import Path

import pytest

from runner import cgroups, sandbox
from runner.errors import ExecFailed, SandboxError
from runner.options import BindMount, RunOptions, TmpfsMount
from runner.rootfs import OverlayMount, resolve_in_root
from runner.spec import make_spec

DOCKER_CAPS = "00000000a80425fb"


class Box:
    """Runs one command in a fresh container over the shared busybox rootfs (as a read-only lower)."""

    def __init__(self, lowers: list[Path], tmp: Path) -> None:
        self.lowers = [str(p) for p in lowers]
        self.tmp = tmp
        self.ids: list[str] = []

    def run(self, *cmd: str, opts: RunOptions | None = None, stdin: bytes = b"") -> tuple[int, str, str]:
        opts = opts or RunOptions(network="none")
        if cmd:
            from dataclasses import replace

            opts = replace(opts, command=cmd)
        cid = "t" + secrets.token_hex(8)
        self.ids.append(cid)
        d = self.tmp / cid
        d.mkdir()
        out, err, inp = d / "out", d / "err", d / "in"
        inp.write_bytes(stdin)
        with OverlayMount(self.lowers, str(d / "upper"), str(d / "work"), str(d / "rootfs")) as root:
            spec = make_spec({"config": {"Cmd": ["sh"]}}, opts, rootfs=root,
                             etc_dir=resolve_in_root(root, "/etc"), container_id=cid)
            with open(out, "wb") as o, open(err, "wb") as e, open(inp, "rb") as i:
                code = sandbox.execute(spec, container_id=cid, stdin=i, stdout=o, stderr=e)
        return code, out.read_text(), err.read_text()


@pytest.fixture
def box(busybox_rootfs: Path, tmp_path: Path) -> Box:
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, mounts and cgroups")
    return Box([busybox_rootfs], tmp_path)


def sh(box: Box, script: str, **kw) -> tuple[int, str, str]:
    return box.run("sh", "-c", script, **kw)


def test_echo_and_exit_code(box: Box) -> None:
    assert box.run("echo", "hi")[:2] == (0, "hi\n")
    assert sh(box, "exit 7")[0] == 7
    assert sh(box, "kill -9 $$; exit 3")[0] == 3      # PID 1 cannot be killed from inside its namespace


def test_pid1_hostname_and_namespaces(box: Box) -> None:
    code, out, _ = sh(box, "echo $$; hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; readlink /proc/1/exe",
                      opts=RunOptions(network="none", hostname="ctr-host"))
    lines = out.splitlines()
    assert code == 0 and lines[0] == "1" and lines[1] == "ctr-host"
    assert lines[2].startswith("sh -c echo $$")
    assert lines[3] == "/bin/busybox"               # PID 1 is the target, not the Python that set it up


def test_security_case_20(box: Box) -> None:
    script = ("grep CapEff /proc/self/status; grep CapBnd /proc/self/status; "
              "echo keys=$(cat /proc/keys | wc -c) timers=$(cat /proc/timer_list | wc -c) fw=$(ls /sys/firmware | wc -l); "
              "echo x > /proc/sys/kernel/hostname && echo WROTE-PROC-SYS; "
              "mkdir -p /mnt; mount -t tmpfs t /mnt && echo MOUNTED; unshare -r true && echo UNSHARED; unshare -n true && echo NETNS; "
              "touch /sys/pwn && echo SYS-WRITABLE; grep NoNewPrivs /proc/self/status; grep Seccomp: /proc/self/status; "
              "mknod /tmp/sda b 8 0 && head -c1 /tmp/sda > /dev/null && echo READ-DISK; true")
    code, out, err = sh(box, script)
    assert code == 0, err
    assert f"CapEff:\t{DOCKER_CAPS}" in out and f"CapBnd:\t{DOCKER_CAPS}" in out
    assert "keys=0 timers=0 fw=0" in out
    for bad in ("WROTE-PROC-SYS", "MOUNTED", "UNSHARED", "NETNS", "SYS-WRITABLE", "READ-DISK"):
        assert bad not in out
    assert "NoNewPrivs:\t1" in out and "Seccomp:\t2" in out


def test_capabilities_options(box: Box) -> None:
    out = sh(box, "grep CapEff /proc/self/status", opts=RunOptions(network="none", cap_drop=("ALL",), cap_add=("CHOWN",)))[1]
    assert out.strip() == "CapEff:\t0000000000000001"
    out = sh(box, "grep CapEff /proc/self/status; mkdir -p /mnt; mount -t tmpfs t /mnt && echo MOUNTED",
             opts=RunOptions(network="none", privileged=True))[1]
    assert "MOUNTED" in out and DOCKER_CAPS not in out


def test_no_fd_leaks(box: Box) -> None:
    leaked = os.open("/etc/hostname", os.O_RDONLY)
    os.set_inheritable(leaked, True)
    try:
        out = sh(box, "ls /proc/self/fd | sort -n | tr '\\n' ' '")[1]
    finally:
        os.close(leaked)
    assert out.split() == ["0", "1", "2", "3"]          # 3 is ls's own directory handle


def test_user_workdir_env(box: Box) -> None:
    code, out, err = sh(box, 'id -u; id -g; pwd; echo "$FOO $HOME"; grep CapEff /proc/self/status',
                        opts=RunOptions(network="none", user="nobody", workdir="/made/here", env=("FOO=bar",)))
    assert code == 0, err
    assert out.splitlines() == ["65534", "65534", "/made/here", "bar /nonexistent", "CapEff:\t0000000000000000"]
    assert sh(box, "id -u; id -G", opts=RunOptions(network="none", user="1234:33"))[1].split() == ["1234", "33"]


def test_read_only_tmpfs_and_binds(box: Box, tmp_path: Path) -> None:
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "f").write_text("from host\n")
    opts = RunOptions(network="none", read_only=True, tmpfs=(TmpfsMount("/scratch", "size=1m"),),
                      mounts=(BindMount(str(host), "/ro", True), BindMount(str(host), "/rw")))
    code, out, err = sh(box, "touch /x && echo ROOT-WRITABLE; touch /scratch/ok && echo TMPFS-OK; cat /ro/f; "
                             "touch /ro/y && echo RO-WRITABLE; echo new > /rw/z && echo RW-OK", opts=opts)
    assert code == 0, err
    assert "ROOT-WRITABLE" not in out and "RO-WRITABLE" not in out
    assert "TMPFS-OK" in out and "from host" in out and "RW-OK" in out
    assert (host / "z").read_text() == "new\n"


def test_symlink_mount_target_stays_in_root(busybox_rootfs: Path, tmp_path: Path) -> None:
    """A layer with ``/evil -> <host dir>`` and ``-v src:/evil``: the bind lands inside the root (CVE-2019-19921)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "canary").write_text("untouched\n")
    layer = tmp_path / "evil-layer"
    layer.mkdir()
    os.symlink(str(victim), layer / "evil")
    os.symlink("../../../../../../" + str(victim).lstrip("/"), layer / "climb")
    src = tmp_path / "src"
    src.mkdir()
    (src / "payload").write_text("payload\n")
    box = Box([layer, busybox_rootfs], tmp_path)
    code, out, err = sh(box, "ls /evil/ /climb/", opts=RunOptions(
        network="none", mounts=(BindMount(str(src), "/evil"), BindMount(str(src), "/climb"))))
    assert code == 0, err
    assert "payload" in out
    assert sorted(os.listdir(victim)) == ["canary"]
    assert not os.path.ismount(victim)


def test_pids_limit_stops_a_fork_bomb(box: Box) -> None:
    script = "b() { b | b & }; b 2>/dev/null; sleep 1; ls /proc | grep -c '^[0-9]'"
    code, out, _ = sh(box, script, opts=RunOptions(network="none", pids_limit=40))
    assert code == 0
    assert 1 < int(out.strip()) <= 40


def test_memory_limit_oom_kills(box: Box) -> None:
    code, _, _ = box.run("tail", "/dev/zero", opts=RunOptions(network="none", memory=32 << 20))
    assert code == 137


def test_rlimits_never_above_callers(box: Box) -> None:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    out = sh(box, "ulimit -n; ulimit -Hn")[1].split()
    assert int(out[1]) <= hard and int(out[0]) <= int(out[1])


def test_exec_errors(box: Box) -> None:
    with pytest.raises(ExecFailed, match="not found") as info:
        box.run("no-such-command")
    assert info.value.exit_code == 127
    with pytest.raises(ExecFailed, match="permission denied") as info:
        box.run("/etc/passwd")
    assert info.value.exit_code == 126


def test_setup_error_is_one_line_and_leaves_nothing(box: Box, tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match=r"^mount bind on /x: No such file or directory$"):
        box.run("true", opts=RunOptions(network="none", mounts=(BindMount(str(tmp_path / "missing"), "/x"),)))
    assert _leftover_cgroups(box.ids) == []


# How the process running ``sandbox.execute`` was started: its launcher's signal state is inherited
# over fork and execve (CI launchers differ from a terminal), so each case is set up explicitly by a
# one-line launcher that execs the script (same pid); "as-given" is whatever this session hands down.
_INHERITED = {
    "as-given": "",
    "sigterm-blocked": "signal.signal(signal.SIGTERM, signal.SIG_DFL); "
                       "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})",
    "sigterm-ignored": "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM}); "
                       "signal.signal(signal.SIGTERM, signal.SIG_IGN)",
}


def _proc_status(pid: int) -> str:
    """State and signal masks of ``pid`` and of its descendants, for a failure message."""
    lines = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
        lines.append(f"{p} {fields.get('Name')} {fields.get('State')} SigBlk={fields.get('SigBlk')} "
                     f"SigIgn={fields.get('SigIgn')} SigCgt={fields.get('SigCgt')}")
    return "\n".join(lines)


def _readline(proc: subprocess.Popen, timeout: float) -> bytes:
    """One line of ``proc``'s stdout, or what came before ``timeout`` seconds passed."""
    import select
    import time

    fd, buf = proc.stdout.fileno(), b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"\n") and time.monotonic() < deadline:
        if select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            chunk = os.read(fd, 1)
            if not chunk:
                break
            buf += chunk
    return buf


@pytest.mark.parametrize("inherited", list(_INHERITED))
def test_signals_are_forwarded(busybox_rootfs: Path, tmp_path: Path, inherited: str) -> None:
    """SIGTERM to a process running ``sandbox.execute`` reaches the container's PID 1 (its trap exits 42),
    whether that process was started with SIGTERM blocked, ignored or as this session starts children."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    import json
    import sys
    import textwrap

    cid = "sig" + secrets.token_hex(8)
    script = tmp_path / "fg.py"
    script.write_text(textwrap.dedent(f"""
        import json, signal, sys
        with open({str(tmp_path / "inherited.json")!r}, "w") as f:    # the state execute() starts from
            json.dump({{"blocked": signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, []),
                       "ignored": signal.getsignal(signal.SIGTERM) == signal.SIG_IGN}}, f)
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from runner import sandbox
        from runner.options import RunOptions
        from runner.rootfs import OverlayMount
        from runner.spec import make_spec
        with OverlayMount([{str(busybox_rootfs)!r}], "{tmp_path}/u", "{tmp_path}/w", "{tmp_path}/r") as root:
            opts = RunOptions(network="none", command=("sh", "-c", "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done"))
            spec = make_spec(None, opts, rootfs=root)
            sys.exit(sandbox.execute(spec, container_id={cid!r}))
    """))
    launcher = (f"import os, signal, sys; {_INHERITED[inherited] or 'pass'}; "
                f"os.execv(sys.executable, [sys.executable, {str(script)!r}])")
    proc = subprocess.Popen([sys.executable, "-c", launcher], stdout=subprocess.PIPE)
    try:
        line = _readline(proc, 30)
        assert line == b"ready\n", f"no 'ready' within 30 s (got {line!r}):\n{_proc_status(proc.pid)}"
        state = json.loads((tmp_path / "inherited.json").read_text())
        if inherited != "as-given":        # the case set up is the one execute() started from
            assert (state["blocked"], state["ignored"]) == (inherited == "sigterm-blocked",
                                                            inherited == "sigterm-ignored"), state
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running 30 s after SIGTERM (started with {state}):\n{_proc_status(proc.pid)}")
        assert code == 42, state
    finally:
        if proc.poll() is None:
            proc.kill()             # the container dies with it (pdeathsig)
            proc.wait()
        sandbox.cleanup(cid)        # a killed run leaves its cgroup, and its overlay:
        if os.path.ismount(tmp_path / "r"):     # neither is this test's subject
            from runner.syscalls import MNT_DETACH, umount2

            umount2(str(tmp_path / "r"), MNT_DETACH)


def test_a_signal_handled_on_another_thread_is_forwarded(busybox_rootfs: Path, tmp_path: Path) -> None:
    """The caller's main thread waits in ``foreground`` while another thread takes the SIGTERM (a port
    proxy's, a library's): Python's C handler runs there and does not interrupt the main thread's wait,
    which must still wake and forward it. The same wait lost a signal that landed just before it blocked."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    import sys
    import textwrap

    cid = "sig" + secrets.token_hex(8)
    script = tmp_path / "fg_thread.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys, threading, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from runner import sandbox
        from runner.options import RunOptions
        from runner.rootfs import OverlayMount
        from runner.spec import make_spec

        def poke():
            sys.stdin.buffer.read(1)     # the test saw 'ready': the container's trap is set
            time.sleep(0.3)              # and the main thread is waiting in foreground()
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)   # handled on this thread

        with OverlayMount([{str(busybox_rootfs)!r}], "{tmp_path}/u", "{tmp_path}/w", "{tmp_path}/r") as root:
            opts = RunOptions(network="none", command=("sh", "-c", "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done"))
            spec = make_spec(None, opts, rootfs=root)
            threading.Thread(target=poke, daemon=True).start()
            with open(os.devnull, "rb") as null:
                sys.exit(sandbox.execute(spec, container_id={cid!r}, stdin=null))
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        line = _readline(proc, 30)
        assert line == b"ready\n", f"no 'ready' within 30 s (got {line!r}):\n{_proc_status(proc.pid)}"
        proc.stdin.write(b"x")
        proc.stdin.flush()
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running 30 s after the SIGTERM:\n{_proc_status(proc.pid)}")
        assert code == 42
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        sandbox.cleanup(cid)
        if os.path.ismount(tmp_path / "r"):
            from runner.syscalls import MNT_DETACH, umount2

            umount2(str(tmp_path / "r"), MNT_DETACH)


def _leftover_cgroups(ids: list[str]) -> list[str]:
    """Cgroup directories of these containers that still exist, in any v1 hierarchy (or v2)."""
    found = []
    for ctrl in ("memory", "pids", "cpu", "freezer", "devices", ""):
        base = os.path.join(cgroups.CGROUP_ROOT, ctrl, "pybuild")
        found += [os.path.join(base, i) for i in ids if os.path.isdir(os.path.join(base, i))]
    return found


def _mounts(under: Path) -> list[str]:
    """Mount points below ``under`` (other tests share this machine's mount table)."""
    with open("/proc/self/mountinfo") as f:
        return sorted(p for p in (line.split()[4] for line in f) if p.startswith(str(under)))


def _children() -> set[int]:
    """Pids whose parent is this process, zombies included.

    The session's own long-lived children are among them (the registries ``tests/registry`` starts
    once per session live until it ends), so a test compares with a snapshot taken before its runs.
    """
    me = str(os.getpid())
    out = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[1] == me:
                        out.add(int(pid))
            except FileNotFoundError:
                continue
    return out


def _marked(marker: str) -> list[int]:
    """Host pids whose environment holds ``marker``: every process of containers run with it in ``env``,
    whatever it is called and wherever it was re-parented (a zombie has no environment: see _children)."""
    needle = marker.encode()
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        out.append(int(pid))
            except OSError:
                continue
    return out


def _leak_run(box: Box, marker: str, script: str) -> tuple[int, str, str]:
    return sh(box, script, opts=RunOptions(network="none", env=(marker,)))


def test_fifty_runs_leave_nothing(box: Box, tmp_path: Path) -> None:
    marker = "PYBUILD_LEAK_TEST=" + secrets.token_hex(8)
    before = _children()
    for i in range(50):
        code, out, _ = _leak_run(box, marker, f"sleep 100 & sleep 100 & echo {i}")
        assert (code, out) == (0, f"{i}\n")
    assert _mounts(tmp_path) == []
    assert _leftover_cgroups(box.ids) == []
    assert sorted(_children() - before) == []
    assert _marked(marker) == []        # no sleep (nor anything else) of these runs survives anywhere


@pytest.mark.slow
def test_two_hundred_runs_leave_nothing(box: Box, tmp_path: Path) -> None:
    marker = "PYBUILD_LEAK_TEST=" + secrets.token_hex(8)
    before = _children()
    for i in range(200):
        code, out, _ = _leak_run(box, marker, f"sleep 100 & echo {i}")
        assert (code, out) == (0, f"{i}\n")
    assert _mounts(tmp_path) == []
    assert _leftover_cgroups(box.ids) == []
    assert sorted(_children() - before) == []
    assert _marked(marker) == []


def test_tty_gets_a_pty_from_the_containers_devpts(busybox_rootfs: Path, tmp_path: Path) -> None:
    """``process.terminal``: the container's stdio is a pty of its own /dev/pts; input and output relayed."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    import pty
    import select
    import sys
    import textwrap
    import time

    script = tmp_path / "ttyrun.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from runner import sandbox
        from runner.options import RunOptions
        from runner.rootfs import OverlayMount
        from runner.spec import make_spec
        with OverlayMount([{str(busybox_rootfs)!r}], "{tmp_path}/u", "{tmp_path}/w", "{tmp_path}/r") as root:
            opts = RunOptions(network="none", tty=True,
                              command=("sh", "-c", "tty; echo term=$TERM; read x; echo got=$x; exit 4"))
            sys.exit(sandbox.execute(make_spec(None, opts, rootfs=root), container_id="tty{os.getpid()}"))
    """))
    pid, master = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, str(script)])
    out = b""
    sent = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if not sent and b"term=" in out:
            os.write(master, b"typed\r")
            sent = True
    _, status = os.waitpid(pid, 0)
    os.close(master)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 4, text
    assert "/dev/pts/0" in text and "term=xterm" in text and "got=typed" in text


def test_limits_visible_in_the_containers_cgroupfs(box: Box) -> None:
    """The container sees its own cgroup as the root of a read-only /sys/fs/cgroup (cgroup namespace)."""
    if cgroups.detect_version() != "v1":
        pytest.skip("host is pure cgroup v2; this checks the v1 files")
    code, out, err = sh(box, "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/memory/memory.limit_in_bytes "
                             "/sys/fs/cgroup/pids/pids.max; cat /proc/self/cgroup | grep memory; "
                             "mkdir /sys/fs/cgroup/memory/x && echo CGROUP-WRITABLE; true",
                        opts=RunOptions(network="none", cpus=0.5, memory=64 << 20, pids_limit=99))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:4] == ["50000", str(64 << 20), "99", lines[3]] and lines[3].endswith(":memory:/")
    assert "CGROUP-WRITABLE" not in out
