"""The no-process-sandbox mode and the store-on-overlay check, on this host as root (real namespaces,
real overlayfs, the real ``pybuild build``); the same code inside an unprivileged podman container is
tests/podbuild's.

The masked-``/proc`` case is made here the way a container makes it: a mount namespace with
``/dev/null`` bound over ``/proc/keys`` (masked by Docker and podman), then a user namespace and a mount namespace it owns, so
the mask is locked, and the kernel refuses a fresh ``proc`` (it would reveal what the mask hides).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from runner import syscalls as sc
from runner.errors import SandboxError
from runner.procsandbox import PROC_BIND, ProcessSandbox, choose, probe
from tests.conftest import PybuildRunner

from .conftest import require_root

DOCKERFILE = """\
FROM busybox:latest
RUN echo "first pid=$$"; (sleep {marker} &); echo started
RUN echo "second pid=$$"
"""


def _spec(tmp_path: Path):
    from runner.options import RunOptions
    from runner.spec import make_spec

    return make_spec({"config": {}}, RunOptions(command=("true",), network="host"), rootfs=str(tmp_path))


def test_apply_drops_the_pid_namespace_and_binds_proc(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    assert ProcessSandbox().apply(spec) is spec
    shared = ProcessSandbox(False, "asked for").apply(spec)
    assert "pid" in {ns.type for ns in spec.linux.namespaces}
    assert "pid" not in {ns.type for ns in shared.linux.namespaces}
    assert {ns.type for ns in shared.linux.namespaces} == {ns.type for ns in spec.linux.namespaces} - {"pid"}
    procs = [m for m in shared.mounts if m.destination == "/proc"]
    assert procs == [PROC_BIND] and PROC_BIND.options[0] == "rbind"
    assert [m for m in shared.mounts if m.destination != "/proc"] == [m for m in spec.mounts if m.destination != "/proc"]
    assert shared.linux.masked_paths == spec.linux.masked_paths  # Docker's masks go on again over the bind


def test_choose_refuses_an_unknown_request_and_off_needs_no_probe() -> None:
    with pytest.raises(SandboxError, match="expected one of auto, on, off"):
        choose("sometimes")
    mode = choose("off")
    assert not mode.private and "asked for" in mode.note


def _probe_in_userns(mask: bool) -> str:
    """Fork: (optionally) mask /proc/keys, enter a new user + mount namespace (root mapped to root),
    run the probe there; its answer comes back through a pipe ("ok" for None)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports through the pipe and leaves with os._exit
        os.close(r)
        try:
            sc.unshare(sc.CLONE_NEWNS)
            sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
            if mask:
                sc.mount("/dev/null", "/proc/keys", None, sc.MS_BIND)
            sc.unshare(sc.CLONE_NEWUSER)
            with open("/proc/self/uid_map", "w") as f:
                f.write("0 0 1")
            with open("/proc/self/setgroups", "w") as f:
                f.write("deny")
            with open("/proc/self/gid_map", "w") as f:
                f.write("0 0 1")
            sc.unshare(sc.CLONE_NEWNS)  # owned by the new user namespace: the mask is locked now
            answer = probe.__wrapped__()  # not the cached answer of the test process
            os.write(w, (answer or "ok").encode())
        except BaseException as exc:
            os.write(w, f"setup failed: {exc}".encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        answer = f.read()
    os.waitpid(pid, 0)
    return answer


def test_probe_finds_a_masked_proc() -> None:
    require_root()
    assert probe() is None  # root on the host: a fresh /proc mounts
    assert _probe_in_userns(mask=False) == "ok"  # a user namespace alone is no reason
    assert _probe_in_userns(mask=True) == "mount proc: Operation not permitted"


@pytest.fixture
def busybox_store(pybuild: PybuildRunner, busybox_tar: Path) -> PybuildRunner:
    require_root()
    pybuild("import", str(busybox_tar), "busybox:latest", check=True)
    return pybuild


def _leftover(marker: str) -> list[str]:
    out = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    out.append(name)
        except OSError:
            continue
    return out


def test_build_without_process_sandbox(busybox_store: PybuildRunner, tmp_path: Path) -> None:
    marker = str(900000 + os.getpid() % 99999)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(marker=marker))
    try:
        r = busybox_store("build", "--progress", "plain", "--no-cache", str(ctx), env={"PYBUILD_PROCESS_SANDBOX": "off"},
                          timeout=60)
        assert r.returncode == 0, r.stderr
        # said once, before the steps, for two RUN steps
        assert r.stderr.count("no process sandbox") == 1, r.stderr
        assert r.stderr.index("no process sandbox (asked for)") < r.stderr.index("#1 ")
        pids = [int(line.split("pid=")[1]) for line in r.stderr.splitlines() if line.startswith(("first pid=", "second pid="))]
        assert len(pids) == 2 and all(p > 1 for p in pids), r.stderr  # the builder's pid namespace
        # the background sleep did not outlive its step (nor hold the build up)
        assert _leftover(f"sleep {marker}") == []

        r = busybox_store("build", "--progress", "plain", "--no-cache", str(ctx), timeout=60)
        assert r.returncode == 0, r.stderr
        assert "no process sandbox" not in r.stderr
        assert "first pid=1\n" in r.stderr and "second pid=1\n" in r.stderr  # PID 1 of its own namespace
        assert _leftover(f"sleep {marker}") == []
    finally:
        for pid in _leftover(f"sleep {marker}"):
            os.kill(int(pid), signal.SIGKILL)


