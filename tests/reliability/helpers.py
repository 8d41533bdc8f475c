"""Helpers of the reliability tests: spawn pybuild, stop it at a named pause point and SIGKILL it,
check the store with the real ``pybuild fsck``."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import pybuild_exe


def argv(pb, *args: str) -> list[str]:
    return [pybuild_exe(), "--root", str(pb.root), "--state-dir", str(pb.state), *args]


def environ(pb, extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYBUILD_DEBUG"}
    env.update(getattr(pb, "base_env", {}))
    env.update(extra or {})
    return env


def spawn(pb, *args: str, env: dict | None = None, stdin=subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen(argv(pb, *args), env=environ(pb, env), stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def kill_at(pb, step: str, *args: str, tmp: Path, env: dict | None = None, timeout: float = 60) -> str:
    """Run ``pybuild ARGS`` until it reaches the pause point ``step``, SIGKILL it; its stderr so far."""
    marker = tmp / f"paused-{step}-{time.monotonic_ns()}"
    proc = spawn(pb, *args, env={**(env or {}), "PYBUILD_TEST_PAUSE_AT": step, "PYBUILD_TEST_PAUSE_FILE": str(marker)})
    try:
        deadline = time.monotonic() + timeout
        while not marker.exists():
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"pybuild {' '.join(args)} ended ({proc.returncode}) before {step}: {out}{err}")
            assert time.monotonic() < deadline, f"pybuild {' '.join(args)} never reached {step}"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    return proc.stderr.read()


def fsck_clean(pb) -> str:
    """``pybuild fsck`` exits 0 and reports no problem (notes are allowed); its output."""
    out = pb("fsck")
    assert out.returncode == 0 and out.stdout.rstrip().endswith(": ok"), out.stdout + out.stderr
    assert "problem:" not in out.stdout, out.stdout
    return out.stdout


def one_line_error(proc) -> str:
    """A failed command said one ``pybuild: ...`` line and no traceback; that line."""
    err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode()
    assert proc.returncode != 0
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("pybuild: "), err
    return lines[-1]


def partial_ingests(root: Path) -> list[str]:
    base = Path(root) / "ingest"
    return sorted(n for n in os.listdir(base) if not n.endswith(".lock")) if base.is_dir() else []


def pause_at(pb, step: str, *args: str, tmp: Path, env: dict | None = None, timeout: float = 60):
    """Start ``pybuild ARGS`` and wait until it stops at ``step``; ``(proc, marker)``. Removing the
    marker (:func:`resume`) lets it carry on."""
    marker = tmp / f"paused-{step}-{time.monotonic_ns()}"
    proc = spawn(pb, *args, env={**(env or {}), "PYBUILD_TEST_PAUSE_AT": step, "PYBUILD_TEST_PAUSE_FILE": str(marker)})
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"pybuild {' '.join(args)} ended ({proc.returncode}) before {step}: {out}{err}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"pybuild {' '.join(args)} never reached {step}")
        time.sleep(0.01)
    return proc, marker


def resume(proc: subprocess.Popen, marker: Path, timeout: float = 120) -> tuple[int, str, str]:
    marker.unlink()
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def pids_of(cmdline: str) -> list[int]:
    """Pids whose command line is exactly ``cmdline`` (arguments joined by spaces)."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if f.read().replace(b"\0", b" ").strip() == cmdline.encode():
                        out.append(int(pid))
            except OSError:
                continue
    return out
