"""The shim the CLI forks (:func:`runner.shim_client.fork_shim`): nothing of the CLI stays with it,
and a caller with threads gets a spawned shim instead."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from .conftest import wait_for

RUNNER_DIR = str(Path(__file__).resolve().parents[2])


def _cmdline(pid: int) -> bytes:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read()


def _status(pid: int, key: str) -> str:
    with open(f"/proc/{pid}/status") as f:
        return next(line.split(":", 1)[1].strip() for line in f if line.startswith(key + ":"))


def test_forked_shim_keeps_nothing_of_the_cli(pybuild, image):
    from runner.state import ContainerStore

    exe = str(Path(sys.executable).with_name("pybuild"))
    # the CLI in a session of its own, its stdout and stderr pipes: communicate() returns only once
    # nobody holds them, so neither the shim nor the container kept the CLI's stdio
    cli = subprocess.Popen([exe, "--root", str(pybuild.root), "--state-dir", str(pybuild.state), "run", "-d",
                            "--network", "none", image, "sleep", "1000"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    out, err = cli.communicate(timeout=60)
    assert cli.returncode == 0, err
    cid = out.decode().strip()
    store = ContainerStore(str(pybuild.root), str(pybuild.state))
    shim = store.shim_pid(cid)
    assert shim is not None and shim != cli.pid
    # the forked CLI is gone: the shim's resident loop is a fresh `python -I -S` of its own
    wait_for(lambda: b"runner.shimloop" in _cmdline(shim), what="the shim loop")
    # a session of its own (the CLI's terminal cannot signal it), nothing blocked once the loop runs
    assert os.getsid(shim) not in (cli.pid, os.getsid(0))
    assert int(_status(shim, "PPid")) != cli.pid
    wait_for(lambda: _status(shim, "SigBlk") == "0000000000000000", what="nothing blocked in the loop")
    # the interpreters it execs with -S (the way back from the loop, health probes) find runner
    with open(f"/proc/{shim}/environ", "rb") as f:
        env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
    assert RUNNER_DIR.encode() in env[b"PYTHONPATH"].split(b":")
    assert pybuild("inspect", "-f", "{{.State.Status}}", cid, check=True).stdout.strip() == "running"
    pybuild("stop", "-t", "0", cid, check=True)
    pybuild("rm", cid, check=True)
    assert pybuild("ps", "-a", "-q").stdout.strip() == ""


def test_a_caller_with_threads_starts_through_a_spawned_shim(lifecycle):
    """A fork would copy only the calling thread (and whatever lock another holds): with a thread
    running, ``start`` spawns ``python -S -m runner.shim`` instead, and the container runs all the same."""
    from runner import containers as C
    from runner.shim_client import can_fork

    cid = lifecycle.create("threaded", ["sleep", "1000"])
    before = can_fork()  # False already when a session fixture (a token server, say) runs a thread here
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert not can_fork()
        info = C.start(lifecycle.store, cid)
    finally:
        release.set()
        other.join()
    assert can_fork() == before
    assert info.state.status == "running" and info.state.pid > 0
    shim = lifecycle.store.shim_pid(cid)
    wait_for(lambda: b"runner.shimloop" in _cmdline(shim), what="the shim loop")
    lifecycle.pybuild("stop", "-t", "0", "threaded", check=True)
    assert lifecycle.state("threaded").status == "exited"
