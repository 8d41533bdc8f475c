"""SECURITY.md case 23 for the builder: eight ``pybuild build`` processes at once on one store, sharing
the base image and some cache keys, while ``rmi`` and ``system prune`` (GC) run in a loop: every build
succeeds or fails cleanly (one located line, no traceback), ``fsck`` is clean afterwards and every
image built runs and prints what it should."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import pybuild_exe

pytestmark = pytest.mark.timeout(900)


def test_eight_builds_at_once_with_rmi_and_gc(bpybuild, tmp_path: Path) -> None:
    contexts = []
    for i in range(8):
        ctx = tmp_path / f"ctx{i}"
        ctx.mkdir()
        (ctx / "shared.txt").write_text("shared\n")
        (ctx / "own.txt").write_text(f"own {i}\n")
        (ctx / "Dockerfile").write_text(
            "FROM busybox\n"
            "COPY shared.txt /shared.txt\n"                   # the same cache key in every build
            "RUN --mount=type=cache,target=/c,id=shared echo $(cat /shared.txt) > /from-shared\n"
            f"COPY own.txt /own.txt\nRUN cat /own.txt > /copied && echo {i} > /n\n")
        contexts.append(ctx)
    bpybuild("build", "-q", "-t", "old:1", str(contexts[0]), check=True)
    stop = threading.Event()
    side_errors: list[str] = []

    def churn() -> None:
        n = 0
        while not stop.is_set():
            for args in (("rmi", "old:1"), ("system", "prune"), ("tag", "busybox:latest", f"extra:{n}"),
                         ("rmi", f"extra:{n}")):
                proc = bpybuild(*args)
                if "Traceback" in proc.stderr:
                    side_errors.append(proc.stderr)
            n += 1

    side = threading.Thread(target=churn, daemon=True)
    side.start()
    argv = [pybuild_exe(), "--root", str(bpybuild.root), "--state-dir", str(bpybuild.state)]
    procs = [subprocess.Popen([*argv, "build", "-q", "-t", f"c{i}:1", str(ctx)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, ctx in enumerate(contexts)]
    results = [p.communicate(timeout=600) + (p.returncode,) for p in procs]
    time.sleep(0.5)
    stop.set()
    side.join(60)
    assert not side_errors, side_errors[0]
    for i, (out, err, code) in enumerate(results):
        assert "Traceback" not in err, err
        if code != 0:  # a clean failure is allowed; it must be one located line
            assert len(err.strip().splitlines()) == 1 and err.startswith("pybuild: "), err
            continue
        assert out.strip().startswith("sha256:")
        run = bpybuild("run", "--rm", "--network", "none", f"c{i}:1", "cat", "/from-shared", "/copied", "/n",
                       check=True)
        assert run.stdout == f"shared\nown {i}\n{i}\n"
    assert all(code == 0 for *_, code in results), [r[1] for r in results]  # nothing here needs to fail
    fsck = bpybuild("fsck", check=True)
    assert fsck.stdout.rstrip().endswith("ok"), fsck.stdout


def test_a_build_killed_mid_run_leaves_a_sound_store(bpybuild, tmp_path: Path) -> None:
    """SIGKILL of ``pybuild build`` while a RUN step runs: no tag, no mount left once the next build
    started, that build succeeds from the cache of the steps that finished, and fsck is clean."""
    import os
    import signal

    ctx = tmp_path / "k"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo first > /first\nRUN touch /started-$(date +%N) && sleep 30\n")
    argv = [pybuild_exe(), "--root", str(bpybuild.root), "--state-dir", str(bpybuild.state)]
    proc = subprocess.Popen([*argv, "build", "--progress", "plain", "-t", "k:1", str(ctx)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not list((bpybuild.root / "tmp").glob("build-*/upper-*/started-*")):  # the RUN is under way
        assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read() if proc.poll() else ""
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert "k:1" not in bpybuild("images", check=True).stdout
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo first > /first\nRUN echo second > /second\n")
    again = bpybuild("build", "--progress", "plain", "-t", "k:2", str(ctx), check=True)
    assert "1/2 steps cached" in again.stderr
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(bpybuild.root / "tmp") not in mounts and list((bpybuild.root / "tmp").glob("build-*")) == []
    assert bpybuild("run", "--rm", "--network", "none", "k:2", "cat", "/first", "/second", check=True).stdout == \
        "first\nsecond\n"
    assert bpybuild("fsck", check=True).stdout.rstrip().endswith("ok")