def test_process_sandbox_env_is_checked(busybox_store: PybuildRunner, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nRUN true\n")
    r = busybox_store("build", str(ctx), env={"PYBUILD_PROCESS_SANDBOX": "maybe"})
    assert r.returncode != 0 and "PYBUILD_PROCESS_SANDBOX='maybe': expected auto, on or off" in r.stderr
    assert "Traceback" not in r.stderr
    r = busybox_store("build", "-q", str(ctx), env={"PYBUILD_PROCESS_SANDBOX": "on"})  # possible here: fine
    assert r.returncode == 0, r.stderr


@pytest.fixture
def overlay_dir(tmp_path: Path):
    """A directory on an overlayfs (as a container's own root is)."""
    require_root()
    base = tmp_path / "ovl"
    for d in ("lower", "upper", "work", "mnt"):
        (base / d).mkdir(parents=True)
    mnt = str(base / "mnt")
    sc.mount("overlay", mnt, "overlay", 0, f"lowerdir={base/'lower'},upperdir={base/'upper'},workdir={base/'work'}")
    try:
        yield Path(mnt)
    finally:
        for _ in range(50):
            try:
                sc.umount2(mnt)
                break
            except OSError:
                time.sleep(0.1)
        else:
            sc.umount2(mnt, sc.MNT_DETACH)


def test_store_on_overlay_is_refused_with_advice(overlay_dir: Path, tmp_path: Path, busybox_tar: Path) -> None:
    store = PybuildRunner(overlay_dir / "store", tmp_path / "state")
    (overlay_dir / "store").mkdir(mode=0o700)
    (tmp_path / "state").mkdir(mode=0o700)
    store("import", str(busybox_tar), "busybox:latest", check=True)  # import needs no overlay
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nRUN true\n")
    r = store("build", str(ctx))
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"the store {overlay_dir / 'store'}" in lines[0]
    assert "is on an overlay filesystem" in lines[0] and "put the store on a volume" in lines[0]
    info = store("info", check=True).stdout
    assert f"WARNING: the store {overlay_dir / 'store'} is on an overlay filesystem" in info
    assert "Process Sandbox (RUN steps): yes\n" in info  # root on the host: a fresh /proc mounts


def test_overlay_mount_error_explains_an_overlay_upper(overlay_dir: Path, tmp_path: Path) -> None:
    from runner.rootfs import OverlayMount

    lower = tmp_path / "lower"
    lower.mkdir()
    mount = OverlayMount([str(lower)], str(overlay_dir / "upper"), str(overlay_dir / "work"), str(tmp_path / "root"))
    with pytest.raises(SandboxError, match="upper dir .*is on an overlay filesystem.*put the store on a volume"):
        mount.mount()
    assert not mount.mounted
    # the same directories on a plain filesystem mount fine: the overlay underneath was the reason
    with OverlayMount([str(lower)], str(tmp_path / "upper"), str(tmp_path / "work"), str(tmp_path / "root")):
        pass
